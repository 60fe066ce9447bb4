"""Late events restate closed days: a sensor that re-materialises a reconciled day whose events landed late.

Events can land for a business day after it was reconciled: NewStore publishing hours late, a replayed
stream, a transaction fetched back by recovery (`pipelines/store/recoveries.py`), a late Centra webhook.
`restatement_sensor` reads the inbox rows landed since its cursor (by id), takes each one's business day
from its `event_time` (business timezone of the estate) and, for a closed day (before today) whose
`reconciliation_findings` partition exists, compares the row's `received_at` with the day's last
reconciliation: the earliest of the last materialisations of the day's findings and of the raw event assets
the job rebuilds (an event that landed after the raw datasets were built but before the findings were is
just as missing from them). Rows received later are late. Once no late row of a day has landed for
`window_s` (coalescing: a burst restates once), it requests one run of `restatement_job` for the day:
the raw event datasets, the reconciliation and the finance report, tagged `pipelines/restatement` with the
reason, under the run key `restatement-<day>-<last late inbox id>` (a repeated evaluation is a duplicate run
key, which Dagster skips). The cursor (`{"after_id": n}`) then moves past those rows, so the same events
never restate the day again; it stays before a day's late rows while their window is open, and before rows
younger than `SETTLE_S` (PostgreSQL may commit a lower id later).

The reconciliation of a restated day (`reconciliation_findings`, when the day was reconciled before)
compares the previous findings and store sales totals with the new ones
(`pipelines.domain.reconciliation.restatement`) and appends the changes to `reconciliation_restatements`;
the finance report of the day shows the latest restatement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
from sqlalchemy import Engine

from pipelines.defs.commerce.assets import centra_orders, centra_returns, centra_stock_changes
from pipelines.defs.pos.assets import pos_catalog, pos_pickups, pos_sale_lines, pos_stock_movements
from pipelines.defs.reconciliation.assets import FINDINGS, finance_daily_report, reconciliation_findings
from pipelines.defs.resources import EstateResource, StoreOfRecord
from pipelines.domain.timeutil import business_date, parse_time, utc_text
from pipelines.settings import schedules
from pipelines.store.partitions import read_sql

#: the coalescing window: a day is restated once no late event of it has landed for this long
#: (PIPELINES_RESTATEMENT_WINDOW_S; like a cron string, taken when the definitions load).
WINDOW_S = schedules().restatement_window_s
#: inbox rows younger than this are read again on the next evaluation.
SETTLE_S = 10.0
#: inbox rows read per evaluation.
BATCH = 20_000
TAG = "pipelines/restatement"
REASON_TAG = "pipelines/restatement_reason"
MINIMUM_INTERVAL_S = 90

#: the day's datasets built from events (the inbox or Centra's API by time), rebuilt by a restatement.
RAW_EVENT_ASSETS = [pos_sale_lines, pos_stock_movements, pos_pickups, pos_catalog, centra_orders, centra_returns,
                    centra_stock_changes]
_COMPARED = [dg.AssetKey(FINDINGS),
             pos_sale_lines.key, pos_stock_movements.key, pos_pickups.key, centra_stock_changes.key]

restatement_job = dg.define_asset_job(
    "restatement_job",
    selection=dg.AssetSelection.assets(*RAW_EVENT_ASSETS, reconciliation_findings, finance_daily_report),
    description="Restate one reconciled business day whose events landed late: its event datasets, the "
                "reconciliation (recording what changed in reconciliation_restatements) and the finance report.",
    tags={TAG: "true"},
)


def last_reconciled(instance: dg.DagsterInstance, day: str) -> datetime | None:
    """When the day's reconciliation last saw its inputs: the earliest of the last materialisations of its
    findings and of the event datasets compared (None while the findings partition was never materialised)."""
    stamps = []
    for i, key in enumerate(_COMPARED):
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]),
                                                  limit=1).records
        if not records:
            if i == 0:
                return None
            continue
        stamps.append(records[0].timestamp)
    return datetime.fromtimestamp(min(stamps), UTC)


@dataclass
class _Day:
    late: int = 0
    first_late_id: int | None = None
    last_late_id: int = 0
    last_received: datetime | None = None
    reconciled: datetime | None = None


def plan(engine: Engine, instance: dg.DagsterInstance, tz: str, after_id: int, now: datetime,
         window_s: float = WINDOW_S, batch: int = BATCH) -> tuple[list[dg.RunRequest], int, list[str]]:
    """(run requests, the new cursor id, log lines) for the inbox rows after `after_id` at `now`."""
    rows = read_sql(engine, "SELECT id, event_time, received_at FROM inbox_events WHERE id > :after "
                            "ORDER BY id LIMIT :n", after=after_id, n=batch)
    today = now.astimezone(ZoneInfo(tz)).date().isoformat()
    settle = now - timedelta(seconds=SETTLE_S)
    days: dict[str, _Day] = {}
    hold: int | None = None  # the first id the cursor must not pass
    for r in rows.itertuples(index=False):
        received = parse_time(r.received_at)
        if received > settle:
            hold = r.id if hold is None else min(hold, r.id)
            break
        if not isinstance(r.event_time, str) or not r.event_time:
            continue
        day = business_date(r.event_time, tz)
        if day >= today:
            continue
        if day not in days:
            days[day] = _Day(reconciled=last_reconciled(instance, day))
        d = days[day]
        if d.reconciled is None or received <= d.reconciled:
            continue
        d.late += 1
        d.first_late_id = r.id if d.first_late_id is None else d.first_late_id
        d.last_late_id = max(d.last_late_id, r.id)
        d.last_received = received if d.last_received is None else max(d.last_received, received)
    requests, log = [], []
    for day, d in sorted(days.items()):
        if not d.late:
            continue
        quiet_since = (now - d.last_received).total_seconds()
        if quiet_since < window_s:
            hold = d.first_late_id if hold is None else min(hold, d.first_late_id)
            log.append(f"{day}: {d.late} late event(s), waiting ({quiet_since:.0f}s of {window_s:.0f}s quiet)")
            continue
        reason = (f"{d.late} event(s) of {day} received after its reconciliation of "
                  f"{utc_text(d.reconciled)}, the last at {utc_text(d.last_received)}")
        log.append(f"{day}: restating ({reason})")
        requests.append(dg.RunRequest(run_key=f"restatement-{day}-{d.last_late_id}", partition_key=day,
                                      tags={TAG: "true", REASON_TAG: reason}))
    last_id = int(rows["id"].max()) if len(rows) else after_id
    cursor = hold - 1 if hold is not None else last_id
    return requests, max(after_id, cursor), log


def build_restatement_sensor(clock: Callable[[], datetime] = lambda: datetime.now(UTC), window_s: float = WINDOW_S,
                             name: str = "restatement_sensor") -> dg.SensorDefinition:
    """The sensor, with its clock and coalescing window injectable (tests evaluate it without sleeping)."""

    @dg.sensor(name=name, job=restatement_job, minimum_interval_seconds=MINIMUM_INTERVAL_S,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Restates a reconciled business day whose events landed late, once none has landed "
                           f"for {window_s:.0f}s: one run of restatement_job per day.")
    def _sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord, estate: EstateResource):
        after_id = int(json.loads(context.cursor)["after_id"]) if context.cursor else 0
        requests, cursor, log = plan(store.engine(), context.instance, estate.get().business_timezone, after_id,
                                     clock(), window_s)
        for line in log:
            context.log.info(line)
        return dg.SensorResult(run_requests=requests, cursor=json.dumps({"after_id": cursor}))

    return _sensor


restatement_sensor = build_restatement_sensor()


def restatement_definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[restatement_job], sensors=[restatement_sensor])
