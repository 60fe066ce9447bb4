"""Ariadne bindings: resolvers that expose `CentraState` through schema.graphql.

Names are converted camelCase <-> snake_case by ariadne (`convert_names_case=True`), so arguments
and input fields arrive snake_cased (`intoWarehouse` -> `into_warehouse`, `SKU` -> `sku`).
Resolvers run while the app holds `state.lock`.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ariadne import InterfaceType, MutationType, ObjectType, QueryType, ScalarType, make_executable_schema
from graphql import (
    GraphQLEnumType,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    default_field_resolver,
    get_named_type,
)

from pipelines.estate.model import SizeRef
from pipelines.simulators.centra.state import (
    CentraState,
    MutationError,
    OrderLineRec,
    OrderRec,
    ReturnRec,
    StockRecord,
)

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
MAX_LIMIT = 200
DEFAULT_FIRST = 20

# ------------------------------------------------------------------ scalars and dates


def parse_datetime(value: Any) -> datetime:
    """DateTimeTz input: ISO-8601 (with 'T' or space, optional offset; naive = UTC) or "now"."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            return datetime.now(UTC)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"Invalid DateTimeTz: {value!r}") from exc
    else:
        raise ValueError(f"Invalid DateTimeTz: {value!r}")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_datetime(dt: datetime) -> str:
    """Centra's default output format `Y-m-d\\TH:i:sP` (seconds precision, UTC here)."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")


_PHP: dict[str, Callable[[datetime], str]] = {
    "Y": lambda d: f"{d.year:04d}", "y": lambda d: f"{d.year % 100:02d}", "m": lambda d: f"{d.month:02d}",
    "n": lambda d: str(d.month), "d": lambda d: f"{d.day:02d}", "j": lambda d: str(d.day),
    "H": lambda d: f"{d.hour:02d}", "G": lambda d: str(d.hour), "i": lambda d: f"{d.minute:02d}",
    "s": lambda d: f"{d.second:02d}", "u": lambda d: f"{d.microsecond:06d}",
    "v": lambda d: f"{d.microsecond // 1000:03d}", "P": lambda d: "+00:00", "O": lambda d: "+0000",
    "T": lambda d: "UTC", "e": lambda d: "UTC", "Z": lambda d: "0", "U": lambda d: str(int(d.timestamp())),
    "c": lambda d: format_datetime(d), "D": lambda d: d.strftime("%a"), "M": lambda d: d.strftime("%b"),
}


def php_date(dt: datetime, fmt: str) -> str:
    """The subset of PHP `date()` formatting Centra's `format:` argument is used with."""
    out, escape = [], False
    for ch in fmt:
        if escape:
            out.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        else:
            fn = _PHP.get(ch)
            out.append(fn(dt.astimezone(UTC)) if fn else ch)
    return "".join(out)


datetime_scalar = ScalarType("DateTimeTz")


@datetime_scalar.serializer
def _serialize_dt(value: Any) -> str:
    return value if isinstance(value, str) else format_datetime(value)


@datetime_scalar.value_parser
def _parse_dt(value: Any) -> datetime:
    return parse_datetime(value)


date_scalar = ScalarType("Date")


@date_scalar.serializer
def _serialize_date(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)


# ------------------------------------------------------------------ helpers


def _state(info: Any) -> CentraState:
    return info.context["state"]


def require(info: Any, permission: str) -> None:
    """Check and record a permission; missing -> a standard error with category authorization."""
    allowed = info.context.get("permissions")
    if allowed is not None and permission not in allowed:
        raise GraphQLError(f"You need {permission} permission to access {info.field_name}.",
                           extensions={"category": "authorization"})
    info.context["used"].add(permission)


def needs(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(obj: Any, info: Any, **kwargs: Any) -> Any:
            require(info, permission)
            return fn(obj, info, **kwargs)
        return wrapper
    return decorate


def paginate(items: Sequence[Any], limit: int | None, page: int | None) -> list[Any]:
    if limit is None:
        return list(items)
    if not 1 <= limit <= MAX_LIMIT:
        raise GraphQLError(f"Limit must be in range 1 - {MAX_LIMIT}")
    page = 1 if page is None else page
    if page < 1:
        raise GraphQLError("Page must be greater than 0")
    start = (page - 1) * limit
    return list(items[start:start + limit])


def _cursor(prefix: str, key: int) -> str:
    return base64.b64encode(f"{prefix}:{key}".encode()).decode()


def _decode_cursor(prefix: str, cursor: str) -> int:
    try:
        kind, _, raw = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind != prefix:
            raise ValueError(kind)
        return int(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from exc


def connection(items: Sequence[Any], key: Callable[[Any], int], prefix: str, *, first: int | None,
               after: str | None, last: int | None, before: str | None) -> dict[str, Any]:
    """Relay connection over `items` (already sorted by ascending `key`); keyset cursors."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 1 <= value <= MAX_LIMIT:
            raise GraphQLError(f"Argument {name} must be in range 1 - {MAX_LIMIT}")
    total = len(items)
    window = list(items)
    if after is not None:
        after_key = _decode_cursor(prefix, after)
        window = [x for x in window if key(x) > after_key]
    if before is not None:
        before_key = _decode_cursor(prefix, before)
        window = [x for x in window if key(x) < before_key]
    if first is None and last is None:
        first = DEFAULT_FIRST
    has_next = has_prev = False
    if first is not None:
        has_next = len(window) > first
        window = window[:first]
        has_prev = after is not None
    if last is not None:
        has_prev = len(window) > last
        window = window[-last:]
        has_next = has_next or before is not None
    edges = [{"cursor": _cursor(prefix, key(x)), "node": x} for x in window]
    return {"total_count": total, "edges": edges,
            "page_info": {"has_next_page": has_next, "has_previous_page": has_prev,
                          "start_cursor": edges[0]["cursor"] if edges else None,
                          "end_cursor": edges[-1]["cursor"] if edges else None}}


def in_range(value: datetime, rng: dict[str, Any] | None) -> bool:
    """DateRange filter: both ends inclusive."""
    if not rng:
        return True
    lo, hi = rng.get("from"), rng.get("to")
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def int_in_range(value: int, rng: dict[str, Any] | None) -> bool:
    if not rng:
        return True
    lo, hi = rng.get("from"), rng.get("to")
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _match(value: str | None, match: dict[str, Any] | None) -> bool:
    return not match or match.get("equals") is None or value == match["equals"]


def _sorted(items: Iterable[Any], sort: list[str] | None, keys: dict[str, Callable[[Any], Any]],
            default: str = "id") -> list[Any]:
    out = sorted(items, key=keys[default])
    for spec in reversed(sort or []):
        name, _, direction = spec.rpartition("_")
        out.sort(key=keys.get(name, keys[default]), reverse=direction == "DESC")
    return out


def money(state: CentraState, value: float, currency: str) -> dict[str, Any]:
    cur = state.currencies.get(currency) or {"id": 0, "code": currency, "name": currency, "is_base": False,
                                             "base_rate": 1.0}
    value = round(float(value), 2)
    return {"value": value, "currency": cur, "conversion_rate": cur["base_rate"],
            "formatted_value": f"{value:.2f} {currency}"}


def _net(value: float, tax_percent: float, including_tax: bool) -> float:
    return value if including_tax else value / (1 + tax_percent / 100)


def _payload(**fields: Any) -> dict[str, Any]:
    return {"user_errors": [], "user_warnings": [], **fields}


def _failed(exc: MutationError, **fields: Any) -> dict[str, Any]:
    return {"user_errors": exc.errors, "user_warnings": [], **fields}


# ------------------------------------------------------------------ views


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


# ------------------------------------------------------------------ query

query = QueryType()


def _filter_ids(items: Iterable[Any], where: dict[str, Any] | None, key: str = "id",
                attr: Callable[[Any], Any] | None = None) -> list[Any]:
    get = attr or (lambda x: x[key] if isinstance(x, dict) else getattr(x, key))
    wanted = (where or {}).get(key)
    return [x for x in items if not wanted or get(x) in wanted]


@query.field("stores")
@needs("Store:read")
def r_stores(_: Any, info: Any, where: dict | None = None, limit: int | None = None, page: int | None = None) -> list:
    items = _filter_ids(_state(info).stores.values(), where)
    if where and where.get("type"):
        items = [s for s in items if s["type"] == where["type"]]
    return paginate(items, limit, page)


@query.field("store")
@needs("Store:read")
def r_store(_: Any, info: Any, id: int) -> Any:  # noqa: A002
    return _state(info).stores.get(id)


@query.field("markets")
@needs("Market:read")
def r_markets(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = None,
              page: int | None = None) -> list:
    items = _filter_ids(_state(info).markets.values(), where)
    if where and where.get("store_id"):
        items = [m for m in items if m.store_id in where["store_id"]]
    return paginate(_sorted(items, sort, {"id": lambda m: m.id}), limit, page)


@query.field("market")
@needs("Market:read")
def r_market(_: Any, info: Any, id: int) -> Any:  # noqa: A002
    return _state(info).markets.get(id)


@query.field("pricelists")
@needs("Pricelist:read")
def r_pricelists(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = None,
                 page: int | None = None) -> list:
    items = _filter_ids(_state(info).pricelists.values(), where)
    if where and where.get("store_id"):
        items = [p for p in items if p.store_id in where["store_id"]]
    return paginate(_sorted(items, sort, {"id": lambda p: p.id}), limit, page)


@query.field("pricelist")
@needs("Pricelist:read")
def r_pricelist(_: Any, info: Any, id: int) -> Any:  # noqa: A002
    return _state(info).pricelists.get(id)


@query.field("currencies")
@needs("Currency:read")
def r_currencies(_: Any, info: Any, where: dict | None = None) -> list:
    items = _filter_ids(_state(info).currencies.values(), where)
    if where and where.get("code"):
        items = [c for c in items if c["code"] in where["code"]]
    if where and where.get("is_base") is not None:
        items = [c for c in items if c["is_base"] == where["is_base"]]
    return items


@query.field("countries")
@needs("Country:read")
def r_countries(_: Any, info: Any) -> list:
    return list(_state(info).countries.values())


@query.field("allocationRules")
@needs("AllocationRule:read")
def r_allocation_rules(_: Any, info: Any) -> list:
    return list(_state(info).allocation_rules.values())


@query.field("warehouses")
@needs("Warehouse:read")
def r_warehouses(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = None,
                 page: int | None = None) -> list:
    items = _filter_ids(_state(info).warehouses.values(), where)
    return paginate(_sorted(items, sort, {"id": lambda w: w["id"]}), limit, page)


@query.field("warehouse")
@needs("Warehouse:read")
def r_warehouse(_: Any, info: Any, id: int) -> Any:  # noqa: A002
    return _state(info).warehouses.get(id)


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


def _orders(state: CentraState, where: dict[str, Any] | None, sort: list[str] | None) -> list[OrderRec]:
    w = where or {}
    store_types = {sid: s["type"] for sid, s in state.stores.items()}
    country_ids = {code: c["id"] for code, c in state.countries.items()}
    search = (w.get("search") or "").lower()
    out = []
    for o in state.orders.values():
        if ((w.get("id") and o.id not in w["id"]) or (w.get("number") and o.number not in w["number"])
                or (w.get("status") and o.status not in w["status"])
                or not in_range(o.created_at, w.get("created_at")) or not in_range(o.updated_at, w.get("updated_at"))
                or not in_range(o.order_date, w.get("order_date"))
                or (w.get("store_id") and o.store_id not in w["store_id"])
                or (w.get("store_type") and store_types.get(o.store_id) != w["store_type"])
                or (w.get("market_id") and o.market_id not in w["market_id"])
                or (w.get("pricelist_id") and o.pricelist_id not in w["pricelist_id"])
                or (w.get("country_id") and country_ids.get(o.country) not in w["country_id"])
                or (w.get("customer_id") and o.customer_id not in w["customer_id"])
                or not _match(o.external_id, w.get("external_id"))
                or (w.get("is_locked") is not None and o.is_locked != w["is_locked"])
                or (w.get("is_on_hold") is not None and o.is_on_hold != w["is_on_hold"])):
            continue
        if search and search not in f"{o.number} {o.id} {o.email} {o.external_id or ''}".lower():
            continue
        out.append(o)
    keys = {"id": lambda o: o.number, "number": lambda o: o.number, "createdAt": lambda o: o.created_at,
            "updatedAt": lambda o: o.updated_at, "orderDate": lambda o: o.order_date}
    return _sorted(out, sort, keys)


@query.field("orders")
@needs("Order:read")
def r_orders(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = 20,
             page: int | None = 1) -> list:
    return paginate(_orders(_state(info), where, sort), limit, page)


@query.field("order")
@needs("Order:read")
def r_order(_: Any, info: Any, id: str) -> Any:  # noqa: A002
    return _state(info).orders_by_id.get(id)


@query.field("orderConnection")
@needs("Order:read")
def r_order_connection(_: Any, info: Any, first: int | None = None, after: str | None = None,
                       last: int | None = None, before: str | None = None, where: dict | None = None,
                       sort: list | None = None) -> dict:
    # Keyset cursors are on the order number, so the connection is always in number order.
    return connection(_orders(_state(info), where, None), lambda o: o.number, "number",
                      first=first, after=after, last=last, before=before)


@query.field("returns")
@needs("Return:read")
def r_returns(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = 20,
              page: int | None = 1) -> list:
    state, w = _state(info), where or {}
    items = []
    for r in state.returns.values():
        order = state.orders[r.order_number]
        if ((w.get("id") and r.id not in w["id"]) or not in_range(r.created_at, w.get("created_at"))
                or (w.get("status") and r.status not in w["status"])
                or (w.get("store_id") and order.store_id not in w["store_id"])):
            continue
        items.append(r)
    return paginate(_sorted(items, sort, {"id": lambda r: r.id}), limit, page)


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


@query.field("rateLimits")
def r_rate_limits(_: Any, info: Any) -> list:
    return _state(info).rate_limiter.snapshot()


# ------------------------------------------------------------------ object types

store_t = ObjectType("Store")
store_t.set_field("markets", lambda s, info: [m for m in _state(info).markets.values() if m.store_id == s["id"]])
store_t.set_field("pricelists",
                  lambda s, info: [p for p in _state(info).pricelists.values() if p.store_id == s["id"]])

market_t = ObjectType("Market")
market_t.set_field("store", lambda m, info: _state(info).stores[m.store_id])
market_t.set_field("allocationRule", lambda m, info: _state(info).allocation_rules.get(m.allocation_rule_id))
market_t.set_field("assignedToCountries", lambda m, info: [_state(info).countries[c] for c in m.countries])
market_t.set_field("comment", lambda m, info: None)

rule_t = ObjectType("AllocationRule")
rule_t.set_field("warehouses", lambda r, info: [_state(info).warehouses[w] for w in r.warehouse_ids
                                                if w in _state(info).warehouses])
rule_t.set_field("markets", lambda r, info: [m for m in _state(info).markets.values()
                                             if m.allocation_rule_id == r.id])

pricelist_t = ObjectType("Pricelist")
pricelist_t.set_field("status", lambda p, info: "ACTIVE")
pricelist_t.set_field("currency", lambda p, info: _state(info).currencies[p.currency])
pricelist_t.set_field("store", lambda p, info: _state(info).stores[p.store_id])
pricelist_t.set_field("assignedToCountries", lambda p, info: [_state(info).countries[c] for c in p.countries])

warehouse_t = ObjectType("Warehouse")
warehouse_t.set_field("isHiddenFromStockView", lambda w, info: False)
warehouse_t.set_field("threshold", lambda w, info: 0)
warehouse_t.set_field("country", lambda w, info: _state(info).countries.get(
    _state(info).warehouse_country.get(w["id"], "")))
warehouse_t.set_field("allocationRules", lambda w, info: [r for r in _state(info).allocation_rules.values()
                                                          if w["id"] in r.warehouse_ids])


@warehouse_t.field("stock")
@needs("Warehouse.stock:read")
def r_warehouse_stock(w: dict, info: Any, where: dict | None = None, limit: int | None = 20,
                      page: int | None = 1) -> list:
    return paginate(_stock_rows(_state(info), warehouse_id=w["id"], where=where), limit, page)


@warehouse_t.field("stockTotals")
@needs("Warehouse.stock:read")
def r_warehouse_stock_totals(w: dict, info: Any, where: dict | None = None) -> dict:
    return _totals(_stock_rows(_state(info), warehouse_id=w["id"], where=where))


product_t = ObjectType("Product")
product_t.set_field("id", lambda p, info: p.product_id)
product_t.set_field("status", lambda p, info: "ACTIVE")
product_t.set_field("variants", lambda p, info: list(p.variants))

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

# --- orders

order_iface = InterfaceType("Order")
order_iface.set_type_resolver(lambda obj, *_: "DirectToConsumerOrder")
line_iface = InterfaceType("OrderLine")
line_iface.set_type_resolver(lambda obj, *_: "ProductOrderLine")
shipment_iface = InterfaceType("Shipment")
shipment_iface.set_type_resolver(lambda obj, *_: "DirectToConsumerShipment")
return_iface = InterfaceType("Return")
return_iface.set_type_resolver(lambda obj, *_: "DirectToConsumerReturn")
payload_iface = InterfaceType("Payload")
payload_iface.set_type_resolver(lambda obj, *_: None)

order_t = ObjectType("DirectToConsumerOrder")
order_t.set_field("store", lambda o, info: _state(info).stores[o.store_id])
order_t.set_field("market", lambda o, info: _state(info).markets.get(o.market_id))
order_t.set_field("pricelist", lambda o, info: _state(info).pricelists.get(o.pricelist_id))
order_t.set_field("country", lambda o, info: _state(info).countries.get(o.country))
order_t.set_field("shipments", lambda o, info: [_state(info).shipments[s] for s in o.shipment_ids])
order_t.set_field("returns", lambda o, info: [_state(info).returns[r] for r in o.return_ids])


def _address(state: CentraState, o: OrderRec) -> dict[str, Any]:
    local = o.email.split("@")[0]
    return {"first_name": local.split(".")[0].title(), "last_name": "Customer", "email": o.email,
            "country": state.countries.get(o.country), "city": None, "address1": None, "zip_code": None}


@order_t.field("shippingAddress")
@needs("Order.shippingAddress:read")
def r_shipping_address(o: OrderRec, info: Any) -> dict:
    return _address(_state(info), o)


@order_t.field("billingAddress")
@needs("Order.billingAddress:read")
def r_billing_address(o: OrderRec, info: Any) -> dict:
    return _address(_state(info), o)


@order_t.field("customer")
@needs("Purchaser:read")
def r_customer(o: OrderRec, info: Any) -> dict:
    return {"id": o.customer_id, "email": o.email, "first_name": o.email.split("@")[0].split(".")[0].title(),
            "last_name": "Customer"}


@order_t.field("paymentHistory")
@needs("PaymentHistory:read")
def r_payment_history(o: OrderRec, info: Any, where: dict | None = None) -> list:
    types = (where or {}).get("entry_type")
    return [p for p in o.payment_history if not types or p.entry_type in types]


@order_t.field("grandTotal")
def r_order_grand_total(o: OrderRec, info: Any, including_tax: bool = True) -> dict:
    state = _state(info)
    return money(state, state.order_grand_total(o, including_tax=including_tax is not False), o.currency)


@order_t.field("lines")
def r_order_lines(o: OrderRec, info: Any, include_fully_cancelled: bool = False) -> list:
    return [ln for ln in o.lines if include_fully_cancelled or ln.quantity > 0]


@order_t.field("totals")
def r_order_totals(o: OrderRec, info: Any) -> dict:
    state = _state(info)
    rate = state.estate.tax_rates.get(o.country, 0.0)
    items_tax = sum(ln.unit_price * ln.quantity * (1 - 1 / (1 + ln.tax_percent / 100)) for ln in o.lines)
    ship_tax = o.shipping_value * (1 - 1 / (1 + rate))
    discounts = -sum((ln.unit_original_price - ln.unit_price) * ln.quantity for ln in o.lines
                     if ln.unit_price < ln.unit_original_price)
    m = functools.partial(money, state, currency=o.currency)
    return {"quantity": sum(ln.quantity for ln in o.lines), "grand_total": m(state.order_grand_total(o)),
            "shipping": m(o.shipping_value), "handling": m(0.0), "discounts": m(discounts), "tax_added": m(0.0),
            "tax_deducted": m(0.0), "tax_included": m(items_tax + ship_tax), "shipping_tax_included": m(ship_tax)}


line_t = ObjectType("ProductOrderLine")


def _line_currency(info: Any, ln: OrderLineRec) -> str:
    return _state(info).orders[ln.order_number].currency


line_t.set_field("productNumber", lambda ln, info: ln.ref.product.product_number)
line_t.set_field("productName", lambda ln, info: ln.ref.product.name)
line_t.set_field("productVariantName", lambda ln, info: ln.ref.variant.name)
line_t.set_field("size", lambda ln, info: ln.ref.size.size)
line_t.set_field("cancelledQuantity", lambda ln, info: ln.cancelled)
line_t.set_field("returnedQuantity", lambda ln, info: ln.returned)
line_t.set_field("shippedQuantity", lambda ln, info: ln.shipped)
line_t.set_field("hasAnyDiscount", lambda ln, info: ln.unit_price < ln.unit_original_price)
line_t.set_field("product", lambda ln, info: ln.ref.product)
line_t.set_field("productVariant", lambda ln, info: ln.ref.variant)
line_t.set_field("productSize", lambda ln, info: ln.ref)
line_t.set_field("unitOriginalPrice", lambda ln, info, including_tax=True: money(
    _state(info), _net(ln.unit_original_price, ln.tax_percent, including_tax is not False), _line_currency(info, ln)))
line_t.set_field("unitPrice", lambda ln, info, including_tax=True: money(
    _state(info), _net(ln.unit_price, ln.tax_percent, including_tax is not False), _line_currency(info, ln)))
line_t.set_field("lineValue", lambda ln, info, including_tax=True: money(
    _state(info), _net(ln.unit_price * ln.quantity, ln.tax_percent, including_tax is not False),
    _line_currency(info, ln)))

allocation_t = ObjectType("OrderLineAllocation")
allocation_t.set_field("warehouse", lambda a, info: _state(info).warehouses[a.warehouse_id])
allocation_t.set_field("stockChangeLine", lambda a, info: None)

# --- shipments

shipment_t = ObjectType("DirectToConsumerShipment")
shipment_t.set_field("order", lambda s, info: _state(info).orders[s.order_number])
shipment_t.set_field("carrierInformation", lambda s, info: None if not (s.carrier_name or s.service_name) else {
    "carrier_name": s.carrier_name, "service_name": s.service_name})
shipment_t.set_field("grandTotal", lambda s, info, including_tax=True: money(
    _state(info), _state(info).shipment_grand_total(s, including_tax=including_tax is not False),
    _state(info).orders[s.order_number].currency))

shipment_line_t = ObjectType("ShipmentLine")
shipment_line_t.set_field("orderLine", lambda sl, info: _state(info).order_lines[sl.order_line_id])


@shipment_line_t.field("lineValue")
def r_shipment_line_value(sl: Any, info: Any, including_tax: bool = True) -> dict:
    ln = _state(info).order_lines[sl.order_line_id]
    return money(_state(info), _net(ln.unit_price * sl.quantity, ln.tax_percent, including_tax is not False),
                 _line_currency(info, ln))


# --- returns

return_t = ObjectType("DirectToConsumerReturn")
return_t.set_field("returnStatus", lambda r, info: r.status)
return_t.set_field("totalQuantity", lambda r, info: sum(ln.quantity for ln in r.lines))
return_t.set_field("returnWarehouse", lambda r, info: _state(info).warehouses.get(r.return_warehouse_id or -1))
return_t.set_field("order", lambda r, info: _state(info).orders[r.order_number])
return_t.set_field("shipment", lambda r, info: _state(info).shipments[r.shipment_id])


@return_t.field("refundPaymentHistory")
@needs("PaymentHistory:read")
def r_refund_history(r: ReturnRec, info: Any) -> list:
    return list(r.refund_history)


def _return_tax(state: CentraState, r: ReturnRec) -> float:
    rate = state.estate.tax_rates.get(state.orders[r.order_number].country, 0.0)
    items = sum(ln.unit_price * ln.quantity * (1 - 1 / (1 + ln.tax_percent / 100)) for ln in r.lines)
    return items + (r.shipping + r.handling) * (1 - 1 / (1 + rate))


@return_t.field("grandTotal")
def r_return_grand_total(r: ReturnRec, info: Any, including_tax: bool = True) -> dict:
    state = _state(info)
    value = r.grand_total if including_tax is not False else r.grand_total - _return_tax(state, r)
    return money(state, value, state.orders[r.order_number].currency)


@return_t.field("totals")
def r_return_totals(r: ReturnRec, info: Any) -> dict:
    state = _state(info)
    m = functools.partial(money, state, currency=state.orders[r.order_number].currency)
    return {"quantity": sum(ln.quantity for ln in r.lines), "line_values": m(r.line_values),
            "handling": m(r.handling), "shipping": m(r.shipping), "discounts": m(-r.voucher),
            "return_cost": m(r.return_cost), "tax_added": m(0.0), "tax_deducted": m(0.0),
            "tax_included": m(_return_tax(state, r))}


return_line_t = ObjectType("ReturnLine")
return_line_t.set_field("orderLine", lambda rl, info: _state(info).order_lines[rl.order_line_id])
return_line_t.set_field("shipmentLine", lambda rl, info: _state(info).shipment_lines[rl.shipment_line_id])


def _return_line_currency(info: Any, rl: Any) -> str:
    return _line_currency(info, _state(info).order_lines[rl.order_line_id])


return_line_t.set_field("unitPrice", lambda rl, info, including_tax=True: money(
    _state(info), _net(rl.unit_price, rl.tax_percent, including_tax is not False), _return_line_currency(info, rl)))
return_line_t.set_field("lineValue", lambda rl, info, including_tax=True: money(
    _state(info), _net(rl.unit_price * rl.quantity, rl.tax_percent, including_tax is not False),
    _return_line_currency(info, rl)))

payment_t = ObjectType("PaymentHistoryEntry")
payment_t.set_field("value", lambda p, info: money(_state(info), p.value, p.currency))

# ------------------------------------------------------------------ mutations

mutation = MutationType()


def _warehouse_id(state: CentraState, ref: dict[str, Any] | None, path: list[str]) -> int | None:
    if ref is None:
        return None
    if ref.get("id") is None:
        raise MutationError("Warehouse reference needs an id (ID conversion is not simulated)", path)
    if ref["id"] not in state.warehouses:
        raise MutationError(f"Warehouse {ref['id']} not found", path)
    return int(ref["id"])


def _describe(ref: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in ref.items() if v is not None) or "empty reference"


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
        rec = state.apply_stock_set(input["description"], int(wid), items, unit_cost=unit_cost)  # type: ignore[arg-type]
        return _payload(stock_changes=[rec] if rec else [])
    except MutationError as exc:
        return _failed(exc, stock_changes=[])


def _order_number(state: CentraState, ref: dict[str, Any] | None, path: list[str]) -> int:
    ref = ref or {}
    order = state.order(number=ref.get("number"), id=ref.get("id"))
    if order is None:
        raise MutationError(f"Order not found ({_describe(ref)})", path)
    return order.number


@mutation.field("confirmOrder")
@needs("Order:write")
def m_confirm_order(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        return _payload(order=state.confirm_order(_order_number(state, input["order"], ["input", "order"])))
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("updateDirectToConsumerOrder")
@needs("Order:write")
def m_update_order(_: Any, info: Any, order: dict, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        number = _order_number(state, order, ["order"])
        cancel = [(c["line"]["id"], c["quantity"], c.get("stock_action") == "REMOVE_FROM_STOCK")
                  for c in input.get("cancel_lines") or []]
        email = (input.get("customer_info") or {}).get("email")
        rec = state.update_order(number, is_on_hold=input.get("is_on_hold"), external_id=input.get("external_id"),
                                 internal_comment=input.get("internal_comment"),
                                 cancellation_comment=input.get("cancellation_comment"),
                                 cancel_lines=cancel, email=email)
        return _payload(order=rec)
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("setOrdersLock")
@needs("Order.isLocked:write")
def m_set_orders_lock(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        numbers = [_order_number(state, o, ["input", "orders", str(i)]) for i, o in enumerate(input["orders"])]
        return _payload(orders=state.set_orders_lock(numbers, input["is_locked"]))
    except MutationError as exc:
        return _failed(exc, orders=[])


@mutation.field("cancelDirectToConsumerOrder")
@needs("Order:write")
def m_cancel_order(_: Any, info: Any, id: str, input: dict | None = None) -> dict:  # noqa: A002
    state = _state(info)
    inp = input or {}
    try:
        action = inp.get("stock_action") or {}
        rec = state.cancel_order(id=id, comment=inp.get("comment"),
                                 remove_from_stock=bool(action.get("remove_items_from_stock")))
        return _payload(order=rec)
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("createShipment")
@needs("Shipment:write")
def m_create_shipment(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        number = _order_number(state, input["order"], ["input", "order"])
        lines = None
        if input.get("lines") is not None:
            lines = [(ln["order_line"]["id"], ln["quantity"]) for ln in input["lines"]]
        shipment = state.create_shipment(number, lines, created_at=input.get("created_at"),
                                         is_good_to_go=bool(input.get("is_good_to_go")),
                                         is_paid=bool(input.get("is_paid")), capture=bool(input.get("capture")),
                                         allocate_demand=bool(input.get("allocate_demand")),
                                         additional_message=input.get("additional_message"))
        if input.get("shipped_at") is not None:
            state.complete_shipment(shipment.id, shipped_at=input["shipped_at"])
        return _payload(shipment=shipment)
    except MutationError as exc:
        return _failed(exc, shipment=None)


@mutation.field("updateShipment")
@needs("Shipment:write")
def m_update_shipment(_: Any, info: Any, id: int, input: dict) -> dict:  # noqa: A002
    try:
        return _payload(shipment=_state(info).update_shipment(id, is_paid=input.get("is_paid"),
                                                              is_good_to_go=input.get("is_good_to_go"),
                                                              additional_message=input.get("additional_message")))
    except MutationError as exc:
        return _failed(exc, shipment=None)


@mutation.field("captureShipment")
@needs("Payment.capture:write")
def m_capture_shipment(_: Any, info: Any, id: int) -> dict:  # noqa: A002
    state = _state(info)
    try:
        entry = state.capture_shipment(id)
        return _payload(shipment=state.shipments[id], payment_history_entry=entry)
    except MutationError as exc:
        return _failed(exc, shipment=None, payment_history_entry=None)


@mutation.field("completeShipment")
@needs("Shipment:write")
def m_complete_shipment(_: Any, info: Any, id: int, input: dict | None = None) -> dict:  # noqa: A002
    inp = input or {}
    si = inp.get("shipment_info") or {}
    try:
        shipment = _state(info).complete_shipment(
            id, shipped_at=inp.get("shipped_at"), carrier=si.get("carrier"), service=si.get("service"),
            tracking_number=si.get("tracking_number"), return_tracking_number=si.get("return_tracking_number"),
            packages=si.get("packages_number"))
        return _payload(shipment=shipment)
    except MutationError as exc:
        return _failed(exc, shipment=None)


def _cost(policy: dict[str, Any] | None) -> tuple[float, bool]:
    if not policy:
        return 0.0, False
    if policy.get("from_shipment"):
        return 0.0, True
    return float((policy.get("value") or {}).get("value") or 0.0), False


@mutation.field("createReturn")
@needs("Return:write")
def m_create_return(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    warnings: list[dict[str, Any]] = []
    try:
        pol = input.get("return_stock_action_policy") or {}
        chosen = [k for k in ("release_items_back_to_warehouse", "send_items_to_different_warehouse",
                              "remove_items_from_stock") if pol.get(k)]
        if len(chosen) > 1:
            raise MutationError("Choose exactly one returnStockActionPolicy option", ["input", "returnStockActionPolicy"])
        warehouse_id = None
        if not chosen:
            policy = "release"
            warnings.append({"message": "No returnStockActionPolicy given: items are released back to the "
                                        "warehouse they were shipped from", "path": ["input", "returnStockActionPolicy"]})
        elif chosen[0] == "send_items_to_different_warehouse":
            policy = "different"
            warehouse_id = _warehouse_id(state, pol["send_items_to_different_warehouse"],
                                         ["input", "returnStockActionPolicy", "sendItemsToDifferentWarehouse"])
        else:
            policy = "release" if chosen[0] == "release_items_back_to_warehouse" else "remove"
        shipping, shipping_from = _cost(input.get("shipping_cost"))
        handling, _h = _cost(input.get("handling_cost"))
        voucher, _v = _cost(input.get("voucher_value"))
        ret = state.create_return_for_shipment(
            input["shipment"]["id"], [(ln["shipment_line"]["id"], ln["quantity"]) for ln in input["lines"]],
            policy=policy, warehouse_id=warehouse_id, comment=input.get("comment"),
            external_id=input.get("external_id"), created_at=input.get("created_at"), shipping=shipping,
            shipping_from_shipment=shipping_from, handling=handling, voucher=voucher,
            return_cost=float((input.get("return_cost") or {}).get("value") or 0.0))
        return {"user_errors": [], "user_warnings": warnings, "return": ret}
    except MutationError as exc:
        return _failed(exc, **{"return": None})


@mutation.field("completeReturn")
@needs("Return:write")
def m_complete_return(_: Any, info: Any, id: int, input: dict | None = None) -> dict:  # noqa: A002
    try:
        return _payload(**{"return": _state(info).complete_return(id)})
    except MutationError as exc:
        return _failed(exc, **{"return": None})


@mutation.field("refundReturn")
@needs("Payment.refund:write")
def m_refund_return(_: Any, info: Any, id: int, input: dict | None = None) -> dict:  # noqa: A002
    state = _state(info)
    try:
        entry = state.refund_return(id)
        return _payload(payment_history_entries=[entry], payment_history_entry=entry,
                        **{"return": state.returns[id]})
    except MutationError as exc:
        return _failed(exc, payment_history_entries=[], payment_history_entry=None, **{"return": None})


# ------------------------------------------------------------------ schema


def _wrap_format(resolve: Callable[..., Any] | None) -> Callable[..., Any]:
    inner = resolve or default_field_resolver

    def resolver(obj: Any, info: Any, format: str | None = None, **kwargs: Any) -> Any:  # noqa: A002
        value = inner(obj, info, **kwargs)
        if value is None or format is None or not isinstance(value, datetime):
            return value
        return php_date(value, format)
    return resolver


def _accept_hide_suggestions(patched: Callable[[Any], Any]) -> Callable[..., Any]:
    """ariadne patches `GraphQLEnumType.parse_value` with a 1-argument function, but graphql-core
    3.2.14 passes `hide_suggestions` too, breaking every enum-typed variable; accept and drop it."""

    def parse_value(input_value: Any, hide_suggestions: bool = False) -> Any:
        return patched(input_value)
    return parse_value


def build_schema() -> GraphQLSchema:
    """The executable schema (schema.graphql + the resolvers above)."""
    schema = make_executable_schema(
        SCHEMA_PATH.read_text(encoding="utf-8"),
        query, mutation, datetime_scalar, date_scalar,
        order_iface, line_iface, shipment_iface, return_iface, payload_iface,
        store_t, market_t, rule_t, pricelist_t, warehouse_t, product_t, variant_t, size_t,
        stock_change_t, stock_change_line_t, order_t, line_t, allocation_t, shipment_t, shipment_line_t,
        return_t, return_line_t, payment_t,
        convert_names_case=True,
    )
    for gtype in schema.type_map.values():
        if isinstance(gtype, GraphQLEnumType) and "parse_value" in vars(gtype):
            gtype.parse_value = _accept_hide_suggestions(vars(gtype)["parse_value"])  # type: ignore[method-assign]
        if isinstance(gtype, GraphQLObjectType) and not gtype.name.startswith("__"):
            for fld in gtype.fields.values():
                if "format" in fld.args and get_named_type(fld.type).name == "DateTimeTz":
                    fld.resolve = _wrap_format(fld.resolve)
    return schema


__all__ = ["build_schema", "format_datetime", "parse_datetime", "php_date"]
