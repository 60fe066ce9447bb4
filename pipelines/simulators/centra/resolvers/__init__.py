"""Ariadne bindings: resolvers that expose `CentraState` through schema.graphql.

Names are converted camelCase <-> snake_case by ariadne (`convert_names_case=True`), so arguments
and input fields arrive snake_cased (`intoWarehouse` -> `into_warehouse`, `SKU` -> `sku`).
Resolvers run while the app holds `state.lock`.

One module per area; each binds its query fields, object types and mutations as it is imported:
`scalars` (dates), `common` (roots, permissions, paging, filters, money, payloads), `tenant` (stores,
markets, pricelists, warehouses, ...), `products`, `stock` (stock rows and the stock-change ledger),
`orders`, `shipments` (shipments and returns), and the mutations: `stock_mutations`, `order_mutations`
(orders and shipments), `return_mutations` (returns and refunds).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ariadne import make_executable_schema
from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLSchema, default_field_resolver, get_named_type

# The mutation modules only bind fields on `mutation`: importing them is what registers them.
from . import order_mutations, return_mutations, stock_mutations  # noqa: F401
from .allocation_mutations import BINDABLES as ALLOCATION_BINDABLES
from .common import mutation, payload_iface, query
from .events import BINDABLES as EVENT_BINDABLES
from .orders import allocation_t, line_iface, line_t, order_iface, order_t
from .payloads import BINDABLES as PAYLOAD_BINDABLES
from .products import counters_t, product_t, size_t, variant_t
from .scalars import date_scalar, datetime_scalar, format_datetime, parse_datetime, php_date
from .shipments import (
    payment_t,
    return_iface,
    return_line_t,
    return_t,
    shipment_iface,
    shipment_line_t,
    shipment_t,
)
from .stock import stock_change_line_t, stock_change_t
from .tenant import country_t, market_t, pricelist_t, rule_t, store_t, warehouse_t

SCHEMA_PATH = Path(__file__).parent.with_name("schema.graphql")
EVENTS_SCHEMA_PATH = Path(__file__).parent.with_name("schema_events.graphql")  # the events system
ALLOCATION_SCHEMA_PATH = Path(__file__).parent.with_name("schema_allocation.graphql")  # allocate/unallocate


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
    """The executable schema (schema.graphql + the resolvers of this package)."""
    schema = make_executable_schema(
        [SCHEMA_PATH.read_text(encoding="utf-8"), EVENTS_SCHEMA_PATH.read_text(encoding="utf-8"),
         ALLOCATION_SCHEMA_PATH.read_text(encoding="utf-8")],
        query, mutation, datetime_scalar, date_scalar,
        order_iface, line_iface, shipment_iface, return_iface, payload_iface,
        store_t, market_t, rule_t, pricelist_t, warehouse_t, product_t, variant_t, size_t,
        stock_change_t, stock_change_line_t, order_t, line_t, allocation_t, shipment_t, shipment_line_t,
        return_t, return_line_t, payment_t,
        *EVENT_BINDABLES,
        country_t, counters_t, *PAYLOAD_BINDABLES, *ALLOCATION_BINDABLES,
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
