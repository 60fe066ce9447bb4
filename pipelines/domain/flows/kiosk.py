"""Kiosk orders (Cloudshelf) as the order flows decide them: pure functions, no I/O.

A kiosk order is read from Cloudshelf by id (`order(id)`: lines, status, the session's `locationId` and
`fulfilmentMethod`); the webhook delivery that poked us adds the customer's details (`emailAddress`,
`phoneNumber`, `attributes`: the kiosk form's key/value pairs, named after `createPaidOrder`'s documented input).
Cloudshelf is the record of the kiosk transaction; Centra is the record of stock and of delivered orders.

- `classify`: the session's fulfilment method (the chosen acquisition option's internal name, an ASSUMPTION of
  cs_design.md) is either the take-home option (`KioskSettings.take_home`, IMMEDIATE_PICKUP: the customer left
  with the goods) or a delivery (endless aisle, mapped through the explicit `shipping_map`).
- `take_home_movements`: a paid take-home sale deducts the store's own stock: one `sale` movement per order line,
  negative, keyed by (order id, line id) so a redelivery or a re-run never deducts twice.
- `order_request`: a paid delivery order becomes a Centra order (`CreateOrderRequest`): a guest customer from the
  payload's e-mail and address attributes (keys configurable: `KioskSettings.address_keys`), the store's market
  and price list (`StoreTerms`, estate file), the mapped shipping option; problems: `shipping_option_unmapped`,
  `store_market_unmapped`, `endless_aisle_incomplete` (the same exception types as the NewStore endless aisle).
- `status_back`: the Centra order's state -> what Cloudshelf should show (`upsertOrders`): the order's
  `OrderStatus` (PAID, VOIDED for a cancellation, REFUNDED / PARTIALLY_REFUNDED for refunded returns), the Centra
  order number as `newThirdPartyId`, and per line the documented `customAttributes` with OUR keys
  (`fulfilmentStatus` shipped / partially_shipped, `carrier`, `trackingNumber`), since OrderStatus has no
  shipped value. `changed` compares it with what was last sent, so only a change is written.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.domain.flows.endless_aisle import StoreTerms
from pipelines.domain.flows.exceptions import (
    ENDLESS_AISLE_INCOMPLETE,
    SHIPPING_OPTION_UNMAPPED,
    STORE_MARKET_UNMAPPED,
    Problem,
)
from pipelines.domain.flows.model import CommerceOrder
from pipelines.domain.flows.ports import CreateOrderRequest, OrderAddress, OrderLineRequest

TAKE_HOME, DELIVERY = "take_home", "delivery"
#: Cloudshelf's OrderStatus values (cloudshelf.ts `enum OrderStatus`).
ORDER_STATUSES = ("DRAFT_BASKET", "PLACED", "PAID", "PARTIALLY_REFUNDED", "REFUNDED", "VOIDED")
PAID_STATUSES = frozenset({"PAID", "PARTIALLY_REFUNDED", "REFUNDED"})  # the customer has paid (refunds come after)
#: A take-home sale undone at the kiosk: voided (the goods stayed in the store) or fully refunded (brought back). Its
#: units go back on the shelf. A partial refund does not say which units came back (Cloudshelf's order lines carry no
#: refunded quantity), so it restocks nothing: the next store count finds them.
RESTOCK_STATUSES = frozenset({"VOIDED", "REFUNDED"})
SHIPPED, PARTIALLY_SHIPPED = "shipped", "partially_shipped"
#: Our keys of the order lines' `customAttributes` (Cloudshelf documents the field, not the keys).
FULFILMENT_STATUS_KEY, CARRIER_KEY, TRACKING_KEY = "fulfilmentStatus", "carrier", "trackingNumber"
DEFAULT_TAKE_HOME = "take-home"
#: Kiosk fulfilment method (acquisition option's internal name) -> Centra shipping option: an explicit table.
DEFAULT_KIOSK_SHIPPING_MAP = {"home-standard": "standard", "home-express": "express"}
#: Our address field -> the kiosk form's attribute key (the retailer's own form: ASSUMPTION, a setting).
DEFAULT_ADDRESS_KEYS = {"first_name": "firstName", "last_name": "lastName", "address1": "address1",
                        "address2": "address2", "city": "city", "zip_code": "zip", "state": "province",
                        "country": "countryCode"}
_MAX_KEY = 255


@dataclass(frozen=True)
class KioskLine:
    line_id: str
    sku: str | None  # from our variant GlobalId (gid://external/CentraVariant/<SKU>); None when not ours
    quantity: int
    unit_price: float  # the line's `price` (per unit, as the kiosk charged)
    currency: str | None = None


@dataclass(frozen=True)
class KioskOrder:
    """A kiosk order as Cloudshelf's `order(id)` answers it."""

    order_id: str  # Cloudshelf's order GlobalId
    status: str  # OrderStatus
    location_id: str | None  # the estate location id (from the session's locationId, our Store GlobalId)
    fulfilment_method: str | None  # session.fulfilmentMethod
    lines: tuple[KioskLine, ...]
    currency: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    third_party_id: str | None = None


@dataclass(frozen=True)
class KioskCustomer:
    """The customer's details from the webhook delivery (`emailAddress`, `phoneNumber`, `attributes`)."""

    email: str | None = None
    phone: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KioskSettings:
    take_home: str = DEFAULT_TAKE_HOME
    shipping_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_KIOSK_SHIPPING_MAP))
    address_keys: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ADDRESS_KEYS))
    register_customer: bool = False  # a minimal registered customer (by e-mail) instead of a guest

    def fingerprint(self) -> str:
        """What a blocked order depends on: a change means it is worth trying again."""
        doc = {"take_home": self.take_home, "map": dict(self.shipping_map), "keys": dict(self.address_keys),
               "register": self.register_customer}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Movement:
    """One stock movement for the stock sync (`stock_sync_movements`)."""

    movement_key: str
    location_id: str
    sku: str
    quantity: int  # negative: units leaving the store
    event_time: str | None


@dataclass(frozen=True)
class KioskStatus:
    """What the kiosk order should show (the input of one `upsertOrders`)."""

    status: str
    third_party_id: str | None
    lines: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # line id -> customAttributes

    def as_json(self) -> str:
        doc = asdict(self)
        doc["lines"] = {k: [list(kv) for kv in v] for k, v in sorted(self.lines.items())}
        return json.dumps(doc, sort_keys=True)


def parse_map(text: str | None) -> dict[str, str]:
    """`NAME=value,NAME2=value2` or a JSON object -> dict; ValueError when malformed."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        doc = json.loads(text)
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise ValueError("the map must be a JSON object of strings")
        return {str(k): v for k, v in doc.items()}
    out: dict[str, str] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"map entry {pair.strip()!r} is not NAME=value")
        out[name.strip()] = value.strip()
    return out


def classify(order: KioskOrder, settings: KioskSettings) -> str:
    """take_home when the fulfilment method is the take-home option, else delivery (mapped or not)."""
    method = (order.fulfilment_method or "").strip()
    return TAKE_HOME if method.casefold() == settings.take_home.casefold() else DELIVERY


def is_paid(order: KioskOrder) -> bool:
    return order.status in PAID_STATUSES


def movement_key(order_id: str, line_id: str) -> str:
    key = f"kiosk:{order_id}:{line_id}"
    return key if len(key) <= _MAX_KEY else f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def take_home_movements(order: KioskOrder) -> tuple[list[Movement], list[KioskLine]]:
    """(movements, lines without a SKU of ours): one negative `sale` per line with units."""
    moves, unknown = [], []
    for ln in order.lines:
        if ln.quantity <= 0:
            continue
        if not ln.sku or order.location_id is None:
            unknown.append(ln)
            continue
        moves.append(Movement(movement_key(order.order_id, ln.line_id), order.location_id, ln.sku, -ln.quantity,
                              order.updated_at or order.created_at))
    return moves, unknown


def restock_movements(order: KioskOrder) -> list[Movement]:
    """The units of a take-home sale undone at the kiosk (`RESTOCK_STATUSES`) back into the store: one positive
    movement per line the sale deducted, keyed apart from the sale's (both apply once, in either order)."""
    if order.location_id is None:
        return []
    return [Movement(movement_key(order.order_id, f"{ln.line_id}:restock"), order.location_id, ln.sku, ln.quantity,
                     order.updated_at or order.created_at) for ln in order.lines if ln.quantity > 0 and ln.sku]


def _attr(customer: KioskCustomer, keys: Mapping[str, str], name: str) -> str | None:
    key = keys.get(name)
    value = customer.attributes.get(key) if key else None
    return str(value).strip() or None if value is not None else None


def order_request(order: KioskOrder, customer: KioskCustomer, terms: Mapping[str, StoreTerms],
                  settings: KioskSettings) -> CreateOrderRequest | Problem:
    evidence: dict[str, Any] = {"order": order.order_id, "store": order.location_id,
                                "fulfilment_method": order.fulfilment_method}
    store = terms.get(order.location_id or "")
    if store is None:
        return Problem(STORE_MARKET_UNMAPPED, f"kiosk order {order.order_id} of store {order.location_id} is for "
                       "home delivery but the store has no commerce market and price list in the estate file",
                       evidence)
    option = settings.shipping_map.get(order.fulfilment_method or "")
    if option is None:
        return Problem(SHIPPING_OPTION_UNMAPPED, f"kiosk order {order.order_id}: fulfilment method "
                       f"{order.fulfilment_method!r} is not in the kiosk shipping map (PIPELINES_KIOSK_SHIPPING_MAP)",
                       {**evidence, "shipping_map": dict(settings.shipping_map)})
    keys = settings.address_keys
    country = (_attr(customer, keys, "country") or "").upper() or None
    address1 = _attr(customer, keys, "address1")
    missing = [what for what, value in (("customer e-mail", customer.email), ("delivery country", country),
                                        ("delivery address", address1)) if not value]
    lines = [ln for ln in order.lines if ln.quantity > 0]
    unknown = [ln.line_id for ln in lines if not ln.sku]
    if unknown:
        missing.append(f"a SKU of ours on line(s) {', '.join(unknown)}")
    if not lines:
        missing.append("order lines")
    if missing:
        return Problem(ENDLESS_AISLE_INCOMPLETE, f"kiosk order {order.order_id} lacks {', '.join(missing)}",
                       {**evidence, "missing": missing, "attributes": dict(customer.attributes)})
    units = Counter()
    for ln in lines:
        units[(str(ln.sku), round(ln.unit_price, 2))] += ln.quantity
    req_lines = tuple(OrderLineRequest(sku=sku, quantity=n, unit_price=price) for (sku, price), n in sorted(units.items()))
    return CreateOrderRequest(
        external_id=order.order_id, market_id=store.market_id, pricelist_id=store.pricelist_id,
        shipping_option=option,
        address=OrderAddress(first_name=_attr(customer, keys, "first_name"), last_name=_attr(customer, keys, "last_name"),
                             address1=address1, address2=_attr(customer, keys, "address2"),
                             city=_attr(customer, keys, "city"), zip_code=_attr(customer, keys, "zip_code"),
                             state=_attr(customer, keys, "state"), country=str(country), email=str(customer.email),
                             phone=customer.phone),
        lines=req_lines, currency=order.currency or store.currency, placed_at=order.created_at,
        paid_amount=round(sum(ln.unit_price * ln.quantity for ln in req_lines), 2),
        payment_reference=f"cloudshelf-order-{order.order_id}", register_customer=settings.register_customer)


@dataclass(frozen=True)
class Tracking:
    """A completed Centra shipment's carrier and tracking number (either may be unknown)."""

    carrier: str | None = None
    tracking_number: str | None = None


def _kiosk_status(order: CommerceOrder) -> str:
    if order.status == "cancelled":
        return "VOIDED"
    bought = sum(ln.quantity for ln in order.lines)
    refunded_lines: Counter[str] = Counter()
    for r in order.returns:
        if r.refunded:
            for rl in r.lines:
                if rl.order_line_id:
                    refunded_lines[rl.order_line_id] += rl.quantity
    refunded = sum(refunded_lines.values())
    if bought and refunded >= bought:
        return "REFUNDED"
    return "PARTIALLY_REFUNDED" if refunded else "PAID"


def status_back(kiosk: KioskOrder, centra: CommerceOrder, tracking: Tracking | None = None) -> KioskStatus:
    """What the kiosk order should show for its Centra order: status, the Centra order number, and per kiosk line
    the fulfilment attributes (shipped units of the line's SKU are given to the kiosk's lines in line order)."""
    shipped: Counter[str] = Counter()
    for ln in centra.lines:
        shipped[ln.sku] += ln.shipped_quantity
    tracked = tuple((k, v) for k, v in ((CARRIER_KEY, tracking.carrier if tracking else None),
                                        (TRACKING_KEY, tracking.tracking_number if tracking else None)) if v)
    lines: dict[str, tuple[tuple[str, str], ...]] = {}
    for ln in sorted(kiosk.lines, key=lambda x: x.line_id):
        if not ln.sku or ln.quantity <= 0:
            continue
        given = min(ln.quantity, shipped[ln.sku])
        shipped[ln.sku] -= given
        if given <= 0:
            continue
        state = SHIPPED if given >= ln.quantity else PARTIALLY_SHIPPED
        lines[ln.line_id] = ((FULFILMENT_STATUS_KEY, state), *tracked)
    return KioskStatus(status=_kiosk_status(centra), third_party_id=centra.ref, lines=lines)


def changed(wanted: KioskStatus, sent_json: str | None) -> bool:
    return wanted.as_json() != (sent_json or "")


def status_input(order_id: str, wanted: KioskStatus, sent_json: str | None) -> dict[str, Any]:
    """The `OrderInput` of one `upsertOrders`: id, status, newThirdPartyId, and the lines whose attributes changed."""
    before: dict[str, Any] = json.loads(sent_json) if sent_json else {}
    sent_lines = {k: [list(kv) for kv in v] for k, v in (before.get("lines") or {}).items()}
    out: dict[str, Any] = {"id": order_id, "status": wanted.status}
    if wanted.third_party_id and wanted.third_party_id != before.get("third_party_id"):
        out["newThirdPartyId"] = wanted.third_party_id
    lines = [{"id": line_id, "customAttributes": [{"key": k, "value": v} for k, v in attrs]}
             for line_id, attrs in sorted(wanted.lines.items()) if [list(kv) for kv in attrs] != sent_lines.get(line_id)]
    if lines:
        out["lines"] = lines
    return out


__all__ = ["DEFAULT_ADDRESS_KEYS", "DEFAULT_KIOSK_SHIPPING_MAP", "DEFAULT_TAKE_HOME", "DELIVERY", "ORDER_STATUSES",
           "PAID_STATUSES", "TAKE_HOME", "KioskCustomer", "KioskLine", "KioskOrder", "KioskSettings", "KioskStatus",
           "Movement", "Tracking", "changed", "classify", "is_paid", "movement_key", "order_request", "parse_map",
           "status_back", "status_input", "take_home_movements"]
