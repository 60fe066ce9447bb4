"""Shipments and returns: the `returns` query and the shipment, shipment line, return, return line and
payment-history types."""

from __future__ import annotations

import functools
from typing import Any

from ariadne import InterfaceType, ObjectType

from pipelines.simulators.centra.state import CentraState, ReturnRec

from .common import _net, _sorted, _state, in_range, money, needs, paginate, query
from .orders import _line_currency, r_customer, shipping_address


@query.field("returns")
@needs("Return:read")
def r_returns(_: Any, info: Any, where: dict | None = None, sort: list | None = None, limit: int | None = 20,
              page: int | None = 1) -> list:
    state, w = _state(info), where or {}
    items = []
    for r in state.returns.values():
        order = state.orders[r.order_number]
        if ((w.get("id") and r.id not in w["id"]) or not in_range(r.created_at, w.get("created_at"))
                or (w.get("status") and r.status not in w["status"])
                or (w.get("store_id") and order.store_id not in w["store_id"])
                or (w.get("store_type") and state.stores[order.store_id]["type"] != w["store_type"])
                or (w.get("customer_id") and order.customer_id not in w["customer_id"])):
            continue
        items.append(r)
    return paginate(_sorted(items, sort, {"id": lambda r: r.id}), limit, page)


# ------------------------------------------------------------------ object types

shipment_iface = InterfaceType("Shipment")
shipment_iface.set_type_resolver(lambda obj, *_: "DirectToConsumerShipment")
return_iface = InterfaceType("Return")
return_iface.set_type_resolver(lambda obj, *_: "DirectToConsumerReturn")


shipment_t = ObjectType("DirectToConsumerShipment")
shipment_t.set_field("order", lambda s, info: _state(info).orders[s.order_number])
shipment_t.set_field("carrierInformation", lambda s, info: None if not (s.carrier_name or s.service_name) else {
    "carrier_name": s.carrier_name, "service_name": s.service_name})
shipment_t.set_field("grandTotal", lambda s, info, including_tax=True: money(
    _state(info), _state(info).shipment_grand_total(s, including_tax=including_tax is not False),
    _state(info).orders[s.order_number].currency))

shipment_line_t = ObjectType("ShipmentLine")
shipment_line_t.set_field("orderLine", lambda sl, info: _state(info).order_lines[sl.order_line_id])


@shipment_line_t.field("lineValue")
def r_shipment_line_value(sl: Any, info: Any, including_tax: bool = True) -> dict:
    ln = _state(info).order_lines[sl.order_line_id]
    return money(_state(info), _net(ln.unit_price * sl.quantity, ln.tax_percent, including_tax is not False),
                 _line_currency(info, ln))


return_t = ObjectType("DirectToConsumerReturn")
return_t.set_field("returnStatus", lambda r, info: r.status)
return_t.set_field("totalQuantity", lambda r, info: sum(ln.quantity for ln in r.lines))
return_t.set_field("returnWarehouse", lambda r, info: _state(info).warehouses.get(r.return_warehouse_id or -1))
return_t.set_field("order", lambda r, info: _state(info).orders[r.order_number])
return_t.set_field("shipment", lambda r, info: _state(info).shipments[r.shipment_id])


@return_t.field("refundPaymentHistory")
@needs("PaymentHistory:read")
def r_refund_history(r: ReturnRec, info: Any) -> list:
    return list(r.refund_history)


def _return_tax(state: CentraState, r: ReturnRec) -> float:
    rate = state.estate.tax_rates.get(state.orders[r.order_number].country, 0.0)
    items = sum(ln.unit_price * ln.quantity * (1 - 1 / (1 + ln.tax_percent / 100)) for ln in r.lines)
    return items + (r.shipping + r.handling) * (1 - 1 / (1 + rate))


@return_t.field("grandTotal")
def r_return_grand_total(r: ReturnRec, info: Any, including_tax: bool = True) -> dict:
    state = _state(info)
    value = r.grand_total if including_tax is not False else r.grand_total - _return_tax(state, r)
    return money(state, value, state.orders[r.order_number].currency)


@return_t.field("totals")
def r_return_totals(r: ReturnRec, info: Any) -> dict:
    state = _state(info)
    m = functools.partial(money, state, currency=state.orders[r.order_number].currency)
    return {"quantity": sum(ln.quantity for ln in r.lines), "line_values": m(r.line_values),
            "handling": m(r.handling), "shipping": m(r.shipping), "discounts": m(-r.voucher),
            "return_cost": m(r.return_cost), "tax_added": m(0.0), "tax_deducted": m(0.0),
            "tax_included": m(_return_tax(state, r))}


return_line_t = ObjectType("ReturnLine")
return_line_t.set_field("orderLine", lambda rl, info: _state(info).order_lines[rl.order_line_id])
return_line_t.set_field("shipmentLine", lambda rl, info: _state(info).shipment_lines[rl.shipment_line_id])


def _return_line_currency(info: Any, rl: Any) -> str:
    return _line_currency(info, _state(info).order_lines[rl.order_line_id])


return_line_t.set_field("unitPrice", lambda rl, info, including_tax=True: money(
    _state(info), _net(rl.unit_price, rl.tax_percent, including_tax is not False), _return_line_currency(info, rl)))
return_line_t.set_field("lineValue", lambda rl, info, including_tax=True: money(
    _state(info), _net(rl.unit_price * rl.quantity, rl.tax_percent, including_tax is not False),
    _return_line_currency(info, rl)))

payment_t = ObjectType("PaymentHistoryEntry")
payment_t.set_field("value", lambda p, info: money(_state(info), p.value, p.currency))


# ------------------------------------------------------------------ documented shipment fields (issue 12)


@shipment_t.field("internalShippingCost")
def r_internal_shipping_cost(s: Any, info: Any) -> dict:
    state = _state(info)
    value, currency = s.internal_shipping_cost or (0.0, state.orders[s.order_number].currency)
    return money(state, value, currency)


@shipment_t.field("adminUser")
@needs("AdminUser:read")
def r_admin_user(s: Any, info: Any) -> None:
    return None  # created through the API, not by an AMS user


@shipment_t.field("shipmentPlugin")
@needs("StorePlugin:read")
def r_shipment_plugin(s: Any, info: Any) -> None:
    return None  # no shipment plugin configured


@shipment_t.field("shippingAddress")
@needs("Shipment.shippingAddress:read")
def r_shipment_shipping_address(s: Any, info: Any) -> dict:
    state = _state(info)
    return shipping_address(state, state.orders[s.order_number])


shipment_t.set_field("discountsApplied", lambda s, info: [])


@return_t.field("customer")
def r_return_customer(r: ReturnRec, info: Any) -> dict:
    """The order's customer (AD-auth "### Separation of Customer and Buyer"); needs Purchaser:read like Order.customer."""
    return r_customer(_state(info).orders[r.order_number], info)
