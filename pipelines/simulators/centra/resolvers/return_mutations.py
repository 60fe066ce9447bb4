"""Return and refund mutations: `createReturn`, `completeReturn`, `refundReturn`."""

from __future__ import annotations

from typing import Any

from pipelines.simulators.centra.state import MutationError

from .common import _failed, _payload, _state, _warehouse_id, mutation, needs


def _cost(policy: dict[str, Any] | None) -> tuple[float, bool]:
    if not policy:
        return 0.0, False
    if policy.get("from_shipment"):
        return 0.0, True
    return float((policy.get("value") or {}).get("value") or 0.0), False


@mutation.field("createReturn")
@needs("Return:write")
def m_create_return(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    warnings: list[dict[str, Any]] = []
    try:
        pol = input.get("return_stock_action_policy") or {}
        chosen = [k for k in ("release_items_back_to_warehouse", "send_items_to_different_warehouse",
                              "remove_items_from_stock") if pol.get(k)]
        if len(chosen) > 1:
            raise MutationError("Choose exactly one returnStockActionPolicy option", ["input", "returnStockActionPolicy"])
        warehouse_id = None
        if not chosen:
            policy = "release"
            warnings.append({"message": "No returnStockActionPolicy given: items are released back to the "
                                        "warehouse they were shipped from", "path": ["input", "returnStockActionPolicy"]})
        elif chosen[0] == "send_items_to_different_warehouse":
            policy = "different"
            warehouse_id = _warehouse_id(state, pol["send_items_to_different_warehouse"],
                                         ["input", "returnStockActionPolicy", "sendItemsToDifferentWarehouse"])
        else:
            policy = "release" if chosen[0] == "release_items_back_to_warehouse" else "remove"
        shipping, shipping_from = _cost(input.get("shipping_cost"))
        handling, _h = _cost(input.get("handling_cost"))
        voucher, _v = _cost(input.get("voucher_value"))
        ret = state.create_return_for_shipment(
            input["shipment"]["id"], [(ln["shipment_line"]["id"], ln["quantity"]) for ln in input["lines"]],
            policy=policy, warehouse_id=warehouse_id, comment=input.get("comment"),
            external_id=input.get("external_id"), created_at=input.get("created_at"), shipping=shipping,
            shipping_from_shipment=shipping_from, handling=handling, voucher=voucher,
            return_cost=float((input.get("return_cost") or {}).get("value") or 0.0))
        return {"user_errors": [], "user_warnings": warnings, "return": ret}
    except MutationError as exc:
        return _failed(exc, **{"return": None})


@mutation.field("completeReturn")
@needs("Return:write")
def m_complete_return(_: Any, info: Any, id: int, input: dict | None = None) -> dict:  # noqa: A002
    try:
        return _payload(**{"return": _state(info).complete_return(id)})
    except MutationError as exc:
        return _failed(exc, **{"return": None})


@mutation.field("refundReturn")
@needs("Payment.refund:write")
def m_refund_return(_: Any, info: Any, id: int, input: dict | None = None) -> dict:  # noqa: A002
    state = _state(info)
    try:
        entry = state.refund_return(id)
        return _payload(payment_history_entries=[entry], payment_history_entry=entry,
                        **{"return": state.returns[id]})
    except MutationError as exc:
        return _failed(exc, payment_history_entries=[], payment_history_entry=None, **{"return": None})
