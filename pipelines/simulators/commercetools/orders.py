"""Carts, Orders (from cart and by import), Order update actions, Payments and the world API for orders.

Inventory effect of an order (``InventoryMode`` enum descriptions in the RAML):
``None`` no check and no change; ``TrackOnly`` deducts, fails with OutOfStock only when no entry exists for
(sku, supplyChannel); ``ReserveOnOrder`` fails with OutOfStock when the available quantity is short (unless the
entry has ``restockableInDays``); ``ReserveOnCart`` reserves when the cart is created and deducts on order.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from .common import (
    CtError,
    duplicate,
    invalid_input,
    invalid_json,
    invalid_operation,
    iso,
    money,
    money_from_draft,
    net_of,
    new_id,
    parse_time,
    ref,
)
from .inventory import InventoryMixin, _actions, _set

ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
SHIPMENT_STATES = ("Shipped", "Delivered", "Ready", "Pending", "Delayed", "Partial", "Backorder", "Canceled")
PAYMENT_STATES = ("BalanceDue", "Failed", "Pending", "CreditOwed", "Paid")
RETURN_SHIPMENT_STATES = ("Advised", "Returned", "BackInStock", "Unusable")
RETURN_PAYMENT_STATES = ("NonRefundable", "Initial", "Refunded", "NotRefunded")
INVENTORY_MODES = ("None", "TrackOnly", "ReserveOnOrder", "ReserveOnCart")
TRANSACTION_TYPES = ("Authorization", "CancelAuthorization", "Charge", "Refund", "Chargeback")
TRANSACTION_STATES = ("Initial", "Pending", "Success", "Failure")
# setReturnShipmentState: Returned -> BackInStock | Unusable (reference §3.3); Advised -> Returned is an ASSUMPTION.
RETURN_TRANSITIONS = {"Advised": ("Returned",), "Returned": ("BackInStock", "Unusable")}
INITIAL_RETURN_PAYMENT = {"Advised": "NonRefundable", "Returned": "Initial"}


def _enum(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise invalid_json(f"Request body does not contain valid JSON. {field}: Unknown value '{value}'.")
    return value


class OrdersMixin(InventoryMixin):
    def _init_orders(self) -> None:
        self.line_item_state_id = new_id()  # the Initial LineItemState every line item starts in

    # -- pricing ---------------------------------------------------------------------------------------

    def _tax_rate(self, country: str) -> dict[str, Any]:
        for rate in self.tax_category["rates"]:
            if rate["country"] == country:
                return copy.deepcopy(rate)
        raise invalid_operation(f"No tax rate for country '{country}' in tax category 'standard'.")

    def _line_item(self, draft: dict[str, Any], *, currency: str, country: str, store: dict[str, Any] | None,
                   mode: str, at: datetime) -> dict[str, Any]:
        sku, qty = draft.get("sku"), draft.get("quantity", 1)
        if not isinstance(sku, str) or not isinstance(qty, int) or qty < 1:
            raise invalid_input("A line item needs 'sku' and a positive 'quantity'.")
        product, variant = self._variant(sku)
        dist = draft.get("distributionChannel")
        if dist is not None:
            dist_ref = ref("channel", self._resolve("channels", dist, "channel")["id"])
        elif store and store.get("distributionChannels"):
            dist_ref = copy.deepcopy(store["distributionChannels"][0])  # ASSUMPTION: the store's first channel
        else:
            dist_ref = ref("channel", self.channel_ids[self.estate.commercetools.price_channel_key])  # type: ignore
        price = next((p for p in variant["prices"] if p["value"]["currencyCode"] == currency
                      and p.get("country") == country and (p.get("channel") or {}).get("id") == dist_ref["id"]), None)
        if price is None:
            raise CtError(400, "MatchingPriceNotFound",
                          f"The variant '{variant['id']}' of product '{product['id']}' does not contain a price for "
                          f"currency '{currency}', country '{country}', channel '{dist_ref['id']}'.",
                          productId=product["id"], variantId=variant["id"], currency=currency, country=country,
                          channel=dist_ref)
        supply = None
        if draft.get("supplyChannel") is not None:
            supply = ref("channel", self._resolve("channels", draft["supplyChannel"], "channel")["id"])
        rate = self._tax_rate(country)
        gross = price["value"]["centAmount"] * qty
        net = net_of(gross, rate["amount"])
        current = product["masterData"]["current"]
        line: dict[str, Any] = {
            "id": new_id(), "productId": product["id"], "productKey": product.get("key"), "name": current["name"],
            "productType": dict(product["productType"], version=1), "productSlug": current["slug"],
            "variant": copy.deepcopy(variant), "price": copy.deepcopy(price), "quantity": qty,
            "discountedPricePerQuantity": [], "distributionChannel": dist_ref, "taxRate": rate,
            "perMethodTaxRate": [], "addedAt": iso(at), "lastModifiedAt": iso(at),
            "state": [{"quantity": qty, "state": ref("state", self.line_item_state_id)}],
            "priceMode": "Platform", "lineItemMode": "Standard", "totalPrice": money(gross, currency),
            "taxedPrice": {"totalNet": money(net, currency), "totalGross": money(gross, currency),
                           "taxPortions": [{"rate": rate["amount"], "amount": money(gross - net, currency),
                                            "name": rate["name"]}],
                           "totalTax": money(gross - net, currency)},
            "taxedPricePortions": []}
        if supply:
            line["supplyChannel"] = supply
        if draft.get("inventoryMode"):
            line["inventoryMode"] = _enum(draft["inventoryMode"], INVENTORY_MODES, "inventoryMode")
        if draft.get("key"):
            line["key"] = draft["key"]
        return line

    @staticmethod
    def _totals(lines: list[dict[str, Any]], currency: str) -> tuple[dict[str, Any], dict[str, Any]]:
        gross = sum(li["totalPrice"]["centAmount"] for li in lines)
        net = sum(li["taxedPrice"]["totalNet"]["centAmount"] for li in lines) if lines else 0
        portions: dict[tuple[float, str], int] = {}
        for li in lines:
            key = (li["taxRate"]["amount"], li["taxRate"]["name"])
            portions[key] = portions.get(key, 0) + li["taxedPrice"]["totalTax"]["centAmount"]
        taxed = {"totalNet": money(net, currency), "totalGross": money(gross, currency),
                 "taxPortions": [{"rate": r, "amount": money(a, currency), "name": n}
                                 for (r, n), a in portions.items()],
                 "totalTax": money(gross - net, currency)}
        return money(gross, currency), taxed

    # -- carts -----------------------------------------------------------------------------------------

    def create_cart(self, draft: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            self._settle()
            ts = at or self.now()
            if not isinstance(draft, dict) or not isinstance(draft.get("currency"), str):
                raise invalid_json("Request body does not contain valid JSON. currency: Missing required value")
            currency = draft["currency"]
            mode = _enum(draft.get("inventoryMode", "None"), INVENTORY_MODES, "inventoryMode")
            store = None
            if draft.get("store") is not None:
                store = self._resolve("stores", draft["store"], "store")
            country = draft.get("country") or (draft.get("shippingAddress") or {}).get("country")
            if not country:
                raise invalid_operation("The cart needs a 'country' (or a shipping address) to select prices.")
            lines = [self._line_item(li, currency=currency, country=country, store=store, mode=mode, at=ts)
                     for li in draft.get("lineItems") or []]
            total, taxed = self._totals(lines, currency)
            fields: dict[str, Any] = {
                "lineItems": lines, "customLineItems": [], "totalPrice": total, "taxedPrice": taxed,
                "country": country, "cartState": "Active", "inventoryMode": mode, "taxMode": "Platform",
                "taxRoundingMode": "HalfEven", "taxCalculationMode": "LineItemLevel",
                "priceRoundingMode": "HalfEven", "shippingMode": "Single", "shipping": [],
                "itemShippingAddresses": [], "discountCodes": [], "directDiscounts": [], "refusedGifts": [],
                "origin": draft.get("origin", "Customer")}
            for name in ("key", "customerId", "customerEmail", "anonymousId", "locale", "purchaseOrderNumber"):
                if draft.get(name) is not None:
                    fields[name] = draft[name]
            for name in ("shippingAddress", "billingAddress"):
                if draft.get(name) is not None:
                    fields[name] = copy.deepcopy(draft[name])
            if store:
                fields["store"] = {"typeId": "store", "key": store["key"]}
            custom = self._custom_from_draft("orders", draft.get("custom"))
            if custom:
                fields["custom"] = custom
            if mode == "ReserveOnCart":
                for li in lines:
                    entry = self._entry_for(li["variant"]["sku"], (li.get("supplyChannel") or {}).get("id"))
                    if entry is None or self._internal_available(entry) < li["quantity"]:
                        raise _out_of_stock([li])
                for li in lines:
                    entry = self._entry_for(li["variant"]["sku"], (li.get("supplyChannel") or {}).get("id"))
                    self._reserve(entry, li["quantity"])  # type: ignore[arg-type]
            doc = self._new_doc("carts", fields, ts)
            return copy.deepcopy(doc)

    # -- orders ----------------------------------------------------------------------------------------

    def _check_order_number(self, number: Any) -> None:
        if number is not None and any(o.get("orderNumber") == number for o in self.docs["orders"].values()):
            raise duplicate("orderNumber", number)

    def _apply_inventory(self, lines: list[dict[str, Any]], mode: str, at: datetime, reserved: bool) -> None:
        """Check then deduct per the cart's/order's inventory mode (all or nothing)."""
        failed, plan = [], []
        for li in lines:
            line_mode = li.get("inventoryMode", mode)
            if line_mode == "None":
                continue
            entry = self._entry_for(li["variant"]["sku"], (li.get("supplyChannel") or {}).get("id"))
            if entry is None:
                failed.append(li)
                continue
            if line_mode == "ReserveOnOrder" and self._internal_available(entry) < li["quantity"] \
                    and entry.get("restockableInDays") is None:
                failed.append(li)
                continue
            plan.append((entry["id"], li["quantity"], line_mode == "ReserveOnCart" and reserved))
        if failed:
            raise _out_of_stock(failed)
        for eid, qty, was_reserved in plan:
            self._deduct(self.docs["inventory"][eid], qty, at, reserved=was_reserved)

    def create_order_from_cart(self, draft: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            self._settle()
            ts = at or self.now()
            if not isinstance(draft, dict) or not isinstance(draft.get("cart"), dict):
                raise invalid_json("Request body does not contain valid JSON. cart: Missing required value")
            cart = self._resolve("carts", draft["cart"], "cart")
            if cart["cartState"] != "Active":
                raise invalid_operation(f"The cart '{cart['id']}' is not active (cartState {cart['cartState']}).")
            self._check_version("carts", cart, draft.get("version"))
            if not cart["lineItems"]:
                raise invalid_operation("The cart has no line items.")
            self._check_order_number(draft.get("orderNumber"))
            self._apply_inventory(cart["lineItems"], cart["inventoryMode"], ts, reserved=True)
            fields = {k: copy.deepcopy(v) for k, v in cart.items()
                      if k not in ("id", "version", "createdAt", "lastModifiedAt", "lastModifiedBy", "createdBy",
                                   "cartState", "key", "priceRoundingMode")}
            fields.update({"orderState": _enum(draft.get("orderState", "Open"), ORDER_STATES, "orderState"),
                           "syncInfo": [], "returnInfo": [], "cart": ref("cart", cart["id"]),
                           "shippingInfo": self._shipping_info(cart["totalPrice"]["currencyCode"])})
            for name, allowed in (("shipmentState", SHIPMENT_STATES), ("paymentState", PAYMENT_STATES)):
                if draft.get(name) is not None:
                    fields[name] = _enum(draft[name], allowed, name)
            if draft.get("orderNumber") is not None:
                fields["orderNumber"] = draft["orderNumber"]
            if draft.get("custom"):
                fields["custom"] = self._custom_from_draft("orders", draft["custom"])
            order = self._new_doc("orders", fields, ts)
            new_cart = copy.deepcopy(cart)
            new_cart["cartState"] = "Ordered"
            self._commit("carts", cart, new_cart, [], ts)
            self.updates["orders"] += 1
            self._message("orders", order, "OrderCreated", {"order": copy.deepcopy(order)}, ts)
            return copy.deepcopy(order)

    @staticmethod
    def _shipping_info(currency: str) -> dict[str, Any]:
        """ASSUMPTION (knob-free): every order carries a zero-priced ``Standard`` shipping method so Deliveries
        have a ShippingInfo to live in (``shippingInfo.deliveries``)."""
        zero = money(0, currency)
        return {"shippingMethodName": "Standard", "price": zero, "shippingRate": {"price": zero, "tiers": []},
                "deliveries": [], "shippingMethodState": "MatchesCart"}

    def import_order(self, draft: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            self._settle()
            ts = at or self.now()
            if not isinstance(draft, dict) or draft.get("totalPrice") is None:
                raise invalid_json("Request body does not contain valid JSON. totalPrice: Missing required value")
            total = money_from_draft(draft["totalPrice"])
            currency = total["currencyCode"]
            self._check_order_number(draft.get("orderNumber"))
            mode = _enum(draft.get("inventoryMode", "None"), INVENTORY_MODES, "inventoryMode")
            lines = [self._import_line(li, currency, ts) for li in draft.get("lineItems") or []]
            custom_lines = []
            for cl in draft.get("customLineItems") or []:
                m = money_from_draft(cl.get("money"))
                qty = int(cl.get("quantity", 1))
                custom_lines.append({"id": new_id(), "name": cl.get("name"), "money": m, "slug": cl.get("slug"),
                                     "quantity": qty, "discountedPricePerQuantity": [],
                                     "state": [{"quantity": qty, "state": ref("state", self.line_item_state_id)}],
                                     "totalPrice": money(m["centAmount"] * qty, m["currencyCode"]),
                                     "taxedPricePortions": [], "perMethodTaxRate": [], "priceMode": "Standard"})
            self._apply_inventory(lines, mode, ts, reserved=False)
            fields: dict[str, Any] = {
                "lineItems": lines, "customLineItems": custom_lines, "totalPrice": total,
                "orderState": _enum(draft.get("orderState", "Open"), ORDER_STATES, "orderState"),
                "syncInfo": [], "returnInfo": [], "taxMode": "External", "inventoryMode": mode,
                "taxRoundingMode": draft.get("taxRoundingMode", "HalfEven"),
                "taxCalculationMode": draft.get("taxCalculationMode", "LineItemLevel"),
                "origin": draft.get("origin", "Customer"), "shippingMode": "Single", "shipping": [],
                "itemShippingAddresses": [], "discountCodes": [], "directDiscounts": [], "refusedGifts": [],
                "completedAt": iso(parse_time(draft["completedAt"])) if draft.get("completedAt") else None}
            if fields["completedAt"] is None:
                del fields["completedAt"]
            for name in ("orderNumber", "purchaseOrderNumber", "customerId", "customerEmail", "country",
                         "taxedPrice", "billingAddress", "shippingAddress"):
                if draft.get(name) is not None:
                    fields[name] = copy.deepcopy(draft[name])
            for name, allowed in (("shipmentState", SHIPMENT_STATES), ("paymentState", PAYMENT_STATES)):
                if draft.get(name) is not None:
                    fields[name] = _enum(draft[name], allowed, name)
            if draft.get("store") is not None:
                fields["store"] = {"typeId": "store", "key": self._resolve("stores", draft["store"], "store")["key"]}
            if draft.get("shippingInfo") is not None:
                info = copy.deepcopy(draft["shippingInfo"])
                info.setdefault("deliveries", [])
                fields["shippingInfo"] = info
            else:
                fields["shippingInfo"] = self._shipping_info(currency)
            if draft.get("custom"):
                fields["custom"] = self._custom_from_draft("orders", draft["custom"])
            order = self._new_doc("orders", fields, ts)
            self.updates["orders"] += 1
            self._message("orders", order, "OrderImported", {"order": copy.deepcopy(order)}, ts)
            return copy.deepcopy(order)

    def _import_line(self, draft: dict[str, Any], currency: str, at: datetime) -> dict[str, Any]:
        """A LineItemImportDraft ``{name, variant{sku}, price{value}, quantity, supplyChannel?, taxRate?}``."""
        variant_draft = draft.get("variant") or {}
        sku = variant_draft.get("sku")
        qty = draft.get("quantity")
        if not isinstance(sku, str) or not isinstance(qty, int) or not isinstance(draft.get("price"), dict):
            raise invalid_json("Request body does not contain valid JSON. lineItems: 'variant.sku', 'price' and "
                               "'quantity' are required.")
        value = money_from_draft(draft["price"].get("value"))
        line: dict[str, Any] = {"id": new_id(), "name": draft.get("name") or {"en": sku},
                                "variant": {"id": variant_draft.get("id", 1), "sku": sku, "prices": [],
                                            "images": [], "attributes": [], "assets": []},
                                "price": {"id": new_id(), "value": value}, "quantity": qty,
                                "discountedPricePerQuantity": [], "perMethodTaxRate": [], "addedAt": iso(at),
                                "lastModifiedAt": iso(at),
                                "state": [{"quantity": qty, "state": ref("state", self.line_item_state_id)}],
                                "priceMode": "ExternalPrice", "lineItemMode": "Standard",
                                "totalPrice": money(value["centAmount"] * qty, value["currencyCode"]),
                                "taxedPricePortions": []}
        product, variant = self._variant(sku)  # ProductVariantImportDraft refers to an existing variant
        line.update({"productId": product["id"], "productKey": product.get("key"),
                     "productType": dict(product["productType"], version=1), "variant": copy.deepcopy(variant)})
        if draft.get("taxRate"):
            line["taxRate"] = copy.deepcopy(draft["taxRate"])
        if draft.get("inventoryMode"):
            line["inventoryMode"] = _enum(draft["inventoryMode"], INVENTORY_MODES, "inventoryMode")
        if draft.get("key"):
            line["key"] = draft["key"]
        if draft.get("supplyChannel") is not None:
            line["supplyChannel"] = ref("channel", self._resolve("channels", draft["supplyChannel"], "channel")["id"])
        if draft.get("distributionChannel") is not None:
            line["distributionChannel"] = ref("channel", self._resolve("channels", draft["distributionChannel"],
                                                                       "channel")["id"])
        return line

    # -- order updates ---------------------------------------------------------------------------------

    def update_order(self, ident: str, body: Any, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            self._settle()
            ts = at or self.now()
            doc = self._find("orders", ident)
            actions = _actions(body)
            self._check_version("orders", doc, body.get("version"))
            new = copy.deepcopy(doc)
            messages: list[tuple[str, dict[str, Any]]] = []
            for action in actions:
                messages += self._order_action(new, action, ts)
            return copy.deepcopy(self._commit("orders", doc, new, messages, ts))

    def _order_action(self, o: dict[str, Any], a: dict[str, Any], ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        name = a["action"]
        if name == "changeOrderState":
            old = o.get("orderState")
            o["orderState"] = _enum(a.get("orderState"), ORDER_STATES, "orderState")
            return [("OrderStateChanged", {"orderState": o["orderState"], "oldOrderState": old})]
        if name == "changeShipmentState":
            old = o.get("shipmentState")
            o["shipmentState"] = _enum(a.get("shipmentState"), SHIPMENT_STATES, "shipmentState")
            fields = {"shipmentState": o["shipmentState"]}
            if old:
                fields["oldShipmentState"] = old
            return [("OrderShipmentStateChanged", fields)]
        if name == "changePaymentState":
            old = o.get("paymentState")
            o["paymentState"] = _enum(a.get("paymentState"), PAYMENT_STATES, "paymentState")
            fields = {"paymentState": o["paymentState"]}
            if old:
                fields["oldPaymentState"] = old
            return [("OrderPaymentStateChanged", fields)]
        if name == "addDelivery":
            return self._add_delivery(o, a, ts)
        if name == "setParcelTrackingData":
            for delivery in (o.get("shippingInfo") or {}).get("deliveries", []):
                for parcel in delivery["parcels"]:
                    if parcel["id"] == a.get("parcelId"):
                        _set(parcel, "trackingData", copy.deepcopy(a.get("trackingData")))
                        fields = {"deliveryId": delivery["id"], "parcelId": parcel["id"]}
                        if a.get("trackingData") is not None:
                            fields["trackingData"] = copy.deepcopy(a["trackingData"])
                        return [("ParcelTrackingDataUpdated", fields)]
            raise invalid_input(f"Parcel with id '{a.get('parcelId')}' not found.")
        if name == "updateSyncInfo":
            channel = self._resolve("channels", a.get("channel"), "channel")
            info: dict[str, Any] = {"channel": ref("channel", channel["id"])}
            if a.get("externalId") is not None:
                info["externalId"] = a["externalId"]
            info["syncedAt"] = iso(parse_time(a["syncedAt"])) if a.get("syncedAt") else iso(ts)  # type: ignore
            o["syncInfo"].append(info)
            return []  # no Message type for sync info exists
        if name == "addReturnInfo":
            return self._add_return_info(o, a, ts)
        if name in ("setReturnShipmentState", "setReturnPaymentState"):
            item = self._return_item(o, a)
            if name == "setReturnShipmentState":
                target = _enum(a.get("shipmentState"), RETURN_SHIPMENT_STATES, "shipmentState")
                if target not in RETURN_TRANSITIONS.get(item["shipmentState"], ()):
                    raise invalid_operation(f"Cannot change the return shipment state from "
                                            f"'{item['shipmentState']}' to '{target}'.")
                item["shipmentState"] = target
                item["lastModifiedAt"] = iso(ts)
                return [("OrderReturnShipmentStateChanged", {"returnItemId": item["id"],
                                                             "returnShipmentState": target})]
            item["paymentState"] = _enum(a.get("paymentState"), RETURN_PAYMENT_STATES, "paymentState")
            item["lastModifiedAt"] = iso(ts)
            return []  # no Message for return payment states (reference §3.5)
        if name == "addPayment":
            payment = self._resolve("payments", a.get("payment"), "payment")
            payments = o.setdefault("paymentInfo", {"payments": []})["payments"]
            if any(p["id"] == payment["id"] for p in payments):
                raise invalid_operation(f"The payment '{payment['id']}' is already added to the order.")
            payments.append(ref("payment", payment["id"]))
            return [("OrderPaymentAdded", {"paymentRef": ref("payment", payment["id"])})]
        if name in ("setCustomType", "setCustomField"):
            return self._custom_action("orders", o, a, "Order")
        if name == "setOrderNumber":
            if o.get("orderNumber"):
                raise invalid_operation("The order number can only be set once.")
            self._check_order_number(a.get("orderNumber"))
            _set(o, "orderNumber", a.get("orderNumber"))
            return []
        raise invalid_json(f"Request body does not contain valid JSON. Unknown action '{name}'.")

    def _add_delivery(self, o: dict[str, Any], a: dict[str, Any], ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        line_ids = {li["id"] for li in o["lineItems"]} | {cl["id"] for cl in o.get("customLineItems", [])}
        items = [{"id": i.get("id"), "quantity": i.get("quantity")} for i in a.get("items") or []]
        for item in items:
            if item["id"] not in line_ids or not isinstance(item["quantity"], int):
                raise invalid_input(f"Line item with id '{item['id']}' not found in the order.")
        parcels = []
        for p in a.get("parcels") or []:
            parcel: dict[str, Any] = {"id": new_id(), "createdAt": iso(ts), "items": copy.deepcopy(p.get("items", []))}
            for field in ("key", "measurements", "trackingData", "custom"):
                if p.get(field) is not None:
                    parcel[field] = copy.deepcopy(p[field])
            parcels.append(parcel)
        delivery: dict[str, Any] = {"id": new_id(), "createdAt": iso(ts), "items": items, "parcels": parcels}
        if a.get("deliveryKey"):
            delivery["key"] = a["deliveryKey"]
        if a.get("address"):
            delivery["address"] = copy.deepcopy(a["address"])
        info = o.setdefault("shippingInfo", self._shipping_info(o["totalPrice"]["currencyCode"]))
        info.setdefault("deliveries", []).append(delivery)
        fields: dict[str, Any] = {"delivery": copy.deepcopy(delivery)}
        if a.get("shippingKey"):
            fields["shippingKey"] = a["shippingKey"]
        return [("DeliveryAdded", fields)]

    def _add_return_info(self, o: dict[str, Any], a: dict[str, Any], ts: datetime) -> list[tuple[str, dict[str, Any]]]:
        lines = {li["id"] for li in o["lineItems"]}
        keys = {i.get("key") for r in o["returnInfo"] for i in r["items"] if i.get("key")}
        items = []
        for d in a.get("items") or []:
            state = _enum(d.get("shipmentState"), ("Advised", "Returned"), "shipmentState")
            if not isinstance(d.get("quantity"), int) or d["quantity"] < 1:
                raise invalid_input("A return item needs a positive 'quantity'.")
            if d.get("lineItemId") not in lines:
                raise invalid_input(f"Line item with id '{d.get('lineItemId')}' not found in the order.")
            if d.get("key") and d["key"] in keys:
                raise duplicate("key", d["key"])
            item: dict[str, Any] = {"id": new_id(), "type": "LineItemReturnItem", "lineItemId": d["lineItemId"],
                                    "quantity": d["quantity"], "shipmentState": state,
                                    "paymentState": INITIAL_RETURN_PAYMENT[state], "createdAt": iso(ts),
                                    "lastModifiedAt": iso(ts)}
            for field in ("key", "comment"):
                if d.get(field):
                    item[field] = d[field]
            items.append(item)
        if not items:
            raise invalid_input("'items' must not be empty.")
        info: dict[str, Any] = {"items": items}
        if a.get("returnTrackingId"):
            info["returnTrackingId"] = a["returnTrackingId"]
        info["returnDate"] = iso(parse_time(a["returnDate"])) if a.get("returnDate") else iso(ts)  # type: ignore
        o["returnInfo"].append(info)
        return [("ReturnInfoAdded", {"returnInfo": copy.deepcopy(info)})]

    @staticmethod
    def _return_item(o: dict[str, Any], a: dict[str, Any]) -> dict[str, Any]:
        for info in o.get("returnInfo", []):
            for item in info["items"]:
                if (a.get("returnItemId") and item["id"] == a["returnItemId"]) or \
                        (a.get("returnItemKey") and item.get("key") == a["returnItemKey"]):
                    return item
        raise invalid_input(f"Return item '{a.get('returnItemId') or a.get('returnItemKey')}' not found.")

    # -- payments --------------------------------------------------------------------------------------

    def _transaction(self, draft: Any, ts: datetime) -> dict[str, Any]:
        if not isinstance(draft, dict):
            raise invalid_json()
        tx: dict[str, Any] = {"id": new_id(), "type": _enum(draft.get("type"), TRANSACTION_TYPES, "type"),
                              "amount": money_from_draft(draft.get("amount")),
                              "state": _enum(draft.get("state", "Initial"), TRANSACTION_STATES, "state")}
        tx["timestamp"] = iso(parse_time(draft["timestamp"])) if draft.get("timestamp") else iso(ts)  # type: ignore
        for field in ("interactionId", "interfaceId"):
            if draft.get(field):
                tx[field] = draft[field]
        return tx

    def create_payment(self, draft: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            ts = at or self.now()
            if not isinstance(draft, dict) or draft.get("amountPlanned") is None:
                raise invalid_json("Request body does not contain valid JSON. amountPlanned: Missing required value")
            if draft.get("key") and any(p.get("key") == draft["key"] for p in self.docs["payments"].values()):
                raise duplicate("key", draft["key"])
            fields: dict[str, Any] = {
                "amountPlanned": money_from_draft(draft["amountPlanned"]),
                "paymentMethodInfo": copy.deepcopy(draft.get("paymentMethodInfo") or {}),
                "paymentStatus": copy.deepcopy(draft.get("paymentStatus") or {}),
                "transactions": [self._transaction(t, ts) for t in draft.get("transactions") or []],
                "interfaceInteractions": []}
            for name in ("key", "interfaceId", "anonymousId"):
                if draft.get(name):
                    fields[name] = draft[name]
            if draft.get("customer") is not None:
                fields["customer"] = ref("customer", self._resolve("customers", draft["customer"], "customer")["id"])
            if draft.get("custom"):
                fields["custom"] = self._custom_from_draft("payments", draft["custom"])
            doc = self._new_doc("payments", fields, ts)
            self.updates["payments"] += 1
            self._message("payments", doc, "PaymentCreated", {"payment": copy.deepcopy(doc)}, ts)
            return copy.deepcopy(doc)

    def update_payment(self, ident: str, body: Any, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            ts = at or self.now()
            doc = self._find("payments", ident)
            actions = _actions(body)
            self._check_version("payments", doc, body.get("version"))
            new = copy.deepcopy(doc)
            messages: list[tuple[str, dict[str, Any]]] = []
            for a in actions:
                name = a["action"]
                if name == "addTransaction":
                    tx = self._transaction(a.get("transaction"), ts)
                    new["transactions"].append(tx)
                    messages.append(("PaymentTransactionAdded", {"transaction": copy.deepcopy(tx)}))
                elif name == "changeTransactionState":
                    tx = next((t for t in new["transactions"] if t["id"] == a.get("transactionId")), None)
                    if tx is None:
                        raise invalid_input(f"Transaction '{a.get('transactionId')}' not found.")
                    tx["state"] = _enum(a.get("state"), TRANSACTION_STATES, "state")
                    messages.append(("PaymentTransactionStateChanged", {"transactionId": tx["id"],
                                                                        "state": tx["state"]}))
                elif name == "setKey":
                    _set(new, "key", a.get("key"))
                elif name in ("setCustomType", "setCustomField"):
                    self._custom_action("payments", new, a, None)
                else:
                    raise invalid_json(f"Request body does not contain valid JSON. Unknown action '{name}'.")
            return copy.deepcopy(self._commit("payments", doc, new, messages, ts))

    # -- world API -------------------------------------------------------------------------------------

    def place_order(self, store_key: str, lines: list[tuple[str, int]], email: str,
                    created_at: datetime | str | None = None, supply_channel_key: str | None = None,
                    shipping_address: dict[str, Any] | None = None, order_number: str | None = None) -> dict[str, Any]:
        """A web shop checkout: cart (``ReserveOnOrder``, supply channel = the store's first unless given) ->
        order (``paymentState`` Paid) with a Payment holding a successful Authorization and Charge."""
        with self.lock:
            ts = self._at(created_at)
            store = self._find("stores", f"key={store_key}")
            country = store["countries"][0]["code"]
            supply_id = self.channel_id(supply_channel_key) if supply_channel_key else \
                store["supplyChannels"][0]["id"]
            currency = next(p.currency for p in self.estate.centra.pricelists if country in p.countries)
            address = shipping_address or {"country": country, "email": email}
            cart = self.create_cart({
                "currency": currency, "country": country, "store": {"typeId": "store", "key": store_key},
                "inventoryMode": "ReserveOnOrder", "customerEmail": email, "shippingAddress": address,
                "lineItems": [{"sku": sku, "quantity": qty, "supplyChannel": {"typeId": "channel", "id": supply_id}}
                              for sku, qty in lines]}, at=ts)
            number = order_number or self._next_order_number()
            order = self.create_order_from_cart({"cart": ref("cart", cart["id"]), "version": cart["version"],
                                                 "orderNumber": number, "paymentState": "Paid"}, at=ts)
            amount = {"currencyCode": currency, "centAmount": order["totalPrice"]["centAmount"]}
            payment = self.create_payment({
                "amountPlanned": amount, "paymentMethodInfo": {"paymentInterface": "sim-psp", "method": "card"},
                "transactions": [{"type": "Authorization", "amount": amount, "state": "Success"},
                                 {"type": "Charge", "amount": amount, "state": "Success"}]}, at=ts)
            return self.update_order(order["id"], {"version": order["version"], "actions": [
                {"action": "addPayment", "payment": ref("payment", payment["id"])}]}, at=ts)

    def _next_order_number(self) -> str:
        taken = {o.get("orderNumber") for o in self.docs["orders"].values()}
        n = len(self.docs["orders"]) + 100001
        while f"{self.order_number_prefix}{n}" in taken:
            n += 1
        return f"{self.order_number_prefix}{n}"

    def ship_order(self, order_id: str, at: datetime | str | None = None,
                   tracking_id: str | None = None) -> dict[str, Any]:
        """addDelivery (every line, one parcel with tracking data) + changeShipmentState Shipped."""
        with self.lock:
            ts = self._at(at)
            order = self._find("orders", order_id)
            items = [{"id": li["id"], "quantity": li["quantity"]} for li in order["lineItems"]]
            tracking = {"trackingId": tracking_id or f"TRK{order['id'][:8].upper()}", "carrier": "SimPost",
                        "isReturn": False}
            return self.update_order(order["id"], {"version": order["version"], "actions": [
                {"action": "addDelivery", "items": items, "parcels": [{"items": items, "trackingData": tracking}]},
                {"action": "changeShipmentState", "shipmentState": "Shipped"}]}, at=ts)


def _out_of_stock(lines: list[dict[str, Any]]) -> CtError:
    skus = [li["variant"]["sku"] for li in lines]
    return CtError(400, "OutOfStock", "Some line items are out of stock at the time of placing the order: "
                   + ", ".join(skus) + ".", lineItems=[li["id"] for li in lines], skus=skus)
