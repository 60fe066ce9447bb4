"""The simulated Centra tenant: catalog, stock, orders, shipments, returns and the stock ledger.

One re-entrant lock guards everything; the GraphQL app holds it for a whole request, so every
request sees a consistent snapshot and mutations are atomic. The Python "world API" (`place_order`,
`ship_order`, `create_return`, `stock_of`, `stock_changes`) is what the trading generator uses,
since Centra has no create-order mutation.

Conventions (documented deviations, see the package docstring): prices are tax-included; money is
rounded to 2 decimals; refund payment entries carry a negative value (money out); the stock ledger
records every physical or free-to-allocate movement, `deliveredQuantity` = physical delta and
`freeToAllocateQuantity` = FTA delta (initial stock from the estate is not in the ledger).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.estate.model import Estate, SizeRef
from pipelines.simulators.centra.ratelimit import RateLimiter

Listener = Callable[[str, str, int, datetime], None]

COUNTRY_NAMES = {
    "SE": "Sweden", "DK": "Denmark", "NO": "Norway", "DE": "Germany", "GB": "United Kingdom",
    "FI": "Finland", "NL": "Netherlands", "FR": "France", "US": "United States",
}


class MutationError(ValueError):
    """A business-rule failure, reported as `userErrors` over GraphQL."""

    def __init__(self, message: str, path: list[str] | None = None, *, errors: list[dict[str, Any]] | None = None):
        self.errors = errors or [{"message": message, "path": path or []}]
        super().__init__("; ".join(e["message"] for e in self.errors))


# ---------------------------------------------------------------- records


@dataclass
class StockRecord:
    physical: int = 0
    allocated: int = 0
    demand: int = 0

    @property
    def fta(self) -> int:
        return self.physical - self.allocated


@dataclass
class StockChangeLineRec:
    id: int
    stock_change_id: int
    warehouse_id: int
    size_id: int
    delivered_quantity: int  # physical delta
    fta_delta: int
    unit_cost: float | None = None
    shipment_line_id: int | None = None


@dataclass
class StockChangeRec:
    id: int
    created_at: datetime
    description: str
    kind: str  # CHANGE | SET | ALLOCATION | RELEASE | SHIPMENT | RETURN
    lines: list[StockChangeLineRec] = field(default_factory=list)
    order_number: int | None = None


@dataclass
class AllocationRec:
    id: int
    warehouse_id: int
    quantity: int  # allocated and not yet shipped
    reserved: int = 0  # part of `quantity` already in an uncompleted shipment


@dataclass
class OrderLineRec:
    id: int
    order_number: int
    ref: SizeRef
    ordered: int
    unit_original_price: float
    unit_price: float
    tax_percent: float
    cancelled: int = 0
    shipped: int = 0
    returned: int = 0
    demand: int = 0
    allocations: list[AllocationRec] = field(default_factory=list)
    comment: str | None = None

    @property
    def quantity(self) -> int:
        return self.ordered - self.cancelled

    @property
    def allocated(self) -> int:
        return sum(a.quantity for a in self.allocations)

    @property
    def shippable(self) -> int:
        return sum(a.quantity - a.reserved for a in self.allocations)

    @property
    def discount_percent(self) -> float:
        if self.unit_original_price <= 0 or self.unit_price >= self.unit_original_price:
            return 0.0
        return round((1 - self.unit_price / self.unit_original_price) * 100, 2)


@dataclass
class PaymentRec:
    id: int
    created_at: datetime
    entry_type: str
    status: str
    value: float
    currency: str
    external_reference: str
    params_json: str = "{}"
    payment_method: str = "sim-psp"


@dataclass
class OrderRec:
    id: str
    number: int
    status: str
    created_at: datetime
    updated_at: datetime
    order_date: datetime
    store_id: int
    market_id: int
    pricelist_id: int
    currency: str
    country: str
    currency_base_rate: float
    email: str
    customer_id: int
    external_id: str | None
    lines: list[OrderLineRec]
    shipping_value: float = 0.0
    is_on_hold: bool = False
    is_locked: bool = False
    internal_comment: str | None = None
    cancellation_comment: str | None = None
    shipment_ids: list[int] = field(default_factory=list)
    return_ids: list[int] = field(default_factory=list)
    payment_history: list[PaymentRec] = field(default_factory=list)
    allocate_from: tuple[int, ...] | None = None  # click-and-collect: the pickup store's warehouse only


@dataclass
class ShipmentLineRec:
    id: int
    shipment_id: int
    order_line_id: int
    quantity: int
    sources: list[tuple[int, int, int]] = field(default_factory=list)  # (allocation id, warehouse id, qty)
    returned: int = 0


@dataclass
class ShipmentRec:
    id: int
    number: str
    order_number: int
    created_at: datetime
    updated_at: datetime
    lines: list[ShipmentLineRec]
    shipping_value: float = 0.0
    shipping_returned: float = 0.0
    is_good_to_go: bool = False
    is_paid: bool = False
    paid_at: datetime | None = None
    is_captured: bool = False
    captured_at: datetime | None = None
    shipped_at: datetime | None = None
    tracking_number: str | None = None
    return_tracking_number: str | None = None
    number_of_packages: int = 0
    additional_message: str | None = None
    carrier_name: str | None = None
    service_name: str | None = None

    @property
    def is_shipped(self) -> bool:
        return self.shipped_at is not None


@dataclass
class ReturnLineRec:
    id: int
    return_id: int
    shipment_line_id: int
    order_line_id: int
    quantity: int
    unit_price: float
    tax_percent: float


@dataclass
class ReturnRec:
    id: int
    order_number: int
    shipment_id: int
    created_at: datetime
    lines: list[ReturnLineRec]
    status: str = "PENDING"
    comment: str | None = None
    external_id: str | None = None
    return_warehouse_id: int | None = None
    returned_to_stock: bool = False
    shipping: float = 0.0
    handling: float = 0.0
    voucher: float = 0.0
    return_cost: float = 0.0
    completed_at: datetime | None = None
    refund_history: list[PaymentRec] = field(default_factory=list)

    @property
    def line_values(self) -> float:
        return round(sum(ln.unit_price * ln.quantity for ln in self.lines), 2)

    @property
    def grand_total(self) -> float:
        return round(self.line_values + self.shipping + self.handling - self.voucher - self.return_cost, 2)


@dataclass
class ForcedFailure:
    status: int
    retry_after: int | None = 1
    after_execute: bool = False


# ---------------------------------------------------------------- state


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class CentraState:
    """A thread-safe in-memory Centra tenant built from an `Estate`."""

    def __init__(self, estate: Estate, *, clock: Callable[[], datetime] | None = None, tier: str = "GROWTH",
                 multiplier: float = 1.0, interval_scale: float = 1.0, rate_limits_enabled: bool = True,
                 first_order_number: int = 1001, app_version: str = "v1.60.0-sim") -> None:
        self.estate = estate
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.app_version = app_version
        self.rate_limiter = RateLimiter(tier, multiplier=multiplier, interval_scale=interval_scale,
                                        enabled=rate_limits_enabled)
        #: How 429 responses express Retry-After: "seconds" (default), "epoch" or "http-date".
        self.retry_after_style = "seconds"
        self._forced: deque[ForcedFailure] = deque()
        self._listeners: list[Listener] = []
        self._seq: dict[str, int] = {}
        self._next_order_number = first_order_number

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

        self.stock: dict[tuple[int, int], StockRecord] = {}
        for node_id, per_sku in estate.initial_stock.items():
            loc = estate.by_node.get(node_id)
            if loc is None:
                continue
            for sku, qty in per_sku.items():
                ref = self.size_by_sku.get(sku)
                if ref is not None:
                    self.stock[(loc.centra_warehouse_id, ref.size.size_id)] = StockRecord(physical=int(qty))

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

    def apply_stock_change(self, description: str, items: list[tuple[int, int]], *, into: int | None = None,
                           out: int | None = None, unit_cost: float | None = None,
                           at: datetime | None = None) -> StockChangeRec:
        """changeStock: add to `into`, remove from `out`, or transfer; all items or none."""
        with self.lock:
            if not description or not description.strip():
                raise MutationError("Description is required", ["input", "description"])
            if into is None and out is None:
                raise MutationError("Either intoWarehouse or outFromWarehouse is required", ["input"])
            for wid, name in ((into, "intoWarehouse"), (out, "outFromWarehouse")):
                if wid is not None and wid not in self.warehouses:
                    raise MutationError(f"Warehouse {wid} not found", ["input", name])
            if into is not None and into == out:
                raise MutationError("intoWarehouse and outFromWarehouse must differ", ["input"])
            totals: dict[int, int] = {}
            for sid, qty in items:
                totals[sid] = totals.get(sid, 0) + qty
            errors = []
            if out is not None:
                for sid, qty in totals.items():
                    rec = self.stock_record(out, sid)
                    if rec.fta - qty < 0:
                        ref = self.sizes[sid]
                        errors.append({"message": f"Not enough free stock of {ref.size.sku} in warehouse {out}: "
                                                  f"free to allocate {rec.fta}, requested {qty}; stock cannot become negative",
                                       "path": ["input", "productSizes"]})
            if errors:
                raise MutationError("", errors=errors)
            moves = []
            for sid, qty in totals.items():
                if out is not None:
                    self.stock_record(out, sid).physical -= qty
                    moves.append((out, sid, -qty, -qty))
                if into is not None:
                    self.stock_record(into, sid).physical += qty
                    moves.append((into, sid, qty, qty))
            return self._ledger(description, "CHANGE", moves, at=at, unit_cost=unit_cost)

    def apply_stock_set(self, description: str, warehouse_id: int, items: list[tuple[int, int]], *,
                        unit_cost: float | None = None, at: datetime | None = None) -> StockChangeRec | None:
        """setStock (PHYSICAL): absolute physical quantities; None when nothing changed."""
        with self.lock:
            if not description or not description.strip():
                raise MutationError("Description is required", ["input", "description"])
            if warehouse_id not in self.warehouses:
                raise MutationError(f"Warehouse {warehouse_id} not found", ["input", "warehouse"])
            target = dict(items)
            errors = []
            for sid, qty in target.items():
                rec = self.stock_record(warehouse_id, sid)
                if qty < 0:
                    errors.append({"message": f"Quantity for {self.sizes[sid].size.sku} must not be negative",
                                   "path": ["input", "productSizes"]})
                elif qty < rec.allocated:
                    errors.append({"message": f"Physical quantity {qty} of {self.sizes[sid].size.sku} is below the "
                                              f"allocated quantity {rec.allocated}; stock cannot become negative",
                                   "path": ["input", "productSizes"]})
            if errors:
                raise MutationError("", errors=errors)
            moves = []
            for sid, qty in target.items():
                rec = self.stock_record(warehouse_id, sid)
                delta = qty - rec.physical
                if delta:
                    rec.physical = qty
                    moves.append((warehouse_id, sid, delta, delta))
            if not moves:
                return None
            return self._ledger(description, "SET", moves, at=at, unit_cost=unit_cost)

    def stock_of(self, warehouse_id: int, sku: str) -> dict[str, int]:
        """Quantities of one SKU in one warehouse: physical, allocated, fta, demand."""
        with self.lock:
            ref = self.size_by_sku[sku]
            rec = self.stock.get((warehouse_id, ref.size.size_id), StockRecord())
            return {"physical": rec.physical, "allocated": rec.allocated, "fta": rec.fta, "demand": rec.demand}

    def stock_changes(self) -> list[dict[str, Any]]:
        """The ledger flattened to one dict per line (oldest first)."""
        with self.lock:
            out = []
            for sc in self.stock_changes_log:
                for ln in sc.lines:
                    out.append({"id": ln.id, "stock_change_id": sc.id, "created_at": sc.created_at,
                                "description": sc.description, "kind": sc.kind, "order_number": sc.order_number,
                                "warehouse_id": ln.warehouse_id, "size_id": ln.size_id,
                                "sku": self.sizes[ln.size_id].size.sku, "quantity": ln.delivered_quantity,
                                "fta_delta": ln.fta_delta})
            return out

    # ------------------------------------------------------------ allocation

    def _allocate(self, order: OrderRec, line: OrderLineRec, qty: int, moves: list[tuple[int, int, int, int]]) -> int:
        """Allocate up to `qty` of `line` following the market's allocation rule; returns allocated."""
        market = self.markets[order.market_id]
        rule = self.allocation_rules.get(market.allocation_rule_id)
        warehouses = order.allocate_from or (rule.warehouse_ids if rule else tuple(self.warehouses))
        sid = line.ref.size.size_id
        left = qty
        for wid in warehouses:
            if left <= 0:
                break
            rec = self.stock_record(wid, sid)
            take = min(left, max(0, rec.fta))
            if take <= 0:
                continue
            rec.allocated += take
            left -= take
            alloc = next((a for a in line.allocations if a.warehouse_id == wid), None)
            if alloc is None:
                alloc = AllocationRec(self._next("allocation"), wid, 0)
                line.allocations.append(alloc)
            alloc.quantity += take
            moves.append((wid, sid, 0, -take))
        return qty - left

    def _demand_warehouse(self, order: OrderRec) -> int:
        rule = self.allocation_rules.get(self.markets[order.market_id].allocation_rule_id)
        return rule.warehouse_ids[0] if rule and rule.warehouse_ids else next(iter(self.warehouses))

    def _add_demand(self, order: OrderRec, line: OrderLineRec, qty: int) -> None:
        if qty:
            line.demand += qty
            self.stock_record(self._demand_warehouse(order), line.ref.size.size_id).demand += qty

    def _allocate_demand(self, order: OrderRec, lines: Iterable[OrderLineRec]) -> None:
        moves: list[tuple[int, int, int, int]] = []
        for line in lines:
            if line.demand > 0:
                got = self._allocate(order, line, line.demand, moves)
                if got:
                    line.demand -= got
                    self.stock_record(self._demand_warehouse(order), line.ref.size.size_id).demand -= got
        if moves:
            self._ledger(f"Order {order.number} allocation", "ALLOCATION", moves, order_number=order.number)

    def _release(self, order: OrderRec, line: OrderLineRec, qty: int, *, remove_from_stock: bool,
                 moves: list[tuple[int, int, int, int]]) -> None:
        """Cancel `qty` unshipped units of `line`: demand first, then unreserved allocations."""
        sid = line.ref.size.size_id
        from_demand = min(qty, line.demand)
        if from_demand:
            line.demand -= from_demand
            self.stock_record(self._demand_warehouse(order), sid).demand -= from_demand
        left = qty - from_demand
        for alloc in reversed(line.allocations):
            if left <= 0:
                break
            take = min(left, alloc.quantity - alloc.reserved)
            if take <= 0:
                continue
            alloc.quantity -= take
            left -= take
            rec = self.stock_record(alloc.warehouse_id, sid)
            rec.allocated -= take
            if remove_from_stock:
                rec.physical -= take
                moves.append((alloc.warehouse_id, sid, -take, 0))
            else:
                moves.append((alloc.warehouse_id, sid, 0, take))
        line.allocations = [a for a in line.allocations if a.quantity > 0]

    # ------------------------------------------------------------ orders

    def place_order(self, market_id: int, lines: list[tuple[str, int]], *, email: str,
                    created_at: datetime | None = None, unit_prices: dict[str, float] | None = None,
                    external_id: str | None = None, shipping: float = 0.0,
                    allocate_from: tuple[int, ...] | None = None) -> dict[str, Any]:
        """Create a PENDING DTC order, allocating stock per the market's allocation rule (or only from the
        `allocate_from` warehouses, as for a click-and-collect order picked up in a store).

        Prices come from the market's pricelist (tax-included); `unit_prices` overrides the charged
        unit price per SKU (unitOriginalPrice stays the list price). Unallocatable units become demand.
        """
        with self.lock:
            market = self.markets.get(market_id)
            if market is None:
                raise ValueError(f"unknown market {market_id}")
            if not lines:
                raise ValueError("an order needs at least one line")
            pricelist = self.pricelists[market.pricelist_id]
            country = market.countries[0]
            tax = self.estate.tax_rates.get(country, 0.0)
            for sku, qty in lines:
                ref = self.size_by_sku.get(sku)
                if ref is None:
                    raise ValueError(f"unknown SKU {sku!r}")
                if qty <= 0:
                    raise ValueError(f"quantity for {sku} must be positive")
                if pricelist.id not in ref.variant.prices:
                    raise ValueError(f"{sku} has no price in pricelist {pricelist.id}")
            at = _utc(created_at) if created_at else self.now()
            number = self._next_order_number
            self._next_order_number += 1
            customer_id = self.customers.setdefault(email.lower(), len(self.customers) + 1)
            order = OrderRec(
                id=hashlib.md5(f"{self.estate.seed}:order:{number}".encode()).hexdigest(),
                number=number, status="PENDING", created_at=at, updated_at=at, order_date=at,
                store_id=market.store_id, market_id=market.id, pricelist_id=pricelist.id,
                currency=pricelist.currency, country=country,
                currency_base_rate=self.estate.fx_to_base.get(pricelist.currency, 1.0),
                email=email, customer_id=customer_id, external_id=external_id, lines=[],
                shipping_value=round(float(shipping), 2), allocate_from=allocate_from)
            for sku, qty in lines:
                ref = self.size_by_sku[sku]
                list_price = round(ref.variant.prices[pricelist.id], 2)
                price = round(float(unit_prices[sku]), 2) if unit_prices and sku in unit_prices else list_price
                order.lines.append(OrderLineRec(self._next("order_line"), number, ref, int(qty), list_price, price,
                                                round(tax * 100, 2)))
            moves: list[tuple[int, int, int, int]] = []
            for line in order.lines:
                got = self._allocate(order, line, line.ordered, moves)
                self._add_demand(order, line, line.ordered - got)
            self.orders[number] = order
            self.orders_by_id[order.id] = order
            for line in order.lines:
                self.order_lines[line.id] = line
            order.payment_history.append(PaymentRec(self._next("payment"), at, "AUTH", "SUCCESS",
                                                    self.order_grand_total(order), order.currency,
                                                    f"auth-{number}"))
            if moves:
                self._ledger(f"Order {number} allocation", "ALLOCATION", moves, at=at, order_number=number)
            self._emit("order", "insert", number)
            return self.order_summary(number)

    def order_summary(self, number: int) -> dict[str, Any]:
        with self.lock:
            o = self.orders[number]
            return {
                "id": o.id, "number": o.number, "status": o.status, "created_at": o.created_at,
                "market_id": o.market_id, "pricelist_id": o.pricelist_id, "currency": o.currency,
                "country": o.country, "email": o.email, "external_id": o.external_id,
                "grand_total": self.order_grand_total(o), "is_on_hold": o.is_on_hold,
                "shipment_ids": list(o.shipment_ids), "return_ids": list(o.return_ids),
                "lines": [{"id": ln.id, "sku": ln.ref.size.sku, "quantity": ln.quantity, "ordered": ln.ordered,
                           "cancelled": ln.cancelled, "shipped": ln.shipped, "returned": ln.returned,
                           "allocated": ln.allocated, "demand": ln.demand, "unit_price": ln.unit_price,
                           "unit_original_price": ln.unit_original_price, "tax_percent": ln.tax_percent,
                           "allocations": {a.warehouse_id: a.quantity for a in ln.allocations}}
                          for ln in o.lines],
            }

    get_order = order_summary

    def order_grand_total(self, order: OrderRec, *, including_tax: bool = True) -> float:
        total = 0.0
        for ln in order.lines:
            value = ln.unit_price * ln.quantity
            total += value if including_tax else value / (1 + ln.tax_percent / 100)
        rate = self.estate.tax_rates.get(order.country, 0.0)
        total += order.shipping_value if including_tax else order.shipping_value / (1 + rate)
        return round(total, 2)

    def _touch(self, order: OrderRec) -> None:
        order.updated_at = self.now()

    def _require_order(self, number: int | None = None, id: str | None = None) -> OrderRec:  # noqa: A002
        order = self.order(number=number, id=id)
        if order is None:
            raise MutationError(f"Order {number if number is not None else id} not found", ["order"])
        return order

    def confirm_order(self, number: int) -> OrderRec:
        with self.lock:
            order = self._require_order(number)
            if order.status != "PENDING":
                raise MutationError(f"Order {number} is {order.status}; only PENDING orders can be confirmed",
                                    ["input", "order"])
            order.status = "CONFIRMED"
            self._touch(order)
            self._emit("order", "update", number)
            return order

    def set_orders_lock(self, numbers: list[int], is_locked: bool) -> list[OrderRec]:
        with self.lock:
            orders = [self._require_order(n) for n in numbers]
            for o in orders:
                o.is_locked = is_locked
                self._touch(o)
                self._emit("order", "update", o.number)
            return orders

    def update_order(self, number: int, *, is_on_hold: bool | None = None, external_id: str | None = None,
                     internal_comment: str | None = None, cancellation_comment: str | None = None,
                     cancel_lines: list[tuple[int, int, bool]] | None = None, email: str | None = None) -> OrderRec:
        """updateDirectToConsumerOrder; `cancel_lines` items are (line id, qty, remove_from_stock)."""
        with self.lock:
            order = self._require_order(number)
            if order.status in ("CANCELLED", "ARCHIVED"):
                raise MutationError(f"Order {number} is {order.status} and cannot be updated", ["order"])
            errors = []
            plan = []
            for i, (line_id, qty, remove) in enumerate(cancel_lines or []):
                line = next((ln for ln in order.lines if ln.id == line_id), None)
                if line is None:
                    errors.append({"message": f"Order line {line_id} does not belong to order {number}",
                                   "path": ["input", "cancelLines", str(i), "line"]})
                    continue
                cancellable = line.quantity - line.shipped - sum(a.reserved for a in line.allocations)
                if qty <= 0 or qty > cancellable:
                    errors.append({"message": f"Quantity {qty} for line {line_id} must be in range 1 - {cancellable}",
                                   "path": ["input", "cancelLines", str(i), "quantity"]})
                    continue
                plan.append((line, qty, remove))
            if errors:
                raise MutationError("", errors=errors)
            moves: list[tuple[int, int, int, int]] = []
            for line, qty, remove in plan:
                self._release(order, line, qty, remove_from_stock=remove, moves=moves)
                line.cancelled += qty
            if moves:
                self._ledger(f"Order {number} cancelled lines", "RELEASE", moves, order_number=number)
            if is_on_hold is not None:
                order.is_on_hold = is_on_hold
            if external_id is not None:
                order.external_id = external_id
            if internal_comment is not None:
                order.internal_comment = internal_comment
            if cancellation_comment is not None:
                order.cancellation_comment = cancellation_comment
            if email is not None:
                order.email = email
            if plan:
                self._settle_status(order)
            self._touch(order)
            self._emit("order", "update", number)
            return order

    def cancel_order(self, number: int | None = None, *, id: str | None = None, comment: str | None = None,  # noqa: A002
                     remove_from_stock: bool = False) -> OrderRec:
        with self.lock:
            order = self._require_order(number, id)
            if order.status in ("SHIPPED", "CANCELLED", "ARCHIVED"):
                raise MutationError(f"Order {order.number} is {order.status} and cannot be cancelled", ["id"])
            shipments = [self.shipments[s] for s in order.shipment_ids]
            if any(s.is_shipped or s.is_captured for s in shipments):
                raise MutationError(f"Order {order.number} has shipped or captured shipments; create a return "
                                    "and refund instead", ["id"])
            for s in shipments:  # drop open shipments, un-reserving their allocations
                self._drop_shipment(s)
            moves: list[tuple[int, int, int, int]] = []
            for line in order.lines:
                unshipped = line.quantity - line.shipped
                if unshipped > 0:
                    self._release(order, line, unshipped, remove_from_stock=remove_from_stock, moves=moves)
            if moves:
                self._ledger(f"Order {order.number} cancelled", "RELEASE", moves, order_number=order.number)
            order.status = "CANCELLED"
            order.cancellation_comment = comment
            self._touch(order)
            self._emit("order", "update", order.number)
            return order

    def _settle_status(self, order: OrderRec) -> None:
        if all(ln.cancelled >= ln.ordered for ln in order.lines):
            order.status = "CANCELLED"
        elif (order.shipment_ids and all(ln.shipped >= ln.quantity for ln in order.lines)
              and all(self.shipments[s].is_shipped for s in order.shipment_ids)):
            order.status = "SHIPPED"

    # ------------------------------------------------------------ shipments

    def create_shipment(self, number: int | None = None, lines: list[tuple[int, int]] | None = None, *,
                        id: str | None = None, created_at: datetime | None = None,  # noqa: A002
                        is_good_to_go: bool = False, is_paid: bool = False, capture: bool = False,
                        allocate_demand: bool = False, additional_message: str | None = None) -> ShipmentRec:
        """createShipment: `lines` = [(order line id, qty)], or None for everything allocated."""
        with self.lock:
            order = self._require_order(number, id)
            if order.status not in ("CONFIRMED", "PROCESSING"):
                raise MutationError(f"Order {order.number} is {order.status}; shipments need a CONFIRMED or "
                                    "PROCESSING order", ["input", "order"])
            if order.is_on_hold:
                raise MutationError(f"Order {order.number} is on hold", ["input", "order"])
            if allocate_demand:
                self._allocate_demand(order, order.lines)
            if lines is None:
                wanted = [(ln, ln.shippable) for ln in order.lines if ln.shippable > 0]
            else:
                wanted, errors = [], []
                for i, (line_id, qty) in enumerate(lines):
                    line = next((ln for ln in order.lines if ln.id == line_id), None)
                    if line is None:
                        errors.append({"message": f"Order line {line_id} does not belong to order {order.number}",
                                       "path": ["input", "lines", str(i), "orderLine"]})
                    elif qty <= 0 or qty > line.shippable:
                        errors.append({"message": f"Quantity {qty} for line {line_id} exceeds the allocated, "
                                                  f"unshipped quantity {line.shippable}",
                                       "path": ["input", "lines", str(i), "quantity"]})
                    else:
                        wanted.append((line, qty))
                if errors:
                    raise MutationError("", errors=errors)
            if not wanted:
                raise MutationError(f"Order {order.number} has nothing allocated to ship", ["input", "lines"])
            at = _utc(created_at) if created_at else self.now()
            sid = self._next("shipment")
            shipment = ShipmentRec(sid, f"{order.number}-{len(order.shipment_ids) + 1}", order.number, at, at, [],
                                   is_good_to_go=is_good_to_go)
            if not any(self.shipments[s].shipping_value for s in order.shipment_ids):
                shipment.shipping_value = order.shipping_value
            for line, qty in wanted:
                sl = ShipmentLineRec(self._next("shipment_line"), sid, line.id, qty)
                left = qty
                for alloc in line.allocations:
                    take = min(left, alloc.quantity - alloc.reserved)
                    if take > 0:
                        alloc.reserved += take
                        sl.sources.append((alloc.id, alloc.warehouse_id, take))
                        left -= take
                shipment.lines.append(sl)
                self.shipment_lines[sl.id] = sl
            self.shipments[sid] = shipment
            order.shipment_ids.append(sid)
            if order.status == "CONFIRMED":
                order.status = "PROCESSING"
            if is_paid:
                shipment.is_paid, shipment.paid_at = True, at
            self._touch(order)
            self._emit("shipment", "create", sid)
            self._emit("order", "update", order.number)
            if capture:
                self.capture_shipment(sid)
            return shipment

    def shipment_grand_total(self, shipment: ShipmentRec, *, including_tax: bool = True) -> float:
        total = 0.0
        for sl in shipment.lines:
            line = self.order_lines[sl.order_line_id]
            value = line.unit_price * sl.quantity
            total += value if including_tax else value / (1 + line.tax_percent / 100)
        order = self.orders[shipment.order_number]
        rate = self.estate.tax_rates.get(order.country, 0.0)
        total += shipment.shipping_value if including_tax else shipment.shipping_value / (1 + rate)
        return round(total, 2)

    def _require_shipment(self, shipment_id: int) -> ShipmentRec:
        shipment = self.shipments.get(int(shipment_id))
        if shipment is None:
            raise MutationError(f"Shipment {shipment_id} not found", ["id"])
        return shipment

    def capture_shipment(self, shipment_id: int) -> PaymentRec:
        with self.lock:
            shipment = self._require_shipment(shipment_id)
            if shipment.is_captured:
                raise MutationError(f"Shipment {shipment.number} is already captured", ["id"])
            order = self.orders[shipment.order_number]
            at = self.now()
            entry = PaymentRec(self._next("payment"), at, "CAPTURE", "SUCCESS", self.shipment_grand_total(shipment),
                               order.currency, f"capture-{shipment.number}")
            order.payment_history.append(entry)
            shipment.is_captured, shipment.captured_at = True, at
            shipment.is_paid, shipment.paid_at = True, shipment.paid_at or at
            shipment.updated_at = at
            return entry

    def update_shipment(self, shipment_id: int, *, is_paid: bool | None = None, is_good_to_go: bool | None = None,
                        additional_message: str | None = None) -> ShipmentRec:
        with self.lock:
            shipment = self._require_shipment(shipment_id)
            if is_paid is not None:
                shipment.is_paid = is_paid
                shipment.paid_at = self.now() if is_paid else None
            if is_good_to_go is not None:
                shipment.is_good_to_go = is_good_to_go
            if additional_message is not None:
                shipment.additional_message = additional_message
            shipment.updated_at = self.now()
            return shipment

    def complete_shipment(self, shipment_id: int, *, shipped_at: datetime | None = None,
                          carrier: str | None = None, service: str | None = None,
                          tracking_number: str | None = None, return_tracking_number: str | None = None,
                          packages: int | None = None) -> ShipmentRec:
        """completeShipment: physical and allocated drop in the source warehouses."""
        with self.lock:
            shipment = self._require_shipment(shipment_id)
            if shipment.is_shipped:
                raise MutationError(f"Shipment {shipment.number} is already completed", ["id"])
            order = self.orders[shipment.order_number]
            at = _utc(shipped_at) if shipped_at else self.now()
            if at > self.now():
                raise MutationError("shippedAt cannot be in the future", ["input", "shippedAt"])
            moves, sl_ids = [], []
            for sl in shipment.lines:
                line = self.order_lines[sl.order_line_id]
                sid = line.ref.size.size_id
                for alloc_id, wid, qty in sl.sources:
                    alloc = next(a for a in line.allocations if a.id == alloc_id)
                    alloc.quantity -= qty
                    alloc.reserved -= qty
                    rec = self.stock_record(wid, sid)
                    rec.physical -= qty
                    rec.allocated -= qty
                    moves.append((wid, sid, -qty, 0))
                    sl_ids.append(sl.id)
                line.allocations = [a for a in line.allocations if a.quantity > 0]
                line.shipped += sl.quantity
            shipment.shipped_at = at
            shipment.updated_at = self.now()
            shipment.carrier_name = carrier or shipment.carrier_name
            shipment.service_name = service or shipment.service_name
            shipment.tracking_number = tracking_number or shipment.tracking_number
            shipment.return_tracking_number = return_tracking_number or shipment.return_tracking_number
            shipment.number_of_packages = packages if packages is not None else max(1, shipment.number_of_packages)
            self._ledger(f"Shipment {shipment.number}", "SHIPMENT", moves, at=at, order_number=order.number,
                         shipment_lines=sl_ids)
            self._settle_status(order)
            self._touch(order)
            self._emit("order", "update", order.number)
            return shipment

    def _drop_shipment(self, shipment: ShipmentRec) -> None:
        order = self.orders[shipment.order_number]
        for sl in shipment.lines:
            line = self.order_lines[sl.order_line_id]
            for alloc_id, _wid, qty in sl.sources:
                alloc = next((a for a in line.allocations if a.id == alloc_id), None)
                if alloc is not None:
                    alloc.reserved -= qty
            self.shipment_lines.pop(sl.id, None)
        order.shipment_ids.remove(shipment.id)
        self.shipments.pop(shipment.id, None)

    # ------------------------------------------------------------ returns

    def create_return_for_shipment(self, shipment_id: int, lines: list[tuple[int, int]], *,
                                   policy: str = "release", warehouse_id: int | None = None,
                                   comment: str | None = None, external_id: str | None = None,
                                   created_at: datetime | None = None, shipping: float | None = None,
                                   shipping_from_shipment: bool = False, handling: float = 0.0,
                                   voucher: float = 0.0, return_cost: float = 0.0) -> ReturnRec:
        """createReturn. policy: "release" (back to source warehouses), "different" (`warehouse_id`)
        or "remove" (no restock). `lines` = [(shipment line id, qty)]."""
        with self.lock:
            shipment = self.shipments.get(int(shipment_id))
            if shipment is None:
                raise MutationError(f"Shipment {shipment_id} not found", ["input", "shipment"])
            if not shipment.is_shipped:
                raise MutationError(f"Shipment {shipment.number} is not completed", ["input", "shipment"])
            if policy == "different" and warehouse_id not in self.warehouses:
                raise MutationError(f"Warehouse {warehouse_id} not found",
                                    ["input", "returnStockActionPolicy", "sendItemsToDifferentWarehouse"])
            if not lines:
                raise MutationError("A return needs at least one line", ["input", "lines"])
            errors, plan = [], []
            for i, (sl_id, qty) in enumerate(lines):
                sl = next((s for s in shipment.lines if s.id == sl_id), None)
                if sl is None:
                    errors.append({"message": f"Shipment line {sl_id} does not belong to shipment {shipment.number}",
                                   "path": ["input", "lines", str(i), "shipmentLine"]})
                elif qty <= 0 or qty > sl.quantity - sl.returned:
                    errors.append({"message": f"Quantity {qty} for shipment line {sl_id} must be in range 1 - "
                                              f"{sl.quantity - sl.returned}",
                                   "path": ["input", "lines", str(i), "quantity"]})
                else:
                    plan.append((sl, qty))
            remaining_shipping = round(shipment.shipping_value - shipment.shipping_returned, 2)
            ship_amount = remaining_shipping if shipping_from_shipment else round(shipping or 0.0, 2)
            if ship_amount > remaining_shipping + 1e-9:
                errors.append({"message": f"Shipping cost {ship_amount} exceeds what remains on the shipment "
                                          f"({remaining_shipping})", "path": ["input", "shippingCost"]})
            if errors:
                raise MutationError("", errors=errors)
            order = self.orders[shipment.order_number]
            at = _utc(created_at) if created_at else self.now()
            rid = self._next("return")
            ret = ReturnRec(rid, order.number, shipment.id, at, [], comment=comment, external_id=external_id,
                            shipping=ship_amount, handling=round(handling, 2), voucher=round(voucher, 2),
                            return_cost=round(return_cost, 2))
            shipment.shipping_returned = round(shipment.shipping_returned + ship_amount, 2)
            moves: list[tuple[int, int, int, int]] = []
            for sl, qty in plan:
                line = self.order_lines[sl.order_line_id]
                rl = ReturnLineRec(self._next("return_line"), rid, sl.id, line.id, qty, line.unit_price,
                                   line.tax_percent)
                ret.lines.append(rl)
                self.return_lines[rl.id] = rl
                sl.returned += qty
                line.returned += qty
                sid = line.ref.size.size_id
                if policy == "remove":
                    continue
                targets: list[tuple[int, int]] = []
                if policy == "different":
                    targets = [(int(warehouse_id), qty)]  # type: ignore[arg-type]
                else:
                    left = qty
                    for _alloc, wid, src_qty in sl.sources:
                        take = min(left, src_qty)
                        if take > 0:
                            targets.append((wid, take))
                            left -= take
                    if left > 0:
                        targets.append((sl.sources[0][1] if sl.sources else self._demand_warehouse(order), left))
                for wid, q in targets:
                    self.stock_record(wid, sid).physical += q
                    moves.append((wid, sid, q, q))
                    ret.return_warehouse_id = ret.return_warehouse_id or wid
            if moves:
                ret.returned_to_stock = True
                self._ledger(f"Return {rid} of order {order.number}", "RETURN", moves, at=at,
                             order_number=order.number)
            self.returns[rid] = ret
            order.return_ids.append(rid)
            self._touch(order)
            self._emit("return", "insert", rid)
            self._emit("order", "update", order.number)
            return ret

    def _require_return(self, return_id: int) -> ReturnRec:
        ret = self.returns.get(int(return_id))
        if ret is None:
            raise MutationError(f"Return {return_id} not found", ["id"])
        return ret

    def complete_return(self, return_id: int) -> ReturnRec:
        with self.lock:
            ret = self._require_return(return_id)
            if ret.status == "COMPLETED":
                raise MutationError(f"Return {return_id} is already completed", ["id"])
            ret.status, ret.completed_at = "COMPLETED", self.now()
            self._emit("order", "update", ret.order_number)
            return ret

    def refund_return(self, return_id: int) -> PaymentRec:
        """refundReturn: a REFUND payment entry for the return's grand total (negative value)."""
        with self.lock:
            ret = self._require_return(return_id)
            if any(p.entry_type == "REFUND" and p.status == "SUCCESS" for p in ret.refund_history):
                raise MutationError(f"Return {return_id} is already refunded", ["id"])
            order = self.orders[ret.order_number]
            entry = PaymentRec(self._next("payment"), self.now(), "REFUND", "SUCCESS", -ret.grand_total,
                               order.currency, f"refund-{return_id}")
            ret.refund_history.append(entry)
            order.payment_history.append(entry)
            self._emit("order", "update", ret.order_number)
            return entry

    # ------------------------------------------------------------ world API conveniences

    def ship_order(self, number: int, at: datetime | None = None) -> dict[str, Any]:
        """Confirm if PENDING, create a captured shipment of everything allocatable (demand is
        re-tried first), complete it. Raises `MutationError` when nothing can be shipped."""
        with self.lock:
            order = self.orders[number]
            if order.status == "PENDING":
                self.confirm_order(number)
            shipment = self.create_shipment(number, None, created_at=at, is_good_to_go=True, capture=True,
                                            allocate_demand=True)
            self.complete_shipment(shipment.id, shipped_at=at)
            return {"number": number, "status": order.status, "shipment_id": shipment.id,
                    "shipment_number": shipment.number}

    def create_return(self, number: int, lines: list[tuple[str, int]], *, at: datetime | None = None,
                      restock_warehouse_id: int | None = None, refund: bool = True, restock: bool = True,
                      comment: str | None = None, external_id: str | None = None) -> dict[str, Any]:
        """Return SKUs of a shipped order: restock to the source warehouse (or `restock_warehouse_id`,
        or nowhere with `restock=False`), then complete and refund when `refund`.

        One return per shipment is created (Centra ties a return to one shipment); the result
        describes the first, with `ids` listing all.
        """
        with self.lock:
            order = self.orders[number]
            per_shipment: dict[int, list[tuple[int, int]]] = {}
            for sku, qty in lines:
                left = qty
                for sid in order.shipment_ids:
                    shipment = self.shipments[sid]
                    if not shipment.is_shipped:
                        continue
                    for sl in shipment.lines:
                        if left <= 0:
                            break
                        if self.order_lines[sl.order_line_id].ref.size.sku != sku:
                            continue
                        take = min(left, sl.quantity - sl.returned)
                        if take > 0:
                            per_shipment.setdefault(sid, []).append((sl.id, take))
                            left -= take
                if left > 0:
                    raise ValueError(f"order {number}: cannot return {qty} x {sku} (not enough shipped)")
            policy = "remove" if not restock else ("different" if restock_warehouse_id is not None else "release")
            created = []
            for sid, items in per_shipment.items():
                ret = self.create_return_for_shipment(sid, items, policy=policy, warehouse_id=restock_warehouse_id,
                                                      comment=comment, external_id=external_id, created_at=at)
                if refund:
                    self.complete_return(ret.id)
                    self.refund_return(ret.id)
                created.append(ret)
            first = created[0]
            return {"id": first.id, "ids": [r.id for r in created], "order_number": number,
                    "status": first.status, "grand_total": first.grand_total,
                    "refunded": any(p.entry_type == "REFUND" for p in first.refund_history),
                    "return_warehouse_id": first.return_warehouse_id}
