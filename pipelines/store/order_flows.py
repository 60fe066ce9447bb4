"""The order flows' work queue (`order_flow_work`): one row per flow and triggering object.

A trigger (an inbox event naming the object) makes the row pending unless that same inbox event triggered it
before, so redelivered and re-read events never run a flow twice, and a new event for the object (a second
item handed over, a refund landing) re-runs it: the flows are state-based, so a re-run after `done` writes
nothing that is already there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update

from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table

PENDING, DONE, SKIPPED, EXCEPTION = "pending", "done", "skipped", "exception"
TABLE = "order_flow_work"


@dataclass(frozen=True)
class Trigger:
    flow: str
    work_key: str
    event: str  # the triggering event's name
    inbox_id: int
    event_time: str | None  # when it happened at its source


@dataclass(frozen=True)
class WorkItem:
    flow: str
    work_key: str
    attempts: int
    trigger_time: str | None
    status: str


def enqueue(engine: Engine, triggers: Iterable[Trigger], now: datetime) -> int:
    """Register triggers; returns how many rows became pending."""
    tbl = table(engine, TABLE)
    stamp = utc_text(now)
    changed = 0
    with engine.begin() as conn:
        for t in triggers:
            row = conn.execute(select(tbl.c.last_inbox_id).where(
                tbl.c.flow == t.flow, tbl.c.work_key == t.work_key)).first()
            if row is None:
                conn.execute(tbl.insert().values(
                    flow=t.flow, work_key=t.work_key, status=PENDING, trigger_event=t.event,
                    trigger_time=t.event_time or stamp, last_inbox_id=t.inbox_id, first_seen_at=stamp,
                    due_at=stamp, attempts=0, updated_at=stamp))
                changed += 1
            elif t.inbox_id > int(row[0]):
                conn.execute(update(tbl).where(tbl.c.flow == t.flow, tbl.c.work_key == t.work_key).values(
                    status=PENDING, last_inbox_id=t.inbox_id, due_at=stamp, updated_at=stamp,
                    trigger_event=t.event))
                changed += 1
    return changed


def due(engine: Engine, now: datetime, limit: int = 500) -> list[WorkItem]:
    tbl = table(engine, TABLE)
    with engine.connect() as conn:
        rows = conn.execute(select(tbl.c.flow, tbl.c.work_key, tbl.c.attempts, tbl.c.trigger_time, tbl.c.status)
                            .where(tbl.c.status == PENDING, tbl.c.due_at <= utc_text(now))
                            .order_by(tbl.c.due_at, tbl.c.flow, tbl.c.work_key).limit(limit)).all()
    return [WorkItem(str(f), str(k), int(a), t, str(s)) for f, k, a, t, s in rows]


def any_due(engine: Engine, now: datetime) -> bool:
    tbl = table(engine, TABLE)
    with engine.connect() as conn:
        return conn.execute(select(tbl.c.work_key).where(
            tbl.c.status == PENDING, tbl.c.due_at <= utc_text(now)).limit(1)).first() is not None


def finish(engine: Engine, item: WorkItem, status: str, now: datetime, *, outcome: dict[str, Any] | None = None,
           exception_key: str | None = None, wrote: bool = False) -> None:
    """Close a work item. `wrote`: this run changed the platform (its time is the flow's completion)."""
    tbl = table(engine, TABLE)
    values: dict[str, Any] = {"status": status, "attempts": item.attempts + 1, "updated_at": utc_text(now),
                              "outcome": json.dumps(outcome or {}, sort_keys=True, default=str),
                              "exception_key": exception_key, "last_error": None}
    if wrote:
        values["done_at"] = utc_text(now)
    with engine.begin() as conn:
        conn.execute(update(tbl).where(tbl.c.flow == item.flow, tbl.c.work_key == item.work_key,
                                       tbl.c.status == PENDING).values(**values))


def retry(engine: Engine, item: WorkItem, error: str, due_at: datetime, now: datetime) -> None:
    tbl = table(engine, TABLE)
    with engine.begin() as conn:
        conn.execute(update(tbl).where(tbl.c.flow == item.flow, tbl.c.work_key == item.work_key).values(
            attempts=item.attempts + 1, last_error=error[:2000], due_at=utc_text(due_at), updated_at=utc_text(now)))


def status_counts(engine: Engine) -> dict[str, dict[str, int]]:
    tbl = table(engine, TABLE)
    with engine.connect() as conn:
        found = conn.execute(select(tbl.c.flow, tbl.c.status, func.count()).group_by(tbl.c.flow, tbl.c.status)).all()
    out: dict[str, dict[str, int]] = {}
    for flow, status, n in found:
        out.setdefault(str(flow), {})[str(status)] = int(n)
    return out


def uncollected(engine: Engine, pickup_flow: str, handover_flow: str, before: datetime) -> list[dict[str, Any]]:
    """Pickup rows done as `injected` before `before`, not flagged yet, whose store order (`outcome.store_order`)
    has no done handover row."""
    tbl = table(engine, TABLE)
    with engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(select(tbl).where(
            tbl.c.flow == pickup_flow, tbl.c.status == DONE, tbl.c.exception_key.is_(None),
            tbl.c.outcome.like('%"action": "injected"%'), tbl.c.done_at <= utc_text(before)))]
        stores = {json.loads(r["outcome"]).get("store_order") for r in found}
        handed = set(conn.execute(select(tbl.c.work_key).where(
            tbl.c.flow == handover_flow, tbl.c.status == DONE,
            tbl.c.work_key.in_([s for s in stores if s]))).scalars()) if stores else set()
    return [r for r in found if json.loads(r["outcome"]).get("store_order") not in handed]


def flag(engine: Engine, flow: str, work_key: str, exception_key: str) -> None:
    """Note the exception raised about a done row (so it is raised once; a re-run of the flow clears it)."""
    tbl = table(engine, TABLE)
    with engine.begin() as conn:
        conn.execute(update(tbl).where(tbl.c.flow == flow, tbl.c.work_key == work_key)
                     .values(exception_key=exception_key))


def inbox_payloads(engine: Engine, names: Iterable[str], contains: str) -> list[dict[str, Any]]:
    """Envelopes of inbox events of these names whose payload text contains `contains` (an id: callers filter
    the parsed payloads on the field itself)."""
    inbox = table(engine, "inbox_events")
    with engine.connect() as conn:
        found = conn.execute(select(inbox.c.payload).where(
            inbox.c.event_name.in_(list(names)), inbox.c.payload.like(f"%{contains}%"))).scalars().all()
    return [json.loads(p) for p in found]


def inbox_since(engine: Engine, cursor: int, names: Iterable[str], limit: int) -> list[tuple[int, str, str, str | None,
                                                                                             dict[str, Any]]]:
    """(id, source, name, event_time, envelope) of inbox events after `cursor`, oldest first."""
    inbox = table(engine, "inbox_events")
    with engine.connect() as conn:
        found = conn.execute(select(inbox.c.id, inbox.c.source, inbox.c.event_name, inbox.c.event_time,
                                    inbox.c.payload)
                             .where(inbox.c.id > cursor, inbox.c.event_name.in_(list(names)))
                             .order_by(inbox.c.id).limit(limit)).all()
    return [(int(i), str(s), str(n), t, json.loads(p)) for i, s, n, t, p in found]


def max_inbox_id(engine: Engine, after: int, before: str) -> int:
    """The highest inbox id above `after` received by `before` (`after` when none): a range of the primary key,
    not a scan of the whole inbox."""
    inbox = table(engine, "inbox_events")
    query = select(func.max(inbox.c.id)).where(inbox.c.id > after, inbox.c.received_at <= before)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or after)

