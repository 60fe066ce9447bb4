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
    """Store inbound events once per (source, dedup_key); returns, per event, whether it was new."""
    now = utc_text(datetime.now(UTC))
    results = []
    stmt, tbl = _insert(engine, "inbox_events")
    with engine.begin() as conn:
        for ev in events:
            res = conn.execute(
                stmt.values(source=ev.source, dedup_key=ev.dedup_key, event_name=ev.event_name,
                            event_time=ev.event_time, received_at=now,
                            payload=json.dumps(ev.payload, separators=(",", ":")))
                .on_conflict_do_nothing(index_elements=["source", "dedup_key"])
                .returning(tbl.c.id)
            )
            results.append(res.first() is not None)
    return results


def quarantine(engine: Engine, *, source: str, reason: str, status_code: int, headers: dict[str, str],
               body: bytes) -> None:
    safe_headers = {k: ("<redacted>" if k.lower() in ("authorization", "cookie", "x-centra-signature") else v)
                    for k, v in headers.items()}
    tbl = table(engine, "intake_quarantine")
    with engine.begin() as conn:
        conn.execute(tbl.insert().values(
            source=source, received_at=utc_text(datetime.now(UTC)), reason=reason[:255],
            status_code=status_code, headers=json.dumps(safe_headers),
            body=body.decode("utf-8", errors="backslashreplace"),
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
