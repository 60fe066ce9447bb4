"""Replay: put selected failed (or unmapped, or skipped) movements back in the queue.

Failed movements are re-queued isolated (one mutation per SKU) so a line Centra still rejects
cannot hold others back; unmapped ones are mapped again with the current estate (after the
catalog or estate fix) and stay unmapped if still unknown. Netting then decides their effect: a
movement older than a count applied since is absorbed, never applied on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from pipelines.estate import Estate
from pipelines.store.db import table
from pipelines.sync.config import SyncConfig
from pipelines.sync.queue import FAILED, PENDING, SKIPPED, UNMAPPED, _synced

REPLAYABLE = (FAILED, UNMAPPED, SKIPPED)


@dataclass
class ReplayReport:
    selected: int = 0
    requeued: int = 0
    still_unmapped: int = 0


def requeue(engine: Engine, estate: Estate, *, movement_ids: Sequence[int] | None = None,
            statuses: Sequence[str] = (FAILED,), warehouse_id: int | None = None, sku: str | None = None,
            since: str | None = None, config: SyncConfig | None = None) -> ReplayReport:
    """Re-queue movements matching every given filter (`since`: POS event time, ISO UTC)."""
    config = config or SyncConfig()
    bad = [s for s in statuses if s not in REPLAYABLE]
    if bad:
        raise ValueError(f"only {REPLAYABLE} movements can be replayed, not {bad}")
    moves = table(engine, "stock_sync_movements")
    q = select(moves.c.id, moves.c.status, moves.c.fulfillment_node_id, moves.c.sku).where(
        moves.c.status.in_(list(statuses)))
    if movement_ids:
        q = q.where(moves.c.id.in_(list(movement_ids)))
    if warehouse_id is not None:
        q = q.where(moves.c.warehouse_id == warehouse_id)
    if sku is not None:
        q = q.where(moves.c.sku == sku)
    if since is not None:
        q = q.where(moves.c.event_time >= since)
    report = ReplayReport()
    with engine.begin() as conn:
        for r in conn.execute(q).all():
            report.selected += 1
            loc = estate.location_of(r.fulfillment_node_id)
            if loc is None or r.sku not in estate.by_sku or not _synced(loc, config):
                report.still_unmapped += 1
                continue
            conn.execute(update(moves).where(moves.c.id == r.id, moves.c.status == r.status).values(
                status=PENDING, batch_id=None, isolate=int(r.status == FAILED), error=None,
                warehouse_id=loc.centra_warehouse_id, location_id=loc.id))
            report.requeued += 1
    return report
