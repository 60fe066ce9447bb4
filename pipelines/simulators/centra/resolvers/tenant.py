"""The tenant's setup: stores, markets, pricelists, currencies, countries, allocation rules and
warehouses (with their stock), and the `rateLimits` query."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ariadne import ObjectType

from .common import _match, _sorted, _state, needs, paginate, query
from .stock import _stock_rows, _totals


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
    if where and where.get("name"):
        items = [p for p in items if _match(p.name, where["name"])]
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
    if where and where.get("name"):
        items = [w for w in items if _match(w["name"], where["name"])]
    return paginate(_sorted(items, sort, {"id": lambda w: w["id"]}), limit, page)


@query.field("warehouse")
@needs("Warehouse:read")
def r_warehouse(_: Any, info: Any, id: int) -> Any:  # noqa: A002
    return _state(info).warehouses.get(id)


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
warehouse_t.set_field("status", lambda w, info: "ACTIVE")
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


# Countries: continent and EU membership are facts about the country; no country has states in the estate.
_EU = {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
       "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
_NORTH_AMERICA = {"US", "CA", "MX"}

country_t = ObjectType("Country")
country_t.set_field("isEU", lambda c, info: c["code"] in _EU)
country_t.set_field("continent", lambda c, info: "North America" if c["code"] in _NORTH_AMERICA else "Europe")
country_t.set_field("states", lambda c, info: [])
