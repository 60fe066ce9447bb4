"""commercetools as the order flows' commerce platform (`CommercePlatform` and `AllocatingCommerce` of
`pipelines.domain.flows.ports`) over a `CommercetoolsClient`.

The order's reference (`CommerceOrder.ref`) is its `orderNumber` (the number the customer and the store staff
see, and the one the reconciliation joins on), else the commercetools Order `id` for an order without one;
`order(ref)` finds an order by either. Mapping (RAML types Order, LineItem, Delivery, ReturnInfo, Payment, Transaction):

- status: orderState Cancelled -> cancelled; shipmentState Shipped/Delivered or orderState Complete -> shipped;
  else open. `confirmed` = orderState is not Open (`confirm` = changeOrderState Confirmed).
- lines: a LineItem each; unit price = `taxedPrice.totalGross` (else `totalPrice`) / quantity (tax included, after
  discounts), list price = `price.value`, tax = `taxRate.amount`; shipped = units in the order's Deliveries,
  returned = units in its `returnInfo` items.
- shipments: one per Delivery (always complete: commercetools has no open shipment), lines
  `<delivery id>/<line item id>`; our marker travels in the Delivery's `key` (url-safe base64 of the marker:
  keys allow `[A-Za-z0-9_-]` only), tracking in its parcel's `trackingData {trackingId, carrier}`.
- returns: one per `returnInfo` entry: id = its first item's id, external id = `returnTrackingId` (the store
  return id the flow passes; item `key`s = `<that id, sanitised>-<n>`), refunded = every item's `paymentState`
  Refunded. Value = the returned units at their line's price.
- refund: a `Refund` transaction (Success) on the order's first payment with `interactionId` = the return's
  `returnTrackingId`, then `setReturnPaymentState Refunded` on every item. No `addQuantity`: NewStore restocks a
  sellable return in the store and the stock sync carries that to commercetools (a restock here would count twice).
- allocation: a line item's `supplyChannel` (channel key = the estate's location id = our "warehouse"). There is
  no documented way to change it on an order: Order update actions have no `setLineItemSupplyChannel` (it is a
  Cart action only: `CartSetLineItemSupplyChannelAction`), and Order Edits' staged actions offer
  `setLineItemDistributionChannel` but no supply channel (commercetools-dotnet-core-sdk-v2 Generated/Models
  OrderEdits, commercetools-go-sdk platform order update action decoder). LIMITATION: a re-route is recorded on the
  order as an `updateSyncInfo` entry on the target location's supply channel (no `externalId`, so the order's
  export marker stays the first `syncInfo.externalId`); the effective location is the newest such entry, else the
  lines' supply channel. The lines keep their original `supplyChannel`.
- every write is found again after a crash between commercetools' success and our commit: a return by its
  `returnTrackingId` (and item keys), a refund by the transaction's `interactionId` plus the items' payment
  states, a shipment by its Delivery `key`, a re-route by the effective location, an imported order by its
  `orderNumber` (= the store system's order id). Each update re-reads on 409 ConcurrentModification and re-checks
  before it resends.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pipelines.connectors.commercetools.client import CommercetoolsClient
from pipelines.connectors.commercetools.errors import (
    CommercetoolsError,
    ConcurrentModification,
    DuplicateField,
)
from pipelines.connectors.errors import TransientError
from pipelines.domain.flows.model import (
    CommerceAddress,
    CommerceAllocation,
    CommerceLine,
    CommerceOrder,
    CommerceReturn,
    CommerceReturnLine,
    CommerceShipment,
    ShipmentLine,
)
from pipelines.domain.flows.ports import (
    AllocationMove,
    CommerceRejected,
    CreateOrderRequest,
    ReturnRequest,
    ShipRequest,
)
from pipelines.estate.model import Estate, Location

UPDATE_ATTEMPTS = 8
_KEY_PREFIX = "m-"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def marker_key(marker: str) -> str:
    """A Delivery `key` that carries `marker` (keys: 2..256 of `[A-Za-z0-9_-]`)."""
    return _KEY_PREFIX + base64.urlsafe_b64encode(marker.encode()).decode().rstrip("=")


def marker_of_key(key: str | None) -> str | None:
    if not key or not key.startswith(_KEY_PREFIX):
        return key
    body = key[len(_KEY_PREFIX):]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return key


def item_key(external_id: str, n: int) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", external_id)[:240] + f"-{n}"


def _cents(m: dict[str, Any] | None) -> int:
    return int((m or {}).get("centAmount") or 0)


def _amount(cents: int | float) -> float:
    return round(cents / 100.0, 2)


def _line_gross_cents(li: dict[str, Any]) -> int:
    return _cents((li.get("taxedPrice") or {}).get("totalGross") or li.get("totalPrice"))


def _line_tax_cents(li: dict[str, Any]) -> int:
    taxed = li.get("taxedPrice") or {}
    if taxed.get("totalTax") is not None:
        return _cents(taxed["totalTax"])
    rate = float((li.get("taxRate") or {}).get("amount") or 0.0)
    gross = _line_gross_cents(li)
    return round(gross - gross / (1 + rate)) if rate else 0


def _deliveries(order: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((order.get("shippingInfo") or {}).get("deliveries") or [], key=lambda d: str(d["id"]))


def _shipment(delivery: dict[str, Any]) -> CommerceShipment:
    return CommerceShipment(
        shipment_id=str(delivery["id"]), completed=True, message=marker_of_key(delivery.get("key")),
        lines=tuple(ShipmentLine(f"{delivery['id']}/{it['id']}", str(it["id"]), int(it.get("quantity") or 0))
                    for it in delivery.get("items") or []))


class CommercetoolsCommerce:
    """`CommercePlatform` / `AllocatingCommerce` over a `CommercetoolsClient` for `estate`'s project."""

    def __init__(self, client: CommercetoolsClient, estate: Estate, *,
                 payment_interface: str = "newstore-store"):
        self.client = client
        self.estate = estate
        self.payment_interface = payment_interface  # paymentMethodInfo.paymentInterface of an imported order
        self._channels: dict[str, str] | None = None  # channel id -> key
        cfg = estate.commercetools
        self._market_of_store = {s.key: s.market_id for s in cfg.stores} if cfg else {}
        self._store_of_market = {s.market_id: s for s in cfg.stores} if cfg else {}
        self._locations = {loc.id for loc in estate.locations}

    # -- the estate's ids --------------------------------------------------------------------------------

    @staticmethod
    def warehouse_of_location(location: Location) -> str:
        """The flows' warehouse id of a location: its supply channel key (= the location id)."""
        return location.id

    def _channel_keys(self) -> dict[str, str]:
        if self._channels is None:
            self._channels = {str(c["id"]): str(c.get("key")) for c in self.client.channels()}
        return self._channels

    def _channel_id(self, key: str) -> str:
        found = next((cid for cid, k in self._channel_keys().items() if k == key), None)
        if found is None:
            self._channels = None
            found = next((cid for cid, k in self._channel_keys().items() if k == key), None)
        if found is None:
            raise CommercetoolsError(f"commercetools has no channel with key {key!r}")
        return found

    def _key_of(self, channel: dict[str, Any] | None) -> str | None:
        if not channel:
            return None
        if channel.get("key"):
            return str(channel["key"])
        return self._channel_keys().get(str(channel.get("id")))

    # -- reads -------------------------------------------------------------------------------------------

    def _raw(self, ref: str) -> dict[str, Any] | None:
        ref = str(ref)
        found = self.client.order(ref) if _UUID.match(ref) else None
        return found if found is not None else self.client.order_by_number(ref)

    def _must(self, ref: str) -> dict[str, Any]:
        found = self._raw(ref)
        if found is None:
            raise TransientError(f"commercetools order {ref} is not (yet) readable")
        return found

    def _location_of(self, order: dict[str, Any]) -> dict[str, str]:
        """Line item id -> the location (channel key) its open units are at: the newest re-route recorded in
        `syncInfo` on a location's channel, else the line's own supply channel."""
        moved = None
        for info in order.get("syncInfo") or []:
            key = self._key_of(info.get("channel"))
            if key in self._locations:
                moved = key
        out = {}
        for li in order.get("lineItems") or []:
            key = moved or self._key_of(li.get("supplyChannel"))
            if key:
                out[str(li["id"])] = key
        return out

    def _returns(self, order: dict[str, Any]) -> list[CommerceReturn]:
        lines = {str(li["id"]): li for li in order.get("lineItems") or []}
        # Return items name line items, not deliveries: attribute them to the line's deliveries in id order.
        left: dict[str, list[list[Any]]] = defaultdict(list)  # line id -> [[shipment line id, units left]]
        for d in _deliveries(order):
            for it in d.get("items") or []:
                left[str(it["id"])].append([f"{d['id']}/{it['id']}", int(it.get("quantity") or 0)])
        out = []
        for info in order.get("returnInfo") or []:
            items = info.get("items") or []
            if not items:
                continue
            value = tax = 0.0
            rlines = []
            for it in items:
                lid, qty = str(it.get("lineItemId")), int(it.get("quantity") or 0)
                li = lines.get(lid)
                if li is not None and int(li.get("quantity") or 0):
                    value += _line_gross_cents(li) * qty / int(li["quantity"])
                    tax += _line_tax_cents(li) * qty / int(li["quantity"])
                need = qty
                for slot in left.get(lid, []):
                    take = min(need, slot[1])
                    if take > 0:
                        rlines.append(CommerceReturnLine(slot[0], lid, take))
                        slot[1] -= take
                        need -= take
                if need:
                    rlines.append(CommerceReturnLine(None, lid, need))
            out.append(CommerceReturn(
                return_id=str(items[0]["id"]), external_id=info.get("returnTrackingId"),
                refunded=all(it.get("paymentState") == "Refunded" for it in items),
                grand_total=_amount(round(value)), tax_total=_amount(round(tax)), lines=tuple(rlines)))
        return out

    def _order(self, o: dict[str, Any]) -> CommerceOrder:
        shipped: dict[str, int] = defaultdict(int)
        for d in _deliveries(o):
            for it in d.get("items") or []:
                shipped[str(it["id"])] += int(it.get("quantity") or 0)
        returned: dict[str, int] = defaultdict(int)
        for info in o.get("returnInfo") or []:
            for it in info.get("items") or []:
                returned[str(it.get("lineItemId"))] += int(it.get("quantity") or 0)
        total = (o.get("taxedPrice") or {}).get("totalGross") or o.get("totalPrice") or {}
        currency = str(total.get("currencyCode") or "")
        lines = []
        for li in o.get("lineItems") or []:
            qty = int(li.get("quantity") or 0)
            lines.append(CommerceLine(
                line_id=str(li["id"]), sku=str((li.get("variant") or {}).get("sku") or ""), quantity=qty,
                shipped_quantity=shipped[str(li["id"])], returned_quantity=returned[str(li["id"])],
                unit_price=_amount(_line_gross_cents(li) / qty) if qty else 0.0,
                tax_percent=round(float((li.get("taxRate") or {}).get("amount") or 0.0) * 100, 4),
                list_price=self._list_price(li, currency, o.get("country"))))
        state, shipment = o.get("orderState"), o.get("shipmentState")
        status = ("cancelled" if state == "Cancelled" else
                  "shipped" if shipment in ("Shipped", "Delivered") or state == "Complete" else "open")
        info = o.get("shippingInfo") or {}
        method = info.get("shippingMethod") or {}
        store_key = (o.get("store") or {}).get("key")
        market = self._market_of_store.get(store_key) if store_key else None
        pricelist = next((p.id for p in self.estate.centra.pricelists if p.currency == currency
                          and (not o.get("country") or o.get("country") in p.countries)), None)
        return CommerceOrder(
            ref=order_ref(o), status=status, currency=currency, lines=tuple(lines),
            shipments=tuple(_shipment(d) for d in _deliveries(o)), returns=tuple(self._returns(o)),
            shipping_option=method.get("key") or info.get("shippingMethodName"),
            allocated_warehouses=tuple(sorted(set(self._location_of(o).values()))),
            market_id=str(market) if market is not None else None,
            pricelist_id=str(pricelist) if pricelist is not None else None,
            email=o.get("customerEmail") or (o.get("shippingAddress") or {}).get("email"),
            grand_total=_amount(_cents(total)), confirmed=state != "Open")

    def _list_price(self, li: dict[str, Any], currency: str, country: str | None) -> float:
        """The price list's unit price: the variant's Price for the order's currency and country on the web price
        channel (an imported line keeps what it was charged in `price`), else the line's `price`."""
        web = self._channel_of_key(self.estate.commercetools.price_channel_key) if self.estate.commercetools else None
        for p in (li.get("variant") or {}).get("prices") or []:
            if (p.get("value") or {}).get("currencyCode") == currency and p.get("country") == country \
                    and (p.get("channel") or {}).get("id") == web:
                return _amount(_cents(p["value"]))
        return _amount(_cents((li.get("price") or {}).get("value")))

    def _channel_of_key(self, key: str) -> str | None:
        return next((cid for cid, k in self._channel_keys().items() if k == key), None)

    def order(self, ref: str) -> CommerceOrder | None:
        found = self._raw(ref)
        return self._order(found) if found is not None else None

    # -- optimistic concurrency --------------------------------------------------------------------------

    def _update_order(self, ref: str, build: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> dict[str, Any]:
        """Read, build the actions still needed (none: done), send; on 409 read again and re-check."""
        for _ in range(UPDATE_ATTEMPTS):
            order = self._must(ref)
            actions = build(order)
            if not actions:
                return order
            try:
                return self.client.update_order(str(order["id"]), int(order["version"]), actions)
            except ConcurrentModification:
                continue
        raise TransientError(f"commercetools order {ref}: still concurrently modified after {UPDATE_ATTEMPTS} tries")

    def _update_payment(self, payment_id: str,
                        build: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> dict[str, Any]:
        for _ in range(UPDATE_ATTEMPTS):
            payment = self.client.payment(payment_id)
            if payment is None:
                raise TransientError(f"commercetools payment {payment_id} is not (yet) readable")
            actions = build(payment)
            if not actions:
                return payment
            try:
                return self.client.update_payment(payment_id, int(payment["version"]), actions)
            except ConcurrentModification:
                continue
        raise TransientError(f"commercetools payment {payment_id}: still concurrently modified")

    # -- writes ------------------------------------------------------------------------------------------

    def confirm(self, ref: str) -> None:
        self._update_order(ref, lambda o: [{"action": "changeOrderState", "orderState": "Confirmed"}]
                           if o.get("orderState") == "Open" else [])

    def _return_of(self, order: dict[str, Any], external_id: str) -> CommerceReturn | None:
        return next((r for r in self._returns(order) if r.external_id == external_id), None)

    def create_return(self, request: ReturnRequest) -> CommerceReturn:
        def build(o: dict[str, Any]) -> list[dict[str, Any]]:
            if self._return_of(o, request.external_id) is not None:
                return []
            units: dict[str, int] = defaultdict(int)
            for shipment_line, qty in request.lines:
                units[shipment_line.rsplit("/", 1)[-1]] += qty
            action: dict[str, Any] = {"action": "addReturnInfo", "returnTrackingId": request.external_id, "items": [
                {"lineItemId": lid, "quantity": q, "shipmentState": "Returned", "comment": request.comment[:250],
                 "key": item_key(request.external_id, n + 1)} for n, (lid, q) in enumerate(sorted(units.items()))]}
            if request.returned_at:
                action["returnDate"] = request.returned_at
            return [action]
        try:
            order = self._update_order(request.order_ref, build)
        except DuplicateField:  # an item key of ours exists: the earlier write landed
            order = self._must(request.order_ref)
        found = self._return_of(order, request.external_id)
        if found is None:
            raise TransientError(f"commercetools order {request.order_ref}: return {request.external_id} not found "
                                 "after writing it")
        return found

    def _find_return(self, return_id: str) -> tuple[dict[str, Any], CommerceReturn, dict[str, Any]]:
        orders = list(self.client.orders(where=f'returnInfo(items(id="{return_id}"))'))
        if not orders:
            raise TransientError(f"no commercetools order holds return {return_id}")
        order = orders[0]
        ret = next(r for r in self._returns(order) if r.return_id == return_id)
        info = next(i for i in order.get("returnInfo") or [] if str((i.get("items") or [{}])[0].get("id")) == return_id)
        return order, ret, info

    def refund_return(self, return_id: str) -> CommerceReturn:
        order, ret, info = self._find_return(return_id)
        interaction = ret.external_id or return_id
        payments = (order.get("paymentInfo") or {}).get("payments") or []
        if not payments:
            raise CommerceRejected(f"commercetools order {order['id']} has no payment to refund return {return_id}",
                                   {"order": order["id"], "return": return_id})
        currency = str((order.get("totalPrice") or {}).get("currencyCode"))
        cents = round(ret.grand_total * 100)

        def add_refund(p: dict[str, Any]) -> list[dict[str, Any]]:
            if any(t.get("type") == "Refund" and t.get("interactionId") == interaction
                   for t in p.get("transactions") or []):
                return []
            return [{"action": "addTransaction", "transaction": {
                "type": "Refund", "amount": {"currencyCode": currency, "centAmount": cents}, "state": "Success",
                "interactionId": interaction}}]
        if cents > 0:
            self._update_payment(str(payments[0]["id"]), add_refund)
        item_ids = {str(it["id"]) for it in info.get("items") or []}

        def mark(o: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"action": "setReturnPaymentState", "returnItemId": it["id"], "paymentState": "Refunded"}
                    for r in o.get("returnInfo") or [] for it in r.get("items") or []
                    if str(it["id"]) in item_ids and it.get("paymentState") != "Refunded"]
        updated = self._update_order(str(order["id"]), mark)
        return next(r for r in self._returns(updated) if r.return_id == return_id)

    def _ship(self, request: ShipRequest, carrier: str | None, tracking: str | None) -> CommerceShipment:
        key = marker_key(request.marker)

        def build(o: dict[str, Any]) -> list[dict[str, Any]]:
            if any(d.get("key") == key for d in _deliveries(o)):
                return []
            items = [{"id": lid, "quantity": q} for lid, q in request.lines]
            parcel: dict[str, Any] = {"items": items}
            if tracking or carrier:
                parcel["trackingData"] = {k: v for k, v in (("trackingId", tracking), ("carrier", carrier)) if v}
            shipped: dict[str, int] = defaultdict(int)
            for d in _deliveries(o):
                for it in d.get("items") or []:
                    shipped[str(it["id"])] += int(it.get("quantity") or 0)
            for lid, q in request.lines:
                shipped[lid] += q
            complete = all(shipped[str(li["id"])] >= int(li.get("quantity") or 0) for li in o.get("lineItems") or [])
            actions: list[dict[str, Any]] = [{"action": "addDelivery", "deliveryKey": key, "items": items,
                                              "parcels": [parcel]}]
            state = "Shipped" if complete else "Partial"
            if o.get("shipmentState") != state:
                actions.append({"action": "changeShipmentState", "shipmentState": state})
            return actions
        order = self._update_order(request.order_ref, build)
        return _shipment(next(d for d in _deliveries(order) if d.get("key") == key))

    def ship(self, request: ShipRequest) -> CommerceShipment:
        return self._ship(request, None, None)

    def complete_shipment(self, shipment_id: str, *, notify_customer: bool,
                          shipped_at: str | None = None) -> CommerceShipment:
        """A Delivery is complete once added: the shipment as it is."""
        return self.complete_tracked(shipment_id, notify_customer=notify_customer, carrier=None, tracking_number=None)

    # -- ship-from-store ---------------------------------------------------------------------------------

    def order_allocations(self, ref: str) -> tuple[CommerceOrder, tuple[CommerceAllocation, ...]] | None:
        raw = self._raw(ref)
        if raw is None:
            return None
        order = self._order(raw)
        at = self._location_of(raw)
        allocations = tuple(CommerceAllocation(ln.line_id, at[ln.line_id], ln.quantity - ln.shipped_quantity)
                            for ln in order.lines if ln.line_id in at and ln.quantity - ln.shipped_quantity > 0)
        return order, allocations

    def free_to_allocate(self, warehouse_id: str, skus: tuple[str, ...]) -> dict[str, int]:
        channel = self._channel_id(warehouse_id)
        out = {sku: 0 for sku in skus}
        for e in self.client.inventory_entries(skus=sorted(set(skus)), channel_ids=[channel]):
            if (e.get("supplyChannel") or {}).get("id") == channel:
                out[str(e["sku"])] = max(0, int(e.get("availableQuantity") or 0))
        return out

    def move_allocation(self, move: AllocationMove) -> None:
        """Record the order's location as `to_warehouse` (see the module docstring: the line items' supply
        channel cannot be changed on an order); a no-op when it is there already."""
        channel = self._channel_id(move.to_warehouse)

        def build(o: dict[str, Any]) -> list[dict[str, Any]]:
            at = self._location_of(o)
            if at and all(v == move.to_warehouse for v in at.values()):
                return []
            return [{"action": "updateSyncInfo", "channel": {"typeId": "channel", "id": channel}}]
        self._update_order(move.order_ref, build)

    def delivery_address(self, ref: str) -> CommerceAddress | None:
        raw = self._raw(ref)
        addr = (raw or {}).get("shippingAddress")
        if not addr:
            return None
        street = " ".join(x for x in (addr.get("streetName"), addr.get("streetNumber")) if x) or None
        return CommerceAddress(first_name=addr.get("firstName"), last_name=addr.get("lastName"), line1=street,
                               line2=addr.get("additionalStreetInfo"), city=addr.get("city"),
                               zip_code=addr.get("postalCode"), country=addr.get("country"),
                               email=addr.get("email") or (raw or {}).get("customerEmail"),
                               phone=addr.get("phone") or addr.get("mobile"))

    def ship_tracked(self, request: ShipRequest, *, carrier: str | None,
                     tracking_number: str | None) -> CommerceShipment:
        return self._ship(request, carrier, tracking_number)

    def complete_tracked(self, shipment_id: str, *, notify_customer: bool, carrier: str | None,
                         tracking_number: str | None) -> CommerceShipment:
        orders = list(self.client.orders(where=f'shippingInfo(deliveries(id="{shipment_id}"))'))
        if not orders:
            raise TransientError(f"no commercetools order holds delivery {shipment_id}")
        ref = str(orders[0]["id"])

        def build(o: dict[str, Any]) -> list[dict[str, Any]]:
            d = next(d for d in _deliveries(o) if str(d["id"]) == shipment_id)
            if not tracking_number or not d.get("parcels") or d["parcels"][0].get("trackingData"):
                return []
            return [{"action": "setParcelTrackingData", "parcelId": d["parcels"][0]["id"], "trackingData": {
                k: v for k, v in (("trackingId", tracking_number), ("carrier", carrier)) if v}}]
        order = self._update_order(ref, build)
        return _shipment(next(d for d in _deliveries(order) if str(d["id"]) == shipment_id))

    # -- orders created from outside (endless aisle): `POST /orders/import`, orderNumber = the store order id ----

    def order_by_external_id(self, external_id: str, market_id: str) -> CommerceOrder | None:
        found = self.client.order_by_number(external_id)
        if found is None:
            return None
        if not (found.get("paymentInfo") or {}).get("payments"):  # a crash between the import and the payment
            total = found.get("totalPrice") or {}
            self._attach_payment(found, external_id, str(total.get("currencyCode")), _cents(total), None)
            found = self._must(str(found["id"]))
        return self._order(found)

    def create_order(self, request: CreateOrderRequest) -> CommerceOrder:
        """Import the order (`POST /orders/import`: no cart, prices as charged in the store, tax included at the
        store country's rate) with a guest `customerEmail`, the store's commercetools Store, the shipping
        method by key (the explicit shipping map), `paymentState` Paid and a Payment holding a Success Charge
        (Payment `key` = f(external id)). Found again by `orderNumber` = `external_id`."""
        if request.register_customer:  # a guest order with a customer account made up would be a silent lie
            raise CommerceRejected(f"order {request.external_id}: registered customers are not created for imported "
                                   "orders on commercetools (guest orders only)", {"register_customer": True})
        store = self._store_of_market.get(int(request.market_id)) if str(request.market_id).isdigit() else None
        country = request.address.country
        cfg = self.estate.commercetools
        channel = {"channel": {"typeId": "channel", "key": cfg.price_channel_key}} if cfg else {}
        rate = float(self.estate.tax_rates.get(country, 0.0))
        lines = [{"name": {"en": ln.sku}, "variant": {"sku": ln.sku}, "quantity": ln.quantity,
                  "price": {"value": {"currencyCode": request.currency, "centAmount": round(ln.unit_price * 100)},
                            "country": country, **channel},
                  "taxRate": {"name": f"{country} {rate:g}", "amount": rate, "includedInPrice": True,
                              "country": country}}
                 for ln in request.lines]
        total = sum(round(ln.unit_price * 100) * ln.quantity for ln in request.lines)
        a = request.address
        draft: dict[str, Any] = {
            "orderNumber": request.external_id, "customerEmail": a.email, "country": country,
            "totalPrice": {"currencyCode": request.currency, "centAmount": total}, "lineItems": lines,
            "shippingAddress": {k: v for k, v in (
                ("firstName", a.first_name), ("lastName", a.last_name), ("streetName", a.address1),
                ("additionalStreetInfo", a.address2), ("city", a.city), ("postalCode", a.zip_code),
                ("state", a.state), ("country", a.country), ("email", a.email), ("phone", a.phone)) if v},
            "shippingInfo": {"shippingMethodName": request.shipping_option,
                             "shippingMethod": {"typeId": "shipping-method", "key": request.shipping_option},
                             "price": {"currencyCode": request.currency, "centAmount": 0},
                             "shippingRate": {"price": {"currencyCode": request.currency, "centAmount": 0}}},
            "orderState": "Open", "paymentState": "Paid", "origin": "Merchant"}
        if store is not None:
            draft["store"] = {"typeId": "store", "key": store.key}
        if request.placed_at:
            draft["completedAt"] = request.placed_at
        try:
            order = self.client.import_order(draft)
        except DuplicateField:
            order = self.client.order_by_number(request.external_id)
            if order is None:
                raise
        except CommercetoolsError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (409, 429):
                raise CommerceRejected(str(exc), {"errors": exc.errors, "request": draft}) from exc
            raise
        self._attach_payment(order, request.external_id, request.currency, round(request.paid_amount * 100),
                             request.payment_reference)
        return self._order(self._must(str(order["id"])))

    def _attach_payment(self, order: dict[str, Any], external_id: str, currency: str, cents: int,
                        reference: str | None) -> None:
        """The store's payment as a Payment (`key` = f(external id): created once) on the order."""
        if (order.get("paymentInfo") or {}).get("payments"):
            return
        key = "ea-" + item_key(external_id, 0)
        amount = {"currencyCode": currency, "centAmount": cents}
        try:
            payment = self.client.create_payment({
                "key": key, "amountPlanned": amount,
                "paymentMethodInfo": {"paymentInterface": self.payment_interface, "method": "store"},
                "transactions": [{"type": "Charge", "amount": amount, "state": "Success",
                                  **({"interactionId": reference} if reference else {})}]})
        except DuplicateField:
            payment = self.client.get(f"/payments/key={key}")
        self._update_order(str(order["id"]), lambda o: [] if (o.get("paymentInfo") or {}).get("payments") else [
            {"action": "addPayment", "payment": {"typeId": "payment", "id": payment["id"]}}])


def order_ref(order: dict[str, Any]) -> str:
    """The order's reference for the flows and the store system: its `orderNumber`, else its `id`."""
    return str(order.get("orderNumber") or order["id"])
