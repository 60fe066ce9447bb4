"""Batches: one Centra mutation each, written before it is sent and settled after.

The exactly-once protocol (docs/stock-sync.md):
1. `prepare` (one transaction): the batch row with a unique description `pipelines-stock-sync <id>`
   and its plan, and its movements moved from pending to in_flight.
2. The mutation is sent with that description.
3. `commit` (one transaction): the batch applied, one ledger row per SKU, the movements done (or
   superseded by a count), the count watermarks.
If the process dies between 2 and 3, the batch stays `prepared`; the next pass looks for its
description in Centra's stockChangeConnection and commits it without resending when found.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update

from pipelines.domain.sync.model import Mutation, Watermark
from pipelines.store.db import table
from pipelines.sync.queue import DONE, FAILED, IN_FLIGHT, PENDING, SUPERSEDED, now_text, upsert_watermark

PREPARED, APPLIED, BATCH_FAILED, RELEASED = "prepared", "applied", "failed", "released"
DESCRIPTION_PREFIX = "pipelines-stock-sync"


class ConcurrentSyncError(RuntimeError):
    """Movements of a batch were no longer pending: another sync process is running."""


@dataclass
class Batch:
    batch_id: str
    description: str
    warehouse_id: int
    operation: str
    lines: dict[str, int]
    plan: dict[str, dict[str, Any]]  # sku -> {"applies": [...], "absorbs": [...], "watermark": [...], "first", "last"}
    critical: bool
    attempts: int = 0
    created_at: str = ""
    sent_at: str | None = None

    @property
    def movement_ids(self) -> list[int]:
        return [i for p in self.plan.values() for i in (*p["applies"], *p["absorbs"])]

    def signed(self, sku: str) -> int:
        return -self.lines[sku] if self.operation == "remove" else self.lines[sku]


def new_batch(m: Mutation) -> Batch:
    batch_id = uuid.uuid4().hex
    plan = {p.sku: {"applies": list(p.applies), "absorbs": list(p.absorbs), "first": p.first_event_time,
                    "last": p.last_event_time,
                    "watermark": ([p.watermark.event_time, p.watermark.logical_timestamp, p.watermark.quantity,
                                   p.watermark.movement_id] if p.watermark else None)}
            for p in m.plans}
    return Batch(batch_id, f"{DESCRIPTION_PREFIX} {batch_id}", m.warehouse_id, m.operation, dict(m.lines), plan,
                 m.critical)


def prepare(engine: Engine, batch: Batch, run_id: str | None) -> None:
    """Step 1: record the batch (as sent once) and lock its movements to it (one short transaction)."""
    batches = table(engine, "stock_sync_batches")
    moves = table(engine, "stock_sync_movements")
    batch.created_at = batch.sent_at = now_text()
    batch.attempts = 1
    ids = batch.movement_ids
    with engine.begin() as conn:
        conn.execute(batches.insert().values(
            batch_id=batch.batch_id, description=batch.description, run_id=run_id, warehouse_id=batch.warehouse_id,
            operation=batch.operation, lines=json.dumps(batch.lines), plan=json.dumps(batch.plan),
            movements=len(ids), critical=int(batch.critical), status=PREPARED, attempts=1, recovered=0,
            created_at=batch.created_at, sent_at=batch.sent_at))
        locked = 0
        for start in range(0, len(ids), 500):
            locked += conn.execute(
                update(moves).where(moves.c.id.in_(ids[start:start + 500]), moves.c.status.in_([PENDING, FAILED]))
                .values(status=IN_FLIGHT, batch_id=batch.batch_id)).rowcount
        if locked != len(ids):
            raise ConcurrentSyncError(f"batch {batch.batch_id}: {len(ids) - locked} movements were not pending")


def mark_sent(engine: Engine, batch: Batch) -> None:
    """A resend of a prepared batch (after the ledger showed it absent)."""
    batches = table(engine, "stock_sync_batches")
    batch.attempts += 1
    batch.sent_at = now_text()
    with engine.begin() as conn:
        conn.execute(update(batches).where(batches.c.batch_id == batch.batch_id)
                     .values(attempts=batch.attempts, sent_at=batch.sent_at))


def commit(engine: Engine, batch: Batch, *, change_ids: tuple[int, ...], confirmed_at: str,
           recovered: bool = False) -> None:
    """Step 3: the batch, the ledger, the movements and the watermarks, in one transaction."""
    batches = table(engine, "stock_sync_batches")
    moves = table(engine, "stock_sync_movements")
    ledger = table(engine, "stock_sync_ledger")
    applies = [i for p in batch.plan.values() for i in p["applies"]]
    absorbs = [i for p in batch.plan.values() for i in p["absorbs"]]
    with engine.begin() as conn:
        conn.execute(update(batches).where(batches.c.batch_id == batch.batch_id).values(
            status=APPLIED, confirmed_at=confirmed_at, centra_change_ids=json.dumps(list(change_ids)),
            recovered=int(recovered), error=None))
        conn.execute(ledger.insert(), [
            {"batch_id": batch.batch_id, "warehouse_id": batch.warehouse_id, "sku": sku, "operation": batch.operation,
             "quantity": batch.signed(sku), "movements": len(p["applies"]) + len(p["absorbs"]),
             "first_event_time": p["first"], "last_event_time": p["last"], "applied_at": confirmed_at}
            for sku, p in batch.plan.items()])
        for ids, status in ((applies, DONE), (absorbs, SUPERSEDED)):
            for start in range(0, len(ids), 500):
                conn.execute(update(moves).where(moves.c.id.in_(ids[start:start + 500]))
                             .values(status=status, applied_at=confirmed_at, error=None))
        for sku, p in batch.plan.items():
            if p["watermark"] is not None:
                event_time, lts, qty, mid = p["watermark"]
                upsert_watermark(conn, engine, batch.warehouse_id, sku, Watermark(event_time, lts, qty, mid),
                                 confirmed_at)


def fail(engine: Engine, batch: Batch, error: str, failing_skus: set[str]) -> None:
    """A permanent rejection: movements of `failing_skus` fail; the rest go back to pending (each
    key isolated in its own mutation when the culprit is unknown)."""
    batches = table(engine, "stock_sync_batches")
    moves = table(engine, "stock_sync_movements")
    with engine.begin() as conn:
        conn.execute(update(batches).where(batches.c.batch_id == batch.batch_id)
                     .values(status=BATCH_FAILED, error=error[:4000]))
        for sku, p in batch.plan.items():
            ids = [*p["applies"], *p["absorbs"]]
            if sku in failing_skus:
                values: dict[str, Any] = {"status": FAILED, "error": error[:4000], "batch_id": batch.batch_id}
            else:
                values = {"status": PENDING, "batch_id": None, "isolate": int(not failing_skus)}
            for start in range(0, len(ids), 500):
                conn.execute(update(moves).where(moves.c.id.in_(ids[start:start + 500]))
                             .values(attempts=moves.c.attempts + 1, **values))


def unresolved(engine: Engine) -> list[Batch]:
    """Batches prepared but never settled (a crash or an ambiguous failure), oldest first."""
    batches = table(engine, "stock_sync_batches")
    with engine.connect() as conn:
        rows = conn.execute(select(batches).where(batches.c.status == PREPARED)
                            .order_by(batches.c.created_at)).all()
    return [Batch(r.batch_id, r.description, r.warehouse_id, r.operation, json.loads(r.lines), json.loads(r.plan),
                  bool(r.critical), r.attempts, r.created_at, r.sent_at) for r in rows]
