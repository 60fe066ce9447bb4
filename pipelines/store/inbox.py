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

#: PostgreSQL: a NOTIFY on this channel commits with every batch of new inbox events, so the always-on
#: stock sync wakes at once instead of polling (pipelines/sync/wakeup.py).
INBOX_CHANNEL = "pipelines_inbox"


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
        if inserted and engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"NOTIFY {INBOX_CHANNEL}")
    results = []
    for ev in events:
        key = (ev.source, ev.dedup_key)
        results.append(key in inserted)
        inserted.discard(key)  # a repeat of the key within this call is a duplicate
    return results


def quarantine(engine: Engine, *, source: str, reason: str, status_code: int, headers: dict[str, str],
               body: bytes, body_size: int | None = None, body_sha256: str | None = None,
               body_read: bool = True, verified: bool = True, keep_bytes: int | None = None,
               budget: QuarantineBudget | None = None) -> None:
    """Keep a refused delivery: reason, status, headers (credentials redacted), body, its size and hash.

    `body` is what the intake read (all of it, or the start when reading stopped at the limit);
    `body_size` and `body_sha256` describe the body as received (default: `body` itself), and
    `body_read=False` says it was not read at all (431). With `keep_bytes` only that many bytes are
    stored (`body_kept = 'prefix'`): a sender whose credentials did not check out cannot fill the
    table. `verified` is recorded as `sender` ('verified' / 'unverified'); unverified rows are trimmed
    first. The body is stored as text when it is UTF-8 without NUL characters (PostgreSQL text cannot
    hold NUL; a prefix cut inside a UTF-8 sequence loses that sequence's bytes); otherwise base64 of the
    exact bytes, and the stored headers say so with the pseudo-header `":body-encoding": "base64"`.

    `budget`, if given, is told the row's size (`stored_bytes`) and trims the table when due, after the
    insert committed (a failing trim is logged, never raised). Database errors of the insert propagate
    (the caller logs the body's size and hash, never the body).
    """
    row = _quarantine_row(source=source, reason=reason, status_code=status_code, headers=headers, body=body,
                          body_size=body_size, body_sha256=body_sha256, body_read=body_read, verified=verified,
                          keep_bytes=keep_bytes)
    _insert_quarantine_row(engine, row)
    if budget is not None and budget.note(row["stored_bytes"]):
        budget.trim(engine)


_REDACTED_HEADERS = ("authorization", "proxy-authorization", "cookie", "x-centra-signature", "x-api-key")
_QUARANTINE_COLUMNS = ("source", "received_at", "reason", "status_code", "headers", "body", "sender", "body_bytes",
                       "body_sha256", "body_kept", "stored_bytes")


def _quarantine_row(*, source: str, reason: str, status_code: int, headers: dict[str, str], body: bytes,
                    body_size: int | None, body_sha256: str | None, body_read: bool, verified: bool,
                    keep_bytes: int | None) -> dict[str, Any]:
    """The `intake_quarantine` row of a refused delivery, but for `received_at` (see `quarantine`)."""
    import hashlib

    safe_headers = {k: ("<redacted>" if k.lower() in _REDACTED_HEADERS else v) for k, v in headers.items()}
    if body_read:
        size = len(body) if body_size is None else body_size
        digest = body_sha256 or hashlib.sha256(body).hexdigest()
        stored = body if keep_bytes is None else body[:max(0, keep_bytes)]
        kept = "all" if len(stored) == size else "prefix"
    else:
        size, digest, stored, kept = None, None, b"", "none"
    text_body = _body_text(stored, kept, safe_headers)
    headers_json = json.dumps(safe_headers)
    reason = reason[:255]
    stored_bytes = len(text_body.encode("utf-8")) + len(headers_json) + len(reason.encode("utf-8")) + 64
    return {"source": source[:32], "reason": reason, "status_code": status_code, "headers": headers_json,
            "body": text_body, "sender": "verified" if verified else "unverified", "body_bytes": size,
            "body_sha256": digest, "body_kept": kept, "stored_bytes": stored_bytes}


def _body_text(stored: bytes, kept: str, headers: dict[str, str]) -> str:
    """The stored body as text: UTF-8 without NUL as it is (a prefix cut inside a UTF-8 sequence without
    that sequence), otherwise base64, saying so in `headers` (`":body-encoding": "base64"`)."""
    import base64

    try:
        text_body = stored.decode("utf-8")
        if "\x00" in text_body:
            raise ValueError("NUL in body")
    except UnicodeDecodeError as exc:
        text_body = _text_prefix(stored, exc) if kept == "prefix" else None
        if text_body is None or "\x00" in text_body:
            text_body = base64.b64encode(stored).decode("ascii")
            headers[":body-encoding"] = "base64"
    except ValueError:
        text_body = base64.b64encode(stored).decode("ascii")
        headers[":body-encoding"] = "base64"
    return text_body


def _insert_quarantine_row(engine: Engine, row: dict[str, Any]) -> None:
    """Insert the row, received now, in a transaction of its own."""
    from sqlalchemy import column
    from sqlalchemy import table as table_clause

    tbl = table_clause("intake_quarantine", *(column(name) for name in _QUARANTINE_COLUMNS))
    with engine.begin() as conn:
        conn.execute(tbl.insert().values(received_at=utc_text(datetime.now(UTC)), **row))


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


# --- quarantine budget and retention (helpers of `quarantine`) --------------------------------------

_TRIM_LOCK_KEY = 727002  # PostgreSQL advisory lock: one trimmer at a time (migrations use 727001)


def _text_prefix(prefix: bytes, exc: UnicodeDecodeError) -> str | None:
    """A prefix cut inside a UTF-8 sequence, as text without that partial sequence; None if not UTF-8."""
    if exc.reason != "unexpected end of data" or exc.start < len(prefix) - 3:
        return None
    try:
        return prefix[:exc.start].decode("utf-8")
    except UnicodeDecodeError:
        return None


class QuarantineBudget:
    """When to trim `intake_quarantine` (per process; each intake worker has its own).

    `note(stored_bytes)` counts the bytes this process quarantined and says "trim now" each time they
    pass another `trim_every_bytes` (default an eighth of the budget): one integer addition per refused
    request, and a trim (a few queries) per slice. Between trims the table can exceed `max_bytes` by
    at most one slice per process; the intake also trims at start and hourly (retention).
    """

    def __init__(self, max_bytes: int, retention_days: float, *, trim_every_bytes: int | None = None):
        import threading

        self.max_bytes = max_bytes
        self.retention_days = retention_days
        self.trim_every_bytes = trim_every_bytes or max(1, max_bytes // 8)
        self._since_trim = 0
        self._lock = threading.Lock()

    def note(self, stored_bytes: int) -> bool:
        with self._lock:
            self._since_trim += stored_bytes
            if self._since_trim < self.trim_every_bytes:
                return False
            self._since_trim = 0
            return True

    def trim(self, engine: Engine) -> tuple[int, int]:
        """`trim_quarantine` with this budget; errors are logged (the caller's request is unaffected)."""
        import logging

        try:
            return trim_quarantine(engine, max_bytes=self.max_bytes, retention_days=self.retention_days)
        except Exception as exc:  # noqa: BLE001 - trimming is housekeeping, never a reason to fail a request
            logging.getLogger(__name__).warning("could not trim intake_quarantine: %s", type(exc).__name__)
            return 0, 0


def trim_quarantine(engine: Engine, *, max_bytes: int, retention_days: float,
                    now: datetime | None = None, chunk: int = 500) -> tuple[int, int]:
    """Delete quarantine rows older than `retention_days`, then, if the rest holds more than
    `max_bytes` (sum of `stored_bytes`), the rows beyond 7/8 of it: unverified senders' rows first,
    oldest first, so a stranger's flood evicts its own rows before any verified delivery's.

    Returns (deleted for age, deleted for the budget). Portable SQL (a window function, SQLite >= 3.25
    and PostgreSQL); the candidates are read in one transaction and deleted in short transactions of
    `chunk` rows, so an SQLite writer never waits long behind a trim. On PostgreSQL a session advisory
    lock lets one trimmer run at a time (another returns (0, 0) at once).
    """
    from datetime import timedelta

    from sqlalchemy import bindparam, text

    cutoff = utc_text((now or datetime.now(UTC)) - timedelta(days=retention_days))
    target = max_bytes - max_bytes // 8
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if pg:
            locked = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _TRIM_LOCK_KEY}).scalar()
            conn.commit()
            if not locked:
                return 0, 0
        try:
            old = [r[0] for r in conn.execute(
                text("SELECT id FROM intake_quarantine WHERE received_at < :cutoff"), {"cutoff": cutoff})]
            total = conn.execute(text("SELECT COALESCE(SUM(stored_bytes), 0) FROM intake_quarantine "
                                      "WHERE received_at >= :cutoff"), {"cutoff": cutoff}).scalar() or 0
            over: list[int] = []
            if total > max_bytes:
                over = [r[0] for r in conn.execute(text(
                    "SELECT id FROM (SELECT id, SUM(stored_bytes) OVER ("
                    "ORDER BY CASE WHEN sender = 'verified' THEN 0 ELSE 1 END, id DESC) AS kept "
                    "FROM intake_quarantine WHERE received_at >= :cutoff) ranked WHERE kept > :target"),
                    {"cutoff": cutoff, "target": target})]
            conn.commit()
            delete = text("DELETE FROM intake_quarantine WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True))
            ids = old + over
            for start in range(0, len(ids), chunk):
                with conn.begin():
                    conn.execute(delete, {"ids": ids[start:start + chunk]})
        finally:
            if pg:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _TRIM_LOCK_KEY})
                conn.commit()
    return len(old), len(over)
