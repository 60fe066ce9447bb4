"""Stock mutations: `changeStock` and `setStock` (all-or-nothing: one bad item rejects the mutation)."""

from __future__ import annotations

from typing import Any

from pipelines.simulators.centra.state import CentraState, MutationError

from .common import _describe, _failed, _payload, _state, _warehouse_id, mutation, needs


def _resolve_items(state: CentraState, inp: dict[str, Any], qty_key: str, *, positive: bool
                   ) -> tuple[list[tuple[int, int]], float | None]:
    """Product sizes + variant/size forms -> [(size id, qty)]; any bad item rejects the mutation."""
    items: list[tuple[int, int]] = []
    errors: list[dict[str, Any]] = []
    unit_cost = None
    for i, ps in enumerate(inp.get("product_sizes") or []):
        path = ["input", "productSizes", str(i)]
        ref = state.find_size(**{k: v for k, v in ps["product_size"].items() if v is not None})
        qty = ps[qty_key]
        if ref is None:
            errors.append({"message": f"Product size not found ({_describe(ps['product_size'])})",
                           "path": [*path, "productSize"]})
        elif (positive and qty <= 0) or qty < 0:
            errors.append({"message": f"Quantity must be {'positive' if positive else 'zero or more'}, got {qty}",
                           "path": [*path, "deliveredQuantity" if positive else "quantity"]})
        else:
            items.append((ref.size.size_id, qty))
        unit_cost = unit_cost or (ps.get("unit_cost") or {}).get("value")
    size_key = "size_changes" if positive else "size_stock_levels"
    names_by_id = {v: k for k, v in state.size_names.items()}
    for i, pv in enumerate(inp.get("product_variants") or []):
        path = ["input", "productVariants", str(i)]
        variant = state.variants.get((pv["product_variant"] or {}).get("id") or -1)
        if variant is None:
            errors.append({"message": f"Product variant not found ({_describe(pv['product_variant'])})",
                           "path": [*path, "productVariant"]})
            continue
        unit_cost = unit_cost or (pv.get("unit_cost") or {}).get("value")
        for j, sc in enumerate(pv.get(size_key) or []):
            name = sc["size"].get("name") or names_by_id.get(sc["size"].get("id") or -1)
            size = next((s for s in variant.sizes if s.size == name), None)
            qty = sc[qty_key]
            if size is None:
                errors.append({"message": f"Size {_describe(sc['size'])} is not active on variant {variant.variant_id}",
                               "path": [*path, "sizeChanges" if positive else "sizeStockLevels", str(j), "size"]})
            elif (positive and qty <= 0) or qty < 0:
                errors.append({"message": f"Quantity must be {'positive' if positive else 'zero or more'}, got {qty}",
                               "path": [*path, str(j), qty_key]})
            else:
                items.append((size.size_id, qty))
    if errors:
        raise MutationError("", errors=errors)
    if not items:
        raise MutationError("No productSizes or productVariants given", ["input"])
    return items, unit_cost


@mutation.field("changeStock")
@needs("StockChange:write")
def m_change_stock(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        into = _warehouse_id(state, input.get("into_warehouse"), ["input", "intoWarehouse"])
        out = _warehouse_id(state, input.get("out_from_warehouse"), ["input", "outFromWarehouse"])
        items, unit_cost = _resolve_items(state, input, "delivered_quantity", positive=True)
        rec = state.apply_stock_change(input["description"], items, into=into, out=out, unit_cost=unit_cost)
        return _payload(stock_change=rec)
    except MutationError as exc:
        return _failed(exc, stock_change=None)


@mutation.field("setStock")
@needs("StockChange:write")
def m_set_stock(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        wid = _warehouse_id(state, input["warehouse"], ["input", "warehouse"])
        items, unit_cost = _resolve_items(state, input, "quantity", positive=False)
        rec = state.apply_stock_set(input["description"], int(wid), items, unit_cost=unit_cost,  # type: ignore[arg-type]
                                    quantity_type=input["stock_quantity_type"])
        return _payload(stock_changes=[rec] if rec else [])
    except MutationError as exc:
        return _failed(exc, stock_changes=[])
