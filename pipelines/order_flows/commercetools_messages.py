"""commercetools' Messages into the inbox, and which flows they trigger.

commercetools offers no plain HTTP webhook (reference §3.5: subscriptions deliver to cloud queues only), so the
order flows pull `GET /messages` (the project must have `messages.enabled`; retention 1-90 days). Messages are
published late and not in `createdAt` order, so each pull asks from the cursor minus a lookback window
(`LOOKBACK_S`): the cursor is the newest `createdAt` landed (epoch milliseconds in the store of record's
cursors, name `CURSOR`). Every message is landed in the inbox as source `commercetools`, named by its `type`,
under a dedup key of its message `id`: a message pulled again (the lookback, a page boundary, a crash before the
cursor moved) is a duplicate. The cursor moves only after the messages are stored. Messages carry ids; the
flows read the order's current state by id.

Triggers: `OrderCreated`, `OrderImported` and `OrderStateChanged` -> the pickup flow and the ship-from-store
flow for that order (key: the order id); each decides from the order whether it is its business (a pickup
shipping method; a line supplied by a store's channel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from pipelines.connectors.commercetools.client import CommercetoolsClient
from pipelines.domain.timeutil import normalise_time, parse_time
from pipelines.intake.verify import InboundEvent
from pipelines.order_flows import names
from pipelines.store import order_flows as work
from pipelines.store.inbox import store_events
from pipelines.sync.queue import get_cursor, set_cursor

SOURCE = "commercetools"
CURSOR = "commercetools_messages"  # epoch ms of the newest landed message's createdAt
LOOKBACK_S = 300.0  # messages published up to this late are still landed
ORDER_MESSAGES = ("OrderCreated", "OrderImported", "OrderStateChanged")
#: What the pull lands (the inbox event names; the runner registers these).
MESSAGE_TYPES = (*ORDER_MESSAGES, "OrderShipmentStateChanged", "DeliveryAdded", "ReturnInfoAdded")


@dataclass
class MessagesPull:
    fetched: int = 0
    landed: int = 0  # new rows (repeats are duplicates)
    pages: int = 0
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)


def _ms(text: str) -> int:
    return int(parse_time(text).timestamp() * 1000)


def _iso(ms: int) -> str:
    ts = datetime.fromtimestamp(ms / 1000, UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _event(m: dict[str, Any]) -> InboundEvent:
    resource = m.get("resource") or {}
    ids = m.get("resourceUserProvidedIdentifiers") or {}
    payload = {"id": m.get("id"), "type": m.get("type"), "resource": {"typeId": resource.get("typeId"),
                                                                       "id": resource.get("id")},
               "resourceVersion": m.get("resourceVersion"), "sequenceNumber": m.get("sequenceNumber"),
               "createdAt": m.get("createdAt"), "orderNumber": ids.get("orderNumber"), "via": "messages"}
    try:
        when = normalise_time(str(m.get("createdAt")))
    except (TypeError, ValueError):
        when = None
    return InboundEvent(SOURCE, f"message:{m.get('id')}", str(m.get("type")), when, payload)


def pull(engine: Engine, client: CommercetoolsClient, *, pages: int = 20, limit: int = 500,
         lookback_s: float = LOOKBACK_S, types: tuple[str, ...] = MESSAGE_TYPES) -> MessagesPull:
    """Land the messages created since the cursor minus `lookback_s`, up to `pages` pages of `limit`."""
    out = MessagesPull()
    cursor = get_cursor(engine, CURSOR)
    since = _iso(max(0, cursor - int(lookback_s * 1000))) if cursor else None
    newest = cursor
    for _ in range(pages):
        batch = client.messages(since=since, types=types, limit=limit)
        out.pages += 1
        out.fetched += len(batch)
        good = [m for m in batch if m.get("id") and m.get("createdAt")]
        stored = store_events(engine, [_event(m) for m in good])
        out.landed += sum(1 for s in stored if s)
        if good:
            newest = max(newest, max(_ms(m["createdAt"]) for m in good))
        if newest > cursor:
            with engine.begin() as conn:
                set_cursor(conn, engine, CURSOR, newest)
            cursor = newest
        if len(batch) < limit or not good:
            break
        last = good[-1]["createdAt"]
        if since == last:  # a full page of one instant: no further progress by createdAt
            out.errors.append(f"more than {limit} messages created at {last}: the rest waits for the next pull")
            break
        since = last
    out.cursor = _iso(cursor) if cursor else None
    return out


def commercetools_triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]
                           ) -> list[work.Trigger]:
    resource = envelope.get("resource") or {}
    if name not in ORDER_MESSAGES or resource.get("typeId") != "order" or not resource.get("id"):
        return []
    # the order's reference is its number (`order_ref`), which messages carry in resourceUserProvidedIdentifiers
    ref = str(envelope.get("orderNumber") or resource["id"])
    return [work.Trigger(flow, ref, name, inbox_id, when) for flow in (names.PICKUP_ORDER, names.SHIP_FROM_STORE)]
