"""`stock_sync_lag`: how fresh the web shop's store stock is, hour by hour over the business day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from sqlalchemy import func, select

from pipelines.dagster_lib.common import RETAIL_OPERATIONS
from pipelines.dagster_lib.metadata import table_metadata
from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE
from pipelines.defs.resources import StoreOfRecord
from pipelines.domain.sync.stats import percentile
from pipelines.domain.timeutil import business_date, day_window_utc, human_duration, parse_time, utc_text
from pipelines.store.db import table
from pipelines.sync.config import SyncConfig
from pipelines.sync.queue import DONE, PENDING

# Hourly, a few minutes past the hour (business time): the default automation condition sensor
# (pipelines/defs/automation.py) requests the refresh; no schedule or job of its own.
LAG_REFRESH_CRON = "5 * * * *"

HOUR_COLUMNS = {"hour": "business hour (HH:00) in which Centra confirmed the movements",
                "movements": "steady-state movements applied in that hour",
                "p50": "median lag, POS event -> Centra", "p95": "95th percentile lag", "max": "largest lag",
                "backlog_movements": "backlog caught up in that hour (events from before their sync run started)"}


def lag_by_hour(rows: Iterable[Sequence[str]], tz: str, backlog: Sequence[bool] | None = None) -> list[dict[str, object]]:
    """(event_time, applied_at) pairs -> per business hour: steady-state count and lag percentiles in human
    units, and how much backlog was caught up (`backlog[i]` marks row i as backlog; it has no lag here)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    hours: dict[str, list[float]] = defaultdict(list)
    caught_up: dict[str, int] = defaultdict(int)
    for n, (event_time, applied_at) in enumerate(rows):
        applied = parse_time(applied_at)
        hour = applied.astimezone(zone).strftime("%H:00")
        if backlog is not None and backlog[n]:
            caught_up[hour] += 1
            hours.setdefault(hour, [])
        else:
            hours[hour].append((applied - parse_time(event_time)).total_seconds())
    return [{"hour": h, "movements": len(v), "p50": human_duration(percentile(v, 50)),
             "p95": human_duration(percentile(v, 95)), "max": human_duration(max(v) if v else None),
             "backlog_movements": caught_up[h]} for h, v in sorted(hours.items())]


@dg.asset(
    group_name="sync", owners=RETAIL_OPERATIONS, kinds={"sql", "centra"},
    automation_condition=dg.AutomationCondition.on_cron(LAG_REFRESH_CRON, cron_timezone=BUSINESS_TIMEZONE),
    description="Freshness of store stock in the web shop over the current business day: movements applied "
                "to Centra per hour with the lag from POS event time to Centra confirmation (p50/p95/max, in "
                "s/min/h), plus what is still waiting. A backlog caught up at start (events from more than "
                "5 minutes before the sync run that applied them: downtime, a first start) is counted apart "
                "and kept out of the lag. Materialised hourly; the metadata plots lag over the days.",
)
def stock_sync_lag(store: StoreOfRecord) -> dg.MaterializeResult:
    engine = store.engine()
    now = datetime.now(UTC)
    start, end = day_window_utc(business_date(now, BUSINESS_TIMEZONE), BUSINESS_TIMEZONE)
    moves, batches, runs = (table(engine, n) for n in ("stock_sync_movements", "stock_sync_batches", "stock_sync_runs"))
    picked_up = func.coalesce(runs.c.started_at, batches.c.created_at)  # run start (or batch, while it runs)
    with engine.connect() as conn:
        rows = conn.execute(
            select(moves.c.event_time, moves.c.applied_at, picked_up)
            .select_from(moves.outerjoin(batches, batches.c.batch_id == moves.c.batch_id)
                         .outerjoin(runs, runs.c.run_id == batches.c.run_id))
            .where(moves.c.status == DONE, moves.c.applied_at >= utc_text(start), moves.c.applied_at < utc_text(end))
        ).all()
        waiting, oldest = conn.execute(select(func.count(), func.min(moves.c.event_time))
                                       .where(moves.c.status == PENDING)).one()
        failed = conn.execute(select(func.count()).where(moves.c.status == "failed")).scalar()
    limit = SyncConfig().backlog_after_s
    backlog = [bool(p) and (parse_time(p) - parse_time(e)).total_seconds() > limit for e, _, p in rows]
    lags = [(parse_time(a) - parse_time(e)).total_seconds() for (e, a, _), b in zip(rows, backlog, strict=True)
            if not b]
    by_hour = pd.DataFrame(lag_by_hour([(e, a) for e, a, _ in rows], BUSINESS_TIMEZONE, backlog),
                           columns=list(HOUR_COLUMNS))
    p50, p95 = percentile(lags, 50), percentile(lags, 95)
    age = (now - parse_time(oldest)).total_seconds() if oldest else None
    return dg.MaterializeResult(metadata=table_metadata(
        by_hour, HOUR_COLUMNS,
        movements_applied_today=len(rows),
        backlog_caught_up_today=sum(backlog),
        lag_p50=human_duration(p50), lag_p95=human_duration(p95),
        lag_p50_s=dg.MetadataValue.float(round(p50 or 0.0, 2)),
        lag_p95_s=dg.MetadataValue.float(round(p95 or 0.0, 2)),
        pending_movements=int(waiting or 0),
        oldest_pending_age=human_duration(age) if age is not None else "none pending",
        oldest_pending_age_s=dg.MetadataValue.float(round(age or 0.0, 1)),
        failed_movements=int(failed or 0),
        by_hour=dg.MetadataValue.md(by_hour.to_markdown(index=False) if len(by_hour) else
                                    "no movements applied yet today"),
    ))
