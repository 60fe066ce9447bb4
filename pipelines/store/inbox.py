"""Inbox, quarantine and exception-record writes (idempotent, dialect-aware upserts)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table


def _insert(engine: Engine, name: str):
    tbl = table(engine, name)
    return (postgresql.insert(tbl) if engine.dialect.name == "postgresql" else sqlite.insert(tbl)), tbl


def store_events(engine: Engine, events: Iterable[Any]) -> list[bool]:
    """Store inbound events once per (source, dedup_key); returns, per event, whether it was new.

    All the events go in one transaction (a Centra webhook's batch is stored whole or not at all) as
    multi-row `INSERT ... ON CONFLICT (source, dedup_key) DO NOTHING RETURNING` statements: plain SQL
    that SQLite >= 3.35 and PostgreSQL both run, sent with the driver's own parameter style (SQLAlchemy
    does not cache its dialects' ON CONFLICT constructs, and compiling one costs more than the insert).
    The unique constraint decides, so concurrent replicas store a key once. Within a call the first
    occurrence of a key counts as new. Rows are sent in key order, so two concurrent batches sharing
    keys take their row locks in the same order (no deadlock on PostgreSQL). Any database error
    propagates: the caller must not acknowledge the delivery.
    """
    events = list(events)
    if not events:
        return []
    now = utc_text(datetime.now(UTC))
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for ev in events:
        if (ev.source, ev.dedup_key) not in rows:
            rows[(ev.source, ev.dedup_key)] = (ev.source, ev.dedup_key, ev.event_name, ev.event_time, now,
                                               json.dumps(ev.payload, separators=(",", ":")))
    ordered = [rows[k] for k in sorted(rows)]
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    row_marks = "(" + ", ".join([mark] * 6) + ")"
    inserted: set[tuple[str, str]] = set()
    with engine.begin() as conn:
        for start in range(0, len(ordered), 100):
            chunk = ordered[start:start + 100]
            sql = ("INSERT INTO inbox_events (source, dedup_key, event_name, event_time, received_at, payload) "
                   f"VALUES {', '.join([row_marks] * len(chunk))} "
                   "ON CONFLICT (source, dedup_key) DO NOTHING RETURNING source, dedup_key")
            result = conn.exec_driver_sql(sql, tuple(v for row in chunk for v in row))
            inserted.update((r[0], r[1]) for r in result)
    results = []
    for ev in events:
        key = (ev.source, ev.dedup_key)
        results.append(key in inserted)
        inserted.discard(key)  # a repeat of the key within this call is a duplicate
    return results


def quarantine(engine: Engine, *, source: str, reason: str, status_code: int, headers: dict[str, str],
               body: bytes) -> None:
    """Keep a refused delivery: its reason, status, headers (credentials redacted) and raw body.

    The body is stored as text when it is UTF-8 without NUL characters (PostgreSQL text cannot hold
    NUL); otherwise base64 of the exact bytes, and the stored headers say so with the pseudo-header
    `":body-encoding": "base64"`. Database errors propagate (the caller logs the body).
    """
    import base64

    from sqlalchemy import column
    from sqlalchemy import table as table_clause

    redacted = ("authorization", "proxy-authorization", "cookie", "x-centra-signature", "x-api-key")
    safe_headers = {k: ("<redacted>" if k.lower() in redacted else v) for k, v in headers.items()}
    try:
        text_body = body.decode("utf-8")
        if "\x00" in text_body:
            raise ValueError("NUL in body")
    except ValueError:  # UnicodeDecodeError is a ValueError
        text_body = base64.b64encode(body).decode("ascii")
        safe_headers[":body-encoding"] = "base64"
    tbl = table_clause("intake_quarantine", column("source"), column("received_at"), column("reason"),
                       column("status_code"), column("headers"), column("body"))
    with engine.begin() as conn:
        conn.execute(tbl.insert().values(
            source=source[:32], received_at=utc_text(datetime.now(UTC)), reason=reason[:255],
            status_code=status_code, headers=json.dumps(safe_headers), body=text_body,
        ))


def record_exceptions(engine: Engine, records: Iterable[ExceptionRecord]) -> int:
    """Upsert exception records: new ones open, known ones get last_seen_at and a count bump."""
    now = utc_text(datetime.now(UTC))
    stmt, tbl = _insert(engine, "exceptions")
    n = 0
    with engine.begin() as conn:
        for r in records:
            ins = stmt.values(
                exception_key=r.key, exception_type=r.type, severity=r.severity, owner_team=r.owner_team,
                source=r.source, business_date=r.business_date, location_id=r.location_id, sku=r.sku,
                message=r.message, playbook=r.playbook,
                payload=json.dumps(r.payload, default=str) if r.payload is not None else None,
                status="open", first_seen_at=now, last_seen_at=now, occurrences=1,
            )
            conn.execute(ins.on_conflict_do_update(
                index_elements=["exception_key"],
                set_={"last_seen_at": now, "occurrences": tbl.c.occurrences + 1, "message": r.message},
            ))
            n += 1
    return n
