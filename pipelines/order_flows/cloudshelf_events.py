"""Cloudshelf's order events as the order flows see them: what work each one triggers, the landed customer
details of a kiosk order, and the poll that lands what a dropped webhook delivery lost.

- `cloudshelf.order` (a webhook delivery landed by the intake, `pipelines.intake.app.parse_cloudshelf_webhook`,
  or a polled order) -> the kiosk order flow for that order (`pipelines.order_flows.kiosk`).
- A Centra order event (webhook `order.*`, events queue `Order.*`) of a Centra order made for a kiosk order
  (`kiosk_orders.centra_order_ref`) -> the kiosk order flow for that kiosk order: its status goes back.
- `poll`: Cloudshelf's `orders` sorted by `updatedAt`, from the cursor (a safety net for dropped deliveries, run
  once a minute by `cloudshelf_orders_sensor`): each order lands as `cloudshelf.order` under the dedup key
  `poll:<order id>:<status>`, apart from the webhook's `<order id>:<status>`, so a webhook arriving after the
  poll still lands with the customer's details (which only the webhook carries) and triggers the flow again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from pipelines.domain.flows.kiosk import KioskCustomer
from pipelines.domain.timeutil import normalise_time, utc_text
from pipelines.intake.verify import InboundEvent
from pipelines.order_flows import names
from pipelines.order_flows.newstore_events import ORDER_EVENTS
from pipelines.store import kiosk_orders
from pipelines.store import order_flows as work
from pipelines.store.db import table
from pipelines.store.inbox import store_events

SOURCE = "cloudshelf"
ORDER_EVENT = "cloudshelf.order"  # pipelines.intake.app.CLOUDSHELF_ORDER_EVENT
KIOSK_ORDER_EVENTS = (ORDER_EVENT,)
FIRST_POLL_LOOKBACK = timedelta(days=1)  # the first poll (no cursor yet) looks this far back


def cloudshelf_triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
    order_id = envelope.get("id")
    if name != ORDER_EVENT or not isinstance(order_id, str) or not order_id:
        return []
    return [work.Trigger(names.KIOSK_ORDER, order_id, name, inbox_id, when)]


def kiosk_centra_triggers(engine: Engine) -> Callable[[int, str, str | None, dict[str, Any]], list[work.Trigger]]:
    """Centra order events of Centra orders made for kiosk orders -> the kiosk flow (the status goes back)."""
    def triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
        ref = envelope.get("objectReference", envelope.get("id"))
        if name not in ORDER_EVENTS or ref is None:
            return []
        kiosk = kiosk_orders.by_centra_ref(engine, [str(ref)]).get(str(ref))
        return [work.Trigger(names.KIOSK_ORDER, kiosk, name, inbox_id, when)] if kiosk else []
    return triggers


def with_kiosk(centra: Callable[..., list[work.Trigger]], engine: Engine) -> Callable[..., list[work.Trigger]]:
    """Centra's triggers plus the kiosk flow's (one function per source for the runner)."""
    kiosk = kiosk_centra_triggers(engine)

    def triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
        return centra(inbox_id, name, when, envelope) + kiosk(inbox_id, name, when, envelope)
    return triggers


def _landed(engine: Engine, order_id: str) -> list[tuple[int, dict[str, Any]]]:
    inbox = table(engine, "inbox_events")
    with engine.connect() as conn:
        rows = conn.execute(select(inbox.c.id, inbox.c.payload).where(
            inbox.c.source == SOURCE, inbox.c.event_name == ORDER_EVENT,
            inbox.c.payload.like(f"%{order_id}%")).order_by(inbox.c.id)).all()
    out = []
    for ident, payload in rows:
        doc = json.loads(payload)
        if doc.get("id") == order_id:
            out.append((int(ident), doc))
    return out


def latest_event_id(engine: Engine, order_id: str) -> int:
    """The newest landed Cloudshelf event of the order (0 when none)."""
    landed = _landed(engine, order_id)
    return landed[-1][0] if landed else 0


def customer_of(engine: Engine, order_id: str) -> KioskCustomer:
    """The customer's details of the newest webhook delivery of the order that carries any."""
    for _, doc in reversed(_landed(engine, order_id)):
        attributes = {str(a.get("key")): str(a.get("value") if a.get("value") is not None else "")
                      for a in doc.get("attributes") or [] if isinstance(a, dict) and a.get("key")}
        if doc.get("emailAddress") or doc.get("phoneNumber") or attributes:
            return KioskCustomer(email=doc.get("emailAddress") or None, phone=doc.get("phoneNumber") or None,
                                 attributes=attributes)
    return KioskCustomer()


@dataclass
class OrdersPoll:
    fetched: int = 0
    landed: int = 0  # new inbox rows (the rest were there already)
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)


def poll(engine: Engine, platform: Any, cursor: str | None, now: datetime) -> OrdersPoll:
    """Land the orders updated since `cursor` (inclusive; ISO-8601) as `cloudshelf.order`; the next cursor is the
    newest `updatedAt` seen (unchanged when nothing was)."""
    since = cursor or utc_text(now - FIRST_POLL_LOOKBACK)
    orders = platform.orders_since(since)
    rows = [InboundEvent(SOURCE, f"poll:{o.order_id}:{o.status}", ORDER_EVENT, _time(o.updated_at),
                         {"subject": "poll", "id": o.order_id, "status": o.status, "updatedAt": o.updated_at,
                          "via": "poll"}) for o in orders]
    stored = store_events(engine, rows) if rows else []
    newest = max((str(o.updated_at) for o in orders if o.updated_at), default=None)
    return OrdersPoll(fetched=len(orders), landed=sum(1 for s in stored if s), cursor=newest or since)


def _time(value: str | None) -> str | None:
    try:
        return normalise_time(value) if value else None
    except (TypeError, ValueError):
        return None


__all__ = ["KIOSK_ORDER_EVENTS", "ORDER_EVENT", "SOURCE", "OrdersPoll", "cloudshelf_triggers", "customer_of",
           "kiosk_centra_triggers", "latest_event_id", "poll", "with_kiosk"]
