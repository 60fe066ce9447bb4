"""Typed results of the Centra connector: frozen dataclasses, timestamps as ISO-8601 strings in UTC."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CentraMarket", "CentraOrder", "CentraOrderLine", "CentraPricelist", "CentraReturn", "CentraReturnLine",
           "CentraSize", "CentraStock", "CentraStockChange", "CentraVariantPrice", "CentraWarehouse", "RateLimit",
           "StockChangeResult"]


@dataclass(frozen=True)
class RateLimit:
    type: str
    interval: str
    interval_seconds: int
    quota: int
    used_quota: int
    remaining_quota: int


@dataclass(frozen=True)
class CentraWarehouse:
    id: int
    name: str
    country: str | None


@dataclass(frozen=True)
class CentraMarket:
    id: int
    name: str
    store_id: int
    allocation_rule_id: int | None
    countries: tuple[str, ...]


@dataclass(frozen=True)
class CentraPricelist:
    id: int
    name: str
    currency: str
    store_id: int
    countries: tuple[str, ...]


@dataclass(frozen=True)
class CentraSize:
    size_id: int
    sku: str
    ean: str | None
    product_id: int
    product_number: str
    product_name: str
    product_status: str
    variant_id: int
    variant_number: str
    variant_name: str
    size_name: str | None
    is_active: bool


@dataclass(frozen=True)
class CentraVariantPrice:
    pricelist_id: int
    variant_id: int
    currency: str
    price: float


@dataclass(frozen=True)
class CentraStock:
    warehouse_id: int
    size_id: int
    sku: str
    physical: int
    allocated: int
    free_to_allocate: int
    demand: int


@dataclass(frozen=True)
class CentraOrderLine:
    line_id: int
    sku: str | None
    ean: str | None
    product_number: str | None
    quantity: int
    cancelled_quantity: int
    returned_quantity: int
    unit_price: float
    unit_original_price: float
    discount_percent: float
    tax_percent: float
    line_value: float


@dataclass(frozen=True)
class CentraOrder:
    id: str
    number: int
    status: str
    created_at: str
    store_id: int | None
    market_id: int | None
    pricelist_id: int | None
    currency: str | None
    country: str | None
    currency_base_rate: float | None
    email: str | None
    external_id: str | None
    grand_total: float
    tax_total: float
    discount_total: float
    shipping_total: float
    lines: tuple[CentraOrderLine, ...]


@dataclass(frozen=True)
class CentraReturnLine:
    line_id: int
    order_line_id: int | None
    sku: str | None
    quantity: int
    unit_price: float
    line_value: float
    tax_percent: float | None


@dataclass(frozen=True)
class CentraReturn:
    id: int
    order_number: int | None
    order_id: str | None
    created_at: str
    status: str
    currency: str | None
    grand_total: float
    tax_total: float
    refunded: bool
    refund_amount: float
    refunded_at: str | None
    return_warehouse_id: int | None
    external_id: str | None
    lines: tuple[CentraReturnLine, ...]


@dataclass(frozen=True)
class CentraStockChange:
    """One ledger line: `quantity` is the signed physical delta, `fta_delta` the free-to-allocate one."""

    id: int
    stock_change_id: int
    created_at: str
    description: str
    warehouse_id: int | None
    size_id: int | None
    sku: str | None
    quantity: int
    fta_delta: int | None


@dataclass(frozen=True)
class StockChangeResult:
    stock_change_ids: tuple[int, ...]
    warnings: tuple[str, ...] = ()
    mutations: int = 0
    deduplicated: bool = False  # found in the ledger after an ambiguous failure instead of (re)applied
