"""Allocation mutations: `allocateOrder` and `unallocateOrder` (schema_allocation.graphql)."""

from __future__ import annotations

from typing import Any

from pipelines.simulators.centra.state import CentraState, MutationError

from .common import _describe, _failed, _state, _warehouse_id, mutation, needs
from .payloads import _bind


def _number(state: CentraState, ref: dict[str, Any] | None) -> int:
    ref = ref or {}
    order = state.order(number=ref.get("number"), id=ref.get("id"))
    if order is None:
        raise MutationError(f"Order not found ({_describe(ref)})", ["input", "order"])
    return order.number


def _warehouses(state: CentraState, refs: list[dict[str, Any]] | None) -> tuple[int, ...] | None:
    if not refs:
        return None
    return tuple(int(_warehouse_id(state, r, ["input", "warehouses", str(i)])) for i, r in enumerate(refs))


def _lines(items: list[dict[str, Any]] | None) -> list[tuple[int, int]] | None:
    return [(int(i["order_line"]["id"]), int(i["quantity"])) for i in items] if items else None


def _locked_ok(info: Any) -> bool:
    """A locked order's allocation changes only for a token with `Order.isLocked:write` (cd allocateOrder)."""
    allowed = info.context.get("permissions")
    return allowed is None or "Order.isLocked:write" in allowed


def _result(order: Any, warnings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"user_errors": [], "user_warnings": warnings, "order": order}


@mutation.field("allocateOrder")
@needs("Order:write")
def m_allocate_order(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        order, warnings = state.allocate_order(
            _number(state, input["order"]), _lines(input.get("allocate")), _warehouses(state, input.get("warehouses")),
            locked_ok=_locked_ok(info), comment=input.get("comment"))
        return _result(order, warnings)
    except MutationError as exc:
        return _failed(exc, order=None)


@mutation.field("unallocateOrder")
@needs("Order:write")
def m_unallocate_order(_: Any, info: Any, input: dict) -> dict:  # noqa: A002
    state = _state(info)
    try:
        policy = input.get("stock_action_policy") or {}
        target = policy.get("send_items_to_different_warehouse")
        send_to = _warehouse_id(state, target, ["input", "stockActionPolicy", "sendItemsToDifferentWarehouse"])
        order, warnings = state.unallocate_order(
            _number(state, input["order"]), _lines(input.get("unallocate")),
            _warehouses(state, input.get("warehouses")), release=bool(policy.get("release_items_back_to_warehouse")),
            remove=bool(policy.get("remove_items_from_stock")), send_to=send_to, locked_ok=_locked_ok(info),
            comment=input.get("comment"))
        return _result(order, warnings)
    except MutationError as exc:
        return _failed(exc, order=None)


BINDABLES = [_bind("OrderAllocatePayload", "order", "Order:read"),
             _bind("OrderUnallocatePayload", "order", "Order:read")]
