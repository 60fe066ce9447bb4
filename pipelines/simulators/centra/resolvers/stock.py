"""Stock: one row per (warehouse, product size) with its totals (served under `Warehouse.stock` and
`ProductSize.stock`), and the stock-change ledger (`stockChangeConnection`, `StockChange`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ariadne import ObjectType

from pipelines.simulators.centra.state import CentraState, StockRecord

from .common import _match, _state, connection, in_range, int_in_range, money, needs, query


class StockView:
    """One (warehouse, product size) stock row."""

    __slots__ = ("state", "warehouse_id", "size_id", "rec")

    def __init__(self, state: CentraState, warehouse_id: int, size_id: int, rec: StockRecord) -> None:
        self.state, self.warehouse_id, self.size_id, self.rec = state, warehouse_id, size_id, rec

    physical_quantity = property(lambda self: self.rec.physical)
    allocated_quantity = property(lambda self: self.rec.allocated)
    free_to_allocate_quantity = property(lambda self: self.rec.fta)
    demand_quantity = property(lambda self: self.rec.demand)
    unshipped_quantity = property(lambda self: self.rec.allocated + self.rec.demand)
    available_now_quantity = property(lambda self: self.rec.fta - self.rec.demand)
    available_quantity = property(lambda self: self.rec.fta - self.rec.demand)
    incoming_quantity = linked_incoming_quantity = unlinked_incoming_quantity = on_delivery_quantity = property(
        lambda self: 0)
    product_size = property(lambda self: self.state.sizes[self.size_id])
    warehouse = property(lambda self: self.state.warehouses[self.warehouse_id])


_TOTAL_FIELDS = ("physical_quantity", "allocated_quantity", "free_to_allocate_quantity", "demand_quantity",
                 "unshipped_quantity", "available_now_quantity", "available_quantity", "incoming_quantity",
                 "linked_incoming_quantity", "unlinked_incoming_quantity", "on_delivery_quantity")


def _totals(rows: Iterable[StockView]) -> dict[str, int]:
    out = dict.fromkeys(_TOTAL_FIELDS, 0)
    for row in rows:
        for name in _TOTAL_FIELDS:
            out[name] += getattr(row, name)
    return out


def _stock_matches(state: CentraState, row: StockView, where: dict[str, Any] | None) -> bool:
    if not where:
        return True
    ref = state.sizes[row.size_id]
    checks = [
        not where.get("product_id") or ref.product.product_id in where["product_id"],
        not where.get("product_variant_id") or ref.variant.variant_id in where["product_variant_id"],
        not where.get("product_size_id") or row.size_id in where["product_size_id"],
        not where.get("warehouse_id") or row.warehouse_id in where["warehouse_id"],
        int_in_range(row.physical_quantity, where.get("physical_quantity")),
        int_in_range(row.allocated_quantity, where.get("allocated_quantity")),
        int_in_range(row.free_to_allocate_quantity, where.get("free_to_allocate_quantity")),
        int_in_range(row.demand_quantity, where.get("demand_quantity")),
    ]
    ok = all(checks)
    return not ok if where.get("negate") else ok


def _stock_rows(state: CentraState, *, warehouse_id: int | None = None, size_id: int | None = None,
                where: dict[str, Any] | None = None) -> list[StockView]:
    if warehouse_id is not None:
        keys = [(warehouse_id, sid) for sid in state.size_ids_sorted if (warehouse_id, sid) in state.stock]
    else:
        keys = [(wid, size_id) for wid in sorted(state.warehouses) if (wid, size_id) in state.stock]
    rows = [StockView(state, w, s, state.stock[(w, s)]) for w, s in keys]
    return [r for r in rows if _stock_matches(state, r, where)]


# ------------------------------------------------------------------ stock changes


@query.field("stockChangeConnection")
@needs("StockChange:read")
def r_stock_change_connection(_: Any, info: Any, first: int | None = None, after: str | None = None,
                              last: int | None = None, before: str | None = None,
                              where: dict | None = None) -> dict:
    state, w = _state(info), where or {}
    search = (w.get("search") or "").lower()
    items = []
    for sc in state.stock_changes_log:
        if ((w.get("id") and sc.id not in w["id"]) or not in_range(sc.created_at, w.get("created_at"))
                or (w.get("warehouse_id") and not any(ln.warehouse_id in w["warehouse_id"] for ln in sc.lines))
                or (w.get("product_size_id") and not any(ln.size_id in w["product_size_id"] for ln in sc.lines))
                or not _match(sc.description, w.get("description"))
                or (search and search not in sc.description.lower())):
            continue
        items.append(sc)
    return connection(items, lambda sc: sc.id, "stockChange", first=first, after=after, last=last, before=before)


stock_change_t = ObjectType("StockChange")
stock_change_line_t = ObjectType("StockChangeLine")
stock_change_line_t.set_field("isAvailable", lambda ln, info: True)
stock_change_line_t.set_field("freeToAllocateQuantity", lambda ln, info: ln.fta_delta)
stock_change_line_t.set_field("unitCost", lambda ln, info: None if ln.unit_cost is None else money(
    _state(info), ln.unit_cost, _state(info).estate.base_currency))
stock_change_line_t.set_field("productSize", lambda ln, info: _state(info).sizes[ln.size_id])
stock_change_line_t.set_field("warehouse", lambda ln, info: _state(info).warehouses[ln.warehouse_id])
stock_change_line_t.set_field("createdFromShipmentLine",
                              lambda ln, info: _state(info).shipment_lines.get(ln.shipment_line_id or -1))
stock_change_line_t.set_field("stockChange", lambda ln, info: next(
    sc for sc in _state(info).stock_changes_log if sc.id == ln.stock_change_id))
