"""Stock sync jobs: the always-on sync (kept alive by the sensor), replay, full resync and retention.

The always-on sync's runs carry `pipelines/concurrency: stock-sync-live`, limited to two in
dagster.yaml: the running one and its successor, which starts while the other still sends and takes
the sync lock over without a gap. Replay and resync carry `stock-sync` (one at a time): they queue
their movements for the running sync, and send them themselves only when no sync holds the lock. The
sync lock (pipelines/sync/lock.py) keeps one sender whatever the instance config says.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.dagster_lib.dagster_retention import FINISHED, prune_runs
from pipelines.defs.commerce_platform import stock_target
from pipelines.defs.kiosk.sync_hook import kiosk_publisher
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    NewStoreResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.sync import RunReport, StockSync, SyncBusy
from pipelines.sync.replay import requeue
from pipelines.sync.resync import queue_corrections
from pipelines.sync.retention import prune_store

CONCURRENCY_TAG = "pipelines/concurrency"
SYNC_TAGS = {CONCURRENCY_TAG: "stock-sync"}
LIVE_SYNC_TAGS = {CONCURRENCY_TAG: "stock-sync-live"}
SENSOR_NAME = "stock_sync_sensor"


def _metadata(report: RunReport) -> dict[str, Any]:
    return {k: (v if v is not None else "n/a") for k, v in report.as_dict().items()} | report.readable() | {
        "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors[:20]) or "none")}


def _tag(context: dg.OpExecutionContext, report: RunReport) -> None:
    """The run's figures as run tags, so the Runs list shows them (while it runs, too)."""
    d, readable = report.as_dict(), report.readable()
    share = d["quota_share"]
    context.instance.add_run_tags(context.run_id, {
        "stock_sync/applied": str(d["movements_applied"]), "stock_sync/mutations": str(d["mutations"]),
        "stock_sync/lag_p95": readable["lag_p95"], "stock_sync/backlog": readable["backlog_caught_up"],
        "stock_sync/quota_share": "n/a" if share is None else f"{share:.0%}"})


def _publish(context: dg.OpExecutionContext, report: RunReport) -> dg.Output:
    _tag(context, report)
    return dg.Output(None, metadata=_metadata(report))


def _run_sync(context: dg.OpExecutionContext, store: StoreOfRecord, estate: EstateResource,
              centra: CentraResource, commercetools: CommercetoolsResource, sync_settings: SyncSettings,
              window_s: float, kind: str = "sync", *, hand_over: bool = False) -> RunReport | None:
    with stock_target(estate.get(), centra, commercetools) as target, \
            kiosk_publisher(store.engine(), estate.get(), target) as kiosk:
        sync = StockSync(store.engine(), estate.get(), target, sync_settings.config(), run_id=context.run_id,
                         after_commit=kiosk.after_sync if kiosk is not None else None)
        if kiosk is not None:  # the kiosk's stock reads spend the sync's own rate budget
            kiosk.on_request = lambda: sync.governor.spend(requests=1)
        try:
            report = sync.run(window_s=window_s, kind=kind, hand_over=hand_over,
                              progress=(lambda r: _tag(context, r)) if hand_over else None)
        except SyncBusy as exc:
            context.log.info(f"stock sync skipped: {exc}")
            return None
    context.log.info(f"stock sync: {report.as_dict()}")
    return report


def _send_queued(context: dg.OpExecutionContext, store: StoreOfRecord, estate: EstateResource,
                 centra: CentraResource, commercetools: CommercetoolsResource, sync_settings: SyncSettings,
                 kind: str, meta: dict[str, Any]) -> dg.Output:
    """Send what a replay or resync just queued in one pass, unless the always-on sync holds the lock:
    then it sends them with its next pass, and the metadata says so."""
    report = _run_sync(context, store, estate, centra, commercetools, sync_settings, 0.0, kind=kind)
    sent = _metadata(report) if report else {"sent_by": "the running stock sync (it holds the sync lock)"}
    return dg.Output(None, metadata=meta | sent)


class SyncRunConfig(dg.Config):
    window_s: float | None = Field(default=None, description=(
        "How long the run lives before it hands over to its successor (0: one pass; empty: the run_window_s "
        "of sync_settings)."))


@dg.op(out=dg.Out(dg.Nothing), tags=LIVE_SYNC_TAGS,
       description="The always-on stock sync: take over from the running sync, then decode new POS stock events "
                   "as they land, net them per warehouse and SKU, and send them to the commerce platform (Centra "
                   "changeStock/setStock batches, commercetools inventory entry updates) within the rate budget (oversell risks at once, the rest batched), exactly "
                   "once in effect; hand over to the next run when it is ready.")
def sync_store_stock(context: dg.OpExecutionContext, config: SyncRunConfig, store: StoreOfRecord,
                     estate: EstateResource, centra: CentraResource, commercetools: CommercetoolsResource,
                     sync_settings: SyncSettings) -> dg.Output:
    window_s = sync_settings.run_window_s if config.window_s is None else config.window_s
    report = _run_sync(context, store, estate, centra, commercetools, sync_settings, window_s,
                       hand_over=window_s > 0)
    return _publish(context, report) if report else dg.Output(None, metadata={"skipped": "another sync holds the lock"})


@dg.job(executor_def=dg.in_process_executor, tags=LIVE_SYNC_TAGS,
        description="Store stock to online, always on: one run at a time for a rolling window, its successor "
                    "launched ahead by stock_sync_sensor (which also restarts a run that died).")
def stock_sync_job() -> None:
    sync_store_stock()


class ReplayConfig(dg.Config):
    movement_ids: list[int] = Field(default=[], description="Movement ids (empty: every match).")
    statuses: list[str] = Field(default=["failed"],
                                description="Which movements: failed, unmapped (after an estate fix), skipped.")
    warehouse_id: int | None = None
    sku: str | None = None
    since: str | None = Field(default=None, description="Only movements with POS event time >= this ISO UTC time.")


@dg.op(out=dg.Out(dg.Nothing), tags=SYNC_TAGS, description="Re-queue selected failed movements and send them.")
def replay_stock_movements(context: dg.OpExecutionContext, config: ReplayConfig, store: StoreOfRecord,
                           estate: EstateResource, centra: CentraResource, commercetools: CommercetoolsResource,
                           sync_settings: SyncSettings) -> dg.Output:
    replay = requeue(store.engine(), estate.get(), movement_ids=config.movement_ids, statuses=config.statuses,
                     warehouse_id=config.warehouse_id, sku=config.sku, since=config.since,
                     config=sync_settings.config())
    context.log.info(f"replay: {replay}")
    return _send_queued(context, store, estate, centra, commercetools, sync_settings, "replay", {
        "selected": replay.selected, "requeued": replay.requeued, "still_unmapped": replay.still_unmapped})


@dg.job(executor_def=dg.in_process_executor, tags=SYNC_TAGS,
        description="Replay failed stock movements (launch from the Launchpad with the movements to re-send).")
def stock_sync_replay_job() -> None:
    replay_stock_movements()


class ResyncConfig(dg.Config):
    quiet_s: float = Field(default=300.0, description="Keys with a movement this recent are left to the sync.")


@dg.op(out=dg.Out(dg.Nothing), tags=SYNC_TAGS,
       description="Compare POS on-hand with the commerce platform's on-hand stock per store warehouse and queue "
                   "corrections.")
def resync_store_stock(context: dg.OpExecutionContext, config: ResyncConfig, store: StoreOfRecord,
                       estate: EstateResource, centra: CentraResource, commercetools: CommercetoolsResource,
                       newstore: NewStoreResource, sync_settings: SyncSettings) -> dg.Output:
    with stock_target(estate.get(), centra, commercetools) as target, newstore.client() as nclient:
        resync = queue_corrections(store.engine(), estate.get(), target, nclient, sync_settings.config(),
                                   quiet_s=config.quiet_s)
    context.log.info(f"resync: {resync}")
    return _send_queued(context, store, estate, centra, commercetools, sync_settings, "resync", {
        "keys_compared": resync.keys_compared, "differing": resync.differing,
        "corrections_queued": resync.corrections_queued, "skipped_active": resync.skipped_active,
        "units_off": resync.units_off, "kiosk_units": resync.kiosk_units, "centra_requests": resync.centra_requests,
        "samples": dg.MetadataValue.json(resync.samples)})


@dg.job(executor_def=dg.in_process_executor, tags=SYNC_TAGS,
        description="Full stock resync: POS vs the commerce platform's on-hand per store warehouse, corrections "
                    "within budget.")
def stock_resync_job() -> None:
    resync_store_stock()


class RetentionConfig(dg.Config):
    """One run's retention; an empty field takes the retention of sync_settings (PIPELINES_SYNC_*_RETENTION_*)."""

    sync_run_hours: float | None = Field(default=None, description=(
        "Successful sync runs (and their event logs) older than this go."))
    failed_run_days: float | None = Field(default=None, description="Failed or cancelled runs older than this go.")
    store_days: float | None = Field(default=None, description=(
        "Settled movements, batches and ledger rows older than this go."))


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


@dg.op(out=dg.Out(dg.Nothing), description="Prune old sync runs and settled sync rows (sensor ticks: dagster.yaml).")
def prune_stock_sync_history(context: dg.OpExecutionContext, config: RetentionConfig, store: StoreOfRecord,
                             sync_settings: SyncSettings) -> dg.Output:
    now = datetime.now(UTC)
    jobs = ["stock_sync_job"]
    instance = context.instance
    failed_days = _or(config.failed_run_days, sync_settings.failed_run_retention_days)
    ok = prune_runs(instance, jobs, now - timedelta(hours=_or(config.sync_run_hours, sync_settings.run_retention_hours)))
    failed = prune_runs(instance, jobs, now - timedelta(days=failed_days), statuses=FINISHED)
    own = prune_runs(instance, ["stock_sync_retention_job"], now - timedelta(days=failed_days), statuses=FINISHED)
    rows = prune_store(store.engine(), _or(config.store_days, sync_settings.store_retention_days))
    meta = {"sync_runs_deleted": ok + failed, "retention_runs_deleted": own} | {f"rows_deleted_{k}": v
                                                                                  for k, v in rows.items()}
    context.log.info(f"retention: {meta}")
    return dg.Output(None, metadata=meta)


@dg.job(executor_def=dg.in_process_executor,
        description="Keep Dagster's storage and the sync's tables bounded: old sync runs (with event logs) and "
                    "settled movements, batches and ledger rows.")
def stock_sync_retention_job() -> None:
    prune_stock_sync_history()
