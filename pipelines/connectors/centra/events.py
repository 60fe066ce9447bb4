"""Centra's events system, the connector side: subscribe (`set_event_listeners`), poll (`fetch_events`) and
confirm (`confirm_events`), typed functions over `CentraClient.execute`.

The queue belongs to the token's *integration name* (tokens with the same name share it). `events` returns
the oldest unconfirmed events and returns them again on every fetch until they are confirmed, so a
consumer stores what it fetched first and confirms only that (at-least-once; confirm ignored events too,
or they come back forever). Poll about once a minute. An event carries only a reference: this module does
not select `object`; callers fetch the object's current state by id (order number for `Order`).

Decoding is defensive: a malformed event is reported (`EventBatch.malformed`, and logged by
`fetch_events`) and never stops the others; when its id is readable it is still confirmable.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.connectors.centra.client import PAGE_LIMIT, CentraClient
from pipelines.connectors.centra.decode import utc_iso
from pipelines.connectors.errors import ConnectorError

log = logging.getLogger("pipelines.connectors.centra.events")

#: Centra's maximum `limit` for list queries; also the size of one `confirmEvents` batch here.
MAX_EVENTS = PAGE_LIMIT

_EVENT_FIELDS = "id objectType changeType objectReference createdAt"
Q_EVENTS = f"""
query CentraEvents($limit: Int) {{
  events(limit: $limit) {{ {_EVENT_FIELDS} }}
}}"""
Q_EVENTS_OF_TYPES = f"""
query CentraEventsOfTypes($limit: Int, $types: [EventObjectType!]) {{
  events(where: {{objectType: $types}}, limit: $limit) {{ {_EVENT_FIELDS} }}
}}"""

M_SET_LISTENERS = """
mutation SetEventListeners($input: [EventListenerSetInput!]!) {
  setEventListeners(input: $input) {
    eventListeners { objectType changeTypes }
    userErrors { message path }
    userWarnings { message path }
  }
}"""

M_CONFIRM = """
mutation ConfirmEvents($ids: [Int!]!) {
  confirmEvents(input: {eventsIds: $ids}) {
    events { id }
    userErrors { message path }
    userWarnings { message path }
  }
}"""


@dataclass(frozen=True)
class CentraEvent:
    """One queued change: what changed (`object_type`, `object_reference`: the order number for Order, the
    id otherwise), how (`change_type`) and when it was published (`created_at`, ISO-8601 UTC)."""

    id: int
    object_type: str
    change_type: str
    object_reference: int
    created_at: str


@dataclass(frozen=True)
class MalformedEvent:
    """An `events` entry that could not be decoded; `id` is set when it was readable (then confirmable)."""

    id: int | None
    reason: str
    raw: str  # a repr of the entry, at most 500 characters


@dataclass(frozen=True)
class EventBatch:
    events: tuple[CentraEvent, ...]
    malformed: tuple[MalformedEvent, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        """Every confirmable id of the batch, malformed entries with a readable id included."""
        return tuple(e.id for e in self.events) + tuple(m.id for m in self.malformed if m.id is not None)


def _int(value: Any, what: str) -> int:
    """An Int / Int64 (Int64 may arrive as a decimal string); bools and fractions are refused."""
    if isinstance(value, bool):
        raise ValueError(f"{what} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"{what} is not an integer: {value!r}")


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is missing or not a string: {value!r}")
    return value


def event_from_node(node: Any) -> CentraEvent:
    """Decode one `Event` node; raises ValueError (with the reason) when it is malformed."""
    if not isinstance(node, dict):
        raise ValueError(f"an event is not an object: {type(node).__name__}")
    created = node.get("createdAt")
    if not isinstance(created, str):
        raise ValueError(f"createdAt is missing or not a string: {created!r}")
    try:
        created_at = utc_iso(created)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"createdAt is not a timestamp: {created!r}") from exc
    if not created_at:
        raise ValueError("createdAt is empty")
    return CentraEvent(id=_int(node.get("id"), "id"), object_type=_name(node.get("objectType"), "objectType"),
                       change_type=_name(node.get("changeType"), "changeType"),
                       object_reference=_int(node.get("objectReference"), "objectReference"),
                       created_at=created_at)


def decode_events(nodes: Iterable[Any]) -> EventBatch:
    """Decode every node; the malformed ones are collected, never raised."""
    good: list[CentraEvent] = []
    bad: list[MalformedEvent] = []
    for node in nodes:
        try:
            good.append(event_from_node(node))
        except ValueError as exc:
            raw_id = node.get("id") if isinstance(node, dict) else None
            try:
                ident: int | None = _int(raw_id, "id")
            except ValueError:
                ident = None
            bad.append(MalformedEvent(ident, str(exc), repr(node)[:500]))
    return EventBatch(tuple(good), tuple(bad))


def fetch_event_batch(client: CentraClient, limit: int = 100, *,
                      object_types: Iterable[str] | None = None) -> EventBatch:
    """The oldest unconfirmed events of the token's integration (at most `limit`, 1-200), decoded."""
    if not 1 <= limit <= MAX_EVENTS:
        raise ValueError(f"limit must be in range 1 - {MAX_EVENTS}")
    if object_types is None:
        data = client.execute(Q_EVENTS, {"limit": limit})
    else:
        data = client.execute(Q_EVENTS_OF_TYPES, {"limit": limit, "types": list(object_types)})
    nodes = data.get("events")
    if not isinstance(nodes, list):
        raise ConnectorError(f"Centra events: expected a list, got {type(nodes).__name__}")
    return decode_events(nodes)


def fetch_events(client: CentraClient, limit: int = 100, *,
                 object_types: Iterable[str] | None = None) -> list[CentraEvent]:
    """Like `fetch_event_batch`, the well-formed events only; each malformed one is logged as a warning
    (use `fetch_event_batch` to confirm those too)."""
    batch = fetch_event_batch(client, limit, object_types=object_types)
    for bad in batch.malformed:
        log.warning("malformed Centra event (id %s): %s; %s", bad.id, bad.reason, bad.raw)
    return list(batch.events)


def set_event_listeners(client: CentraClient,
                        object_types: Iterable[str] | Mapping[str, Iterable[str] | None]) -> dict[str, tuple[str, ...]]:
    """Subscribe the token's integration (additive and idempotent, so safe to call at every start).

    `object_types`: names (all change types), or name -> change types (None = all). Returns the affected
    listeners as object type -> change types."""
    if isinstance(object_types, Mapping):
        items = list(object_types.items())
    else:
        items = [(name, None) for name in object_types]
    inputs = [{"objectType": name} if changes is None else {"objectType": name, "changeTypes": list(changes)}
              for name, changes in items]
    if not inputs:
        return {}
    payload = client.execute(M_SET_LISTENERS, {"input": inputs}, idempotent=True)["setEventListeners"]
    return {row["objectType"]: tuple(row.get("changeTypes") or ()) for row in payload.get("eventListeners") or []}


def confirm_events(client: CentraClient, ids: Iterable[int]) -> set[int]:
    """Confirm events (in batches of `MAX_EVENTS`); returns the ids Centra reported confirmed.

    Resending a confirmation cannot lose anything (an event is either gone already or now confirmed), so
    the mutation is retried like an idempotent one. Ids that Centra did not confirm come back on a later
    fetch."""
    unique = list(dict.fromkeys(int(i) for i in ids))
    done: set[int] = set()
    for start in range(0, len(unique), MAX_EVENTS):
        chunk = unique[start:start + MAX_EVENTS]
        payload = client.execute(M_CONFIRM, {"ids": chunk}, idempotent=True)["confirmEvents"]
        done.update(int(e["id"]) for e in payload.get("events") or [] if isinstance(e, dict) and "id" in e)
    return done


__all__ = ["MAX_EVENTS", "CentraEvent", "EventBatch", "MalformedEvent", "confirm_events", "decode_events",
           "event_from_node", "fetch_event_batch", "fetch_events", "set_event_listeners"]
