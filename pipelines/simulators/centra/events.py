"""Centra's events system (the queue an integration polls) and the change hooks that feed it and the webhooks.

`EventsMixin` sits on top of the other areas of :class:`~.state.CentraState`. It

* keeps one event queue per *integration name* (tokens map to an integration name; tokens with the same
  name share a queue), with listeners per object type (`setEventListeners` is additive and idempotent, no
  change types = all of them; `unsetEventListeners` removes listeners and deletes their queued events);
* publishes an event to every integration whose listener matches a world change, kept until confirmed:
  `events` returns the oldest unconfirmed events (at-least-once, every fetch returns them again) and
  `confirmEvents` removes them;
* wraps the world API (`create_shipment`, `update_shipment`, `capture_shipment`, `capture_order`,
  `complete_shipment`, `complete_return`, `cancel_order`) to publish what the other areas do not announce themselves, and the
  webhook events `shipment`/`good_to_go` and `shipment`/`completed` (the emitter maps the latter to the
  wire action, see `WebhookEmitter(shipment_completed_action=...)`).

Which changes produce which events (see PROVENANCE.md "Events system"): Order CREATED on place_order;
Order UPDATED on every `order`/`update` webhook change (confirm, update, lock, cancel, shipment and return
changes, refund) except the one that moves the order to SHIPPED, which is Order COMPLETED; Shipment CREATED,
UPDATED (update, capture, an order capture that captures it), COMPLETED, DELETED (an open shipment dropped by a cancellation); Return CREATED,
COMPLETED. `objectReference` is the order number for Order and the id otherwise.

Fault knobs (`set_event_faults`): late publication (`delay_s` + up to `jitter_s` of random extra: the
event's createdAt is later than the change and it is invisible until then; jitter can reorder events),
and duplicate publication (`duplicate_rate`: a change queued twice under two ids).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .records import MutationError
from .returns import ReturnsMixin

#: EventObjectType values the simulator knows: the ones it produces plus the names the docs' examples use.
OBJECT_TYPES = ("Order", "Shipment", "Return", "Product", "ProductVariant", "AdminUser", "Collection")
#: EventChangeType, in the order centra.dev lists it.
CHANGE_TYPES = ("CREATED", "UPDATED", "COMPLETED", "DELETED", "DEPENDENT_DATA_CHANGED")
#: The integration name of every token that `event_integrations` does not name.
DEFAULT_INTEGRATION = "pipelines"
#: The webhook action the state emits when a shipment is completed (the emitter maps it to the wire action).
SHIPMENT_COMPLETED = "completed"

# Webhook (type, action) the other areas already emit -> the queue event it stands for.
_FROM_WEBHOOK = {("order", "insert"): ("Order", "CREATED"), ("order", "update"): ("Order", "UPDATED"),
                 ("shipment", "create"): ("Shipment", "CREATED"), ("return", "insert"): ("Return", "CREATED")}


@dataclass
class EventRec:
    """One queued event of one integration."""

    id: int
    integration: str
    object_type: str
    change_type: str
    object_reference: int
    created_at: datetime  # what `createdAt` says; the event is invisible before it (late publication)
    store_id: int | None = None
    market_id: int | None = None
    changed_at: datetime | None = None  # sim only: when the change happened


@dataclass
class ListenerRec:
    integration: str
    object_type: str
    change_types: set[str]
    created_at: datetime
    updated_at: datetime

    def sorted_change_types(self) -> list[str]:
        return [c for c in CHANGE_TYPES if c in self.change_types]


@dataclass
class EventFaults:
    delay_s: float = 0.0
    jitter_s: float = 0.0
    duplicate_rate: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))


class EventsMixin(ReturnsMixin):
    """The events queue and the change hooks (see module docstring).

    Extra constructor argument: `event_integrations` = {token: integration name}; tokens not named there
    belong to :data:`DEFAULT_INTEGRATION`.
    """

    def __init__(self, *args: Any, event_integrations: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        self.event_integrations: dict[str, str] = dict(event_integrations or {})
        self.event_listeners: dict[tuple[str, str], ListenerRec] = {}
        self.event_queue: dict[int, EventRec] = {}  # unconfirmed events, all integrations
        self.event_faults = EventFaults()
        self._orders_completed: set[int] = set()
        self._in_create_shipment = 0
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ knobs

    def integration_for(self, token: str | None) -> str:
        """The integration name (queue) of an API token."""
        return self.event_integrations.get(token or "", DEFAULT_INTEGRATION)

    def set_event_faults(self, *, delay_s: float | None = None, jitter_s: float | None = None,
                         duplicate_rate: float | None = None, seed: int | None = None) -> None:
        """Late publication (`delay_s` + uniform `jitter_s`) and duplicate publication (`duplicate_rate`)."""
        with self.lock:
            f = self.event_faults
            if delay_s is not None:
                f.delay_s = max(0.0, float(delay_s))
            if jitter_s is not None:
                f.jitter_s = max(0.0, float(jitter_s))
            if duplicate_rate is not None:
                f.duplicate_rate = min(1.0, max(0.0, float(duplicate_rate)))
            if seed is not None:
                f.rng = random.Random(seed)

    # ------------------------------------------------------------ listeners

    def set_event_listeners(self, integration: str, inputs: Iterable[tuple[str, Iterable[str] | None]]
                            ) -> list[ListenerRec]:
        """Add listeners (additive, idempotent); `None` change types = all. Returns the affected listeners."""
        with self.lock:
            now, out = self.now(), []
            for object_type, change_types in inputs:
                self._check_object_type(object_type)
                wanted = set(CHANGE_TYPES if change_types is None else change_types)
                key = (integration, object_type)
                rec = self.event_listeners.get(key)
                if rec is None:
                    rec = self.event_listeners[key] = ListenerRec(integration, object_type, set(), now, now)
                if not wanted <= rec.change_types:
                    rec.change_types |= wanted
                    rec.updated_at = now
                if rec not in out:
                    out.append(rec)
            return out

    def unset_event_listeners(self, integration: str, inputs: Iterable[tuple[str, Iterable[str] | None]]
                              ) -> list[ListenerRec]:
        """Remove listeners (or some of their change types) and delete their queued events. Returns the
        affected listeners that still exist."""
        with self.lock:
            now, out = self.now(), []
            for object_type, change_types in inputs:
                self._check_object_type(object_type)
                dropped = set(CHANGE_TYPES if change_types is None else change_types)
                key = (integration, object_type)
                rec = self.event_listeners.get(key)
                for ev in [e for e in self.event_queue.values() if e.integration == integration
                           and e.object_type == object_type and e.change_type in dropped]:
                    del self.event_queue[ev.id]
                if rec is None:
                    continue
                if rec.change_types & dropped:
                    rec.change_types -= dropped
                    rec.updated_at = now
                if not rec.change_types:
                    del self.event_listeners[key]
                    out = [r for r in out if r is not rec]
                elif rec not in out:
                    out.append(rec)
            return out

    def listeners_of(self, integration: str) -> list[ListenerRec]:
        with self.lock:
            return [r for (name, _), r in sorted(self.event_listeners.items(), key=lambda kv: kv[0])
                    if name == integration]

    @staticmethod
    def _check_object_type(object_type: str) -> None:
        if object_type not in OBJECT_TYPES:
            raise MutationError(f"Unknown event object type {object_type!r}", ["input", "objectType"])

    # ------------------------------------------------------------ the queue

    def pending_events(self, integration: str, *, object_types: Iterable[str] | None = None,
                       change_types: Iterable[str] | None = None, store_ids: Iterable[int] | None = None,
                       market_ids: Iterable[int] | None = None) -> list[EventRec]:
        """The integration's unconfirmed, already published events, oldest first (createdAt, then id)."""
        ots, cts = set(object_types or ()), set(change_types or ())
        sids, mids = set(store_ids or ()), set(market_ids or ())
        with self.lock:
            now = self.now()
            out = [e for e in self.event_queue.values()
                   if e.integration == integration and e.created_at <= now
                   and (not ots or e.object_type in ots) and (not cts or e.change_type in cts)
                   and (not sids or e.store_id in sids) and (not mids or e.market_id in mids)]
            return sorted(out, key=lambda e: (e.created_at, e.id))

    def confirm_events(self, integration: str, ids: Iterable[int]) -> tuple[list[EventRec], list[int]]:
        """Confirm (remove) the integration's events; returns (confirmed, ids not found in its queue)."""
        with self.lock:
            done, missing = [], []
            for ev_id in ids:
                ev = self.event_queue.get(int(ev_id))
                if ev is None or ev.integration != integration:
                    missing.append(int(ev_id))
                    continue
                done.append(self.event_queue.pop(ev.id))
            return done, missing

    def event_target(self, ev: EventRec) -> Any:
        """The object's CURRENT state (None for DELETED or an object that no longer exists)."""
        if ev.change_type == "DELETED":
            return None
        ref = ev.object_reference
        return {"Order": self.orders, "Shipment": self.shipments, "Return": self.returns,
                "Product": self.products, "ProductVariant": self.variants}.get(ev.object_type, {}).get(ref)

    def record_change(self, object_type: str, change_type: str, reference: int, *,
                      store_id: int | None = None, market_id: int | None = None) -> list[EventRec]:
        """Queue one change for every integration listening to it (also a world/test API, e.g. for Product)."""
        with self.lock:
            now, out = self.now(), []
            for (integration, otype), rec in sorted(self.event_listeners.items(), key=lambda kv: kv[0]):
                if otype != object_type or change_type not in rec.change_types:
                    continue
                copies = 2 if self.event_faults.duplicate_rate and \
                    self.event_faults.rng.random() < self.event_faults.duplicate_rate else 1
                for _ in range(copies):
                    ev = EventRec(self._next("event"), integration, object_type, change_type, int(reference),
                                  now + self._publication_lag(), store_id, market_id, now)
                    self.event_queue[ev.id] = ev
                    out.append(ev)
            return out

    def _publication_lag(self) -> timedelta:
        f = self.event_faults
        extra = f.rng.uniform(0.0, f.jitter_s) if f.jitter_s else 0.0
        return timedelta(seconds=f.delay_s + extra)

    def _order_change(self, change_type: str, number: int) -> None:
        order = self.orders.get(number)
        self.record_change("Order", change_type, number, store_id=order.store_id if order else None,
                           market_id=order.market_id if order else None)

    def _shipment_change(self, change_type: str, shipment_id: int, order_number: int | None = None) -> None:
        shipment = self.shipments.get(shipment_id)
        order = self.orders.get(shipment.order_number if shipment else order_number or -1)
        self.record_change("Shipment", change_type, shipment_id, store_id=order.store_id if order else None,
                           market_id=order.market_id if order else None)

    def _return_change(self, change_type: str, return_id: int) -> None:
        ret = self.returns.get(return_id)
        order = self.orders.get(ret.order_number) if ret else None
        self.record_change("Return", change_type, return_id, store_id=order.store_id if order else None,
                           market_id=order.market_id if order else None)

    # ------------------------------------------------------------ change hooks

    def _emit(self, kind: str, action: str, ident: int) -> None:
        super()._emit(kind, action, ident)
        mapped = _FROM_WEBHOOK.get((kind, action))
        if mapped is None:
            return
        object_type, change_type = mapped
        if object_type == "Order":
            order = self.orders.get(ident)
            if change_type == "UPDATED" and order is not None and order.status == "SHIPPED" \
                    and ident not in self._orders_completed:
                self._orders_completed.add(ident)
                change_type = "COMPLETED"
            self._order_change(change_type, ident)
        elif object_type == "Shipment":
            self._shipment_change(change_type, ident)
        else:
            self._return_change(change_type, ident)

    def create_shipment(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self._in_create_shipment += 1
            try:
                shipment = super().create_shipment(*args, **kwargs)
            finally:
                self._in_create_shipment -= 1
            if shipment.is_good_to_go:
                self._emit("shipment", "good_to_go", shipment.id)
            return shipment

    def update_shipment(self, shipment_id: int, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            before = self.shipments.get(int(shipment_id))
            was_good = bool(before and before.is_good_to_go)
            shipment = super().update_shipment(shipment_id, *args, **kwargs)
            self._shipment_change("UPDATED", shipment.id)
            if shipment.is_good_to_go and not was_good:
                self._emit("shipment", "good_to_go", shipment.id)
            return shipment

    def capture_shipment(self, shipment_id: int, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            entry = super().capture_shipment(shipment_id, *args, **kwargs)
            if not self._in_create_shipment:  # a capture inside createShipment is part of the creation
                self._shipment_change("UPDATED", int(shipment_id))
            return entry

    def capture_order(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            before = {sid for sid, s in self.shipments.items() if s.is_captured}
            entry = super().capture_order(*args, **kwargs)
            for sid in sorted(sid for sid, s in self.shipments.items() if s.is_captured and sid not in before):
                self._shipment_change("UPDATED", sid)
            return entry

    def complete_shipment(self, shipment_id: int, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            shipment = super().complete_shipment(shipment_id, *args, **kwargs)
            self._shipment_change("COMPLETED", shipment.id)
            self._emit("shipment", SHIPMENT_COMPLETED, shipment.id)
            return shipment

    def complete_return(self, return_id: int, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            ret = super().complete_return(return_id, *args, **kwargs)
            self._return_change("COMPLETED", ret.id)
            return ret

    def cancel_order(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            before = set(self.shipments)
            order = super().cancel_order(*args, **kwargs)
            for sid in sorted(before - set(self.shipments)):
                self._shipment_change("DELETED", sid, order.number)
            return order
