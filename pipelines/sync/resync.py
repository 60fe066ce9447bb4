"""Full resync: POS on-hand vs the commerce platform's on-hand stock per store warehouse, corrected as counts.

A correction is queued as a synthetic count (`movement_type` count, event `stock_resync`) at the
moment the POS stock was read, so the regular sync sends it within the rate budget and the
count/delta rule keeps it exact: a movement of that key still travelling (not yet landed) is
absorbed if it happened before the read (the POS stock already includes it) and applied on top
if after. Keys with queued or in-flight movements, or with any movement in the last `quiet_s`
seconds, are left alone (the POS read is not atomic across pages); the next resync takes them.

Kiosk take-home sales (Cloudshelf, `pipelines.sync.kiosk_movements`) deduct Centra but never reach NewStore, whose
on-hand stays too high until the store counts the key. The target is therefore not NewStore's on-hand but the
shelf: max(0, on-hand - the key's kiosk units sold after its latest real count, or all of them when never counted)
(`pipelines.domain.kiosk.uncounted`); a resync correction is no count of the shelf and does not reset that. The
kiosk rows and counts are read from `stock_sync_movements` (every status: NewStore saw none of the kiosk sales,
and a count set its on-hand whether Centra took it or not); settled rows older than the sync's store retention
(`prune_store`, 90 days by default) are gone, so a key not counted within it forgets kiosk units older than that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from pipelines.connectors.centra import CentraClient
from pipelines.connectors.newstore import NewStoreClient
from pipelines.domain.kiosk.uncounted import shelf_on_hand, uncounted_units
from pipelines.domain.sync.governor import Governor
from pipelines.domain.timeutil import utc_text
from pipelines.estate import Estate, Location
from pipelines.store.db import table
from pipelines.sync.centra_io import target_of
from pipelines.sync.config import SyncConfig
from pipelines.sync.kiosk_movements import EVENT_NAME as KIOSK_EVENT
from pipelines.sync.lock import sync_lock
from pipelines.sync.queue import IN_FLIGHT, PENDING, _insert, _synced, ingest, now_text
from pipelines.sync.target import StockTarget

RESYNC_EVENT = "stock_resync"


@dataclass
class ResyncReport:
    read_at: str = ""
    keys_compared: int = 0
    differing: int = 0
    corrections_queued: int = 0
    skipped_active: int = 0
    centra_requests: int = 0
    units_off: int = 0
    kiosk_units: int = 0  # kiosk take-home units NewStore does not know of, over the keys compared
    samples: list[dict[str, Any]] = field(default_factory=list)


def _active_keys(engine: Engine, since: str) -> set[tuple[int, str]]:
    moves = table(engine, "stock_sync_movements")
    with engine.connect() as conn:
        rows = conn.execute(select(moves.c.warehouse_id, moves.c.sku).distinct().where(
            or_(moves.c.status.in_([PENDING, IN_FLIGHT]), moves.c.event_time >= since))).all()
    return {(r.warehouse_id, r.sku) for r in rows}


def kiosk_units_uncounted(engine: Engine, *, at: str | None = None,
                          warehouse_ids: list[int] | None = None) -> dict[tuple[int, str], int]:
    """Per (warehouse, SKU): the kiosk take-home units sold after the key's latest real count (not a resync
    correction), at or before ``at`` (None: all), from `stock_sync_movements`."""
    return kiosk_units_uncounted_at(engine, [at], warehouse_ids=warehouse_ids)[0]


def kiosk_units_uncounted_at(engine: Engine, ats: Sequence[str | None],
                             warehouse_ids: list[int] | None = None) -> list[dict[tuple[int, str], int]]:
    """`kiosk_units_uncounted` at each of ``ats`` from one read of the movements (the reconciliation wants the day's
    cut-off and the previous one)."""
    moves = table(engine, "stock_sync_movements")
    where = [moves.c.warehouse_id.is_not(None)]
    if ats and None not in ats:
        where.append(moves.c.event_time <= max(a for a in ats if a is not None))
    if warehouse_ids is not None:
        where.append(moves.c.warehouse_id.in_(warehouse_ids))
    with engine.connect() as conn:
        sales = conn.execute(select(moves.c.warehouse_id, moves.c.sku, moves.c.event_time, moves.c.quantity)
                             .where(moves.c.event_name == KIOSK_EVENT, *where)).all()
        if not sales:
            return [{} for _ in ats]
        skus = sorted({r.sku for r in sales})
        counts = []
        for i in range(0, len(skus), 500):
            counts += conn.execute(
                select(moves.c.warehouse_id, moves.c.sku, moves.c.event_time)
                .where(and_(moves.c.movement_type == "count", moves.c.event_name != RESYNC_EVENT,
                            moves.c.sku.in_(skus[i:i + 500]), *where))).all()
    return [uncounted_units((((r.warehouse_id, r.sku), r.event_time, -r.quantity) for r in sales),
                            (((r.warehouse_id, r.sku), r.event_time) for r in counts), at=at) for at in ats]


def queue_corrections(engine: Engine, estate: Estate, centra: StockTarget | CentraClient, newstore: NewStoreClient,
                      config: SyncConfig | None = None, *, quiet_s: float = 300.0, governor: Governor | None = None,
                      now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> ResyncReport:
    """Compare and queue corrections (under the sync lock, so no batch moves the platform's stock meanwhile)."""
    target = target_of(centra, estate)
    config = config or SyncConfig()
    governor = governor or Governor(config.rate_share)
    locations = [loc for loc in estate.locations if _synced(loc, config)]
    by_node = {loc.newstore_node_id: loc for loc in locations}
    report = ResyncReport()
    with sync_lock(engine):
        governor.observe(target.rate_limits())
        read_at = now()
        report.read_at = utc_text(read_at)
        pos = [p for p in newstore.stocked_products(list(by_node)) if p.sku in estate.by_sku]
        physical, report.centra_requests = target.physical([loc.centra_warehouse_id for loc in locations], governor)
        ingest(engine, estate, config)  # what has landed counts as in flight, decoded or not
        active = _active_keys(engine, utc_text(read_at - timedelta(seconds=quiet_s)))
        kiosk = kiosk_units_uncounted(engine, at=report.read_at,
                                      warehouse_ids=[loc.centra_warehouse_id for loc in locations])
        values = []
        for p in pos:
            loc = by_node[p.fulfillment_node_id]
            key = (loc.centra_warehouse_id, p.sku)
            report.keys_compared += 1
            have = physical.get(key, 0)
            sold = kiosk.get(key, 0)
            report.kiosk_units += sold
            want = shelf_on_hand(p.on_hand, sold)
            if have == want:
                continue
            report.differing += 1
            if key in active:
                report.skipped_active += 1
                continue
            report.units_off += abs(want - have)
            if len(report.samples) < 20:
                report.samples.append({"warehouse_id": key[0], "sku": p.sku, "pos_on_hand": p.on_hand,
                                       "kiosk_uncounted": sold, "centra_physical": have})
            values.append(count_correction("resync", RESYNC_EVENT, report.read_at, loc, key[0], p.sku, want))
        report.corrections_queued = queue_corrected(engine, values)
    return report


def count_correction(prefix: str, event: str, read_at: str, loc: Location, warehouse_id: int, sku: str,
                     quantity: int) -> dict[str, Any]:
    """A resync's correction as a queued movement: a synthetic count of `quantity` at `read_at` (the moment the
    source of truth was read), keyed `<prefix>:<read_at>:<warehouse>:<sku>` so a re-run of the same read queues
    nothing twice."""
    return {"movement_key": f"{prefix}:{read_at}:{warehouse_id}:{sku}", "inbox_event_id": 0, "event_name": event,
            "event_time": read_at, "logical_timestamp": None, "received_at": read_at,
            "fulfillment_node_id": loc.newstore_node_id, "location_id": loc.id, "warehouse_id": warehouse_id,
            "sku": sku, "movement_type": "count", "quantity": quantity, "status": PENDING, "batch_id": None,
            "isolate": 0, "attempts": 0, "queued_at": now_text(), "applied_at": None, "error": None}


def queue_corrected(engine: Engine, values: list[dict[str, Any]]) -> int:
    """Queue corrections (`count_correction` rows) for the stock sync; how many were given."""
    if values:
        stmt, _ = _insert(engine, "stock_sync_movements")
        with engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["movement_key"]), values)
    return len(values)
