"""The tenant's data and plumbing, shared by every area of :class:`~.state.CentraState`: the records it
holds (built from the estate: stores, warehouses, markets, pricelists, currencies, countries, the
catalog and the initial stock), the lock, the test knobs (forced failures, rate limits, listeners),
deterministic ids, the stock ledger and the lookups every area needs."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.estate.model import Estate, SizeRef
from pipelines.simulators.centra.ratelimit import DEFAULT_RETRY_AFTER_STYLE, RateLimiter

from .records import (
    ForcedFailure,
    Listener,
    MutationError,
    OrderLineRec,
    OrderRec,
    ReturnLineRec,
    ReturnRec,
    ShipmentLineRec,
    ShipmentRec,
    StockChangeLineRec,
    StockChangeRec,
    StockRecord,
    _utc,
)

COUNTRY_NAMES = {
    "SE": "Sweden", "DK": "Denmark", "NO": "Norway", "DE": "Germany", "GB": "United Kingdom",
    "FI": "Finland", "NL": "Netherlands", "FR": "France", "US": "United States",
}


DEFAULT_SHIPPING_OPTIONS = ("Standard", "Express", "Click & Collect")


class TenantCore:
    """Constructor, catalog, records and plumbing of the simulated tenant (the areas are mixins on top)."""

    def __init__(self, estate: Estate, *, clock: Callable[[], datetime] | None = None, tier: str = "GROWTH",
                 multiplier: float = 1.0, interval_scale: float = 1.0, rate_limits_enabled: bool = True,
                 first_order_number: int = 1001, app_version: str = "v1.60.0-sim", timezone: str = "UTC",
                 shipping_options: tuple[str, ...] = DEFAULT_SHIPPING_OPTIONS, brand_name: str | None = None,
                 payment_method: tuple[str, str] = ("sim-psp", "sim-psp"),
                 shipment_email_default: bool = True) -> None:
        """Knobs (sim ASSUMPTIONs, see PROVENANCE.md): `timezone` = the instance's timezone (naive DateTimeTz
        inputs are read in it, outputs written in it); `shipping_options` = the shipping option names every
        market offers (ids 1..n, the first is an order's default); `brand_name` = the one brand of the
        catalog (default: the estate's name); `payment_method` = (uri, plugin) of every order's payment;
        `shipment_email_default` = whether completing a shipment without `sendEmail` emails the customer."""
        self.estate = estate
        self.tzinfo = ZoneInfo(timezone)
        if not shipping_options:
            raise ValueError("configure at least one shipping option")
        self.shipping_options = {i + 1: name for i, name in enumerate(shipping_options)}
        self.brand = {"id": 1, "name": brand_name or estate.name}
        self.payment_method = {"uri": payment_method[0], "plugin": payment_method[1]}
        self.shipment_email_default = shipment_email_default
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.app_version = app_version
        self.rate_limiter = RateLimiter(tier, multiplier=multiplier, interval_scale=interval_scale,
                                        enabled=rate_limits_enabled)
        #: How 429 responses express Retry-After: "epoch" (default, the documented timestamp), "http-date"
        #: or "seconds" (see `ratelimit.retry_after_value`).
        self.retry_after_style = DEFAULT_RETRY_AFTER_STYLE
        self._forced: deque[ForcedFailure] = deque()
        self._listeners: list[Listener] = []
        self._seq: dict[str, int] = {}
        self._next_order_number = first_order_number
        self._init_tenant(estate)
        self._init_catalog(estate)
        self._init_stock(estate)
        self._init_records()
        self.created_at = self.now()  # catalog timestamps (Product/ProductVariant createdAt/updatedAt)

    def shipping_option_id(self, name: str | None) -> int:
        """The id of a shipping option by name (None = the first); ValueError if the tenant has none such."""
        if name is None:
            return 1
        for oid, oname in self.shipping_options.items():
            if oname == name:
                return oid
        raise ValueError(f"unknown shipping option {name!r}; the tenant offers {list(self.shipping_options.values())}")

    def _init_tenant(self, estate: Estate) -> None:
        """Stores, warehouses, allocation rules, markets, pricelists, currencies and countries."""
        c = estate.centra
        self.stores = {s.id: {"id": s.id, "name": s.name, "type": s.type} for s in c.stores}
        self.warehouses = {w.id: {"id": w.id, "name": w.name} for w in c.warehouses}
        self.allocation_rules = {r.id: r for r in c.allocation_rules}
        self.markets = {m.id: m for m in c.markets}
        self.pricelists = {p.id: p for p in c.pricelists}
        codes = sorted({estate.base_currency, *(p.currency for p in c.pricelists)})
        self.currencies = {code: {"id": i + 1, "code": code, "name": code, "is_base": code == estate.base_currency,
                                  "base_rate": estate.fx_to_base.get(code, 1.0)} for i, code in enumerate(codes)}
        country_codes = sorted({*(cc for m in c.markets for cc in m.countries),
                                *(cc for p in c.pricelists for cc in p.countries),
                                *(loc.country for loc in estate.locations)})
        self.countries = {cc: {"id": i + 1, "code": cc, "name": COUNTRY_NAMES.get(cc, cc)}
                          for i, cc in enumerate(country_codes)}
        self.warehouse_country = {loc.centra_warehouse_id: loc.country for loc in estate.locations}

    def _init_catalog(self, estate: Estate) -> None:
        """Sizes, variants and products, indexed by id, SKU and EAN."""
        self.sizes: dict[int, SizeRef] = {}
        self.size_by_sku: dict[str, SizeRef] = dict(estate.by_sku)
        self.size_by_ean: dict[str, SizeRef] = dict(estate.by_ean)
        self.variants: dict[int, Any] = {}
        self.products: dict[int, Any] = {}
        self.variant_product: dict[int, Any] = {}
        self.size_names: dict[str, int] = {}  # size-chart size name -> Size id
        for ref in estate.by_sku.values():
            self.sizes[ref.size.size_id] = ref
            self.variants[ref.variant.variant_id] = ref.variant
            self.products[ref.product.product_id] = ref.product
            self.variant_product[ref.variant.variant_id] = ref.product
            self.size_names.setdefault(ref.size.size, len(self.size_names) + 1)
        self.size_ids_sorted = sorted(self.sizes)

    def _init_stock(self, estate: Estate) -> None:
        """Initial physical stock from the estate (not logged in the ledger)."""
        self.stock: dict[tuple[int, int], StockRecord] = {}
        for node_id, per_sku in estate.initial_stock.items():
            loc = estate.by_node.get(node_id)
            if loc is None:
                continue
            for sku, qty in per_sku.items():
                ref = self.size_by_sku.get(sku)
                if ref is not None:
                    self.stock[(loc.centra_warehouse_id, ref.size.size_id)] = StockRecord(physical=int(qty))

    def _init_records(self) -> None:
        self.stock_changes_log: list[StockChangeRec] = []
        self.orders: dict[int, OrderRec] = {}
        self.orders_by_id: dict[str, OrderRec] = {}
        self.order_lines: dict[int, OrderLineRec] = {}
        self.shipments: dict[int, ShipmentRec] = {}
        self.shipment_lines: dict[int, ShipmentLineRec] = {}
        self.returns: dict[int, ReturnRec] = {}
        self.return_lines: dict[int, ReturnLineRec] = {}
        self.customers: dict[str, int] = {}

    # ------------------------------------------------------------ knobs

    def now(self) -> datetime:
        return _utc(self.clock())

    def fail_next(self, status: int, count: int = 1, *, retry_after: int | None = 1,
                  after_execute: bool = False) -> None:
        """Answer the next `count` authenticated requests with HTTP `status` (429/500/499...).

        `after_execute=True` runs the request first (its effects stay) and then answers `status`,
        like a gateway timing out after the backend committed.
        """
        with self.lock:
            for _ in range(count):
                self._forced.append(ForcedFailure(status, retry_after, after_execute))

    def take_forced_failure(self) -> ForcedFailure | None:
        with self.lock:
            return self._forced.popleft() if self._forced else None

    def set_rate_limits(self, *, tier: str | None = None, multiplier: float | None = None,
                        overrides: dict[tuple[str, str], int] | None = None, interval_scale: float | None = None,
                        enabled: bool | None = None) -> None:
        """Lower/raise limits (test knob); resets the buckets."""
        self.rate_limiter.configure(tier=tier, multiplier=multiplier, overrides=overrides,
                                    interval_scale=interval_scale, enabled=enabled)

    def add_listener(self, fn: Listener) -> None:
        """`fn(type, action, id, date)` is called (under the state lock) for webhook-worthy events."""
        with self.lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self.lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _emit(self, kind: str, action: str, ident: int) -> None:
        when = self.now()
        for fn in list(self._listeners):
            fn(kind, action, ident, when)

    def _next(self, name: str) -> int:
        self._seq[name] = self._seq.get(name, 0) + 1
        return self._seq[name]

    # ------------------------------------------------------------ lookups

    def find_size(self, *, id: int | None = None, sku: str | None = None, ean: str | None = None,
                  upc: str | None = None, any: str | None = None) -> SizeRef | None:  # noqa: A002
        if id is not None:
            return self.sizes.get(int(id))
        if sku is not None:
            return self.size_by_sku.get(sku)
        if ean is not None:
            return self.size_by_ean.get(ean)
        if upc is not None:
            return None
        if any is not None:
            return self.size_by_sku.get(any) or self.size_by_ean.get(any) or (
                self.sizes.get(int(any)) if any.isdigit() else None)
        return None

    def stock_record(self, warehouse_id: int, size_id: int) -> StockRecord:
        return self.stock.setdefault((warehouse_id, size_id), StockRecord())

    def order(self, number: int | None = None, id: str | None = None) -> OrderRec | None:  # noqa: A002
        if number is not None:
            return self.orders.get(int(number))
        if id is not None:
            return self.orders_by_id.get(id)
        return None

    def _touch(self, order: OrderRec) -> None:
        order.updated_at = self.now()

    def _require_order(self, number: int | None = None, id: str | None = None) -> OrderRec:  # noqa: A002
        order = self.order(number=number, id=id)
        if order is None:
            raise MutationError(f"Order {number if number is not None else id} not found", ["order"])
        return order

    # ------------------------------------------------------------ stock

    def _ledger(self, description: str, kind: str, moves: Iterable[tuple[int, int, int, int]], *,
                at: datetime | None = None, order_number: int | None = None,
                shipment_lines: Iterable[int | None] | None = None,
                unit_cost: float | None = None) -> StockChangeRec:
        rec = StockChangeRec(self._next("stock_change"), _utc(at) if at else self.now(), description, kind,
                             order_number=order_number)
        sl_ids = list(shipment_lines) if shipment_lines is not None else None
        for i, (wid, sid, physical, fta) in enumerate(moves):
            rec.lines.append(StockChangeLineRec(self._next("stock_change_line"), rec.id, wid, sid, physical, fta,
                                                unit_cost, sl_ids[i] if sl_ids else None))
        self.stock_changes_log.append(rec)
        return rec
