"""In-memory NewStore tenant: inventory, orders, fulfillment requests, returns, integrations, events.

Identifiers used by the fake (see the package docstring for the full contract):

* fulfillment node id = ``Location.newstore_node_id`` (``SE01``, ``DC01``); product id = SKU.
* NewStore store id = ``Location.id`` (``ST-SE01``); stores are listed by ``GET /stores``.
* Every event payload carries an increasing integer ``logical_timestamp`` (one per event, tenant-wide),
  so a consumer can order stock counts against stock deltas.

All public methods are thread-safe (one re-entrant lock). World methods accept ``at`` (event time,
default: the clock); naive datetimes are taken as UTC.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from pipelines.estate.model import Estate, Location

from .eventstream import DeliveryTarget

ADJUSTMENT_EVENT = "inventory_transaction.items_adjusted"
"""Event name used for stock adjustments. ASSUMPTION: NewStore does not document the adjustment event
name; we use the ``inventory_transaction.`` family with an ``items_adjusted`` suffix."""

_CENT = Decimal("0.01")
_ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "PYG", "UGX", "RWF"}


class SimError(Exception):
    """A request the fake rejects; the app renders it as a Problem JSON response."""

    def __init__(self, status: int, error_code: str, message: str, messages: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.messages = messages or []


class EventSink(Protocol):
    def enqueue(self, event: dict[str, Any], target: DeliveryTarget) -> None: ...


def iso(dt: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def D(value: Any) -> Decimal:
    return Decimal(str(value))


def money(value: Decimal | float | int) -> float:
    return float(D(value).quantize(_CENT, ROUND_HALF_UP))


def tax_included(gross: Decimal, rate: Decimal) -> Decimal:
    """Tax contained in a tax-inclusive amount."""
    if rate <= 0:
        return Decimal(0)
    return (gross * rate / (1 + rate)).quantize(_CENT, ROUND_HALF_UP)


# -- inventory -------------------------------------------------------------------------------------


@dataclass
class Allocation:
    order_uuid: str
    item_uuid: str
    created_at: str


@dataclass
class Reservation:
    order_uuid: str
    item_uuid: str
    created_at: str
    expires_at: str


@dataclass
class StockRecord:
    """Stock of one product at one fulfillment node."""

    on_hand: int = 0
    safety_stock: int = 0
    allocations: dict[str, Allocation] = field(default_factory=dict)  # item uuid -> allocation
    reservations: dict[str, Reservation] = field(default_factory=dict)  # item uuid -> reservation

    @property
    def atp(self) -> int:
        """on_hand - allocations - reservations - safety stock, floored at 0."""
        return max(0, self.on_hand - len(self.allocations) - len(self.reservations) - self.safety_stock)


# -- orders ----------------------------------------------------------------------------------------


@dataclass
class OrderItem:
    id: str
    external_item_id: str
    product_id: str
    list_price: Decimal  # in the order's price method (tax incl. for tax_included)
    item_discount: Decimal
    order_discount: Decimal
    price: Decimal  # paid, in the order's price method
    tax: Decimal
    tax_rate: Decimal
    status: str  # pending | in_fulfillment | on_hold | complete | cancelled | returned
    service_level: str
    fulfillment_node_id: str | None = None
    discounts: list[dict[str, Any]] = field(default_factory=list)
    extended_attributes: list[dict[str, Any]] = field(default_factory=list)
    addon_parent_item_id: str | None = None
    rejected_nodes: set[str] = field(default_factory=set)


@dataclass
class Order:
    id: str
    external_id: str
    origin: str  # newstore | external
    channel_type: str  # store | web | mobile
    channel: str
    store_id: str | None
    fulfillment_node_id: str | None  # POS sales: the selling store's node
    currency: str
    price_method: str
    placed_at: datetime
    created_at: datetime
    items: list[OrderItem]
    fulfillment_type: str
    shipping_total: Decimal = Decimal(0)
    shipping_tax: Decimal = Decimal(0)
    customer_email: str | None = None
    customer_name: str | None = None
    customer_id: str | None = None
    associate_id: str | None = None
    shop_locale: str | None = None
    shipping_address: dict[str, Any] | None = None
    billing_address: dict[str, Any] | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    extended_attributes: list[dict[str, Any]] = field(default_factory=list)
    is_historical: bool = False
    cancelled: bool = False

    @property
    def status(self) -> str:
        if any(i.status == "on_hold" for i in self.items):
            return "on_hold"
        if all(i.status in ("complete", "cancelled", "returned") for i in self.items):
            return "closed"
        return "open"

    def gross(self, item: OrderItem) -> Decimal:
        return item.price if self.price_method == "tax_included" else item.price + item.tax

    @property
    def grand_total(self) -> Decimal:
        items = sum((i.price for i in self.items), Decimal(0))
        taxes = sum((i.tax for i in self.items), Decimal(0)) + self.shipping_tax
        total = items + self.shipping_total
        return total if self.price_method == "tax_included" else total + taxes


@dataclass
class FrItem:
    item_id: str
    product_id: str
    status: str = "dispatched"  # dispatched | shipped | rejected | cancelled
    carrier: str | None = None
    tracking_code: str | None = None


@dataclass
class FulfillmentRequest:
    id: str
    order_id: str
    fulfillment_node_id: str
    service_level: str
    created_at: datetime
    items: list[FrItem]
    acknowledged: bool = False

    @property
    def status(self) -> str:
        done = [i.status != "dispatched" for i in self.items]
        if all(done):
            return "completed"
        if any(done):
            return "partially_completed"
        return "acknowledged" if self.acknowledged else "dispatched"

    def to_json(self) -> dict[str, Any]:
        return {
            "fulfillment_request_id": self.id,
            "fulfillment_node_id": self.fulfillment_node_id,
            "service_level": self.service_level,
            "status": self.status,
            "created_at": iso(self.created_at),
            "items": [{"item_id": i.item_id, "product_id": i.product_id, "status": i.status,
                       "carrier": i.carrier, "tracking_code": i.tracking_code} for i in self.items],
        }


@dataclass
class Integration:
    id: str
    integration_type: str
    callback_url: str | None
    api_key: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    filter_conditions: Any
    created_at: datetime
    status: str = "created"  # created | running | stopped

    def accepts(self, at: datetime) -> bool:
        if self.status != "running" or not self.callback_url:
            return False
        if self.starts_at and at < self.starts_at:
            return False
        return not (self.ends_at and at > self.ends_at)

    def target(self) -> DeliveryTarget:
        return DeliveryTarget(self.id, self.callback_url or "", self.api_key or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration_type": self.integration_type,
            "status": self.status,
            "starts_at": iso(self.starts_at) if self.starts_at else None,
            "ends_at": iso(self.ends_at) if self.ends_at else None,
            "callback_parameters": {"callback_url": self.callback_url},  # api_key is never echoed
            "filter_conditions": self.filter_conditions,
            "created_at": iso(self.created_at),
        }


# -- the tenant --------------------------------------------------------------------------------------


class NewStoreState:
    """The whole simulated tenant. Build it from an :class:`Estate`."""

    def __init__(self, estate: Estate, *, tenant: str = "nordlys", clock: Callable[[], datetime] | None = None,
                 seed: int = 0, emitter: EventSink | None = None, count_chunk_size: int = 100,
                 safety_stock: int = 0, conflict_mode: str = "error", max_items_per_order: int = 500,
                 late_publication_rate: float = 0.0, late_publication_s: float = 0.0) -> None:
        if conflict_mode not in ("error", "first_response"):
            raise ValueError("conflict_mode must be 'error' or 'first_response'")
        self.estate = estate
        self.tenant = tenant
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.count_chunk_size = max(1, count_chunk_size)
        # Late publication (knob): this share of events gets a `published_at` this many seconds after
        # the fact (NewStore's SLA is <= 15 min, but replays and halted streams publish hours late).
        self.late_publication_rate = late_publication_rate
        self.late_publication_s = late_publication_s
        self.conflict_mode = conflict_mode
        self.max_items_per_order = max_items_per_order
        self._emitter = emitter
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._lt = 0
        self._pos_seq = 0
        self._stock: dict[tuple[str, str], StockRecord] = {}
        for node, per_sku in estate.initial_stock.items():
            for sku, qty in per_sku.items():
                self._stock[(node, sku)] = StockRecord(on_hand=int(qty), safety_stock=safety_stock)
        self._default_safety = safety_stock
        self._orders: dict[str, Order] = {}
        self._by_external: dict[str, str] = {}
        self._injections: dict[str, tuple[str, dict[str, Any]]] = {}  # external_id -> (fingerprint, response)
        self._frs: dict[str, FulfillmentRequest] = {}
        self._frs_by_order: dict[str, list[str]] = {}
        self._returns: dict[str, list[dict[str, Any]]] = {}  # order id -> returns
        self._integrations: dict[str, Integration] = {}
        self._events: list[tuple[datetime, dict[str, Any]]] = []
        self._stores_by_id = {loc.id: loc for loc in estate.stores}
        self._pos_only_skus: set[str] = set()

    # -- plumbing ------------------------------------------------------------------------------------

    def attach_emitter(self, emitter: EventSink | None) -> None:
        with self._lock:
            self._emitter = emitter

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _at(self, at: datetime | None) -> datetime:
        if at is None:
            at = self.clock()
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    def _next_lt(self) -> int:
        self._lt += 1
        return self._lt

    def _node(self, node_id: str) -> Location:
        loc = self.estate.by_node.get(node_id)
        if loc is None:
            raise KeyError(f"unknown fulfillment node {node_id!r}")
        return loc

    def _sku(self, sku: str) -> None:
        if sku not in self.estate.by_sku and sku not in self._pos_only_skus:
            raise KeyError(f"unknown sku {sku!r}")

    def register_pos_product(self, sku: str, node_id: str | None = None, on_hand: int = 0) -> None:
        """A product that exists only in the POS catalog (created locally in the store), not in the
        estate's commerce catalog: what an "unknown SKU" looks like from the commerce side."""
        with self._lock:
            self._pos_only_skus.add(sku)
            if node_id is not None:
                self._rec(node_id, sku).on_hand += int(on_hand)

    def _rec(self, node_id: str, sku: str) -> StockRecord:
        rec = self._stock.get((node_id, sku))
        if rec is None:
            rec = self._stock[(node_id, sku)] = StockRecord(safety_stock=self._default_safety)
        return rec

    def _rate(self, country: str) -> Decimal:
        return D(self.estate.tax_rates.get(country, 0.0))

    def _ids(self, sku: str) -> dict[str, str | None]:
        ref = self.estate.by_sku.get(sku)
        return {"sku": sku, "ean13": ref.size.ean if ref else None}

    def _publish(self, name: str, payload: dict[str, Any], at: datetime) -> dict[str, Any]:
        published = at
        if self.late_publication_rate > 0 and self._rng.random() < self.late_publication_rate:
            published = at + timedelta(seconds=self.late_publication_s)
        envelope = {"tenant": self.tenant, "name": name, "published_at": iso(published), "payload": payload}
        self._events.append((at, envelope))
        if self._emitter is not None:
            for integ in self._integrations.values():
                if integ.accepts(at):
                    self._emitter.enqueue(envelope, integ.target())
        return envelope

    # -- ground truth ---------------------------------------------------------------------------------

    def events_published(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every event ever published (deep copies), optionally only one event name."""
        with self._lock:
            return [copy.deepcopy(e) for _, e in self._events if name is None or e["name"] == name]

    def on_hand(self, node_id: str, sku: str) -> int:
        with self._lock:
            rec = self._stock.get((node_id, sku))
            return rec.on_hand if rec else 0

    def atp(self, node_id: str, sku: str) -> int:
        with self._lock:
            rec = self._stock.get((node_id, sku))
            return rec.atp if rec else 0

    def stock_record(self, node_id: str, sku: str) -> dict[str, int]:
        """on_hand, allocations, reservations, safety_stock and atp of one (node, sku)."""
        with self._lock:
            rec = self._stock.get((node_id, sku)) or StockRecord(safety_stock=self._default_safety)
            return {"on_hand": rec.on_hand, "allocations": len(rec.allocations),
                    "reservations": len(rec.reservations), "safety_stock": rec.safety_stock, "atp": rec.atp}

    def set_safety_stock(self, node_id: str, sku: str, qty: int) -> None:
        with self._lock:
            self._rec(node_id, sku).safety_stock = int(qty)

    def reserve(self, node_id: str, sku: str, quantity: int = 1, *, at: datetime | None = None,
                expires_at: datetime | None = None) -> list[str]:
        """Add reservations (e.g. a cart hold); returns the reservation item ids."""
        with self._lock:
            at = self._at(at)
            rec = self._rec(node_id, sku)
            order_uuid, out = self._uuid(), []
            for _ in range(quantity):
                item = self._uuid()
                rec.reservations[item] = Reservation(order_uuid, item, iso(at), iso(expires_at or at))
                out.append(item)
            return out

    def release_reservations(self, node_id: str, sku: str, item_ids: Iterable[str]) -> None:
        with self._lock:
            rec = self._rec(node_id, sku)
            for item in item_ids:
                rec.reservations.pop(item, None)

    # -- world API (trading generator) ----------------------------------------------------------------

    def record_store_sale(self, node_id: str, items: list[dict[str, Any]], *, at: datetime | None = None,
                          customer_email: str | None = None, external_id: str | None = None,
                          associate_id: str | None = None, payment_method: str = "credit_card",
                          price_method: str = "tax_included") -> dict[str, Any]:
        """A native POS sale: decrements on_hand, emits order.created + order.opened.

        ``items``: ``[{sku, quantity, unit_price (list price), discount (per unit amount), tax_rate
        (optional override: a till keyed with the wrong tax code)}]``.
        ``price_method``: ``tax_included`` (prices contain the tax, as at a European till) or
        ``tax_excluded`` (the tax comes on top of the price).
        Returns the ``order.opened`` payload.
        """
        with self._lock:
            at = self._at(at)
            loc = self._node(node_id)
            rate = self._rate(loc.country)
            if external_id is None:
                self._pos_seq += 1
                external_id = f"{node_id}-{self._pos_seq:07d}"
            if external_id in self._by_external:
                raise ValueError(f"order {external_id!r} already exists")
            order_id = self._uuid()
            lines: list[OrderItem] = []
            for it in items:
                sku = str(it["sku"])
                self._sku(sku)
                unit, disc = D(it["unit_price"]), D(it.get("discount", 0) or 0)
                line_rate = D(it["tax_rate"]) if it.get("tax_rate") is not None else rate
                for _ in range(int(it.get("quantity", 1))):
                    paid = unit - disc
                    tax = tax_included(paid, line_rate) if price_method == "tax_included" \
                        else (paid * line_rate).quantize(_CENT, ROUND_HALF_UP)
                    lines.append(OrderItem(
                        id=self._uuid(), external_item_id=f"{external_id}-{len(lines) + 1}", product_id=sku,
                        list_price=unit, item_discount=disc, order_discount=Decimal(0), price=paid,
                        tax=tax, tax_rate=line_rate, status="complete",
                        service_level="IN_STORE_HANDOVER", fulfillment_node_id=node_id,
                        discounts=[{"level": "item", "type": "fixed", "value": money(disc),
                                    "price_adjustment": money(disc)}] if disc else [],
                    ))
            if not lines:
                raise ValueError("a sale needs at least one item")
            order = Order(
                id=order_id, external_id=external_id, origin="newstore", channel_type="store", channel=loc.id,
                store_id=loc.id, fulfillment_node_id=node_id, currency=loc.currency, price_method=price_method,
                placed_at=at, created_at=at, items=lines, fulfillment_type="in_store_purchase",
                customer_email=customer_email, associate_id=associate_id,
            )
            order.payments = [{"amount": money(order.grand_total), "method": payment_method, "type": "captured",
                               "processed_at": iso(at)}]
            for line in lines:
                self._rec(node_id, line.product_id).on_hand -= 1
            self._orders[order_id] = order
            self._by_external[external_id] = order_id
            self._publish("order.created", self._order_payload(order), at)
            env = self._publish("order.opened", self._order_payload(order), at)
            return copy.deepcopy(env["payload"])

    def record_return(self, node_id: str, items: list[dict[str, Any]], *, at: datetime | None = None,
                      order_id: str | None = None, original_external_order_ref: str | None = None,
                      restock: bool = True, currency: str | None = None, return_reason: str | None = None,
                      customer_email: str | None = None) -> dict[str, Any]:
        """An in-store return: emits return.processed, refund_request.issued, payment_account.amount_refunded.

        ``items``: ``[{sku, quantity, refund_amount (tax incl., per line), tax_rate (optional override)}]``. A return of an online (Centra)
        order passes ``original_external_order_ref``; it is published as ``external_order_id`` and
        ``order_id`` stays null (blind return) unless a NewStore order with that id / external id exists.
        Restocked items (``item_condition`` "sellable") increase on_hand. Returns the return.processed payload.
        """
        with self._lock:
            at = self._at(at)
            loc = self._node(node_id)
            order = self._orders.get(order_id) if order_id else None
            if order_id and order is None:
                order = self._orders.get(self._by_external.get(order_id, ""))
            if order is None and original_external_order_ref:
                order = self._orders.get(self._by_external.get(original_external_order_ref, ""))
            lines = []
            for it in items:
                sku = str(it["sku"])
                self._sku(sku)
                qty = int(it.get("quantity", 1))
                refund = D(it["refund_amount"])
                rate = self._rate(loc.country)
                if it.get("tax_rate") is not None:  # a till keyed with the wrong tax code (fault injection)
                    rate = D(it["tax_rate"])
                elif order is not None:
                    for oi in order.items:
                        if oi.product_id == sku and oi.status == "complete":
                            rate = oi.tax_rate
                            break
                    self._mark_returned(order, sku, qty)
                lines.append({"sku": sku, "quantity": qty, "refund": refund, "rate": rate,
                              "order_item_id": None})
            ext = original_external_order_ref or (order.external_id if order else None)
            return self._process_return(
                loc, lines, at=at, order=order, external_order_id=ext, restock=restock,
                currency=currency or (order.currency if order else loc.currency), return_fee=Decimal(0),
                return_reason=return_reason, customer_email=customer_email or (order.customer_email if order else None),
            )["event"]

    def receive_stock(self, node_id: str, items: Mapping[str, int], *, at: datetime | None = None,
                      asn_id: str | None = None, shipment_ref: str | None = None) -> list[dict[str, Any]]:
        """Goods received at a node (an ASN): on_hand += qty; emits inventory_transaction.items_received in
        chunks of ``count_chunk_size`` items (one ``id``, ``chunk_number`` 1..n). Returns the payloads."""
        with self._lock:
            at = self._at(at)
            self._node(node_id)
            for sku, qty in items.items():
                self._sku(sku)
                self._rec(node_id, sku).on_hand += int(qty)
            txn, asn = self._uuid(), asn_id or self._uuid()
            out = []
            for n, chunk in enumerate(self._chunks(list(items)), start=1):
                payload = {"id": txn, "chunk_number": n, "asn_id": asn, "shipment_ref": shipment_ref or f"SHP-{asn[:8]}",
                           "fulfillment_location_id": node_id, "processed_at": iso(at),
                           "items": [{"product_id": sku, "quantity": int(items[sku])} for sku in chunk]}
                out.append(copy.deepcopy(self._publish("inventory_transaction.items_received", payload, at)["payload"]))
            return out

    def adjust_stock(self, node_id: str, items: Mapping[str, int], *, at: datetime | None = None) -> dict[str, Any]:
        """Reason-coded stock adjustment: on_hand += delta (signed); emits :data:`ADJUSTMENT_EVENT`.

        ASSUMPTION (PROVENANCE.md): NewStore documents reason-coded adjustments but not the event they
        leave as; name and payload here are modelled on ``inventory_transaction.items_received``.
        """
        with self._lock:
            at = self._at(at)
            self._node(node_id)
            for sku, delta in items.items():
                self._sku(sku)
                self._rec(node_id, sku).on_hand += int(delta)
            payload = {"id": self._uuid(), "chunk_number": 1, "fulfillment_location_id": node_id,
                       "processed_at": iso(at),
                       "items": [{"product_id": sku, "quantity": int(q)} for sku, q in items.items()]}
            return copy.deepcopy(self._publish(ADJUSTMENT_EVENT, payload, at)["payload"])

    def count_stock(self, node_id: str, counts: Mapping[str, int], *, at: datetime | None = None) -> list[dict[str, Any]]:
        """A cycle count: sets on_hand; emits inventory_count.items_counted in chunks of
        ``count_chunk_size`` items. Each item carries ``stock_on_hand`` (on record before the count) and
        ``count`` (physically there). The payload has no id and no time of its own: consumers date it by
        ``published_at``. Returns the payloads."""
        with self._lock:
            at = self._at(at)
            self._node(node_id)
            for sku in counts:
                self._sku(sku)
            before = {sku: self._rec(node_id, sku).on_hand for sku in counts}
            for sku, qty in counts.items():
                self._rec(node_id, sku).on_hand = int(qty)
            chunks = self._chunks(list(counts))
            out = []
            for n, chunk in enumerate(chunks, start=1):
                payload = {
                    "fulfillment_location_id": node_id,
                    "chunk_number": n,
                    "total_chunks": len(chunks),
                    "items": [{"product_id": s, "stock_on_hand": before[s], "count": int(counts[s])} for s in chunk],
                }
                out.append(copy.deepcopy(self._publish("inventory_count.items_counted", payload, at)["payload"]))
            return out

    def _chunks(self, skus: list[str]) -> list[list[str]]:
        size = self.count_chunk_size
        return [skus[i:i + size] for i in range(0, len(skus), size)] or [[]]

    def cancel_items(self, order_id: str, item_ids: Iterable[str], *, at: datetime | None = None) -> dict[str, Any]:
        """Cancel items of an order that have not shipped: their allocations are released (on_hand is
        untouched: nothing left the shelf); emits ``order.items_cancelled``. Returns the payload."""
        with self._lock:
            at = self._at(at)
            order = self._orders[order_id]
            wanted = set(item_ids)
            cancelled = []
            for item in order.items:
                if item.id in wanted and item.status not in ("complete", "cancelled", "returned"):
                    item.status = "cancelled"
                    if item.fulfillment_node_id:
                        self._rec(item.fulfillment_node_id, item.product_id).allocations.pop(item.id, None)
                    cancelled.append({"id": item.id, "product_id": item.product_id})
            for fr_id in self._frs_by_order.get(order_id, []):
                for fi in self._frs[fr_id].items:
                    if fi.item_id in wanted and fi.status == "dispatched":
                        fi.status = "cancelled"
            payload = {"id": order.id, "items": cancelled}
            return copy.deepcopy(self._publish("order.items_cancelled", payload, at)["payload"])

    # -- payload builders -----------------------------------------------------------------------------

    def _order_payload(self, order: Order) -> dict[str, Any]:
        items = order.items
        subtotal = sum((i.list_price for i in items), Decimal(0))
        disc = sum((i.item_discount + i.order_discount for i in items), Decimal(0))
        tax = sum((i.tax for i in items), Decimal(0)) + order.shipping_tax
        return {
            "id": order.id,
            "external_id": order.external_id,
            "created_at": iso(order.created_at),
            "placed_at": iso(order.placed_at),
            "associate_id": order.associate_id,
            "channel_type": order.channel_type,
            "channel": order.channel,
            "is_exchange": False,
            "exchanges": [],
            "customer_id": order.customer_id,
            "customer_email": order.customer_email,
            "is_historical": order.is_historical,
            "billing_address": _event_address(order.billing_address),
            "shipping_address": _event_address(order.shipping_address),
            "price_method": order.price_method,
            "subtotal": money(subtotal),
            "discount_total": money(disc),
            "shipping_total": money(order.shipping_total),
            "shipping_tax": money(order.shipping_tax),
            "tax_total": money(tax),
            "grand_total": money(order.grand_total),
            "currency": order.currency,
            "tax_exempt": False,
            "extended_attributes": copy.deepcopy(order.extended_attributes),
            "items": [{
                "id": i.id,
                "product_id": i.product_id,
                "list_price": money(i.list_price),
                "item_discounts": money(i.item_discount),
                "order_discounts": money(i.order_discount),
                "tax": money(i.tax),
                "quantity": 1,
                "status": "completed" if i.status == "complete" else i.status,
                "external_identifiers": self._ids(i.product_id),
                "shipping_service_level": i.service_level,
            } for i in items],
        }

    # -- order injection (REST) -----------------------------------------------------------------------

    def fulfill_order(self, body: Any) -> dict[str, Any]:
        """``POST /v0/d/fulfill_order``: idempotent on ``external_id``."""
        if not isinstance(body, dict):
            raise SimError(400, "invalid_request", "request body must be a JSON object")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            ext = body.get("external_id")
            if isinstance(ext, str) and ext in self._injections:
                known, response = self._injections[ext]
                if known == fingerprint or self.conflict_mode == "first_response":
                    return copy.deepcopy(response)
                raise SimError(409, "same_order_injection_with_different_data",
                               f"An order with external_id {ext!r} was already injected with different data.")
            errors = _validate_injection(body, self)
            if errors:
                head = errors[0].split(": ", 1)[0]
                code = head if head.replace("_", "").isalpha() and head.islower() else "invalid_request"
                raise SimError(400, code, errors[0], errors)
            response = self._create_injected(body)
            self._injections[ext] = (fingerprint, response)
            return copy.deepcopy(response)

    def _create_injected(self, body: dict[str, Any]) -> dict[str, Any]:
        at = self.clock()
        placed = parse_time(body["placed_at"]) if body.get("placed_at") else at
        price_method = body.get("price_method") or "tax_included"
        historical = bool(body.get("is_historical") or body.get("is_fulfilled"))
        order_id = self._uuid()
        items: list[OrderItem] = []
        ship_total, ship_tax = Decimal(0), Decimal(0)
        shipment_items: list[tuple[dict[str, Any], list[OrderItem]]] = []
        by_ext: dict[str, OrderItem] = {}
        for shipment in body["shipments"]:
            option = shipment.get("shipping_option") or {}
            level = option.get("service_level_identifier") or "TOKEN"
            ship_total += D(option.get("price", 0) or 0)
            ship_tax += D(option.get("tax", 0) or 0)
            group = []
            for raw in shipment["items"]:
                price = raw.get("price") or {}
                tax_lines = price.get("item_tax_lines") or []
                tax = sum((D(t.get("amount", 0)) for t in tax_lines), Decimal(0))
                rate = sum((D(t.get("rate", 0)) for t in tax_lines), Decimal(0))
                idisc = sum((D(d.get("price_adjustment", 0)) for d in price.get("item_discount_info") or []), Decimal(0))
                odisc = sum((D(d.get("price_adjustment", 0))
                             for d in price.get("item_order_discount_info") or []), Decimal(0))
                item = OrderItem(
                    id=self._uuid(), external_item_id=raw["external_item_id"], product_id=str(raw["product_id"]),
                    list_price=D(price.get("item_list_price", price.get("item_price", 0))), item_discount=idisc,
                    order_discount=odisc, price=D(price.get("item_price", 0)), tax=tax, tax_rate=rate,
                    status="complete" if historical else "pending", service_level=level,
                    discounts=[_sales_discount(d, "item") for d in price.get("item_discount_info") or []]
                    + [_sales_discount(d, "order") for d in price.get("item_order_discount_info") or []],
                    extended_attributes=list(raw.get("extended_attributes") or []),
                )
                by_ext[item.external_item_id] = item
                group.append(item)
                items.append(item)
            shipment_items.append((shipment, group))
        for shipment, group in shipment_items:
            for raw, item in zip(shipment["items"], group, strict=True):
                parent = raw.get("addon_parent_external_item_id")
                if parent:
                    item.addon_parent_item_id = by_ext[parent].id
        levels = {i.service_level for i in items}
        pickup = all("PICKUP" in lvl.upper() for lvl in levels)
        store_loc = self._store_location(body.get("store_id"))
        order = Order(
            id=order_id, external_id=body["external_id"], origin="external",
            channel_type=body["channel_type"], channel=body["channel_name"], store_id=body.get("store_id"),
            fulfillment_node_id=None, currency=body["currency"], price_method=price_method, placed_at=placed,
            created_at=at, items=items,
            fulfillment_type="in_store_purchase" if historical and body["channel_type"] == "store" else
            ("in_store_pickup" if pickup else ("traditional" if len(levels) == 1 else "multiple")),
            shipping_total=ship_total, shipping_tax=ship_tax, customer_email=body.get("customer_email"),
            customer_name=body.get("customer_name"), customer_id=body.get("external_customer_id"),
            associate_id=body.get("associate_id"), shop_locale=body.get("shop_locale"),
            shipping_address=body.get("shipping_address"), billing_address=body.get("billing_address"),
            payments=list(body.get("payments") or []), extended_attributes=list(body.get("extended_attributes") or []),
            is_historical=historical,
        )
        self._orders[order_id] = order
        self._by_external[order.external_id] = order_id
        self._publish("order.created", self._order_payload(order), at)
        self._publish("order.opened", self._order_payload(order), at)
        if not historical:
            for shipment, group in shipment_items:
                option = shipment.get("shipping_option") or {}
                strategy = option.get("routing_strategy")
                pinned = strategy.get("fulfillment_node_id") if isinstance(strategy, dict) else None
                if pinned is None and pickup and store_loc is not None:
                    pinned = store_loc.newstore_node_id
                self._route(order, group, at, pinned=pinned)
        return {"id": order_id, "external_id": order.external_id,
                "items": [{"id": i.id, "external_item_id": i.external_item_id, "product_id": i.product_id}
                          for i in items]}

    def _store_location(self, store_id: str | None) -> Location | None:
        if not store_id:
            return None
        return self._stores_by_id.get(store_id) or self.estate.by_node.get(store_id)

    def _route(self, order: Order, group: list[OrderItem], at: datetime, *, pinned: str | None = None) -> None:
        """Assign items to one node (pinned, else DC, else first store by id with ATP), allocate, emit."""
        if not group:
            return
        need: dict[str, int] = {}
        for item in group:
            need[item.product_id] = need.get(item.product_id, 0) + 1
        excluded = set().union(*(i.rejected_nodes for i in group))
        node = pinned
        if node is None:
            dc = self.estate.distribution_centre.newstore_node_id
            candidates = [dc] + sorted(loc.newstore_node_id for loc in self.estate.stores)
            candidates = [n for n in candidates if n not in excluded]
            node = next((n for n in candidates
                         if all(self._rec(n, sku).atp >= q for sku, q in need.items())), None)
            if node is None:
                if excluded:
                    for item in group:
                        item.status = "on_hold"
                    return
                node = dc
        fr = FulfillmentRequest(id=self._uuid(), order_id=order.id, fulfillment_node_id=node,
                                service_level=group[0].service_level, created_at=at,
                                items=[FrItem(i.id, i.product_id) for i in group])
        for item in group:
            item.status = "in_fulfillment"
            item.fulfillment_node_id = node
            self._rec(node, item.product_id).allocations[item.id] = Allocation(order.id, item.id, iso(at))
        self._frs[fr.id] = fr
        self._frs_by_order.setdefault(order.id, []).append(fr.id)
        self._publish("fulfillment_request.assigned", {
            "id": fr.id, "order_id": order.id, "logical_timestamp": self._next_lt(),
            "fulfillment_location_id": node, "service_level": fr.service_level, "created_at": iso(at),
            "items": [{"id": i.id, "product_id": i.product_id} for i in group],
        }, at)

    # -- orders (REST) ----------------------------------------------------------------------------------

    def _find_order(self, order_id: str, id_type: str) -> Order:
        if id_type not in ("internal", "external"):
            raise SimError(400, "bad_request", "id_type must be 'internal' or 'external'")
        oid = order_id if id_type == "internal" else self._by_external.get(order_id, "")
        order = self._orders.get(oid)
        if order is None:
            raise SimError(404, "order_not_found", f"Order {order_id!r} ({id_type}) was not found.")
        return order

    def get_order(self, order_id: str, id_type: str = "internal") -> dict[str, Any]:
        """``GET /v0/orders/{id}``: SalesOrderDetailResponse shape."""
        with self._lock:
            order = self._find_order(order_id, id_type)
            return self._sales_order(order)

    def _sales_order(self, order: Order) -> dict[str, Any]:
        items = []
        gross = tax = disc = Decimal(0)
        for i in order.items:
            g = order.gross(i)
            base = i.list_price if order.price_method == "tax_included" else i.list_price + i.tax
            d = i.item_discount + i.order_discount
            gross += g
            tax += i.tax
            disc += d
            ref = self.estate.by_sku.get(i.product_id)
            attrs: dict[str, Any] = {"name": ref.product.name if ref else i.product_id}
            if ref:
                attrs.update(size=ref.size.size, color=ref.variant.name)
            row: dict[str, Any] = {
                "id": i.id, "origin_id": i.external_item_id, "product_id": i.product_id, "status": i.status,
                "price": {"base": money(base), "discount": money(d), "gross": money(g), "net": money(g - i.tax),
                          "tax": money(i.tax)},
                "price_catalog": money(base),
                "tax_lines": [{"amount": money(i.tax), "rate": float(i.tax_rate)}] if i.tax else [],
                "discounts": copy.deepcopy(i.discounts),
                "product_attributes": attrs,
                "fulfillment_group_type": "IN_STORE_HANDOVER" if i.service_level == "IN_STORE_HANDOVER"
                else "SHIPPING",
                "shipping_method": i.service_level,
                "extended_attributes": copy.deepcopy(i.extended_attributes),
            }
            if i.addon_parent_item_id:
                row["addon_parent_item_id"] = i.addon_parent_item_id
            items.append(row)
        ship_gross = order.shipping_total + (order.shipping_tax if order.price_method == "tax_excluded" else 0)
        out: dict[str, Any] = {
            "id": order.id,
            "origin": order.origin,
            "origin_id": order.external_id,
            "channel_type": "store" if order.channel_type == "store" else "web",
            "status": order.status,
            "fulfillment_type": order.fulfillment_type,
            "placed_at": iso(order.placed_at),
            "currency": order.currency,
            "tax_method": "vat_included" if order.price_method == "tax_included" else "vat_excluded",
            "is_offline": False,
            "tax_exempt": False,
            "items": items,
            "totals": {"gross": money(gross), "net": money(gross - tax), "tax": money(tax + order.shipping_tax),
                       "discount": money(disc), "shipping": money(ship_gross), "gift_wrapping": 0.0,
                       "total": money(order.grand_total)},
            "payment_history": [_payment_history(p, order.currency) for p in order.payments],
            "extended_attributes": copy.deepcopy(order.extended_attributes),
            "shipments": [],
        }
        if order.store_id:
            out["store_id"] = order.store_id
        if order.shop_locale:
            out["shop_locale"] = order.shop_locale
        customer = {k: v for k, v in (("email", order.customer_email), ("name", order.customer_name),
                                      ("id", order.customer_id)) if v}
        if customer:
            out["customer"] = customer
        for key in ("shipping_address", "billing_address"):
            addr = getattr(order, key)
            if addr:
                out[key] = _sales_address(addr)
        return out

    def cancellation_status(self, order_id: str, id_type: str) -> dict[str, Any]:
        with self._lock:
            order = self._find_order(order_id, id_type)
            return {"cancelable": self._cancelable(order), "canceled": order.cancelled, "is_safe": True}

    def _cancelable(self, order: Order) -> bool:
        return not order.cancelled and all(i.status in ("pending", "in_fulfillment", "on_hold") for i in order.items)

    def cancel_order(self, order_id: str, id_type: str, reason: str, note: str | None = None) -> None:
        """``POST /v0/orders/{id}/cancel``: cancels every open item, frees allocations, emits order.cancelled."""
        with self._lock:
            order = self._find_order(order_id, id_type)
            if order.cancelled:
                return
            if not self._cancelable(order):
                raise SimError(400, "order_not_cancelable",
                               "The order has items that are already fulfilled and cannot be cancelled.")
            at = self.clock()
            cancelled = []
            for item in order.items:
                if item.fulfillment_node_id:
                    self._rec(item.fulfillment_node_id, item.product_id).allocations.pop(item.id, None)
                item.status = "cancelled"
                cancelled.append({"id": item.id, "product_id": item.product_id,
                                  "fulfillment_location_id": item.fulfillment_node_id})
            for fr_id in self._frs_by_order.get(order.id, []):
                for fi in self._frs[fr_id].items:
                    if fi.status == "dispatched":
                        fi.status = "cancelled"
            order.cancelled = True
            self._publish("order.cancelled", {
                "id": order.id, "external_id": order.external_id, "logical_timestamp": self._next_lt(),
                "cancelled_at": iso(at), "reason": reason, "note": note, "items": cancelled,
            }, at)

    # -- fulfillment requests -----------------------------------------------------------------------------

    def fulfillment_requests(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            frs = [self._frs[f] for f in self._frs_by_order.get(order_id, [])]
            return {"fulfillment_requests": [fr.to_json() for fr in sorted(frs, key=lambda f: f.created_at)]}

    def acknowledge_fulfillment_request(self, ffr_id: str) -> None:
        """Store/DC accepted the request (status dispatched -> acknowledged)."""
        with self._lock:
            self._frs[ffr_id].acknowledged = True

    def set_items_states(self, ffr_id: str, body: Any, *, at: datetime | None = None) -> None:
        """``POST /v0/fulfillment_request/{id}/set_items_states``: ship or reject items (no mixing)."""
        if not isinstance(body, dict) or not isinstance(body.get("line_items"), list) or not body["line_items"]:
            raise SimError(400, "bad_request", "'line_items' is a required non-empty array")
        with self._lock:
            at = self._at(at)
            fr = self._frs.get(ffr_id)
            if fr is None:
                raise SimError(404, "fulfillment_request_not_found", f"Fulfillment request {ffr_id!r} not found.")
            states = set()
            targets: list[FrItem] = []
            by_id = {i.item_id: i for i in fr.items}
            for li in body["line_items"]:
                if not isinstance(li, dict) or li.get("state") not in ("shipped", "rejected") or not li.get("item_id"):
                    raise SimError(400, "bad_request", "each line item needs item_id and state shipped|rejected")
                fi = by_id.get(li["item_id"])
                if fi is None:
                    raise SimError(400, "item_not_found",
                                   f"Item {li['item_id']!r} is not part of fulfillment request {ffr_id!r}.")
                if fi.status != "dispatched":
                    code = "already_shipped" if fi.status == "shipped" else "item_in_final_state"
                    raise SimError(400, code, f"Item {fi.item_id!r} is already {fi.status}.")
                states.add(li["state"])
                targets.append(fi)
            if len(states) > 1:
                raise SimError(400, "mixed_states", "Shipping and rejecting items in one call is not allowed.")
            state = states.pop()
            order = self._orders[fr.order_id]
            oitems = {i.id: i for i in order.items}
            node = fr.fulfillment_node_id
            if state == "shipped":
                for fi in targets:
                    fi.status, fi.carrier, fi.tracking_code = "shipped", body.get("carrier"), body.get("tracking_code")
                    rec = self._rec(node, fi.product_id)
                    rec.allocations.pop(fi.item_id, None)
                    rec.on_hand -= 1
                    oitems[fi.item_id].status = "complete"
                    self._publish("fulfillment_request.items_completed", {
                        "id": fr.id, "order_id": order.id, "logical_timestamp": self._next_lt(),
                        "fulfillment_location_id": node, "associate_id": body.get("associate_id"),
                        "service_level": fr.service_level,
                        "items": [{"id": fi.item_id, "product_id": fi.product_id}],
                    }, at)
                if order.status == "closed":
                    self._publish("order.completed", {
                        "id": order.id, "external_id": order.external_id, "logical_timestamp": self._next_lt(),
                        "completed_at": iso(at),
                        "items": [{"id": i.id, "product_id": i.product_id, "status": i.status} for i in order.items],
                    }, at)
            else:
                for fi in targets:
                    fi.status = "rejected"
                    self._rec(node, fi.product_id).allocations.pop(fi.item_id, None)
                    oitems[fi.item_id].rejected_nodes.add(node)
                    oitems[fi.item_id].status = "pending"
                self._publish("fulfillment_request.items_failed", {
                    "id": fr.id, "order_id": order.id, "logical_timestamp": self._next_lt(),
                    "fulfillment_location_id": node, "reason": body.get("reason"), "failed_at": iso(at),
                    "items": [{"id": fi.item_id, "product_id": fi.product_id} for fi in targets],
                }, at)
                if all(fi.status != "dispatched" for fi in fr.items):
                    rejected = [oitems[fi.item_id] for fi in fr.items
                                if fi.status == "rejected" and oitems[fi.item_id].status == "pending"]
                    self._route(order, rejected, at)

    # -- returns (REST) ---------------------------------------------------------------------------------

    def create_return(self, order_id: str, body: Any) -> dict[str, Any]:
        """``POST /v0/d/orders/{order_id}/returns``: refunds computed from the order (lowest amount first)."""
        if not isinstance(body, dict) or not isinstance(body.get("items"), list) or not body["items"]:
            raise SimError(400, "bad_request", "'items' is a required non-empty array")
        if not isinstance(body.get("returned_from"), str) or not body["returned_from"]:
            raise SimError(400, "bad_request", "'returned_from' (fulfillment node id) is required")
        with self._lock:
            order = self._orders.get(order_id) or self._orders.get(self._by_external.get(order_id, ""))
            if order is None:
                raise SimError(404, "order_not_found", f"Order {order_id!r} was not found.")
            loc = self.estate.by_node.get(body["returned_from"])
            if loc is None:
                raise SimError(400, "invalid_fulfillment_node", f"Unknown node {body['returned_from']!r}.")
            at = _opt_time(body.get("returned_at")) or self.clock()
            lines, used = [], set()
            for raw in body["items"]:
                pid = str(raw.get("product_id") or "")
                candidates = [i for i in order.items if i.product_id == pid and i.status == "complete"
                              and i.id not in used]
                if not candidates:
                    raise SimError(400, "no_returnable_item", f"No returnable item for product {pid!r}.")
                item = min(candidates, key=order.gross)
                used.add(item.id)
                lines.append({"sku": pid, "quantity": 1, "refund": order.gross(item), "rate": item.tax_rate,
                              "order_item_id": item.id, "condition_code": raw.get("condition_code"),
                              "return_reason": raw.get("reason"),
                              "item_condition": raw.get("item_condition", "sellable")})
            for line in lines:
                next(i for i in order.items if i.id == line["order_item_id"]).status = "returned"
            result = self._process_return(loc, lines, at=at, order=order, external_order_id=order.external_id,
                                          restock=True, currency=order.currency,
                                          return_fee=D(body.get("return_fee", 0) or 0), return_reason=None,
                                          customer_email=order.customer_email)
            return result["record"]

    def list_returns(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            order = self._orders.get(order_id) or self._orders.get(self._by_external.get(order_id, ""))
            if order is None:
                raise SimError(404, "order_not_found", f"Order {order_id!r} was not found.")
            return {"returns": copy.deepcopy(self._returns.get(order.id, []))}

    def get_return(self, order_id: str, return_id: str) -> dict[str, Any]:
        for r in self.list_returns(order_id)["returns"]:
            if r["id"] == return_id:
                return r
        raise SimError(404, "return_not_found", f"Return {return_id!r} was not found.")

    def _mark_returned(self, order: Order, sku: str, qty: int) -> None:
        for item in order.items:
            if qty <= 0:
                break
            if item.product_id == sku and item.status == "complete":
                item.status = "returned"
                qty -= 1

    def _process_return(self, loc: Location, lines: list[dict[str, Any]], *, at: datetime, order: Order | None,
                        external_order_id: str | None, restock: bool, currency: str, return_fee: Decimal,
                        return_reason: str | None, customer_email: str | None) -> dict[str, Any]:
        node = loc.newstore_node_id
        return_id = self._uuid()
        items_evt, items_rec = [], []
        total = total_tax = Decimal(0)
        for line in lines:
            refund = line["refund"]
            rtax = tax_included(refund, line["rate"])
            total += refund
            total_tax += rtax
            condition = line.get("item_condition") or ("sellable" if restock else "damaged")
            if condition == "sellable":
                self._rec(node, line["sku"]).on_hand += line["quantity"]
            row = {
                "id": self._uuid(), "product_id": line["sku"], "quantity": line["quantity"],
                "refund_amount": money(refund), "refund_excl_tax": money(refund - rtax), "refund_tax": money(rtax),
                "item_condition": condition, "condition_code": line.get("condition_code"),
                "return_reason": line.get("return_reason") or return_reason, "return_code": None,
                "external_identifiers": self._ids(line["sku"]),
            }
            items_evt.append(row)
            items_rec.append({**row, "item_id": line.get("order_item_id")})
        adjusted = max(Decimal(0), total - return_fee)
        payload = {
            "id": return_id,
            "order_id": order.id if order else None,
            "external_order_id": external_order_id,
            "returned_at": iso(at),
            "logical_timestamp": self._next_lt(),
            "return_location_id": node,
            "currency": currency,
            "total_refund_amount": money(total),
            "total_refund_amount_adjusted": money(adjusted),
            "total_refund_excl_tax": money(total - total_tax),
            "total_refund_tax": money(total_tax),
            "return_fee": money(return_fee),
            "customer_id": order.customer_id if order else None,
            "customer_email": customer_email,
            "associate_id": None,
            "associate_email": None,
            "items": items_evt,
        }
        env = self._publish("return.processed", payload, at)
        refund_id = self._uuid()
        self._publish("refund_request.issued", {
            "id": refund_id, "order_id": payload["order_id"], "return_id": return_id,
            "external_order_id": external_order_id, "payment_account_id": self._uuid(), "amount": money(adjusted),
            "currency": currency, "requested_at": iso(at), "return_reason": return_reason,
            "reason_code": None, "associate_id": None, "note": None, "logical_timestamp": self._next_lt(),
        }, at)
        method = (order.payments[0].get("method") if order and order.payments else None) or "credit_card"
        instrument = self._uuid()
        self._publish("payment_account.amount_refunded", {
            "id": self._uuid(), "order_id": payload["order_id"], "refund_request_id": refund_id,
            "logical_timestamp": self._next_lt(),
            "transactions": [{"id": self._uuid(), "instrument_id": instrument, "amount": money(adjusted),
                              "currency": currency, "correlation_id": refund_id}],
            "instruments": [{"id": instrument, "payment_method": method, "payment_wallet": None,
                             "payment_provider": "cash" if method == "cash" else "adyen"}],
        }, at)
        record = {
            "id": return_id, "order_id": payload["order_id"], "returned_from": node, "returned_at": iso(at),
            "status": "processed", "currency": currency, "return_fee": money(return_fee),
            "total_refund_amount": money(adjusted), "total_refund_tax": money(total_tax),
            "total_refund_excl_tax": money(total - total_tax), "items": items_rec,
        }
        if order is not None:
            self._returns.setdefault(order.id, []).append(record)
        return {"event": copy.deepcopy(env["payload"]), "record": copy.deepcopy(record)}

    # -- inventory (REST) ----------------------------------------------------------------------------------

    def locations(self) -> dict[str, Any]:
        return {"locations": [{"id": loc.newstore_node_id, "is_inventory_master": True, "is_enabled": True,
                               "type": "dc" if loc.kind == "dc" else "store"} for loc in self.estate.locations]}

    def stores(self, limit: int, start_at: str | None = None) -> dict[str, Any]:
        ids = sorted(self._stores_by_id)
        start = 0
        if start_at:
            if start_at not in self._stores_by_id:
                raise SimError(400, "bad_request", f"invalid start_at {start_at!r}")
            start = ids.index(start_at)
        page = ids[start:start + limit]
        out: dict[str, Any] = {"items": [self.store(i) for i in page]}
        if start + limit < len(ids):
            out["next_page_key"] = ids[start + limit]
        return out

    def store(self, store_id: str) -> dict[str, Any]:
        loc = self._stores_by_id.get(store_id)
        if loc is None:
            raise SimError(404, "store_not_found", f"Store {store_id!r} not found.")
        return {"id": loc.id, "tenant": self.tenant, "country_code": loc.country, "multi_cashbox": False,
                "config": {"auto_report_types": [], "report_types": ["day-report"], "timezone": loc.timezone}}

    def stocked_products(self, limit: int, offset: int) -> dict[str, Any]:
        with self._lock:
            keys = sorted(self._stock)
            rows = []
            for node, sku in keys[offset:offset + limit]:
                rec = self._stock[(node, sku)]
                rows.append({"sku": sku, "product_id": sku, "fulfillment_node_id": node, "on_hand": rec.on_hand,
                             "atp": rec.atp, "allocations": len(rec.allocations),
                             "reservations": len(rec.reservations), "safety_stock": rec.safety_stock})
            return {"items": rows, "pagination": {"limit": limit, "offset": offset, "count": len(rows),
                                                  "total": len(keys)}}

    def atp_by_keys(self, keys: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            out = []
            for k in keys:
                rec = self._stock.get((str(k["fulfillment_node_id"]), str(k["product_id"])))
                out.append({"product_id": k["product_id"], "fulfillment_node_id": k["fulfillment_node_id"],
                            "atp": rec.atp if rec else 0})
            return {"items": out}

    def stock_insights(self, product_id: str, node_id: str) -> dict[str, Any]:
        with self._lock:
            rec = self._stock.get((node_id, product_id)) or StockRecord()
            return {
                "product_id": product_id, "fulfillment_node_id": node_id,
                "allocations": [vars(a).copy() for a in list(rec.allocations.values())[:1000]],
                "reservations": [vars(r).copy() for r in list(rec.reservations.values())[:1000]],
                "future_allocations": [],
            }

    # -- event-stream integrations ----------------------------------------------------------------------

    def list_integrations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [i.to_json() for i in self._integrations.values()]

    def get_integration(self, integration_id: str) -> dict[str, Any]:
        with self._lock:
            integ = self._integrations.get(integration_id)
            if integ is None:
                raise SimError(404, "integration_not_found", f"Integration {integration_id!r} not found.")
            return integ.to_json()

    def create_integration(self, body: Any) -> dict[str, Any]:
        """Create (and, with callback parameters, start) an event-stream integration."""
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
            raise SimError(400, "bad_request", "'id' is required")
        with self._lock:
            if body["id"] in self._integrations:
                raise SimError(409, "integration_already_exists", f"Integration {body['id']!r} already exists.")
            if len(self._integrations) >= 25:
                raise SimError(400, "too_many_integrations", "At most 25 integrations are allowed.")
            itype = body.get("integration_type", "permanent")
            if itype not in ("permanent", "temporary"):
                raise SimError(400, "bad_request", "integration_type must be permanent or temporary")
            cb = body.get("callback_parameters") or {}
            integ = Integration(
                id=body["id"], integration_type=itype, callback_url=cb.get("callback_url"), api_key=cb.get("api_key"),
                starts_at=_opt_time(body.get("starts_at")), ends_at=_opt_time(body.get("ends_at")),
                filter_conditions=body.get("filter_conditions"), created_at=self.clock(),
            )
            self._integrations[integ.id] = integ
            if integ.callback_url:
                self._start(integ)
            return integ.to_json()

    def start_integration(self, integration_id: str, body: Any = None) -> dict[str, Any]:
        """``POST .../{id}/_start`` (optionally with new ``callback_parameters``); idempotent."""
        with self._lock:
            integ = self._integrations.get(integration_id)
            if integ is None:
                raise SimError(404, "integration_not_found", f"Integration {integration_id!r} not found.")
            cb = (body or {}).get("callback_parameters") if isinstance(body, dict) else None
            if cb:
                integ.callback_url = cb.get("callback_url", integ.callback_url)
                integ.api_key = cb.get("api_key", integ.api_key)
            if not integ.callback_url:
                raise SimError(400, "bad_request", "callback_parameters.callback_url is required")
            if integ.status != "running":
                self._start(integ)
            return integ.to_json()

    def stop_integration(self, integration_id: str) -> dict[str, Any]:
        with self._lock:
            integ = self._integrations.get(integration_id)
            if integ is None:
                raise SimError(404, "integration_not_found", f"Integration {integration_id!r} not found.")
            integ.status = "stopped"
            return integ.to_json()

    def _start(self, integ: Integration) -> None:
        integ.status = "running"
        if integ.starts_at is not None and self._emitter is not None:  # replay the requested window
            for at, env in self._events:
                if integ.accepts(at):
                    self._emitter.enqueue(env, integ.target())


# -- helpers -----------------------------------------------------------------------------------------


def _opt_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        raise SimError(400, "bad_request", f"invalid date-time {value!r}") from None


def _event_address(addr: dict[str, Any] | None) -> dict[str, Any] | None:
    if not addr:
        return None
    out = {k: v for k, v in addr.items() if k not in ("address_line_1", "address_line_2")}
    out["address_line1"] = addr.get("address_line_1")
    out["address_line2"] = addr.get("address_line_2")
    return out


def _sales_address(addr: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in addr.items() if k in ("address_line_1", "address_line_2", "city", "first_name",
                                                   "last_name", "phone", "salutation", "state", "suffix", "zip_code")}
    if addr.get("country"):
        out["country_code"] = addr["country"]
    return out


def _sales_discount(d: dict[str, Any], level: str) -> dict[str, Any]:
    out = {"level": level, "type": d.get("type") if d.get("type") in ("fixed", "percentage") else "fixed",
           "value": abs(float(d.get("original_value", d.get("price_adjustment", 0)) or 0)),
           "price_adjustment": abs(float(d.get("price_adjustment", 0) or 0))}
    if d.get("coupon_code"):
        out["coupon_code"] = d["coupon_code"]
    if d.get("description"):
        out["reason"] = d["description"]
    return out


def _payment_history(p: dict[str, Any], currency: str) -> dict[str, Any]:
    method = p.get("method") if p.get("method") in ("gift_card", "credit_card", "cash") else "credit_card"
    return {"amount": money(p.get("amount", 0)), "category": "payment", "currency": currency, "method": method}


def _decimals_ok(value: Any, currency: str) -> bool:
    places = 0 if currency in _ZERO_DECIMAL_CURRENCIES else 2
    d = D(value)
    return d == d.quantize(Decimal(1).scaleb(-places))


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _validate_injection(body: dict[str, Any], state: NewStoreState) -> list[str]:
    """Order-injection validation per the spec's InjectedOrderRequest plus the documented 400 rules."""
    errs: list[str] = []

    def string(key: str, lo: int, hi: int, required: bool = False) -> None:
        v = body.get(key)
        if v is None:
            if required:
                errs.append(f"'{key}' is a required property")
        elif not isinstance(v, str) or not lo <= len(v) <= hi:
            errs.append(f"'{key}' must be a string of length {lo}..{hi}")

    string("external_id", 1, 64, True)
    string("shop", 1, 128, True)
    string("shop_locale", 1, 128, True)
    string("channel_name", 1, 64, True)
    string("customer_email", 1, 64)
    string("customer_name", 1, 128)
    string("external_customer_id", 0, 64)
    string("associate_id", 0, 256)
    string("store_id", 0, 256)
    if body.get("channel_type") not in ("web", "mobile", "store"):
        errs.append("'channel_type' must be one of web, mobile, store")
    currency = body.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
        errs.append("'currency' must be an ISO 4217 code")
        currency = "XXX"
    if body.get("price_method") is not None and body["price_method"] not in ("tax_included", "tax_excluded"):
        errs.append("'price_method' must be tax_included or tax_excluded")
    if body.get("placed_at") is not None:
        try:
            parse_time(str(body["placed_at"]))
        except ValueError:
            errs.append("'placed_at' must be an RFC 3339 date-time")
    for key in ("shipping_address", "billing_address"):
        addr = body.get(key)
        if addr is None:
            continue
        if not isinstance(addr, dict) or not addr.get("address_line_1") or \
                not (isinstance(addr.get("country"), str) and len(addr["country"]) == 2):
            errs.append(f"'{key}' needs address_line_1 and a 2-letter country")
    attrs = body.get("extended_attributes")
    if attrs is not None and (not isinstance(attrs, list) or len(attrs) > 100 or any(
            not isinstance(a, dict) or not isinstance(a.get("name"), str) or not isinstance(a.get("value"), str)
            for a in attrs)):
        errs.append("'extended_attributes' must be <=100 {name, value} string pairs")
    payments = body.get("payments")
    if payments is not None:
        if not isinstance(payments, list) or len(payments) > 40:
            errs.append("'payments' must be an array of at most 40 payments")
            payments = []
        for p in payments:
            missing = [k for k in ("amount", "correlation_ref", "method", "processed_at", "processor", "type")
                       if not isinstance(p, dict) or p.get(k) in (None, "")]
            if missing:
                errs.append(f"payment is missing {', '.join(missing)}")
            elif not _is_num(p["amount"]) or p["amount"] <= 0 or not _decimals_ok(p["amount"], currency):
                errs.append("payment amount must be a positive amount with the currency's decimals")
            elif p["type"] not in ("authorized", "captured"):
                errs.append("payment type must be authorized or captured")
    shipments = body.get("shipments")
    if not isinstance(shipments, list) or not 1 <= len(shipments) <= 10:
        errs.append("'shipments' must be an array of 1..10 shipments")
        return errs
    kinds, ext_ids, total_items = set(), set(), 0
    items_total = Decimal(0)
    for s in shipments:
        if not isinstance(s, dict) or not isinstance(s.get("items"), list) or not s["items"]:
            errs.append("each shipment needs a non-empty 'items' array")
            continue
        option, token = s.get("shipping_option"), s.get("shipping_offer_token")
        if (option is None) == (token is None):
            errs.append("each shipment needs exactly one of shipping_option or shipping_offer_token")
        kinds.add("option" if option is not None else "token")
        if option is not None:
            if not isinstance(option, dict) or not isinstance(option.get("service_level_identifier"), str):
                errs.append("shipping_option.service_level_identifier is required")
            else:
                strategy = option.get("routing_strategy")
                node = strategy.get("fulfillment_node_id") if isinstance(strategy, dict) else None
                if node is not None and node not in state.estate.by_node:
                    errs.append(f"invalid_routing_strategy: unknown fulfillment node {node!r}")
                for k in ("price", "tax"):
                    v = option.get(k, 0)
                    if not _is_num(v) or v < 0 or not _decimals_ok(v, currency):
                        errs.append(f"shipping_option.{k} must be a non-negative amount with the currency's decimals")
                    elif k == "price" or body.get("price_method") == "tax_excluded":
                        items_total += D(v)
        local_ids = {i.get("external_item_id") for i in s["items"] if isinstance(i, dict)}
        parents_of = {i.get("external_item_id"): i.get("addon_parent_external_item_id")
                      for i in s["items"] if isinstance(i, dict)}
        for it in s["items"]:
            total_items += 1
            if not isinstance(it, dict):
                errs.append("shipment items must be objects")
                continue
            eid, pid, price = it.get("external_item_id"), it.get("product_id"), it.get("price")
            if not isinstance(eid, str) or not 1 <= len(eid) <= 64:
                errs.append("item external_item_id must be a string of length 1..64")
            elif eid in ext_ids:
                code = "addon_duplicate_external_item_id" if it.get("addon_parent_external_item_id") or any(
                    p == eid for p in parents_of.values()) else "duplicate_external_item_id"
                errs.append(f"{code}: external_item_id {eid!r} is not unique")
            ext_ids.add(eid)
            if not isinstance(pid, str) or not pid:
                errs.append("item product_id is required")
            elif pid not in state.estate.by_sku:
                errs.append(f"product_not_found: product {pid!r} is not in the catalog")
            if not isinstance(price, dict) or not _is_num(price.get("item_price")):
                errs.append("item price.item_price is required")
            else:
                for k in ("item_price", "item_list_price"):
                    v = price.get(k, 0)
                    if not _is_num(v) or v < 0 or not _decimals_ok(v, currency):
                        errs.append(f"price.{k} must be a non-negative amount with the currency's decimals")
                items_total += D(price["item_price"])
                for t in price.get("item_tax_lines") or []:
                    if not isinstance(t, dict) or not _is_num(t.get("amount")) or not _is_num(t.get("rate")) \
                            or not 0 <= t["rate"] <= 1:
                        errs.append("item_tax_lines need amount and a rate between 0 and 1")
                    elif body.get("price_method") == "tax_excluded":
                        items_total += D(t["amount"])
            parent = it.get("addon_parent_external_item_id")
            if parent is not None and (parent == eid or parent not in local_ids or parents_of.get(parent)):
                errs.append(f"addon_invalid_parent_item: item {eid!r} has an invalid add-on parent")
    if len(kinds) > 1:
        errs.append("mixed_shipping_option_types: shipping_option and shipping_offer_token cannot be mixed")
    if total_items > state.max_items_per_order:
        errs.append("maximum_allowed_number_of_items_exceeded")
    if payments and not errs:
        paid = sum((D(p["amount"]) for p in payments), Decimal(0))
        if abs(paid - items_total) > Decimal("0.005"):
            errs.append(f"invalid_payments: payments total {paid} differs from the order total {items_total}")
    return errs
