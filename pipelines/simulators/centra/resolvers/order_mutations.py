"""Order and shipment mutations: confirm, update, lock and cancel orders; create, update, capture and
complete shipments."""

from __future__ import annotations

from typing import Any

from pipelines.simulators.centra.state import CentraState, MutationError

from .common import _describe, _failed, _payload, _state, mutation, needs


def _camel(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """An address input (snake_case keys from ariadne) back to the schema's camelCase field names."""
    if not fields:
        return None
    return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): v for k, v in fields.items()
            if v is not None}


def _order_number(state: CentraState, ref: dict[str, Any] | None, path: list[str]) -> int:
    ref = ref or {}
    order = state.order(number=ref.get("number"), id=ref.get("id"))
    if order is None:
        raise MutationError(f"Order not found ({_describe(ref)})", path)
    return order.number


@mutation.field("confirmOrder")
@needs("Order:write")
def m_confirm_order(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        return _payload(order=state.confirm_order(_order_number(state, input["order"], ["input", "order"])))
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("updateDirectToConsumerOrder")
@needs("Order:write")
def m_update_order(_: Any, info: Any, order: dict, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        number = _order_number(state, order, ["order"])
        cancel = [(c["line"]["id"], c["quantity"], c.get("stock_action") == "REMOVE_FROM_STOCK")
                  for c in input.get("cancel_lines") or []]
        info_in = input.get("customer_info") or {}
        cost = input.get("shipping_cost")
        if cost is not None and cost["currency_iso_code"] != state.orders[number].currency:
            raise MutationError(f"Shipping cost currency must be the order's {state.orders[number].currency}",
                                ["input", "shippingCost"])
        rec = state.update_order(number, is_on_hold=input.get("is_on_hold"), external_id=input.get("external_id"),
                                 internal_comment=input.get("internal_comment"),
                                 cancellation_comment=input.get("cancellation_comment"),
                                 cancel_lines=cancel, email=info_in.get("email"),
                                 first_name=info_in.get("first_name"), last_name=info_in.get("last_name"),
                                 shipping_address=_camel(input.get("shipping_address")),
                                 billing_address=_camel(input.get("billing_address")),
                                 customer_id=(input.get("customer") or {}).get("id"),
                                 shipping_cost=None if cost is None else float(cost["value"]),
                                 is_internal=input.get("is_internal"))
        return _payload(order=rec)
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("setOrdersLock")
@needs("Order.isLocked:write")
def m_set_orders_lock(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        numbers = [_order_number(state, o, ["input", "orders", str(i)]) for i, o in enumerate(input["orders"])]
        return _payload(orders=state.set_orders_lock(numbers, input["is_locked"]))
    except MutationError as exc:
        return _failed(exc, orders=[])


@mutation.field("cancelDirectToConsumerOrder")
@needs("Order:write")
def m_cancel_order(_: Any, info: Any, id: str, input: dict | None = None) -> dict:  # noqa: A002
    state = _state(info)
    inp = input or {}
    try:
        action = inp.get("stock_action") or {}
        rec = state.cancel_order(id=id, comment=inp.get("comment"),
                                 remove_from_stock=bool(action.get("remove_items_from_stock")))
        return _payload(order=rec)
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("createShipment")
@needs("Shipment:write")
def m_create_shipment(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        number = _order_number(state, input["order"], ["input", "order"])
        lines = None
        if input.get("lines") is not None:
            lines = [(ln["order_line"]["id"], ln["quantity"]) for ln in input["lines"]]
        shipment = state.create_shipment(number, lines, created_at=input.get("created_at"),
                                         is_good_to_go=bool(input.get("is_good_to_go")),
                                         is_paid=bool(input.get("is_paid")), capture=bool(input.get("capture")),
                                         allocate_demand=bool(input.get("allocate_demand")),
                                         additional_message=input.get("additional_message"),
                                         send_email=input.get("send_email"))
        if input.get("shipped_at") is not None:
            state.complete_shipment(shipment.id, shipped_at=input["shipped_at"])
        return _payload(shipment=shipment)
    except MutationError as exc:
        return _failed(exc, shipment=None)


@mutation.field("updateShipment")
@needs("Shipment:write")
def m_update_shipment(_: Any, info: Any, id: int, input: dict) -> dict:  # noqa: A002
    try:
        return _payload(shipment=_state(info).update_shipment(id, is_paid=input.get("is_paid"),
                                                              is_good_to_go=input.get("is_good_to_go"),
                                                              additional_message=input.get("additional_message")))
    except MutationError as exc:
        return _failed(exc, shipment=None)


@mutation.field("captureShipment")
@needs("Payment.capture:write")
def m_capture_shipment(_: Any, info: Any, id: int) -> dict:  # noqa: A002
    state = _state(info)
    try:
        entry = state.capture_shipment(id)
        return _payload(shipment=state.shipments[id], payment_history_entry=entry)
    except MutationError as exc:
        return _failed(exc, shipment=None, payment_history_entry=None)


@mutation.field("completeShipment")
@needs("Shipment:write")
def m_complete_shipment(_: Any, info: Any, id: int, input: dict | None = None) -> dict:  # noqa: A002
    inp = input or {}
    si = inp.get("shipment_info") or {}
    try:
        shipment = _state(info).complete_shipment(
            id, shipped_at=inp.get("shipped_at"), carrier=si.get("carrier"), service=si.get("service"),
            tracking_number=si.get("tracking_number"), return_tracking_number=si.get("return_tracking_number"),
            packages=si.get("packages_number"), send_email=inp.get("send_email"),
            additional_message=inp.get("additional_message"),
            internal_shipping_cost=None if si.get("internal_shipping_cost") is None else (
                float(si["internal_shipping_cost"]["value"]), si["internal_shipping_cost"]["currency_iso_code"]))
        return _payload(shipment=shipment)
    except MutationError as exc:
        return _failed(exc, shipment=None)


@mutation.field("captureOrder")
@needs("Payment.capture:write")
def m_capture_order(_: Any, info: Any, order: dict) -> dict:
    state = _state(info)
    try:
        number = _order_number(state, order, ["order"])
        entry = state.capture_order(number)
        return _payload(order=state.orders[number], payment_history_entry=entry)
    except MutationError as exc:
        return _failed(exc, order=None, payment_history_entry=None)
