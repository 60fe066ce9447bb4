"""Runs the order flows: registers what landed in the inbox as work, then does the due work.

`run_flows` is what the `order_flow_work` asset materialises (pipelines/defs/flows). Each flow reads the
current state from both platforms by id (payloads only say what changed), decides with the pure
`pipelines.domain.flows` functions and writes through the platform interfaces, so a duplicate or an
out-of-order event finds the work done and writes nothing. A failure becomes an exception record with
its owner and playbook; transient errors are retried with a growing delay, `max_attempts` in all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from pipelines.connectors.errors import ConnectorError, TransientError
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.flows.exceptions import Problem
from pipelines.domain.timeutil import parse_time, utc_text
from pipelines.order_flows import flows
from pipelines.order_flows.context import FlowContext, FlowResult
from pipelines.order_flows.endless_aisle import ENDLESS_AISLE, endless_aisle
from pipelines.order_flows.erp import ERP_ORDER, ERP_SHIPMENT, erp_order, erp_shipment
from pipelines.order_flows.kiosk import KIOSK_ORDER, kiosk_order
from pipelines.order_flows.read_cache import PassCache
from pipelines.order_flows.ship_from_store import SHIP_FROM_STORE, ship_from_store
from pipelines.store import order_flows as work
from pipelines.store.inbox import record_exceptions
from pipelines.sync.queue import get_cursor, set_cursor

CURSOR = "order_flows"  # every triggering inbox event up to this id is registered (settled)
SEEN = "order_flows_seen"  # the highest inbox id registered (younger rows above CURSOR are read again)
SETTLE_S = 10.0  # inbox rows younger than this are read again (on PostgreSQL a lower id may commit later)
_FETCH = 5000

TriggerFn = Callable[[int, str, str | None, dict[str, Any]], list[work.Trigger]]


@dataclass
class RunReport:
    registered: int = 0
    processed: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    exceptions: int = 0
    retried: int = 0
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: RunReport) -> None:
        self.registered += other.registered
        self.processed += other.processed
        self.exceptions += other.exceptions
        self.retried += other.retried
        self.errors.extend(other.errors)
        for k, v in other.by_outcome.items():
            self.by_outcome[k] = self.by_outcome.get(k, 0) + v
        for k, lags in other.latencies_s.items():
            self.latencies_s.setdefault(k, []).extend(lags)


HANDLERS: dict[str, Callable[[FlowContext, str], FlowResult]] = {
    flows.STORE_RETURN: flows.store_return,
    flows.PICKUP_ORDER: flows.pickup_order,
    flows.PICKUP_HANDOVER: flows.pickup_handover,
    ENDLESS_AISLE: endless_aisle,
    SHIP_FROM_STORE: ship_from_store,
    KIOSK_ORDER: kiosk_order,
    ERP_ORDER: erp_order,
    ERP_SHIPMENT: erp_shipment,
}


def register(engine: Engine, trigger_fns: Mapping[str, TriggerFn], names: Iterable[str], now: datetime) -> int:
    """Turn inbox events after the cursor into work (each source's events through its adapter's triggers)."""
    cursor = get_cursor(engine, CURSOR)
    settled = utc_text(now - timedelta(seconds=SETTLE_S))
    landed = work.inbox_since(engine, cursor, names, _FETCH)
    triggers: list[work.Trigger] = []
    for inbox_id, source, name, when, envelope in landed:
        fn = trigger_fns.get(source)
        if fn is not None:
            triggers.extend(fn(inbox_id, name, when, envelope))
    changed = work.enqueue(engine, triggers, now)
    if landed:
        top = work.max_inbox_id(engine, cursor, settled)
        new = min(top, landed[-1][0]) if len(landed) == _FETCH else top
        with engine.begin() as conn:
            if new > cursor:
                set_cursor(conn, engine, CURSOR, new)
            set_cursor(conn, engine, SEEN, max(landed[-1][0], get_cursor(engine, SEEN)))
    return changed


def unregistered(engine: Engine, names: Iterable[str], now: datetime) -> str | None:
    """Why a run should register events: some landed past what was read, or read ones are old enough to
    settle (the cursor moves past them); else None."""
    cursor, seen = get_cursor(engine, CURSOR), get_cursor(engine, SEEN)
    names = list(names)
    if work.inbox_since(engine, max(cursor, seen), names, 1):
        return "events that trigger order flows landed"
    settled = utc_text(now - timedelta(seconds=SETTLE_S))
    if cursor < seen and work.max_inbox_id(engine, cursor, settled) > cursor:
        return "events read once are old enough to settle"
    return None


def _record(ctx: FlowContext, flow: str, key: str, problems: list[Problem]) -> str | None:
    records = [ExceptionRecord.of(p.kind, f"{flow}:{key}", "order_flows", p.message, payload=p.evidence)
               for p in problems]
    if records:
        record_exceptions(ctx.engine, records)
    return records[0].key if records else None


def _lag(trigger_time: str | None, done: datetime) -> float | None:
    if not trigger_time:
        return None
    return max(0.0, (done - parse_time(trigger_time)).total_seconds())


def run_due(ctx: FlowContext, report: RunReport) -> None:
    platform = ctx.commerce
    ctx.commerce = PassCache(platform)  # type: ignore[assignment]
    try:
        _run_items(ctx, report)
    finally:
        ctx.commerce = platform


def _run_items(ctx: FlowContext, report: RunReport) -> None:
    for item in work.due(ctx.engine, ctx.now()):
        handler = HANDLERS.get(item.flow)
        if handler is None:
            continue
        try:
            result = handler(ctx, item.work_key)
        except (TransientError, ConnectorError, OSError) as exc:
            transient = isinstance(exc, TransientError | OSError)
            if transient and item.attempts + 1 < ctx.settings.max_attempts:
                delay = ctx.settings.retry_base_s * (2 ** item.attempts)
                work.retry(ctx.engine, item, repr(exc), ctx.now() + timedelta(seconds=delay), ctx.now())
                report.retried += 1
                report.errors.append(f"{item.flow} {item.work_key} (retried): {exc!r}")
                continue
            result = flows.rejected(item.flow, item.work_key, exc)
        report.processed += 1
        now = ctx.now()
        key = _record(ctx, item.flow, item.work_key, result.problems)
        report.exceptions += len(result.problems)
        status = work.EXCEPTION if result.blocked else result.status
        work.finish(ctx.engine, item, status, now, outcome=result.outcome, exception_key=key, wrote=result.wrote)
        label = f"{item.flow}:{result.outcome.get('action', status)}"
        report.by_outcome[label] = report.by_outcome.get(label, 0) + 1
        lag = _lag(item.trigger_time, now) if result.wrote else None
        if lag is not None:
            report.latencies_s.setdefault(item.flow, []).append(lag)


def flag_uncollected(ctx: FlowContext) -> int:
    """Pickups injected into a store longer ago than the collection window and not handed over (each once)."""
    before = ctx.now() - timedelta(hours=ctx.settings.uncollected_after_h)
    waiting = work.uncollected(ctx.engine, flows.PICKUP_ORDER, flows.PICKUP_HANDOVER, before)
    for row in waiting:
        problem = flows.uncollected(row["work_key"], flows.outcome_of(row), ctx.settings.uncollected_after_h)
        key = _record(ctx, flows.PICKUP_ORDER, row["work_key"], [problem])
        work.flag(ctx.engine, flows.PICKUP_ORDER, row["work_key"], str(key))
    return len(waiting)


def run_flows(ctx: FlowContext, trigger_fns: Mapping[str, TriggerFn], names: Iterable[str]) -> RunReport:
    report = RunReport()
    report.registered = register(ctx.engine, trigger_fns, names, ctx.now())
    run_due(ctx, report)
    report.exceptions += flag_uncollected(ctx)
    return report
