"""Recovery of store transactions the event stream lost (`pipelines.domain.completeness` says what is missing).

Two steps, both idempotent, run by `pos_transaction_recoveries` (pipelines/defs/pos/recovery.py):

- `detect` reads the sibling events landed since its cursor and registers each transaction whose own
  event is not in the inbox as `waiting`, due `grace_s` after its first sibling landed (NewStore delivers
  unordered, normally within seconds, at most 15 minutes late).
- `recover_due` looks again (the event may have come: `arrived`), else fetches the transaction by id from
  NewStore and lands it in the inbox as the event it replaces, under the streamed event's dedup key and
  marked `recovered` in its envelope: decoding, the sale lines and the stock sync take it like any other
  event, exactly once (a late streamed delivery is then a duplicate). NewStore answering 404 makes it
  `unrecoverable`: a `store_transaction_missing` finding with the evidence and the value at risk.
  Transient errors are retried on the next run, `max_attempts` in all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import Engine, and_, or_, select, update

from pipelines.domain.completeness import (
    CARRIER,
    EVIDENCE_EVENTS,
    ORDER,
    RETURN,
    Evidence,
    evidence_of,
    recovered_return,
    recovered_sale,
)
from pipelines.domain.newstore_events import business_key, event_time_of
from pipelines.domain.timeutil import business_date, parse_time, utc_text
from pipelines.intake.verify import InboundEvent
from pipelines.store.db import table
from pipelines.store.inbox import store_events
from pipelines.sync.queue import get_cursor, set_cursor

CURSOR = "completeness"  # every sibling event up to this inbox id is registered (settled: see `detect`)
SEEN = "completeness_seen"  # the highest inbox id `detect` has read (younger rows above CURSOR are read again)
WAITING, ARRIVED, RECOVERED, UNRECOVERABLE = "waiting", "arrived", "recovered", "unrecoverable"
_FETCH = 5000
SETTLE_S = 10.0  # inbox rows younger than this are read again (on PostgreSQL a lower id may commit later)


class NewStoreReads(Protocol):
    """What recovery needs of NewStore (`NewStoreClient`): the order and the return by id, as sent."""

    def get_order(self, order_id: str, id_type: str = "internal") -> Any: ...  # SalesOrder with `.raw`

    def get_return(self, order_id: str, return_id: str) -> dict[str, Any]: ...


@dataclass
class RecoveryReport:
    scanned_events: int = 0
    detected: int = 0
    arrived: int = 0
    recovered: int = 0
    unrecoverable: int = 0
    retried: int = 0
    api_requests: int = 0
    recovery_lags_s: list[float] = field(default_factory=list)  # recovered: landed minus the transaction's time
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    evidence: Evidence
    names: set[str]
    first_seen_at: str
    evidence_time: str | None


@dataclass
class _Recovered:
    name: str
    payload: dict[str, Any]
    event_time: str | None


def detect(engine: Engine, *, grace_s: float, now: datetime | None = None) -> tuple[int, int]:
    """Register transactions whose siblings landed since the cursor and whose own event did not;
    returns (events scanned, transactions registered)."""
    now = now or datetime.now(UTC)
    inbox = table(engine, "inbox_events")
    cursor = get_cursor(engine, CURSOR)
    with engine.connect() as conn:
        rows = conn.execute(
            select(inbox.c.id, inbox.c.event_name, inbox.c.event_time, inbox.c.received_at, inbox.c.payload)
            .where(inbox.c.id > cursor, inbox.c.source == "newstore", inbox.c.event_name.in_(EVIDENCE_EVENTS))
            .order_by(inbox.c.id).limit(_FETCH)).all()
    if not rows:
        return 0, 0
    settled = utc_text(now - timedelta(seconds=SETTLE_S))
    new_cursor = max([cursor, *(r.id for r in rows if r.received_at <= settled)])
    found: dict[tuple[str, str], _Found] = {}
    for r in rows:
        doc = json.loads(r.payload)
        payload = doc.get("payload", doc) if isinstance(doc, dict) else None
        ev = evidence_of(r.event_name, payload) if isinstance(payload, dict) else None
        if ev is None:
            continue
        key = (ev.kind, ev.transaction_id)
        if key in found:  # the transaction is dated by its earliest sibling (a late publication dates later)
            f = found[key]
            f.names.add(r.event_name)
            if r.event_time and (f.evidence_time is None or r.event_time < f.evidence_time):
                found[key] = _Found(ev if ev.amount is not None else f.evidence, f.names, f.first_seen_at,
                                    r.event_time)
            elif ev.amount is not None and f.evidence.amount is None:
                found[key] = _Found(ev, f.names, f.first_seen_at, f.evidence_time)
        else:
            found[key] = _Found(ev, {r.event_name}, r.received_at, r.event_time)
    missing = [f for key, f in found.items() if not _landed(engine, CARRIER[key[0]], key[1])]
    registered = _register(engine, missing, grace_s)
    seen = get_cursor(engine, SEEN)
    with engine.begin() as conn:
        if new_cursor != cursor:
            set_cursor(conn, engine, CURSOR, new_cursor)
        if rows[-1].id > seen:
            set_cursor(conn, engine, SEEN, rows[-1].id)
    return len(rows), registered


def _landed(engine: Engine, name: str, transaction_id: str) -> bool:
    """Whether the transaction's own event is in the inbox (its dedup key, or an older key with a suffix)."""
    inbox = table(engine, "inbox_events")
    key = f"{name}:{transaction_id}"
    with engine.connect() as conn:
        return conn.execute(select(inbox.c.id).where(
            inbox.c.source == "newstore",
            or_(inbox.c.dedup_key == key, and_(inbox.c.dedup_key >= key + ":", inbox.c.dedup_key < key + ";")),
        ).limit(1)).first() is not None


def _register(engine: Engine, found: Iterable[_Found], grace_s: float) -> int:
    """Insert new transactions as waiting; a waiting one seen again takes the new siblings' names, the earlier
    evidence time and an amount it lacked (its siblings may land in different runs, late ones dated later)."""
    from sqlalchemy.dialects import postgresql, sqlite

    tbl = table(engine, "pos_transaction_recoveries")
    insert = postgresql.insert(tbl) if engine.dialect.name == "postgresql" else sqlite.insert(tbl)
    n = 0
    with engine.begin() as conn:
        for f in found:
            e = f.evidence
            row = conn.execute(select(tbl.c.status, tbl.c.evidence, tbl.c.evidence_time, tbl.c.amount, tbl.c.currency)
                               .where(tbl.c.kind == e.kind, tbl.c.transaction_id == e.transaction_id)).first()
            if row is not None:
                if row.status == WAITING:
                    times = [t for t in (row.evidence_time, f.evidence_time) if t]
                    conn.execute(update(tbl).where(tbl.c.kind == e.kind, tbl.c.transaction_id == e.transaction_id)
                                 .values(evidence=json.dumps(sorted(set(json.loads(row.evidence)) | f.names)),
                                         evidence_time=min(times) if times else None,
                                         amount=row.amount if row.amount is not None else e.amount,
                                         currency=row.currency or e.currency))
                continue
            due = utc_text(parse_time(f.first_seen_at) + timedelta(seconds=grace_s))
            result = conn.execute(insert.values(
                kind=e.kind, transaction_id=e.transaction_id, order_id=e.order_id, status=WAITING,
                evidence=json.dumps(sorted(f.names)), fulfillment_node_id=e.node, amount=e.amount,
                currency=e.currency, evidence_time=f.evidence_time, first_seen_at=f.first_seen_at, due_at=due,
                attempts=0,
            ).on_conflict_do_nothing(index_elements=["kind", "transaction_id"]))
            n += result.rowcount or 0
    return n


def recover_due(engine: Engine, client: NewStoreReads, *, max_attempts: int = 5, limit: int = 500,
                now: datetime | None = None, tenant: str = "") -> RecoveryReport:
    """Resolve the waiting transactions that are due (see module docstring)."""
    now = now or datetime.now(UTC)
    tbl = table(engine, "pos_transaction_recoveries")
    with engine.connect() as conn:
        due = conn.execute(select(tbl).where(tbl.c.status == WAITING, tbl.c.due_at <= utc_text(now))
                           .order_by(tbl.c.due_at).limit(limit)).mappings().all()
    report = RecoveryReport()
    for row in due:
        kind, tid = row["kind"], row["transaction_id"]
        if _landed(engine, CARRIER[kind], tid):
            _resolve(engine, kind, tid, ARRIVED, None)
            report.arrived += 1
            continue
        try:
            got = _fetch(client, kind, tid, row["order_id"], report)
        except Exception as exc:  # noqa: BLE001 - one transaction's failure must not stop the others
            _record_failure(engine, row, exc, max_attempts, report)
            continue
        landed_at = utc_text(datetime.now(UTC))
        envelope = {"tenant": tenant, "name": got.name, "published_at": landed_at, "payload": got.payload,
                    "recovered": {"at": landed_at, "via": _VIA[kind], "evidence": json.loads(row["evidence"])}}
        store_events(engine, [InboundEvent("newstore", business_key(got.name, got.payload), got.name, got.event_time,
                                           envelope)])
        _resolve(engine, kind, tid, RECOVERED, None, event_time=got.event_time)
        report.recovered += 1
        if got.event_time:
            report.recovery_lags_s.append((parse_time(landed_at) - parse_time(got.event_time)).total_seconds())
    return report


_VIA = {ORDER: "GET /v0/orders/{id}", RETURN: "GET /v0/d/orders/{order_id}/returns/{id}"}


def _fetch(client: NewStoreReads, kind: str, tid: str, order_id: str | None, report: RecoveryReport) -> _Recovered:
    if kind == ORDER:
        report.api_requests += 1
        payload = recovered_sale(client.get_order(tid).raw)
        name = CARRIER[ORDER]
    else:
        if not order_id:
            raise LookupError("the return's order is not known: NewStore cannot be asked for it")
        report.api_requests += 2
        record = client.get_return(order_id, tid)
        order = client.get_order(order_id).raw
        payload = recovered_return(record, order_id, order.get("origin_id"))
        name = CARRIER[RETURN]
    return _Recovered(name, payload, event_time_of(name, payload, None))


def _record_failure(engine: Engine, row: Any, exc: Exception, max_attempts: int, report: RecoveryReport) -> None:
    """404 (NewStore does not have it) or no way to ask: unrecoverable at once; otherwise retried later."""
    from pipelines.connectors.newstore.errors import NotFound

    attempts = int(row["attempts"]) + 1
    final = isinstance(exc, NotFound | LookupError) or attempts >= max_attempts
    message = f"{type(exc).__name__}: {exc}"[:2000]
    report.errors.append(f"{row['kind']} {row['transaction_id']}: {message}")
    if final:
        report.unrecoverable += 1
        _resolve(engine, row["kind"], row["transaction_id"], UNRECOVERABLE, message, attempts=attempts)
    else:
        report.retried += 1
        tbl = table(engine, "pos_transaction_recoveries")
        with engine.begin() as conn:
            conn.execute(update(tbl).where(tbl.c.kind == row["kind"], tbl.c.transaction_id == row["transaction_id"])
                         .values(attempts=attempts, last_error=message))


def _resolve(engine: Engine, kind: str, tid: str, status: str, error: str | None, *, attempts: int | None = None,
             event_time: str | None = None) -> None:
    tbl = table(engine, "pos_transaction_recoveries")
    values: dict[str, Any] = {"status": status, "resolved_at": utc_text(datetime.now(UTC)), "last_error": error}
    if attempts is not None:
        values["attempts"] = attempts
    if event_time is not None:
        values["event_time"] = event_time
    with engine.begin() as conn:
        conn.execute(update(tbl).where(tbl.c.kind == kind, tbl.c.transaction_id == tid).values(**values))


def run_recovery(engine: Engine, client_factory: Callable[[], Any], *, grace_s: float, max_attempts: int = 5,
                 tenant: str = "", now: datetime | None = None) -> RecoveryReport:
    """Detect (until the cursor has caught up), then recover what is due; the client is opened only when
    something is due."""
    scanned = detected = 0
    while True:
        before = get_cursor(engine, CURSOR)
        s, d = detect(engine, grace_s=grace_s, now=now)
        scanned, detected = scanned + s, detected + d
        if s < _FETCH or get_cursor(engine, CURSOR) == before:
            break
    tbl = table(engine, "pos_transaction_recoveries")
    with engine.connect() as conn:
        any_due = conn.execute(select(tbl.c.kind).where(
            tbl.c.status == WAITING, tbl.c.due_at <= utc_text(now or datetime.now(UTC))).limit(1)).first()
    if any_due is None:
        report = RecoveryReport()
    else:
        with client_factory() as client:
            report = recover_due(engine, client, max_attempts=max_attempts, now=now, tenant=tenant)
    report.scanned_events, report.detected = scanned, detected
    return report


MISSING_COLUMNS = ["kind", "transaction_id", "order_id", "status", "evidence", "fulfillment_node_id", "amount",
                   "currency", "last_error"]


def missing_on(engine: Engine, day: str, timezone: str) -> pd.DataFrame:
    """The business day's lost transactions not landed (yet): waiting or unrecoverable, dated by the local
    business day of their evidence (MISSING_COLUMNS; the input of `rules.missing_transactions`)."""
    tbl = table(engine, "pos_transaction_recoveries")
    with engine.connect() as conn:
        rows = conn.execute(select(tbl).where(tbl.c.status.in_([WAITING, UNRECOVERABLE]))).mappings().all()
    picked = [{c: r[c] for c in MISSING_COLUMNS} for r in rows
              if r["evidence_time"] and business_date(r["evidence_time"], timezone) == day]
    return pd.DataFrame(picked, columns=MISSING_COLUMNS)
