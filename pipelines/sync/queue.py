"""The movement queue: inbox events decoded into `stock_sync_movements`, and the reads a pass needs.

Decoding reuses `domain.stock_movements.decode_movements`. Each movement is mapped to the Centra
warehouse of its location; unknown SKUs and locations are kept (status `unmapped`) and raised as
exception records with the raw event, locations whose kind is not synced (the DC by default) are
kept as `skipped`. The insert is idempotent on `movement_key` (inbox dedup key + SKU).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select, tuple_, update
from sqlalchemy.exc import DataError, IntegrityError

from pipelines.domain.exceptions import (
    EVENT_CLOCK_SKEW,
    UNDECODABLE_EVENT,
    UNKNOWN_SKU,
    UNMAPPED_LOCATION,
    ExceptionRecord,
)
from pipelines.domain.stock_movements import STOCK_EVENTS, OrderContext, decode_or_report
from pipelines.domain.sync.model import COUNT, QueuedMovement, Watermark, order_key
from pipelines.domain.timeutil import normalise_time, parse_time, utc_text
from pipelines.estate import Estate
from pipelines.store.db import dialect_insert as _insert
from pipelines.store.db import table
from pipelines.store.inbox import record_exceptions
from pipelines.store.inbox_orders import InboxOrders
from pipelines.sync.config import SyncConfig

PENDING, IN_FLIGHT, DONE, SUPERSEDED = "pending", "in_flight", "done", "superseded"
FAILED, UNMAPPED, SKIPPED = "failed", "unmapped", "skipped"
INBOX_CURSOR = "inbox"
_FETCH = 5000


def now_text() -> str:
    return utc_text(datetime.now(UTC))


def get_cursor(engine: Engine, name: str) -> int:
    tbl = table(engine, "stock_sync_cursors")
    with engine.connect() as conn:
        value = conn.execute(select(tbl.c.value).where(tbl.c.name == name)).scalar()
    return int(value or 0)


def set_cursor(conn: Any, engine: Engine, name: str, value: int) -> None:
    stmt, tbl = _insert(engine, "stock_sync_cursors")
    conn.execute(stmt.values(name=name, value=value, updated_at=now_text()).on_conflict_do_update(
        index_elements=["name"], set_={"value": value, "updated_at": now_text()}))


def _movement_key(dedup_key: str, sku: str) -> str:
    key = f"{dedup_key}:{sku}"
    return key if len(key) <= 255 else f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass
class IngestResult:
    events: int = 0
    movements: int = 0
    exceptions: int = 0
    cursor: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


def ingest(engine: Engine, estate: Estate, config: SyncConfig, *, now: datetime | None = None) -> IngestResult:
    """Decode new NewStore stock events from the inbox into the queue; advance the inbox cursor
    over events older than `settle_s` (younger ones are read again: on PostgreSQL a lower id may
    commit after a higher one)."""
    now = now or datetime.now(UTC)
    inbox = table(engine, "inbox_events")
    moves = table(engine, "stock_sync_movements")
    cursor = get_cursor(engine, INBOX_CURSOR)
    with engine.connect() as conn:
        rows = conn.execute(
            select(inbox.c.id, inbox.c.dedup_key, inbox.c.event_name, inbox.c.event_time, inbox.c.received_at,
                   inbox.c.payload)
            .where(inbox.c.id > cursor, inbox.c.source == "newstore", inbox.c.event_name.in_(STOCK_EVENTS))
            .order_by(inbox.c.id).limit(_FETCH)).all()
        done = set(conn.execute(select(moves.c.inbox_event_id.distinct()).where(moves.c.inbox_event_id > cursor))
                   .scalars()) if rows else set()
    result = IngestResult(cursor=cursor)
    if not rows:
        return result
    settled_before = utc_text(now - timedelta(seconds=config.settle_s))
    new_cursor = cursor
    for r in rows:
        if r.received_at <= settled_before:
            new_cursor = max(new_cursor, r.id)
    values: list[dict[str, Any]] = []
    problems: list[ExceptionRecord] = []
    context = InboxOrders(engine)
    for r in rows:
        if r.id in done:
            continue
        result.events += 1
        rows_out, errs = _decode(r, estate, config, context)
        values += rows_out
        problems += errs
    queued = now_text()
    for v in values:
        v["queued_at"] = queued
    try:
        _store(engine, values, cursor, new_cursor)
    except (DataError, IntegrityError, OverflowError):
        # A row the database refuses although it passed the bounds: store row by row, so the refused
        # one becomes an exception record instead of blocking this and every later pass.
        values, refused = _store_each(engine, values)
        problems += refused
        _store(engine, [], cursor, new_cursor)
    result.movements = len(values)
    for v in values:
        result.by_status[v["status"]] = result.by_status.get(v["status"], 0) + 1
    if problems:
        result.exceptions = record_exceptions(engine, problems)
    result.cursor = new_cursor
    return result


def _store(engine: Engine, values: list[dict[str, Any]], cursor: int, new_cursor: int) -> None:
    stmt, _ = _insert(engine, "stock_sync_movements")
    with engine.begin() as conn:
        if values:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["movement_key"]), values)
        if new_cursor != cursor:
            set_cursor(conn, engine, INBOX_CURSOR, new_cursor)


def _store_each(engine: Engine, values: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[ExceptionRecord]]:
    stmt, _ = _insert(engine, "stock_sync_movements")
    stored, refused = [], []
    for v in values:
        try:
            with engine.begin() as conn:
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["movement_key"]), [v])
            stored.append(v)
        except (DataError, IntegrityError, OverflowError) as exc:
            refused.append(ExceptionRecord.of(
                UNDECODABLE_EVENT, f"stock_sync:{v['movement_key']}", "stock_sync",
                f"{v['event_name']}: the store of record refused the movement: {type(exc).__name__}",
                payload={k: v[k] for k in ("inbox_event_id", "event_name", "sku", "quantity", "fulfillment_node_id")}))
    return stored, refused


def _event_time(r: Any, config: SyncConfig) -> tuple[str, ExceptionRecord | None]:
    """The event's time, clamped to its receive time when stamped further ahead than the clock-skew
    tolerance: a count from a device whose clock runs ahead must not supersede sales made after it."""
    when = r.event_time or r.received_at
    try:
        stamped, received = parse_time(when), parse_time(r.received_at)
    except ValueError:
        return r.received_at, None
    if (stamped - received).total_seconds() <= config.clock_skew_s:
        return when, None
    return r.received_at, ExceptionRecord.of(
        EVENT_CLOCK_SKEW, f"sync:{r.dedup_key}", "stock_sync",
        f"{r.event_name} stamped {when}, {(stamped - received).total_seconds():.0f} s after it was received "
        f"({r.received_at}); applied at its receive time")


def _decode(r: Any, estate: Estate, config: SyncConfig,
            context: OrderContext) -> tuple[list[dict[str, Any]], list[ExceptionRecord]]:
    """One inbox row -> queue rows and exception records. Nothing one row holds can raise out of here:
    a row that cannot be decoded (or parsed at all) becomes an exception record and the rest flows on."""
    try:
        envelope = json.loads(r.payload)
        payload = envelope.get("payload", envelope) if isinstance(envelope, dict) else {}
    except ValueError as exc:  # not JSON: cannot come through the intake, but a row is a row
        envelope, payload = {"raw": str(r.payload)[:2000]}, {"error": str(exc)}
    when, skew = _event_time(r, config)
    decoded, problem = decode_or_report(r.dedup_key, r.event_name, when, payload if isinstance(payload, dict) else {},
                                        context, "stock_sync")
    if problem is not None:
        return [], [problem]
    out: list[dict[str, Any]] = []
    problems = [skew] if skew is not None else []
    for m in decoded:
        loc = estate.location_of(m.fulfillment_node_id)
        status, error, wid = PENDING, None, loc.centra_warehouse_id if loc else None
        if loc is None:
            status, error = UNMAPPED, "unmapped_location"
            problems.append(ExceptionRecord.of(
                UNMAPPED_LOCATION, f"sync:{m.fulfillment_node_id}", "stock_sync",
                f"fulfillment node {m.fulfillment_node_id!r} is not in the estate; its stock movements are not synced",
                payload=envelope))
        elif m.sku not in estate.by_sku:
            status, error = UNMAPPED, "unknown_sku"
            problems.append(ExceptionRecord.of(
                UNKNOWN_SKU, f"sync:{m.fulfillment_node_id}:{m.sku}", "stock_sync",
                f"SKU {m.sku!r} ({m.movement_type}) at {m.fulfillment_node_id} is unknown to the commerce catalog; "
                "its stock is not synced", location_id=loc.id, sku=m.sku, payload=envelope))
        elif not _synced(loc, config):
            status, error = SKIPPED, f"location kind {loc.kind!r} is not synced"
        out.append({
            "movement_key": _movement_key(r.dedup_key, m.sku), "inbox_event_id": r.id, "event_name": r.event_name,
            "event_time": normalise_time(m.event_time), "logical_timestamp": m.logical_timestamp,
            "received_at": r.received_at, "fulfillment_node_id": m.fulfillment_node_id,
            "location_id": loc.id if loc else None, "warehouse_id": wid, "sku": m.sku,
            "movement_type": m.movement_type, "quantity": m.quantity, "status": status, "batch_id": None,
            "isolate": 0, "attempts": 0, "applied_at": None, "error": error,
        })
    return out, problems


def _synced(loc: Any, config: SyncConfig) -> bool:
    if config.location_ids and loc.id not in config.location_ids:
        return False
    return loc.kind in config.location_kinds


def _queued(r: Any) -> QueuedMovement:
    return QueuedMovement(r.id, r.warehouse_id, r.sku, r.movement_type, r.quantity, r.event_time,
                          r.logical_timestamp, bool(r.isolate))


def load_pending(engine: Engine, exclude: set[tuple[int, str]] | None = None,
                 limit: int = 50_000) -> dict[tuple[int, str], list[QueuedMovement]]:
    """Pending movements grouped per (warehouse, SKU), oldest first; keys in `exclude` are left out."""
    moves = table(engine, "stock_sync_movements")
    with engine.connect() as conn:
        rows = conn.execute(
            select(moves.c.id, moves.c.warehouse_id, moves.c.sku, moves.c.movement_type, moves.c.quantity,
                   moves.c.event_time, moves.c.logical_timestamp, moves.c.isolate)
            .where(moves.c.status == PENDING).order_by(moves.c.id).limit(limit)).all()
    out: dict[tuple[int, str], list[QueuedMovement]] = defaultdict(list)
    for r in rows:
        if exclude and (r.warehouse_id, r.sku) in exclude:
            continue
        out[(r.warehouse_id, r.sku)].append(_queued(r))
    return dict(out)


def load_failed(engine: Engine, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], list[QueuedMovement]]:
    """Failed movements of the given keys (a newer count re-bases them: see `StockSync._plan`)."""
    moves = table(engine, "stock_sync_movements")
    keys = list(keys)
    out: dict[tuple[int, str], list[QueuedMovement]] = defaultdict(list)
    with engine.connect() as conn:
        for start in range(0, len(keys), 400):
            rows = conn.execute(
                select(moves.c.id, moves.c.warehouse_id, moves.c.sku, moves.c.movement_type, moves.c.quantity,
                       moves.c.event_time, moves.c.logical_timestamp, moves.c.isolate)
                .where(moves.c.status == FAILED, tuple_(moves.c.warehouse_id, moves.c.sku).in_(keys[start:start + 400])))
            for r in rows:
                out[(r.warehouse_id, r.sku)].append(_queued(r))
    return dict(out)


def count_pending(engine: Engine) -> int:
    moves = table(engine, "stock_sync_movements")
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(moves.c.status == PENDING)).scalar() or 0)


def load_watermarks(engine: Engine, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Watermark]:
    wm = table(engine, "stock_sync_watermarks")
    keys = list(keys)
    out: dict[tuple[int, str], Watermark] = {}
    with engine.connect() as conn:
        for start in range(0, len(keys), 400):
            chunk = keys[start:start + 400]
            for r in conn.execute(select(wm).where(tuple_(wm.c.warehouse_id, wm.c.sku).in_(chunk))):
                out[(r.warehouse_id, r.sku)] = Watermark(r.event_time, r.logical_timestamp, r.quantity, r.movement_id)
    return out


def applied_after(engine: Engine, key: tuple[int, str], count: QueuedMovement) -> int:
    """Sum of deltas already applied in Centra for `key` that are ordered after `count`."""
    moves = table(engine, "stock_sync_movements")
    with engine.connect() as conn:
        rows = conn.execute(
            select(moves.c.id, moves.c.quantity, moves.c.event_time, moves.c.logical_timestamp)
            .where(and_(moves.c.warehouse_id == key[0], moves.c.sku == key[1], moves.c.status == DONE,
                        moves.c.movement_type != COUNT, moves.c.event_time >= count.event_time))).all()
    return sum(r.quantity for r in rows
               if order_key(r.event_time, r.logical_timestamp, False, r.id) > count.order)


def upsert_watermark(conn: Any, engine: Engine, warehouse_id: int, sku: str, wm: Watermark, at: str) -> None:
    stmt, _ = _insert(engine, "stock_sync_watermarks")
    values = {"event_time": wm.event_time, "logical_timestamp": wm.logical_timestamp, "quantity": wm.quantity,
              "movement_id": wm.movement_id, "applied_at": at}
    conn.execute(stmt.values(warehouse_id=warehouse_id, sku=sku, **values)
                 .on_conflict_do_update(index_elements=["warehouse_id", "sku"], set_=values))


def finish_without_mutation(engine: Engine, applies: list[int], absorbs: list[int], at: str,
                            watermarks: Iterable[tuple[int, str, Watermark]] = ()) -> None:
    """Movements that net to nothing (or are absorbed by a count already applied) are settled now,
    with the count watermarks of counts that matched Centra already."""
    moves = table(engine, "stock_sync_movements")
    with engine.begin() as conn:
        for wid, sku, wm in watermarks:
            upsert_watermark(conn, engine, wid, sku, wm, at)
        for ids, status in ((applies, DONE), (absorbs, SUPERSEDED)):
            for start in range(0, len(ids), 500):
                conn.execute(update(moves).where(moves.c.id.in_(ids[start:start + 500]),
                                                 moves.c.status.in_([PENDING, FAILED]))
                             .values(status=status, applied_at=at, error=None))


@dataclass(frozen=True)
class WorkState:
    """What the sensor needs: the newest stock event landed, and whether any work is waiting."""

    newest_event: int  # newest NewStore stock event id in the inbox (at least the ingest cursor)
    undecoded: int  # stock events beyond the ingest cursor that have no movement yet
    pending: int  # movements waiting to be sent
    prepared: int  # batches sent but not settled (to recover)

    @property
    def has_work(self) -> bool:
        return bool(self.undecoded or self.pending or self.prepared)


def work_state(engine: Engine) -> WorkState:
    inbox = table(engine, "inbox_events")
    moves = table(engine, "stock_sync_movements")
    batches = table(engine, "stock_sync_batches")
    cursor = get_cursor(engine, INBOX_CURSOR)
    fresh = and_(inbox.c.id > cursor, inbox.c.source == "newstore", inbox.c.event_name.in_(STOCK_EVENTS))
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(inbox.c.id)).where(fresh)).scalar()
        undecoded = conn.execute(select(func.count()).where(
            fresh, ~select(moves.c.id).where(moves.c.inbox_event_id == inbox.c.id).exists())).scalar()
        pending = conn.execute(select(func.count()).where(moves.c.status == PENDING)).scalar()
        prepared = conn.execute(select(func.count()).where(batches.c.status == "prepared")).scalar()
    return WorkState(int(newest or cursor), int(undecoded or 0), int(pending or 0), int(prepared or 0))
