"""Recovery of store transactions the event stream lost: the `pos_transaction_recoveries` asset (table of the
same name), its job, and the sensor that runs it when there is something to look at.

The work is `pipelines.store.recoveries` (detect from sibling events, fetch from NewStore by id, land as the
streamed event, marked recovered). A run is requested when sibling events landed past the detection cursor
or a waiting transaction became due, at most once a minute and never while one is in progress.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
from sqlalchemy import func, select

from pipelines.dagster_lib.common import FINANCE, NEWSTORE_KINDS, RETAIL_OPERATIONS
from pipelines.defs.intake import newstore_event_inbox
from pipelines.defs.resources import NewStoreResource, RecoverySettings, StoreOfRecord
from pipelines.domain.completeness import EVIDENCE_EVENTS
from pipelines.domain.timeutil import utc_text
from pipelines.store.db import table
from pipelines.store.recoveries import CURSOR, SEEN, SETTLE_S, WAITING, run_recovery
from pipelines.sync.queue import get_cursor

RECOVERY_TAGS = {"pipelines/concurrency": "pos-recovery"}


@dg.asset(
    group_name="pos",
    owners=[*RETAIL_OPERATIONS, *FINANCE],
    kinds=NEWSTORE_KINDS,
    deps=[newstore_event_inbox],
    description="Store transactions the event stream lost (table pos_transaction_recoveries): a sale or return "
                "whose sibling events landed but whose own event (`order.opened`, `return.processed`) did not. "
                "Each is fetched from NewStore's API by id and landed in the inbox as that event, marked "
                "recovered, so the sale lines and the stock sync take it like a streamed one; what NewStore "
                "cannot return stays `unrecoverable` and is reported as `store_transaction_missing`.",
)
def pos_transaction_recoveries(context: dg.AssetExecutionContext, store: StoreOfRecord, newstore: NewStoreResource,
                               recovery_settings: RecoverySettings) -> dg.MaterializeResult:
    engine = store.engine()
    report = run_recovery(engine, newstore.client, grace_s=recovery_settings.grace_s,
                          max_attempts=recovery_settings.max_attempts, tenant=newstore.tenant)
    for error in report.errors[:20]:
        context.log.warning("recovery: %s", error)
    counts = status_counts(store)
    context.log.info("recovery: %d sibling events read, %d transactions detected, %d recovered, %d arrived late, "
                     "%d unrecoverable, %d NewStore requests", report.scanned_events, report.detected,
                     report.recovered, report.arrived, report.unrecoverable, report.api_requests)
    lags = report.recovery_lags_s
    return dg.MaterializeResult(metadata={
        "sibling_events_read": report.scanned_events, "detected": report.detected, "recovered": report.recovered,
        "arrived_late": report.arrived, "unrecoverable": report.unrecoverable, "retried": report.retried,
        "newstore_requests": report.api_requests,
        "recovery_p95_s": float(np.percentile(lags, 95)) if lags else 0.0,
        "by_status": dg.MetadataValue.json(counts), "waiting": counts.get(WAITING, 0),
    })


def status_counts(store: StoreOfRecord) -> dict[str, int]:
    tbl = table(store.engine(), "pos_transaction_recoveries")
    with store.engine().connect() as conn:
        rows = conn.execute(select(tbl.c.status, func.count()).group_by(tbl.c.status)).all()
    return {str(status): int(n) for status, n in rows}


pos_recovery_job = dg.define_asset_job(
    "pos_recovery_job", selection=dg.AssetSelection.assets(pos_transaction_recoveries), tags=RECOVERY_TAGS,
    description="Detect store transactions the event stream lost and recover them from NewStore's API.")


def work_waiting(store: StoreOfRecord, now: datetime | None = None) -> str | None:
    """Why a recovery run is due, else None: sibling events it has not read, read ones old enough to settle
    (`recoveries.detect`), or a waiting transaction due to be fetched."""
    engine = store.engine()
    now = now or datetime.now(UTC)
    inbox, rec = table(engine, "inbox_events"), table(engine, "pos_transaction_recoveries")
    cursor, seen = get_cursor(engine, CURSOR), get_cursor(engine, SEEN)
    siblings = (inbox.c.source == "newstore", inbox.c.event_name.in_(EVIDENCE_EVENTS))
    with engine.connect() as conn:
        if conn.execute(select(inbox.c.id).where(inbox.c.id > max(cursor, seen), *siblings).limit(1)).first():
            return "sibling events landed since the last look"
        settled = utc_text(now - timedelta(seconds=SETTLE_S))
        if conn.execute(select(inbox.c.id).where(inbox.c.id > cursor, inbox.c.received_at <= settled, *siblings)
                        .limit(1)).first():
            return "sibling events read once are old enough to settle"
        due = conn.execute(select(rec.c.transaction_id).where(
            rec.c.status == WAITING, rec.c.due_at <= utc_text(now)).limit(1)).first()
    return "a lost transaction is due to be fetched" if due is not None else None


@dg.sensor(name="pos_recovery_sensor", job=pos_recovery_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Once a minute: requests a recovery run when sibling events landed or a lost store "
                       "transaction is due to be fetched from NewStore (never while one is in progress).")
def pos_recovery_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord) -> dg.SensorResult | dg.SkipReason:
    busy = context.instance.get_run_records(filters=dg.RunsFilter(
        job_name=pos_recovery_job.name, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                                  dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]), limit=1)
    if busy:
        return dg.SkipReason("a recovery run is in progress")
    reason = work_waiting(store)
    if reason is None:
        return dg.SkipReason("nothing to recover")
    context.log.info(reason)
    return dg.SensorResult(run_requests=[dg.RunRequest()])


def recovery_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[pos_transaction_recoveries], jobs=[pos_recovery_job], sensors=[pos_recovery_sensor])
