"""The events system: `events`, `eventListeners`, `setEventListeners`, `unsetEventListeners`, `confirmEvents`
and the `Event`, `EventListener` and `EventTarget` types (schema_events.graphql; the queue is
`pipelines.simulators.centra.events`).

The queue is the calling token's integration's (`state.integration_for(token)`, the token comes in the
request context). `Event:read` for the reads, `Event:write` for the mutations; `Event.store`/`market` need
`Store:read`/`Market:read`, `Event.object` the read permission of its type."""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, UnionType
from graphql import GraphQLError

from pipelines.estate.model import Product, Variant
from pipelines.simulators.centra.events import EventRec, ListenerRec
from pipelines.simulators.centra.state import CentraState, MutationError, OrderRec, ReturnRec, ShipmentRec

from .common import _failed, _payload, _state, mutation, needs, paginate, query, require

#: The permission `Event.object` needs, per object type (sim: the docs do not say).
OBJECT_PERMISSION = {"Order": "Order:read", "Shipment": "Order:read", "Return": "Return:read",
                     "Product": "Product:read", "ProductVariant": "Product:read", "Collection": "Product:read"}


def _integration(info: Any) -> str:
    return _state(info).integration_for(info.context.get("token"))


def _listener_inputs(items: list[dict[str, Any]] | None) -> list[tuple[str, list[str] | None]]:
    return [(item["object_type"], item.get("change_types")) for item in items or []]


def _filter_listeners(listeners: list[ListenerRec], where: dict[str, Any] | None) -> list[ListenerRec]:
    w = where or {}
    ots, cts = set(w.get("object_type") or ()), set(w.get("change_type") or ())
    return [r for r in listeners
            if (not ots or r.object_type in ots) and (not cts or r.change_types & cts)]


# ------------------------------------------------------------------ queries


@query.field("events")
@needs("Event:read")
def r_events(_: Any, info: Any, where: dict | None = None, limit: int | None = 100) -> list[EventRec]:
    w = where or {}
    pending = _state(info).pending_events(_integration(info), object_types=w.get("object_type"),
                                          change_types=w.get("change_type"), store_ids=w.get("store_id"),
                                          market_ids=w.get("market_id"))
    return paginate(pending, 100 if limit is None else limit, 1)


@query.field("eventListeners")
@needs("Event:read")
def r_event_listeners(_: Any, info: Any, where: dict | None = None) -> list[ListenerRec]:
    return _filter_listeners(_state(info).listeners_of(_integration(info)), where)


# ------------------------------------------------------------------ mutations


@mutation.field("setEventListeners")
@needs("Event:write")
def r_set_event_listeners(_: Any, info: Any, input: list[dict[str, Any]]) -> dict:  # noqa: A002
    try:
        return _payload(event_listeners=_state(info).set_event_listeners(_integration(info), _listener_inputs(input)))
    except MutationError as exc:
        return _failed(exc, event_listeners=[])


@mutation.field("unsetEventListeners")
@needs("Event:write")
def r_unset_event_listeners(_: Any, info: Any, input: list[dict[str, Any]]) -> dict:  # noqa: A002
    try:
        return _payload(event_listeners=_state(info).unset_event_listeners(_integration(info),
                                                                            _listener_inputs(input)))
    except MutationError as exc:
        return _failed(exc, event_listeners=[])


@mutation.field("confirmEvents")
@needs("Event:write")
def r_confirm_events(_: Any, info: Any, input: dict[str, Any]) -> dict:  # noqa: A002
    ids = list(input.get("events_ids") or [])
    done, missing = _state(info).confirm_events(_integration(info), ids)
    warnings = [{"message": f"Event {ev_id} not found among the unconfirmed events of this integration",
                 "path": ["input", "eventsIds", str(ids.index(ev_id))]} for ev_id in missing]
    return {"events": done, "user_errors": [], "user_warnings": warnings}


# ------------------------------------------------------------------ object types

listener_set_t = ObjectType("EventListenerSetPayload")
listener_unset_t = ObjectType("EventListenerUnsetPayload")
for _payload_t in (listener_set_t, listener_unset_t):
    _payload_t.set_field("eventListeners",
                         lambda p, info, where=None: _filter_listeners(p["event_listeners"], where))

confirm_t = ObjectType("EventsConfirmPayload")
confirm_t.set_field("events", needs("Event:read")(lambda p, info: p["events"]))

listener_t = ObjectType("EventListener")
listener_t.set_field("integrationName", lambda r, info: r.integration)
listener_t.set_field("changeTypes", lambda r, info: r.sorted_change_types())

event_t = ObjectType("Event")


@event_t.field("store")
def r_event_store(ev: EventRec, info: Any) -> Any:
    require(info, "Store:read")
    return _state(info).stores.get(ev.store_id) if ev.store_id is not None else None


@event_t.field("market")
def r_event_market(ev: EventRec, info: Any) -> Any:
    require(info, "Market:read")
    return _state(info).markets.get(ev.market_id) if ev.market_id is not None else None


@event_t.field("object")
def r_event_object(ev: EventRec, info: Any) -> Any:
    state: CentraState = _state(info)
    target = state.event_target(ev)
    if target is not None:
        require(info, OBJECT_PERMISSION.get(ev.object_type, f"{ev.object_type}:read"))
    return target


target_union = UnionType("EventTarget")


@target_union.type_resolver
def r_target_type(obj: Any, *_: Any) -> str:
    if isinstance(obj, OrderRec):
        return "DirectToConsumerOrder"
    if isinstance(obj, ShipmentRec):
        return "DirectToConsumerShipment"
    if isinstance(obj, ReturnRec):
        return "DirectToConsumerReturn"
    if isinstance(obj, Product):
        return "Product"
    if isinstance(obj, Variant):
        return "ProductVariant"
    raise GraphQLError(f"No EventTarget type for {type(obj).__name__}")


BINDABLES = (event_t, listener_t, target_union, listener_set_t, listener_unset_t, confirm_t)
