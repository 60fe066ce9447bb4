"""Products, variants (with prices) and sizes (with their stock): `productVariants`, `productSizes`,
`productSizeConnection` and the `Product`, `ProductVariant` and `ProductSize` types."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType

from pipelines.estate.model import SizeRef
from pipelines.simulators.centra.state import CentraState

from .common import _match, _sorted, _state, connection, money, needs, paginate, query
from .stock import _stock_rows, _totals


@query.field("productVariants")
@needs("Product:read")
def r_product_variants(_: Any, info: Any, where: dict | None = None, sort: list | None = None,
                       limit: int | None = 20, page: int | None = 1) -> list:
    state = _state(info)
    items = sorted(state.variants.values(), key=lambda v: v.variant_id)
    where = where or {}
    if where.get("id"):
        items = [v for v in items if v.variant_id in where["id"]]
    if where.get("product_id"):
        items = [v for v in items if state.variant_product[v.variant_id].product_id in where["product_id"]]
    return paginate(_sorted(items, sort, {"id": lambda v: v.variant_id}), limit, page)


def _size_matches(ref: SizeRef, where: dict[str, Any] | None) -> bool:
    if not where:
        return True
    s = ref.size
    return all([
        not where.get("id") or s.size_id in where["id"],
        not where.get("sku") or s.sku in where["sku"],
        not where.get("ean") or s.ean in where["ean"],
        not where.get("upc"),
        _match(s.size, where.get("size_number")),
        not where.get("product_variant_id") or ref.variant.variant_id in where["product_variant_id"],
        where.get("is_active") is None or s.active == where["is_active"],
        where.get("preorder") is None or where["preorder"] is False,
    ])


def _sizes(state: CentraState, where: dict[str, Any] | None) -> list[SizeRef]:
    return [state.sizes[sid] for sid in state.size_ids_sorted if _size_matches(state.sizes[sid], where)]


@query.field("productSizes")
@needs("Product:read")
def r_product_sizes(_: Any, info: Any, where: dict | None = None, sort: list | None = None,
                    limit: int | None = 20, page: int | None = 1) -> list:
    items = _sorted(_sizes(_state(info), where), sort, {"id": lambda r: r.size.size_id})
    return paginate(items, limit, page)


@query.field("productSizeConnection")
@needs("Product:read")
def r_product_size_connection(_: Any, info: Any, first: int | None = None, after: str | None = None,
                              last: int | None = None, before: str | None = None,
                              where: dict | None = None) -> dict:
    return connection(_sizes(_state(info), where), lambda r: r.size.size_id, "productSize",
                      first=first, after=after, last=last, before=before)


# ------------------------------------------------------------------ object types

product_t = ObjectType("Product")
product_t.set_field("id", lambda p, info: p.product_id)
product_t.set_field("status", lambda p, info: "ACTIVE")

variant_t = ObjectType("ProductVariant")
variant_t.set_field("id", lambda v, info: v.variant_id)
variant_t.set_field("status", lambda v, info: "ACTIVE")
variant_t.set_field("product", lambda v, info: _state(info).variant_product[v.variant_id])
variant_t.set_field("productSizes", lambda v, info: [_state(info).sizes[s.size_id] for s in v.sizes])


@variant_t.field("prices")
def r_variant_prices(v: Any, info: Any, where: dict | None = None) -> list:
    state = _state(info)
    wanted = (where or {}).get("pricelist_id")
    out = []
    for pl_id, price in sorted(v.prices.items()):
        pl = state.pricelists.get(pl_id)
        if pl is not None and (not wanted or pl_id in wanted):
            out.append({"pricelist": pl, "price": money(state, price, pl.currency)})
    return out


size_t = ObjectType("ProductSize")
size_t.set_field("id", lambda r, info: r.size.size_id)
size_t.set_field("SKU", lambda r, info: r.size.sku)
size_t.set_field("EAN", lambda r, info: r.size.ean)
size_t.set_field("GTIN", lambda r, info: r.size.ean)
size_t.set_field("UPC", lambda r, info: None)
size_t.set_field("sizeNumber", lambda r, info: r.size.size)
size_t.set_field("description", lambda r, info: r.size.size)
size_t.set_field("preorder", lambda r, info: False)
size_t.set_field("isActive", lambda r, info: r.size.active)
size_t.set_field("size", lambda r, info: {"id": _state(info).size_names[r.size.size], "name": r.size.size})
size_t.set_field("productVariant", lambda r, info: r.variant)
size_t.set_field("product", lambda r, info: r.product)


@size_t.field("stock")
@needs("Warehouse.stock:read")
def r_size_stock(r: SizeRef, info: Any, where: dict | None = None, limit: int | None = 20,
                 page: int | None = 1) -> list:
    return paginate(_stock_rows(_state(info), size_id=r.size.size_id, where=where), limit, page)


@size_t.field("stockTotals")
@needs("Warehouse.stock:read")
def r_size_stock_totals(r: SizeRef, info: Any, where: dict | None = None) -> dict:
    return _totals(_stock_rows(_state(info), size_id=r.size.size_id, where=where))


# ------------------------------------------------------------------ `products` and `counters` (AD-pim)


def _products(state: CentraState, where: dict[str, Any] | None) -> list[Any]:
    w = where or {}
    items = [state.products[pid] for pid in sorted(state.products)]
    return [p for p in items if (not w.get("id") or p.product_id in w["id"])
            and (not w.get("status") or "ACTIVE" in w["status"]) and _match(p.name, w.get("name"))]


@query.field("products")
@needs("Product:read")
def r_products(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = 20,
               page: int | None = 1) -> list:
    items = _sorted(_products(_state(info), where), sort, {"id": lambda p: p.product_id,
                                                           "createdAt": lambda p: p.product_id,
                                                           "updatedAt": lambda p: p.product_id})
    return paginate(items, limit, page)


@query.field("counters")
def r_counters(_: Any, info: Any) -> dict:
    return {}


counters_t = ObjectType("Counters")


@counters_t.field("products")
@needs("Product:read")
def r_count_products(_: Any, info: Any, where: dict | None = None) -> int:
    return len(_products(_state(info), where))


product_t.set_field("harmonizedCommodityCode", lambda p, info: None)
product_t.set_field("harmonizedCommodityCodeDescription", lambda p, info: None)
product_t.set_field("isBundle", lambda p, info: False)
product_t.set_field("isSerializableProduct", lambda p, info: False)
product_t.set_field("createdAt", lambda p, info: _state(info).created_at)
product_t.set_field("updatedAt", lambda p, info: _state(info).created_at)
variant_t.set_field("updatedAt", lambda v, info: _state(info).created_at)
variant_t.set_field("unitCost", lambda v, info: None)


@product_t.field("internalComment")
@needs("Product.InternalComment:read")
def r_product_internal_comment(p: Any, info: Any) -> None:
    return None


@product_t.field("variants")
@needs("Product.ProductVariant:read")
def r_product_variants_of(p: Any, info: Any) -> list:
    return list(p.variants)


@variant_t.field("internalName")
@needs("ProductVariant.InternalName:read")
def r_variant_internal_name(v: Any, info: Any) -> None:
    return None
