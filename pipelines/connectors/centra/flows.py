"""Centra as the order flows' commerce platform (`pipelines.domain.flows.ports.CommercePlatform`).

Reads an order with its lines, allocations, shipments and returns by number, and writes returns, refunds and
shipments the way Centra's ERP guide does them (AD-erp "## Shipment creation and capture", "## Returns").
Each write is found again after an ambiguous failure: a return by its `externalId`, a shipment by the marker
the flow keeps in its `additionalMessage`, so the flow re-reads the order instead of writing twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipelines.connectors.centra import order_api as ea
from pipelines.connectors.centra.client import CentraClient
from pipelines.connectors.centra.order_api import CentraOrderApi
from pipelines.connectors.errors import ConnectorError, TransientError
from pipelines.domain.flows.model import (
    CommerceAddress,
    CommerceAllocation,
    CommerceLine,
    CommerceOrder,
    CommerceReturn,
    CommerceReturnLine,
    CommerceShipment,
    PaymentEntry,
    ShipmentLine,
)
from pipelines.domain.flows.ports import (
    AllocationMove,
    CommerceRejected,
    CreateOrderRequest,
    ReturnRequest,
    ShipRequest,
)
from pipelines.domain.timeutil import business_date
from pipelines.estate.model import Location

_PAYLOAD = "userErrors { message path } userWarnings { message path }"
_RETURN = """
  id externalId
  grandTotal(includingTax: true) { value }
  totals { taxIncluded { value } }
  refundPaymentHistory { entryType status }
  lines { quantity shipmentLine { id } orderLine { id } }
"""
Q_FLOW_ORDER = """
query FlowOrder($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number status
    grandTotal(includingTax: true) { value currency { code } }
    market { id } pricelist { id }
    shippingAddress { email }
    shippingPriceGroup { shippingOption { id name } }
    lines(includeFullyCancelled: true) {
      id quantity shippedQuantity returnedQuantity taxPercent
      unitPrice(includingTax: true) { value }
      productSize { SKU }
      allocations { quantity warehouse { id } }
    }
    shipments { id isShipped additionalMessage lines { id quantity orderLine { id } } }
    ... on DirectToConsumerOrder { returns { %s } }
  }
}""" % _RETURN  # noqa: UP031 (braces of GraphQL)
M_CONFIRM_ORDER = ("mutation ConfirmOrder($number: Int!) { confirmOrder(input: {order: {number: $number}}) { "
                   f"order {{ number status }} {_PAYLOAD} }} }}")
M_CREATE_RETURN = ("mutation CreateReturn($input: ReturnCreateInput!) { createReturn(input: $input) { "
                   f"return {{ {_RETURN} }} {_PAYLOAD} }} }}")
M_REFUND_RETURN = ("mutation RefundReturn($id: Int!) { refundReturn(id: $id, input: {sendEmail: false}) { "
                   f"return {{ {_RETURN} }} {_PAYLOAD} }} }}")
M_CREATE_SHIPMENT = ("mutation CreateShipment($input: ShipmentCreateInput!) { createShipment(input: $input) { "
                     f"shipment {{ id isShipped additionalMessage lines {{ id quantity orderLine {{ id }} }} }} "
                     f"{_PAYLOAD} }} }}")
M_COMPLETE_SHIPMENT = ("mutation CompleteShipment($id: Int!, $input: ShipmentCompleteInput) { "
                       "completeShipment(id: $id, input: $input) { "
                       f"shipment {{ id isShipped additionalMessage lines {{ id quantity orderLine {{ id }} }} }} "
                       f"{_PAYLOAD} }} }}")

_STATUS = {"PENDING": "open", "CONFIRMED": "open", "PROCESSING": "open", "SHIPPED": "shipped",
           "ARCHIVED": "shipped", "CANCELLED": "cancelled"}


def _money(node: dict[str, Any] | None) -> float:
    return float((node or {}).get("value") or 0.0)


def _return(node: dict[str, Any]) -> CommerceReturn:
    refunded = any(e.get("entryType") == "REFUND" and e.get("status") == "SUCCESS"
                   for e in node.get("refundPaymentHistory") or [])
    lines = tuple(CommerceReturnLine(
        shipment_line_id=str(ln["shipmentLine"]["id"]) if ln.get("shipmentLine") else None,
        order_line_id=str(ln["orderLine"]["id"]) if ln.get("orderLine") else None,
        quantity=int(ln.get("quantity") or 0)) for ln in node.get("lines") or [])
    return CommerceReturn(return_id=str(node["id"]), external_id=node.get("externalId"), refunded=refunded,
                          grand_total=_money(node.get("grandTotal")),
                          tax_total=_money((node.get("totals") or {}).get("taxIncluded")), lines=lines)


def _shipment(node: dict[str, Any]) -> CommerceShipment:
    return CommerceShipment(
        shipment_id=str(node["id"]), completed=bool(node.get("isShipped")), message=node.get("additionalMessage"),
        lines=tuple(ShipmentLine(str(ln["id"]), str(ln["orderLine"]["id"]), int(ln["quantity"]))
                    for ln in node.get("lines") or [] if ln.get("orderLine")))


def order_from_flow_node(node: dict[str, Any]) -> CommerceOrder:
    lines, warehouses = [], set()
    for ln in node.get("lines") or []:
        for alloc in ln.get("allocations") or []:
            if int(alloc.get("quantity") or 0) > 0 and alloc.get("warehouse"):
                warehouses.add(str(alloc["warehouse"]["id"]))
        lines.append(CommerceLine(
            line_id=str(ln["id"]), sku=str((ln.get("productSize") or {}).get("SKU") or ""),
            quantity=int(ln.get("quantity") or 0), shipped_quantity=int(ln.get("shippedQuantity") or 0),
            returned_quantity=int(ln.get("returnedQuantity") or 0), unit_price=_money(ln.get("unitPrice")),
            tax_percent=float(ln.get("taxPercent") or 0.0)))
    total = node.get("grandTotal") or {}
    option = ((node.get("shippingPriceGroup") or {}).get("shippingOption") or {}).get("name")
    return CommerceOrder(
        ref=str(node["number"]), status=_STATUS.get(str(node.get("status")), "open"),
        currency=str(((total.get("currency") or {}).get("code")) or ""), lines=tuple(lines),
        shipments=tuple(_shipment(s) for s in node.get("shipments") or []),
        returns=tuple(_return(r) for r in node.get("returns") or []), shipping_option=option,
        allocated_warehouses=tuple(sorted(warehouses)),
        market_id=str(node["market"]["id"]) if node.get("market") else None,
        pricelist_id=str(node["pricelist"]["id"]) if node.get("pricelist") else None,
        email=(node.get("shippingAddress") or {}).get("email"), grand_total=_money(total),
        confirmed=str(node.get("status")) != "PENDING")


# -- ship-from-store: allocations moved between warehouses (AD-dtc/AD-erp "Un-allocating order stock", cd
# allocateOrder), free-to-allocate per warehouse (C§2 "**Quantities**": FTA costs no complexity), the delivery
# address, and shipments completed with the carrier's tracking (AD-erp "## Shipment creation and capture").
Q_FLOW_ADDRESS = """
query FlowAddress($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number
    shippingAddress { firstName lastName address1 address2 city zipCode country { code } email phoneNumber }
  }
}"""
Q_FLOW_FTA = """
query FlowFreeToAllocate($skus: [String!], $warehouses: [Int!], $limit: Int) {
  productSizes(where: {SKU: $skus}, limit: $limit) { SKU stock(where: {warehouseId: $warehouses}) { freeToAllocateQuantity } }
}"""
M_UNALLOCATE = ("mutation FlowUnallocate($input: OrderUnallocateInput!) { unallocateOrder(input: $input) { "
                f"order {{ number }} {_PAYLOAD} }} }}")
M_ALLOCATE = ("mutation FlowAllocate($input: OrderAllocateInput!) { allocateOrder(input: $input) { "
              f"order {{ number }} {_PAYLOAD} }} }}")


def allocations_from_flow_node(node: dict[str, Any]) -> tuple[CommerceAllocation, ...]:
    return tuple(CommerceAllocation(line_id=str(ln["id"]), warehouse_id=str(a["warehouse"]["id"]),
                                    quantity=int(a.get("quantity") or 0))
                 for ln in node.get("lines") or [] for a in ln.get("allocations") or []
                 if a.get("warehouse") and int(a.get("quantity") or 0) > 0)


# -- the ERP order flow (pipelines.order_flows.erp, issue 15): the order with what the ERP's sales order needs: the
# lines' price-list price (`unitOriginalPrice`, tax included: the line discount is its difference to `unitPrice`),
# the shipping charged (`totals.shipping`), the payment history (AUTH / CAPTURE decide when an order is verified),
# the order date and the delivery address (C§4 orders; AD-erp "## Orders").
Q_ERP_ORDER = """
query FlowErpOrder($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number status orderDate
    grandTotal(includingTax: true) { value currency { code } }
    market { id } pricelist { id }
    totals { shipping { value } }
    paymentHistory { entryType status }
    shippingAddress { firstName lastName address1 address2 city zipCode country { code } email phoneNumber }
    shippingPriceGroup { shippingOption { id name } }
    lines(includeFullyCancelled: true) {
      id quantity shippedQuantity returnedQuantity taxPercent
      unitPrice(includingTax: true) { value }
      unitOriginalPrice(includingTax: true) { value }
      productSize { SKU }
      allocations { quantity warehouse { id } }
    }
    shipments { id isShipped additionalMessage lines { id quantity orderLine { id } } }
  }
}"""


def _address(addr: dict[str, Any] | None) -> CommerceAddress | None:
    if not addr:
        return None
    return CommerceAddress(first_name=addr.get("firstName"), last_name=addr.get("lastName"),
                           line1=addr.get("address1"), line2=addr.get("address2"), city=addr.get("city"),
                           zip_code=addr.get("zipCode"), country=(addr.get("country") or {}).get("code"),
                           email=addr.get("email"), phone=addr.get("phoneNumber"))


def _business_day(order_date: Any, timezone: str) -> str | None:
    """Centra's `orderDate` (a timestamp with its offset) as the business day it falls on: the day the
    reconciliation files the order under (centra_orders), so the ERP document carries the same date."""
    if not order_date:
        return None
    try:
        return business_date(str(order_date), timezone)
    except ValueError:
        return str(order_date)[:10] or None


def erp_order_from_node(node: dict[str, Any], business_timezone: str = "UTC") -> CommerceOrder:
    """The order as `Q_ERP_ORDER` reads it: `order_from_flow_node` plus the lines' `list_price`
    (unitOriginalPrice), the shipping total, the payment history, the order date (its business day in
    `business_timezone`) and the delivery address."""
    order = order_from_flow_node(node)
    originals = {str(ln["id"]): _money(ln.get("unitOriginalPrice")) for ln in node.get("lines") or []}
    return replace(
        order, lines=tuple(replace(ln, list_price=originals.get(ln.line_id)) for ln in order.lines),
        payments=tuple(PaymentEntry(str(p.get("entryType") or ""), str(p.get("status") or ""))
                       for p in node.get("paymentHistory") or []),
        shipping_total=_money((node.get("totals") or {}).get("shipping")),
        order_date=_business_day(node.get("orderDate"), business_timezone),
        delivery_address=_address(node.get("shippingAddress")))


class CentraCommerce:
    """`CommercePlatform` over a `CentraClient`."""

    def __init__(self, client: CentraClient, order_api: CentraOrderApi | None = None):
        self.client = client
        self.order_api = order_api  # Centra's REST Order API: creating orders (endless aisle)

    @staticmethod
    def warehouse_of_location(location: Location) -> str:
        """The flows' warehouse id of an estate location: its Centra warehouse id."""
        return str(location.centra_warehouse_id)

    def order(self, ref: str) -> CommerceOrder | None:
        if not str(ref).isdigit():
            return None
        rows = self.client.execute(Q_FLOW_ORDER, {"number": int(ref)})["orders"]
        return order_from_flow_node(rows[0]) if rows else None

    def order_for_erp(self, ref: str, business_timezone: str = "UTC") -> CommerceOrder | None:
        """The order with the figures the ERP's sales order needs (`erp_order_from_node`)."""
        if not str(ref).isdigit():
            return None
        rows = self.client.execute(Q_ERP_ORDER, {"number": int(ref)})["orders"]
        return erp_order_from_node(rows[0], business_timezone) if rows else None

    def confirm(self, ref: str) -> None:
        """PENDING -> CONFIRMED (AD-erp "## Confirming an order"): shipments need a confirmed order."""
        self.client.execute(M_CONFIRM_ORDER, {"number": int(ref)})

    def create_return(self, request: ReturnRequest) -> CommerceReturn:
        payload: dict[str, Any] = {
            "shipment": {"id": int(request.shipment_id)},
            "lines": [{"shipmentLine": {"id": int(sl)}, "quantity": q} for sl, q in request.lines],
            # The store system moved the stock (see pipelines.domain.flows.returns): no second restock here.
            "returnStockActionPolicy": {"removeItemsFromStock": True},
            "externalId": request.external_id, "comment": request.comment, "sendEmail": False,
        }
        if request.returned_at:
            payload["createdAt"] = request.returned_at
        data = self.client.execute(M_CREATE_RETURN, {"input": payload})
        return _return(data["createReturn"]["return"])

    def refund_return(self, return_id: str) -> CommerceReturn:
        data = self.client.execute(M_REFUND_RETURN, {"id": int(return_id)})
        return _return(data["refundReturn"]["return"])

    def ship(self, request: ShipRequest) -> CommerceShipment:
        created = self.client.execute(M_CREATE_SHIPMENT, {"input": {
            "order": {"number": int(request.order_ref)},
            "lines": [{"orderLine": {"id": int(lid)}, "quantity": q} for lid, q in request.lines],
            "isGoodToGo": True, "capture": True, "sendEmail": request.notify_customer,
            "additionalMessage": request.marker}})["createShipment"]["shipment"]
        return self.complete_shipment(str(created["id"]), notify_customer=request.notify_customer,
                                      shipped_at=request.shipped_at)

    def complete_shipment(self, shipment_id: str, *, notify_customer: bool,
                          shipped_at: str | None = None) -> CommerceShipment:
        info: dict[str, Any] = {"sendEmail": notify_customer}
        if shipped_at:
            info["shippedAt"] = shipped_at
        data = self.client.execute(M_COMPLETE_SHIPMENT, {"id": int(shipment_id), "input": info})
        return _shipment(data["completeShipment"]["shipment"])

    # -- ship-from-store (`pipelines.domain.flows.ports.AllocatingCommerce` / `FulfillingStores`)

    def order_allocations(self, ref: str) -> tuple[CommerceOrder, tuple[CommerceAllocation, ...]] | None:
        if not str(ref).isdigit():
            return None
        rows = self.client.execute(Q_FLOW_ORDER, {"number": int(ref)})["orders"]
        return (order_from_flow_node(rows[0]), allocations_from_flow_node(rows[0])) if rows else None

    def free_to_allocate(self, warehouse_id: str, skus: tuple[str, ...]) -> dict[str, int]:
        out: dict[str, int] = {}
        wanted = sorted(set(skus))
        for i in range(0, len(wanted), 200):
            chunk = wanted[i:i + 200]
            rows = self.client.execute(Q_FLOW_FTA, {"skus": chunk, "warehouses": [int(warehouse_id)],
                                                    "limit": len(chunk)})["productSizes"]
            for row in rows:
                out[str(row["SKU"])] = sum(int(s.get("freeToAllocateQuantity") or 0) for s in row.get("stock") or [])
        return out

    def move_allocation(self, move: AllocationMove) -> None:
        """Release the order's allocations in `from_warehouses` (back to free stock), then allocate `lines` in
        `to_warehouse`; each step is a no-op when there is nothing to do, so a retry completes a half-done move."""
        order = {"number": int(move.order_ref)}
        if move.from_warehouses:
            self.client.execute(M_UNALLOCATE, {"input": {
                "order": order, "warehouses": [{"id": int(w)} for w in move.from_warehouses],
                "stockActionPolicy": {"releaseItemsBackToWarehouse": True}, "comment": move.comment}})
        if move.lines:
            self.client.execute(M_ALLOCATE, {"input": {
                "order": order, "warehouses": [{"id": int(move.to_warehouse)}],
                "allocate": [{"orderLine": {"id": int(lid)}, "quantity": q} for lid, q in move.lines],
                "comment": move.comment}})

    def delivery_address(self, ref: str) -> CommerceAddress | None:
        if not str(ref).isdigit():
            return None
        rows = self.client.execute(Q_FLOW_ADDRESS, {"number": int(ref)})["orders"]
        addr = (rows[0].get("shippingAddress") if rows else None) or None
        if not addr:
            return None
        return CommerceAddress(first_name=addr.get("firstName"), last_name=addr.get("lastName"),
                               line1=addr.get("address1"), line2=addr.get("address2"), city=addr.get("city"),
                               zip_code=addr.get("zipCode"), country=(addr.get("country") or {}).get("code"),
                               email=addr.get("email"), phone=addr.get("phoneNumber"))

    def ship_tracked(self, request: ShipRequest, *, carrier: str | None,
                     tracking_number: str | None) -> CommerceShipment:
        created = self.client.execute(M_CREATE_SHIPMENT, {"input": {
            "order": {"number": int(request.order_ref)},
            "lines": [{"orderLine": {"id": int(lid)}, "quantity": q} for lid, q in request.lines],
            "isGoodToGo": True, "capture": True, "sendEmail": False,
            "additionalMessage": request.marker}})["createShipment"]["shipment"]
        return self.complete_tracked(str(created["id"]), notify_customer=request.notify_customer, carrier=carrier,
                                     tracking_number=tracking_number)

    def complete_tracked(self, shipment_id: str, *, notify_customer: bool, carrier: str | None,
                         tracking_number: str | None) -> CommerceShipment:
        info: dict[str, Any] = {"sendEmail": notify_customer}
        shipment_info = {k: v for k, v in (("carrier", carrier), ("trackingNumber", tracking_number)) if v}
        if shipment_info:
            info["shipmentInfo"] = shipment_info
        data = self.client.execute(M_COMPLETE_SHIPMENT, {"id": int(shipment_id), "input": info})
        return _shipment(data["completeShipment"]["shipment"])

    # -- orders created from outside (endless aisle): Centra's Order API, found again by external id ------------

    def order_by_external_id(self, external_id: str, market_id: str) -> CommerceOrder | None:
        """The order created for `external_id`: by its `externalId`, else (a create whose `externalId` was not
        set yet) by the marker in the `internalComment` of the market's newest orders, finishing that write."""
        rows = self.client.execute(ea.Q_ORDER_BY_EXTERNAL_ID, {"ext": external_id})["orders"]
        if rows:
            return _ea_order(rows[0])
        recent = self.client.execute(ea.Q_RECENT_ORDERS, {"market": int(market_id), "limit": ea.RECENT_SCAN})
        for row in recent["orders"]:
            if row.get("internalComment") == ea.marker(external_id) and not row.get("externalId"):
                return self._claim(int(row["number"]), external_id)
        return None

    def create_order(self, request: CreateOrderRequest) -> CommerceOrder:
        """Create through the Order API (`POST <base>/order`), then set the order's `externalId`. Callers look
        with `order_by_external_id` first: the create itself is not idempotent."""
        if self.order_api is None:
            raise ConnectorError("Centra's Order API is not configured (its base URL and API key): orders from "
                                 "outside cannot be created")
        body = ea.create_body(request)
        try:
            numbers = self.order_api.create_order(body)
        except ea.OrderRejected as exc:
            raise CommerceRejected(str(exc), {"code": exc.code, "msg": exc.msg, "request": body}) from exc
        created = [self._claim(n, request.external_id) for n in numbers]  # a split order: every part
        return created[0]

    def order_tracking(self, ref: str) -> tuple[str | None, str | None] | None:
        """Kiosk orders: (carrier, tracking number) of the latest completed shipment (`order_tracking`)."""
        return order_tracking(self.client, ref)

    def _claim(self, number: int, external_id: str) -> CommerceOrder:
        self.client.execute(ea.M_SET_EXTERNAL_ID, {"n": number, "ext": external_id}, idempotent=True)
        rows = self.client.execute(ea.Q_ORDER_BY_NUMBER, {"n": number})["orders"]
        if not rows:
            raise TransientError(f"Centra order {number} is not (yet) readable")
        return _ea_order(rows[0])


# -- kiosk orders: the carrier and tracking number of an order's latest completed shipment (C§4 "**Shipments.**":
# `trackingNumber`, `carrierInformation { carrierName }`), shown on the kiosk order (pipelines.order_flows.kiosk).
Q_FLOW_TRACKING = """
query FlowTracking($number: Int!) {
  orders(where: {number: [$number]}, limit: 1) {
    number
    shipments { id isShipped shippedAt trackingNumber carrierInformation { carrierName } }
  }
}"""


def order_tracking(client: CentraClient, ref: str) -> tuple[str | None, str | None] | None:
    """(carrier, tracking number) of the order's latest completed shipment; None when nothing is shipped."""
    rows = client.execute(Q_FLOW_TRACKING, {"number": int(ref)})["orders"]
    shipped = [s for s in (rows[0].get("shipments") or [] if rows else []) if s.get("isShipped")]
    if not shipped:
        return None
    last = max(shipped, key=lambda s: (str(s.get("shippedAt") or ""), int(s["id"])))
    return ((last.get("carrierInformation") or {}).get("carrierName"), last.get("trackingNumber"))


def _ea_order(node: dict[str, Any]) -> CommerceOrder:
    """An order with its lines' price-list prices (`unitOriginalPrice`) and the shipping option's URI."""
    order = order_from_flow_node(node)
    originals = {str(ln["id"]): _money(ln.get("unitOriginalPrice")) for ln in node.get("lines") or []}
    option = ((node.get("shippingPriceGroup") or {}).get("shippingOption") or {}).get("uri")
    return replace(order, shipping_option=option or order.shipping_option,
                   lines=tuple(replace(ln, list_price=originals.get(ln.line_id)) for ln in order.lines))
