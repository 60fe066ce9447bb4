"""Centra's events queue into the inbox: the second way a tenant offers its changes (the first is the webhook
plugin, landed by the intake).

Each poll fetches the oldest unconfirmed events of our integration (Centra keeps them until confirmed), lands
each in the inbox as source `centra`, named `<ObjectType>.<CHANGE>` (e.g. `Order.CREATED`), under a dedup key
of its event id, and then confirms exactly the events that are stored: a crash between the two only makes
Centra send them again, and the inbox takes a repeat as a duplicate. A malformed event is landed with what is
readable of it, so it is never lost and never blocks the queue. Events carry ids only; the flows read the
object's current state by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from pipelines.connectors.centra.client import CentraClient
from pipelines.connectors.centra.events import (
    MAX_EVENTS,
    confirm_events,
    fetch_event_batch,
    set_event_listeners,
)
from pipelines.domain.timeutil import normalise_time
from pipelines.intake.verify import InboundEvent
from pipelines.store.inbox import store_events

#: What the order flows act on (and the related objects a flow reads back).
LISTENED = ("Order", "Shipment", "Return")


@dataclass
class EventsPoll:
    fetched: int = 0
    landed: int = 0  # new rows in the inbox (repeats are duplicates)
    confirmed: int = 0
    malformed: int = 0
    errors: list[str] = field(default_factory=list)


def _utc(value: str) -> str | None:
    try:
        return normalise_time(value)
    except (TypeError, ValueError):
        return None


def subscribe(client: CentraClient) -> None:
    """Subscribe our integration to the objects the flows follow (additive and idempotent)."""
    set_event_listeners(client, LISTENED)


def poll(engine: Engine, client: CentraClient, *, batches: int = 5, limit: int = MAX_EVENTS) -> EventsPoll:
    """Up to `batches` fetches of `limit`: land, then confirm what landed."""
    out = EventsPoll()
    for _ in range(batches):
        batch = fetch_event_batch(client, limit)
        if not batch.events and not batch.malformed:
            break
        rows = [InboundEvent("centra", f"event:{e.id}", f"{e.object_type}.{e.change_type}", _utc(e.created_at),
                             {"id": e.id, "objectType": e.object_type, "changeType": e.change_type,
                              "objectReference": e.object_reference, "createdAt": e.created_at, "via": "events"})
                for e in batch.events]
        rows += [InboundEvent("centra", f"event:{m.id}", "centra_event.malformed", None,
                              {"id": m.id, "reason": m.reason, "raw": m.raw, "via": "events"})
                 for m in batch.malformed if m.id is not None]
        stored = store_events(engine, rows)
        out.fetched += len(batch.events) + len(batch.malformed)
        out.malformed += len(batch.malformed)
        out.landed += sum(1 for s in stored if s)
        ids = [int(r.payload["id"]) for r in rows]  # every row is in the inbox now (new or duplicate)
        out.confirmed += len(confirm_events(client, ids))
        if len(batch.events) + len(batch.malformed) < limit:
            break
    return out
