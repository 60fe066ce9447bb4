"""Records of the Centra fake: stock per (warehouse, size), the stock ledger, orders with their lines,
allocations and payment history, shipments and returns. Plain dataclasses; the tenant (:mod:`.state`)
owns and mutates them. Also the business-rule error and the UTC helper every area uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.estate.model import SizeRef

Listener = Callable[[str, str, int, datetime], None]


class MutationError(ValueError):
    """A business-rule failure, reported as `userErrors` over GraphQL."""

    def __init__(self, message: str, path: list[str] | None = None, *, errors: list[dict[str, Any]] | None = None):
        self.errors = errors or [{"message": message, "path": path or []}]
        super().__init__("; ".join(e["message"] for e in self.errors))



def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


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
    shipping_option_id: int = 1
    # updateDirectToConsumerOrder overrides (camelCase input keys -> values); None = derived from the email
    shipping_address: dict[str, Any] | None = None
    billing_address: dict[str, Any] | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_internal: bool = False
    is_captured: bool = False  # captureOrder captured the whole order total


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
    internal_shipping_cost: tuple[float, str] | None = None  # (value, currency) from completeShipment
    send_email: bool | None = None  # createShipment's sendEmail, applied when the shipment is completed
    #: sim-only record of the customer emails Centra would have sent for this shipment (no Centra field):
    #: "shipment_confirmation" once per completion that had sendEmail true (or the tenant's default).
    emails_sent: list[str] = field(default_factory=list)

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
