"""The simulated Cloudshelf organisation: catalogue, locations, per-location stock, orders, webhooks; and the
kiosk world (acquisition options, shoppers' orders at a location).

Everything the GraphQL API exposes is kept here; `app.py` only translates. Mutations follow Cloudshelf's
generated types (Cloudshelf+Shopify_CSConnector `src/graphql/cloudshelf/generated/cloudshelf.ts`); where
Cloudshelf is silent the behaviour is an ASSUMPTION recorded in PROVENANCE.md. All methods take `self.lock`.

Error codes are Cloudshelf's `UserErrorCode` values: ENTITY_NOT_FOUND (an unknown id), ENTITY_INVALID_FIELD (a
malformed GlobalId or value), ENTITY_CREATION_MISSING_FIELD (a field needed to create the entity), ACTION_DISALLOWED
(an order status change that makes no sense).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.connectors.cloudshelf.ids import is_global_id

ORDER_STATUSES = ("DRAFT_BASKET", "PLACED", "PAID", "PARTIALLY_REFUNDED", "REFUNDED", "VOIDED")
ACQUISITION_TYPES = ("DELIVERY", "IMMEDIATE_PICKUP", "STORE_COLLECTION")
#: The kiosk world's acquisition options (internal name -> documented AcquisitionType); docs: Issue 14 design.
DEFAULT_ACQUISITION_OPTIONS = {"take-home": "IMMEDIATE_PICKUP", "home-standard": "DELIVERY",
                               "home-express": "DELIVERY"}
#: Status changes accepted (ASSUMPTION: Cloudshelf documents the statuses, not their transitions). A change to the
#: current status is a no-op; anything else is ACTION_DISALLOWED.
TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT_BASKET": frozenset({"PLACED", "PAID", "VOIDED"}),
    "PLACED": frozenset({"PAID", "VOIDED", "PARTIALLY_REFUNDED", "REFUNDED"}),
    "PAID": frozenset({"PARTIALLY_REFUNDED", "REFUNDED", "VOIDED"}),
    "PARTIALLY_REFUNDED": frozenset({"PARTIALLY_REFUNDED", "REFUNDED"}),
    "REFUNDED": frozenset(),
    "VOIDED": frozenset(),
}


class CloudshelfInputError(ValueError):
    """A world-API call the simulated kiosk would not allow (unknown location/variant, not for sale...)."""


def iso(when: datetime) -> str:
    """UTCDateTime as the API writes it: ISO-8601 UTC with milliseconds and `Z`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _cloudshelf_gid(kind: str) -> str:
    return f"gid://cloudshelf/{kind}/{uuid.uuid4()}"


def input_gid(data: dict[str, Any], kind: str, where: str, errors: list[dict[str, str]]) -> str | None:
    """An upsert input's `id`: a new Cloudshelf id when absent; None (and a userError) when it is no GlobalId."""
    gid = data.get("id")
    if gid is None:
        return _cloudshelf_gid(kind)
    if not is_global_id(gid):
        errors.append(user_error("ENTITY_INVALID_FIELD", f"{where}.id: invalid GlobalId {gid!r}"))
        return None
    return gid


def user_error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


@dataclass
class Product:
    id: str
    display_name: str
    handle: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    product_type: str | None = None
    vendor: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    remote_updated_at: str | None = None
    variant_ids: list[str] = field(default_factory=list)


@dataclass
class Variant:
    id: str
    product_id: str
    created_at: datetime
    updated_at: datetime
    sku: str | None = None
    display_name: str | None = None
    current_price: float = 0.0
    original_price: float = 0.0
    available_to_purchase: bool = False
    is_in_stock: bool = False
    barcode: str | None = None
    inventory_policy: str | None = None
    attributes: list[dict[str, str]] = field(default_factory=list)
    metaimages: list[dict[str, Any]] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    position: int | None = None


@dataclass
class Location:
    id: str
    display_name: str
    country_code: str
    created_at: datetime
    updated_at: datetime
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    zip: str | None = None
    province_code: str | None = None
    email: str | None = None
    phone: str | None = None
    fulfills_online_orders: bool = False
    metadata: list[dict[str, Any]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return ", ".join(p for p in (self.address1, self.address2, self.zip, self.city) if p)


@dataclass
class StockLevel:
    id: str
    location_id: str
    variant_id: str
    quantity: int
    created_at: datetime
    updated_at: datetime


@dataclass
class Session:
    id: str
    location_id: str | None
    location_name: str | None
    fulfilment_method: str | None
    currency: str
    basket_value: float
    created_at: datetime
    updated_at: datetime


@dataclass
class OrderLine:
    id: str
    variant_id: str
    product_id: str
    product_name: str
    variant_name: str
    quantity: int
    price: float
    currency: str
    created_at: datetime
    updated_at: datetime
    custom_attributes: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Order:
    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    third_party_id: str | None = None
    discount_code: str | None = None
    from_pos: bool = False
    session: Session | None = None
    lines: list[OrderLine] = field(default_factory=list)
    # the kiosk checkout's customer details (createPaidOrder's input fields; only in webhook payloads)
    email: str | None = None
    phone: str | None = None
    attributes: list[dict[str, str]] = field(default_factory=list)
    history: list[tuple[str, str]] = field(default_factory=list)  # (status, by: "kiosk" | "api")
    paid_attempt: str | None = None  # createPaidOrder's attemptId that paid the basket


@dataclass
class Webhook:
    id: str
    subject: str
    url: str
    created_at: datetime


@dataclass
class Cloudshelf:
    id: str
    display_name: str
    created_at: datetime
    updated_at: datetime


OrderListener = Callable[[str, Order], None]  # (subject, order), called under the lock


class CloudshelfState:
    """One organisation. `safety_stock`: the organisation's safety stock (a stock level is in stock when its
    quantity is above it; ASSUMPTION, default 0). `order_subject`: the webhook subject of order events
    (ASSUMPTION, default "OrderPaid"). `clock`: the simulated time (default: now, UTC)."""

    def __init__(self, *, safety_stock: int = 0, order_subject: str = "OrderPaid", default_currency: str = "SEK",
                 clock: Callable[[], datetime] | None = None,
                 acquisition_options: dict[str, str] | None = None) -> None:
        self.lock = threading.RLock()
        self.safety_stock = int(safety_stock)
        self.order_subject = order_subject
        self.default_currency = default_currency
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.products: dict[str, Product] = {}
        self.variants: dict[str, Variant] = {}
        self._by_sku: dict[str, str] = {}  # sku -> variant id (the last variant upserted with that sku)
        self.locations: dict[str, Location] = {}
        self.stock: dict[tuple[str, str], StockLevel] = {}  # (location id, variant id)
        self.orders: dict[str, Order] = {}
        self.webhooks: list[Webhook] = []
        self.cloudshelves: dict[str, Cloudshelf] = {}
        self.acquisition_options: dict[str, str] = dict(DEFAULT_ACQUISITION_OPTIONS
                                                        if acquisition_options is None else acquisition_options)
        self._listeners: list[OrderListener] = []
        self.deleted_products: list[str] = []

    def now(self) -> datetime:
        return self.clock()

    def add_listener(self, listener: OrderListener) -> None:
        self._listeners.append(listener)

    def _emit(self, order: Order) -> None:
        for listener in self._listeners:
            listener(self.order_subject, order)

    # -- mutations (the API)

    def upsert_products(self, inputs: Sequence[dict[str, Any]]) -> tuple[list[Product], list[dict[str, str]]]:
        done: list[Product] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            now = self.now()
            for i, data in enumerate(inputs):
                gid = input_gid(data, "Product", f"input[{i}]", errors)
                if gid is None:
                    continue
                product = self.products.get(gid)
                if product is None:
                    if not data.get("displayName"):
                        errors.append(user_error("ENTITY_CREATION_MISSING_FIELD",
                                                 f"input[{i}]: displayName is required to create product {gid}"))
                        continue
                    product = Product(id=gid, display_name=data["displayName"],
                                      handle=data.get("handle") or gid.rsplit("/", 1)[-1], created_at=now,
                                      updated_at=now)
                    self.products[gid] = product
                for key, attr in (("displayName", "display_name"), ("handle", "handle"),
                                  ("description", "description"), ("productType", "product_type"),
                                  ("vendor", "vendor"), ("tags", "tags"), ("metadata", "metadata"),
                                  ("remoteUpdatedAt", "remote_updated_at")):
                    if data.get(key) is not None:
                        setattr(product, attr, data[key])
                product.updated_at = now
                done.append(product)
        return done, errors

    def upsert_variants(self, inputs: Sequence[dict[str, Any]]) -> tuple[list[Variant], list[dict[str, str]]]:
        done: list[Variant] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            now = self.now()
            for i, group in enumerate(inputs):
                product = self.products.get(group["productId"])
                if product is None:
                    errors.append(user_error("ENTITY_NOT_FOUND",
                                             f"inputs[{i}].productId: no product {group['productId']}"))
                    continue
                for j, data in enumerate(group.get("variants") or []):
                    where = f"inputs[{i}].variants[{j}]"
                    gid = input_gid(data, "ProductVariant", where, errors)
                    if gid is None:
                        continue
                    variant = self.variants.get(gid)
                    if variant is not None and variant.product_id != product.id:
                        errors.append(user_error("ENTITY_INVALID_FIELD",
                                                 f"{where}: variant {gid} belongs to product {variant.product_id}"))
                        continue
                    if variant is None:
                        variant = Variant(id=gid, product_id=product.id, created_at=now, updated_at=now)
                        self.variants[gid] = variant
                        product.variant_ids.append(gid)
                    if data.get("sku") is not None and data["sku"] != variant.sku:
                        if variant.sku is not None and self._by_sku.get(variant.sku) == variant.id:
                            del self._by_sku[variant.sku]
                        self._by_sku[data["sku"]] = variant.id
                    for key, attr in (("sku", "sku"), ("displayName", "display_name"),
                                      ("currentPrice", "current_price"), ("originalPrice", "original_price"),
                                      ("availableToPurchase", "available_to_purchase"), ("isInStock", "is_in_stock"),
                                      ("barcode", "barcode"), ("inventoryPolicy", "inventory_policy"),
                                      ("attributes", "attributes"), ("metaimages", "metaimages"),
                                      ("metadata", "metadata"), ("position", "position")):
                        if data.get(key) is not None:
                            setattr(variant, attr, data[key])
                    variant.updated_at = now
                    done.append(variant)
        return done, errors

    def upsert_stock_levels(self, inputs: Sequence[dict[str, Any]]) -> tuple[list[StockLevel], list[dict[str, str]]]:
        done: list[StockLevel] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            now = self.now()
            for i, data in enumerate(inputs):
                loc, var = data["locationId"], data["productVariantId"]
                bad = [(k, v) for k, v in (("locationId", loc), ("productVariantId", var)) if not is_global_id(v)]
                if bad:
                    errors.append(user_error("ENTITY_INVALID_FIELD",
                                             f"input[{i}].{bad[0][0]}: invalid GlobalId {bad[0][1]!r}"))
                    continue
                if loc not in self.locations:
                    errors.append(user_error("ENTITY_NOT_FOUND", f"input[{i}].locationId: no location {loc}"))
                    continue
                if var not in self.variants:
                    errors.append(user_error("ENTITY_NOT_FOUND",
                                             f"input[{i}].productVariantId: no product variant {var}"))
                    continue
                level = self.stock.get((loc, var))
                if level is None:
                    level = StockLevel(id=_cloudshelf_gid("StockLevel"), location_id=loc, variant_id=var,
                                       quantity=int(data["quantity"]), created_at=now, updated_at=now)
                    self.stock[(loc, var)] = level
                level.quantity = int(data["quantity"])
                level.updated_at = now
                done.append(level)
        return done, errors

    def upsert_locations(self, inputs: Sequence[dict[str, Any]]) -> tuple[list[Location], list[dict[str, str]]]:
        done: list[Location] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            now = self.now()
            for i, data in enumerate(inputs):
                gid = input_gid(data, "Location", f"input[{i}]", errors)
                if gid is None:
                    continue
                location = self.locations.get(gid)
                if location is None:
                    missing = [k for k in ("displayName", "countryCode") if not data.get(k)]
                    if missing:
                        errors.append(user_error("ENTITY_CREATION_MISSING_FIELD",
                                                 f"input[{i}]: {', '.join(missing)} required to create location {gid}"))
                        continue
                    location = Location(id=gid, display_name=data["displayName"], country_code=data["countryCode"],
                                        created_at=now, updated_at=now)
                    self.locations[gid] = location
                for key, attr in (("displayName", "display_name"), ("countryCode", "country_code"),
                                  ("address1", "address1"), ("address2", "address2"), ("city", "city"),
                                  ("zip", "zip"), ("provinceCode", "province_code"), ("email", "email"),
                                  ("phone", "phone"), ("fulfillsOnlineOrders", "fulfills_online_orders"),
                                  ("metadata", "metadata")):
                    if data.get(key) is not None:
                        setattr(location, attr, data[key])
                location.updated_at = now
                done.append(location)
        return done, errors

    def upsert_cloudshelves(self, inputs: Sequence[dict[str, Any]]) -> tuple[list[Cloudshelf], list[dict[str, str]]]:
        done: list[Cloudshelf] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            now = self.now()
            for i, data in enumerate(inputs):
                gid = data.get("id") or _cloudshelf_gid("Cloudshelf")
                if not is_global_id(gid):
                    errors.append(user_error("ENTITY_INVALID_FIELD", f"input[{i}].id: invalid GlobalId {gid!r}"))
                    continue
                shelf = self.cloudshelves.get(gid)
                if shelf is None:
                    if not data.get("displayName"):
                        errors.append(user_error("ENTITY_CREATION_MISSING_FIELD",
                                                 f"input[{i}]: displayName is required to create cloudshelf {gid}"))
                        continue
                    shelf = Cloudshelf(id=gid, display_name=data["displayName"], created_at=now, updated_at=now)
                    self.cloudshelves[gid] = shelf
                if data.get("displayName"):
                    shelf.display_name = data["displayName"]
                shelf.updated_at = now
                done.append(shelf)
        return done, errors

    def delete_products(self, gids: Iterable[str]) -> tuple[list[Product], list[dict[str, str]]]:
        done: list[Product] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            for i, gid in enumerate(gids):
                product = self.products.pop(gid, None)
                if product is None:
                    errors.append(user_error("ENTITY_NOT_FOUND", f"ids[{i}]: no product {gid}"))
                    continue
                for vid in product.variant_ids:
                    gone = self.variants.pop(vid, None)
                    if gone is not None and gone.sku is not None and self._by_sku.get(gone.sku) == vid:
                        del self._by_sku[gone.sku]
                    for key in [k for k in self.stock if k[1] == vid]:
                        del self.stock[key]
                self.deleted_products.append(gid)
                done.append(product)
        return done, errors

    def register_webhooks(self, inputs: Sequence[dict[str, Any]],
                          allow_url: Callable[[str], bool]) -> tuple[list[Webhook], list[dict[str, str]]]:
        done: list[Webhook] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            for i, data in enumerate(inputs):
                if not allow_url(data["url"]):
                    errors.append(user_error("INVALID_ARGUMENT", f"inputs[{i}].url: the simulator delivers to "
                                                                 f"loopback http(s) URLs only, not {data['url']!r}"))
                    continue
                hook = next((h for h in self.webhooks if h.subject == data["subject"] and h.url == data["url"]), None)
                if hook is None:
                    hook = Webhook(id=_cloudshelf_gid("Webhook"), subject=data["subject"], url=data["url"],
                                   created_at=self.now())
                    self.webhooks.append(hook)
                done.append(hook)
        return done, errors

    def urls_for(self, subject: str) -> list[str]:
        with self.lock:
            return [h.url for h in self.webhooks if h.subject == subject]

    def upsert_orders(self, inputs: Sequence[dict[str, Any]]) -> tuple[list[Order], list[dict[str, str]]]:
        """`id` (or else `thirdPartyId`) finds the order; neither matching creates one (status default
        DRAFT_BASKET). `newThirdPartyId` replaces `thirdPartyId` (the Shopify connector's use: cart id ->
        order id). Lines with an `id` update that line (quantity, price, customAttributes replace), lines
        without one are added. Changes made here are not delivered as webhooks (ASSUMPTION: order events are
        the kiosk's)."""
        done: list[Order] = []
        errors: list[dict[str, str]] = []
        with self.lock:
            now = self.now()
            for i, data in enumerate(inputs):
                where = f"input[{i}]"
                gid = data.get("id")
                order: Order | None
                if gid is not None:
                    if not is_global_id(gid):
                        errors.append(user_error("ENTITY_INVALID_FIELD", f"{where}.id: invalid GlobalId {gid!r}"))
                        continue
                    order = self.orders.get(gid)
                    if order is None:
                        errors.append(user_error("ENTITY_NOT_FOUND", f"{where}.id: no order {gid}"))
                        continue
                elif data.get("thirdPartyId"):
                    order = next((o for o in self.orders.values() if o.third_party_id == data["thirdPartyId"]), None)
                else:
                    order = None
                status = data.get("status")
                if order is not None and status is not None and status != order.status \
                        and status not in TRANSITIONS[order.status]:
                    errors.append(user_error("ACTION_DISALLOWED",
                                             f"{where}.status: order {order.id} cannot go from {order.status} to {status}"))
                    continue
                line_error = self._check_lines(order, data.get("lines") or [], where)
                if line_error is not None:
                    errors.append(line_error)
                    continue
                if order is None:
                    order = Order(id=_cloudshelf_gid("Order"), status=status or "DRAFT_BASKET", created_at=now,
                                  updated_at=now, third_party_id=data.get("thirdPartyId"))
                    order.history.append((order.status, "api"))
                    self.orders[order.id] = order
                    if data.get("sessionId"):
                        order.session = self._session_by_id(data["sessionId"])
                elif status is not None and status != order.status:
                    order.status = status
                    order.history.append((status, "api"))
                if data.get("newThirdPartyId") is not None:
                    order.third_party_id = data["newThirdPartyId"]
                elif data.get("thirdPartyId") is not None and gid is not None:
                    order.third_party_id = data["thirdPartyId"]
                if data.get("discountCode") is not None:
                    order.discount_code = data["discountCode"]
                if data.get("fromPOS") is not None:
                    order.from_pos = bool(data["fromPOS"])
                self._apply_lines(order, data.get("lines") or [], now)
                order.updated_at = now
                done.append(order)
        return done, errors

    def _session_by_id(self, gid: str) -> Session | None:
        return next((o.session for o in self.orders.values() if o.session is not None and o.session.id == gid), None)

    def _check_lines(self, order: Order | None, lines: list[dict[str, Any]], where: str) -> dict[str, str] | None:
        known = {ln.id for ln in order.lines} if order is not None else set()
        for j, line in enumerate(lines):
            lid = line.get("id")
            if lid is not None and lid not in known:
                return user_error("ENTITY_NOT_FOUND", f"{where}.lines[{j}].id: no line {lid} on this order")
            var = line.get("productVariantID")
            if lid is None and (var is None or var not in self.variants):
                return user_error("ENTITY_NOT_FOUND", f"{where}.lines[{j}].productVariantID: no product variant {var}")
        return None

    def _apply_lines(self, order: Order, lines: list[dict[str, Any]], now: datetime) -> None:
        by_id = {ln.id: ln for ln in order.lines}
        for data in lines:
            line = by_id.get(data.get("id") or "")
            if line is None:
                variant = self.variants[data["productVariantID"]]
                product = self.products[variant.product_id]
                line = OrderLine(id=_cloudshelf_gid("OrderLine"), variant_id=variant.id, product_id=product.id,
                                 product_name=product.display_name, variant_name=variant.display_name or "",
                                 quantity=int(data.get("quantity") or 1),
                                 price=float(data.get("price") if data.get("price") is not None
                                             else variant.current_price),
                                 currency=data.get("currencyCode") or self.default_currency,
                                 created_at=now, updated_at=now)
                order.lines.append(line)
                continue
            if data.get("quantity") is not None:
                line.quantity = int(data["quantity"])
            if data.get("price") is not None:
                line.price = float(data["price"])
            if data.get("customAttributes") is not None:
                line.custom_attributes = [{"key": kv["key"], "value": kv["value"]} for kv in data["customAttributes"]]
            line.updated_at = now

    # -- the kiosk world (Python; tests, trading, benchmarks)

    def add_acquisition_option(self, internal_name: str, acquisition_type: str) -> None:
        if acquisition_type not in ACQUISITION_TYPES:
            raise CloudshelfInputError(f"acquisition type must be one of {ACQUISITION_TYPES}")
        with self.lock:
            self.acquisition_options[internal_name] = acquisition_type

    def stock_level(self, location_gid: str, sku: str) -> int | None:
        with self.lock:
            variant = self.variant(sku)
            level = self.stock.get((location_gid, variant.id)) if variant is not None else None
            return level.quantity if level is not None else None

    def visible(self, location_gid: str, sku: str) -> bool:
        """Whether a shopper at the location sees the SKU as buyable: the variant is available to purchase and
        its stock level there is above the organisation's safety stock (docs: Issue 14 design)."""
        with self.lock:
            variant = self.variant(sku)
            if variant is None or not variant.available_to_purchase:
                return False
            level = self.stock.get((location_gid, variant.id))
            return level is not None and level.quantity > self.safety_stock

    def variant(self, sku: str) -> Variant | None:
        with self.lock:
            vid = self._by_sku.get(sku)
            return self.variants.get(vid) if vid is not None else None

    def kiosk_order(self, location_gid: str, lines: Sequence[tuple[str, int]], *,
                    fulfilment_method: str = "take-home", email: str | None = None, phone: str | None = None,
                    attributes: Iterable[tuple[str, str]] | dict[str, str] | None = None,
                    at: datetime | None = None, paid: bool = True, currency: str | None = None,
                    force: bool = False) -> str:
        """A shopper's order at the kiosk of `location_gid`: a session there with `fulfilment_method` (an
        acquisition option's internal name), lines `(variant gid, quantity)` priced at the variant's
        currentPrice in `currency` (default the organisation's). PAID (the createPaidOrder path; the order
        webhook fires) or DRAFT_BASKET. A variant must be available to purchase and, for an IMMEDIATE_PICKUP
        option, visible at the location, unless `force`. Returns the order's GlobalId."""
        items = list(attributes.items()) if isinstance(attributes, dict) else list(attributes or [])
        with self.lock:
            location = self.locations.get(location_gid)
            if location is None:
                raise CloudshelfInputError(f"no location {location_gid}")
            kind = self.acquisition_options.get(fulfilment_method)
            if kind is None:
                raise CloudshelfInputError(f"no acquisition option {fulfilment_method!r}")
            if not lines:
                raise CloudshelfInputError("an order needs lines")
            when = at or self.now()
            cur = currency or self.default_currency
            order_lines = []
            for var_gid, qty in lines:
                variant = self.variants.get(var_gid)
                if variant is None:
                    raise CloudshelfInputError(f"no product variant {var_gid}")
                if not force and not variant.available_to_purchase:
                    raise CloudshelfInputError(f"{var_gid} is not available to purchase")
                if not force and kind == "IMMEDIATE_PICKUP" and not self.visible(location_gid, variant.sku or ""):
                    raise CloudshelfInputError(f"{var_gid} is not in stock at {location_gid}")
                product = self.products[variant.product_id]
                order_lines.append(OrderLine(
                    id=_cloudshelf_gid("OrderLine"), variant_id=variant.id, product_id=product.id,
                    product_name=product.display_name, variant_name=variant.display_name or "",
                    quantity=int(qty), price=float(variant.current_price), currency=cur,
                    created_at=when, updated_at=when))
            session = Session(id=_cloudshelf_gid("Session"), location_id=location.id,
                              location_name=location.display_name, fulfilment_method=fulfilment_method,
                              currency=cur, basket_value=round(sum(ln.price * ln.quantity for ln in order_lines), 2),
                              created_at=when, updated_at=when)
            status = "PAID" if paid else "DRAFT_BASKET"
            order = Order(id=_cloudshelf_gid("Order"), status=status, created_at=when, updated_at=when,
                          session=session, lines=order_lines, email=email, phone=phone,
                          attributes=[{"key": str(k), "value": str(v)} for k, v in items])
            order.history.append((status, "kiosk"))
            self.orders[order.id] = order
            if paid:
                self._emit(order)
            return order.id

    def acquisition_option_gid(self, internal_name: str) -> str:
        """The GlobalId createPaidOrder takes for an acquisition option (ASSUMPTION: Cloudshelf's own id form)."""
        return f"gid://cloudshelf/CheckoutFlowAcquisitionOption/{internal_name}"

    def create_paid_order(self, data: dict[str, Any]) -> tuple[Order | None, str | None]:
        """createPaidOrder: the kiosk pays basket `basketId` of session `sessionId` on the device with the chosen
        acquisition option and the shopper's details; the order becomes PAID and the order webhook fires. The same
        `attemptId` again answers the same success without a second payment (ASSUMPTION); anything else is
        `success: false` with a message (the payload carries no userErrors)."""
        with self.lock:
            order = self.orders.get(data.get("basketId", ""))
            if order is None or order.session is None or order.session.id != data.get("sessionId"):
                return None, f"no basket {data.get('basketId')!r} in session {data.get('sessionId')!r}"
            if order.status != "DRAFT_BASKET":
                if order.paid_attempt == data.get("attemptId"):
                    return order, None
                return None, f"basket {order.id} is {order.status}, not a basket to pay"
            option = next((name for name in self.acquisition_options
                           if self.acquisition_option_gid(name) == data.get("acquisitionOptionId")), None)
            if option is None:
                return None, f"no acquisition option {data.get('acquisitionOptionId')!r}"
            if not str(data.get("token") or "").strip() or not str(data.get("emailAddress") or "").strip():
                return None, "a payment token and an e-mail address are required"
            now = self.now()
            order.session.fulfilment_method = option
            order.session.updated_at = now
            order.email, order.phone = data["emailAddress"], data.get("phoneNumber")
            order.attributes = [{"key": str(a["key"]), "value": str(a["value"])} for a in data.get("attributes") or []]
            order.status, order.updated_at, order.paid_attempt = "PAID", now, data.get("attemptId")
            order.history.append(("PAID", "kiosk"))
            self._emit(order)
            return order, None

    def set_order_status(self, order_gid: str, status: str, *, at: datetime | None = None) -> None:
        """A kiosk-side status change (pay a draft basket, void, refund); the order webhook fires."""
        with self.lock:
            order = self.orders.get(order_gid)
            if order is None:
                raise CloudshelfInputError(f"no order {order_gid}")
            if status == order.status:
                return
            if status not in TRANSITIONS[order.status]:
                raise CloudshelfInputError(f"order {order_gid} cannot go from {order.status} to {status}")
            order.status = status
            order.updated_at = at or self.now()
            order.history.append((status, "kiosk"))
            self._emit(order)

    def order(self, gid: str) -> Order | None:
        with self.lock:
            return self.orders.get(gid)

    def all_orders(self) -> list[Order]:
        with self.lock:
            return list(self.orders.values())
