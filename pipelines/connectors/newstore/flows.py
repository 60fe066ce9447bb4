"""NewStore as the order flows' store system (`pipelines.domain.flows.ports.StoreSystem`), and the decoding of
the NewStore events that trigger the flows.

Orders are handed to a store by order injection (`POST /v0/d/fulfill_order`, idempotent on `external_id`;
REF §1.4), one item per unit. A store order's items are read from the order API and their handover state
from its fulfilment requests (`GET /v0/fulfillment_requests/{order}`: `shipped` once handed over; REF §1.6).
"""

from __future__ import annotations

from typing import Any

from pipelines.connectors.newstore.client import NewStoreClient
from pipelines.connectors.newstore.errors import NotFound
from pipelines.domain.flows.model import (
    CommerceAddress,
    StoreFulfilmentItem,
    StoreOrder,
    StoreOrderItem,
    StoreRefund,
    StoreReturn,
    StoreReturnItem,
    StoreSaleItem,
    StoreSaleOrder,
)
from pipelines.domain.flows.ports import InjectionRequest


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def store_return(payload: dict[str, Any]) -> StoreReturn:
    """A `return.processed` payload (REF §1.2 "Payloads"; `external_order_id`: see the simulator's provenance)."""
    items = []
    for i in payload.get("items") or []:
        ids = i.get("external_identifiers") or {}
        items.append(StoreReturnItem(
            item_id=str(i.get("id")), sku=str(ids.get("sku") or i.get("product_id") or ""),
            quantity=int(i.get("quantity") or 1), refund_amount=float(i.get("refund_amount") or 0.0),
            refund_tax=_opt(i.get("refund_tax")), condition=str(i.get("item_condition") or "sellable")))
    if not payload.get("id"):
        raise ValueError("return.processed without an id")
    return StoreReturn(
        return_id=str(payload["id"]), order_id=payload.get("order_id"),
        external_order_ref=(str(payload["external_order_id"]) if payload.get("external_order_id") else None),
        location_id=str(payload.get("return_location_id") or ""), currency=str(payload.get("currency") or ""),
        returned_at=payload.get("returned_at"), total_refund_amount=float(payload.get("total_refund_amount") or 0.0),
        items=tuple(items))


def store_refund(requests: list[dict[str, Any]], payouts: list[dict[str, Any]]) -> StoreRefund:
    """`refund_request.issued` payloads of a return and the `payment_account.amount_refunded` ones paying them."""
    requested = sum(float(r.get("amount") or 0.0) for r in requests) if requests else None
    refunded = (sum(float(t.get("amount") or 0.0) for p in payouts for t in p.get("transactions") or [])
                if payouts else None)
    currency = next((r.get("currency") for r in requests if r.get("currency")), None)
    return StoreRefund(requested=None if requested is None else round(requested, 2),
                       refunded=None if refunded is None else round(abs(refunded), 2), currency=currency,
                       evidence=tuple([*requests, *payouts]))


def store_sale_order(payload: dict[str, Any]) -> StoreSaleOrder:
    """An `order.created|opened` payload (REF §1.2 "Payloads"): one item per unit; `channel` is the store.
    Prices are tax included (for `price_method` tax_excluded the item's tax is added)."""
    if not payload.get("id"):
        raise ValueError("order event without an id")
    excluded = payload.get("price_method") == "tax_excluded"
    items = []
    for i in payload.get("items") or []:
        ids = i.get("external_identifiers") or {}
        listed = float(i.get("list_price") or 0.0)
        paid = listed - float(i.get("item_discounts") or 0.0) - float(i.get("order_discounts") or 0.0)
        if excluded:
            listed, paid = listed + float(i.get("tax") or 0.0), paid + float(i.get("tax") or 0.0)
        items.extend(StoreSaleItem(item_id=str(i.get("id")), sku=str(ids.get("sku") or i.get("product_id") or ""),
                                   service_level=str(i.get("shipping_service_level") or ""),
                                   list_price=round(listed, 2), paid_price=round(paid, 2),
                                   status=str(i.get("status") or ""))
                     for _ in range(int(i.get("quantity") or 1)))
    return StoreSaleOrder(
        order_id=str(payload["id"]), external_id=payload.get("external_id"),
        channel_type=str(payload.get("channel_type") or ""), store_id=payload.get("channel"),
        currency=str(payload.get("currency") or ""), placed_at=payload.get("placed_at"),
        email=payload.get("customer_email"), shipping_address=payload.get("shipping_address"), items=tuple(items))


def _fulfill_order_body(req: InjectionRequest) -> dict[str, Any]:
    items = [{
        "external_item_id": ln.external_item_id, "product_id": ln.sku,
        "price": {"item_price": ln.unit_price, "item_list_price": ln.list_price,
                  "item_tax_lines": [{"amount": round(ln.unit_price * ln.tax_rate / (1 + ln.tax_rate), 2),
                                      "rate": ln.tax_rate, "name": "VAT"}],
                  "item_discount_info": [], "item_order_discount_info": []},
    } for ln in req.lines]
    body: dict[str, Any] = {
        "external_id": req.external_id, "shop": "storefront", "shop_locale": "en-GB", "channel_type": "web",
        "channel_name": "commerce", "currency": req.currency, "price_method": "tax_included",
        "placed_at": req.placed_at, "store_id": req.store_id,
        "shipping_address": {"address_line_1": req.store_id, "country": "ZZ"},
        "shipments": [{"items": items, "shipping_option": {"service_level_identifier": req.service_level,
                                                            "price": 0, "tax": 0}}],
        "payments": [{"type": "authorized", "amount": req.paid_amount, "method": "credit_card",
                      "processor": "commerce", "correlation_ref": f"order-{req.external_id}",
                      "processed_at": req.placed_at}],
    }
    if req.email:
        body["customer_email"] = req.email
    return body


class NewStoreStore:
    """`StoreSystem` over a `NewStoreClient`."""

    def __init__(self, client: NewStoreClient, *, country_of: dict[str, str] | None = None):
        self.client = client
        self.country_of = country_of or {}  # store id -> ISO country (the pickup address)

    def inject_order(self, request: InjectionRequest) -> StoreOrder:
        body = _fulfill_order_body(request)
        body["shipping_address"]["country"] = self.country_of.get(request.store_id, "ZZ")
        return self._submit(body, request.external_id)

    def _submit(self, body: dict[str, Any], external_id: str) -> StoreOrder:
        """Inject (idempotent on the external id) and read the order back as NewStore holds it."""
        answer = self.client.fulfill_order(body)
        found = self.order(str(answer["id"]))
        if found is None:
            raise RuntimeError(f"NewStore accepted order {external_id} but cannot find {answer['id']}")
        return found

    def order(self, order_id: str) -> StoreOrder | None:
        return self._read(order_id, "internal")

    def order_by_external_id(self, external_id: str) -> StoreOrder | None:
        return self._read(external_id, "external")

    def _read(self, order_id: str, id_type: str) -> StoreOrder | None:
        try:
            order = self.client.get_order(order_id, id_type=id_type)
        except NotFound:
            return None
        handed = {i.item_id: i.status for fr in self.client.fulfillment_requests(order.id) for i in fr.items}
        items = tuple(StoreOrderItem(item_id=i.id, external_item_id=i.origin_id, sku=str(i.product_id or ""),
                                     status=handed.get(i.id, i.status)) for i in order.items)
        return StoreOrder(order_id=order.id, external_id=order.origin_id, status=order.status, items=items,
                          channel_type=order.channel_type)

    def cancel_order(self, order_id: str, reason: str) -> None:
        self.client.cancel_order(order_id, reason="customer_cancelled", note=reason)

    # -- ship-from-store (`pipelines.domain.flows.ports.AllocatingCommerce` / `FulfillingStores`)

    def available(self, node_id: str, skus: tuple[str, ...]) -> dict[str, int]:
        return {a.product_id: a.atp for a in self.client.atp([(sku, node_id) for sku in sorted(set(skus)) if sku])
                if a.fulfillment_node_id == node_id}

    def fulfilment_items(self, order_id: str) -> tuple[StoreFulfilmentItem, ...]:
        return tuple(StoreFulfilmentItem(item_id=i.item_id, node_id=fr.fulfillment_node_id,
                                         service_level=fr.service_level, status=i.status, carrier=i.carrier,
                                         tracking_code=i.tracking_code)
                     for fr in self.client.fulfillment_requests(order_id) for i in fr.items)

    def inject_delivery(self, request: InjectionRequest, *, node_id: str,
                        address: CommerceAddress | None) -> StoreOrder:
        """Inject a delivery order fulfilled at `node_id`, shipped to the customer's address (REF §1.4 names
        `address_line_1`, `zip_code`, `country` and `customer_name`; without an address, the store's country)."""
        body = _fulfill_order_body(request)
        for shipment in body["shipments"]:
            shipment["shipping_option"]["routing_strategy"] = {"fulfillment_node_id": node_id}
        if address is not None and address.line1 and address.country and len(address.country) == 2:
            body["shipping_address"] = {"address_line_1": address.line1, "country": address.country}
            if address.zip_code:
                body["shipping_address"]["zip_code"] = address.zip_code
            name = " ".join(p for p in (address.first_name, address.last_name) if p)
            if name:
                body["customer_name"] = name
        else:
            body["shipping_address"]["country"] = self.country_of.get(request.store_id, "ZZ")
        return self._submit(body, request.external_id)
