"""Retention of the sync's own tables in the store of record (Dagster's storage: pipelines/dagster_lib/dagster_retention.py).

Settled rows older than the retention age go: done/superseded/skipped movements, applied or
released batches with their ledger rows, run statistics. Failed and unmapped movements, failed
batches and the count watermarks stay (ops still need them; watermarks keep netting exact).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete

from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table
from pipelines.sync.batches import APPLIED, RELEASED
from pipelines.sync.queue import DONE, SKIPPED, SUPERSEDED


def prune_store(engine: Engine, older_than_days: float, *, now: datetime | None = None) -> dict[str, int]:
    cutoff = utc_text((now or datetime.now(UTC)) - timedelta(days=older_than_days))
    moves, batches = table(engine, "stock_sync_movements"), table(engine, "stock_sync_batches")
    ledger, runs = table(engine, "stock_sync_ledger"), table(engine, "stock_sync_runs")
    with engine.begin() as conn:
        out = {
            "movements": conn.execute(delete(moves).where(and_(
                moves.c.status.in_([DONE, SUPERSEDED, SKIPPED]), moves.c.queued_at < cutoff))).rowcount,
            "ledger": conn.execute(delete(ledger).where(ledger.c.applied_at < cutoff)).rowcount,
            "batches": conn.execute(delete(batches).where(and_(
                batches.c.status.in_([APPLIED, RELEASED]), batches.c.created_at < cutoff))).rowcount,
            "runs": conn.execute(delete(runs).where(runs.c.started_at < cutoff)).rowcount,
        }
    return out
