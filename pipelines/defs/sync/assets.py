"""`stock_sync_lag`: how fresh the web shop's store stock is, hour by hour over the business day."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from sqlalchemy import func, select

from pipelines.defs.metadata import table_metadata
from pipelines.defs.partitions import BUSINESS_TIMEZONE
from pipelines.defs.resources import StoreOfRecord
from pipelines.domain.sync.stats import percentile
from pipelines.domain.timeutil import business_date, day_window_utc, parse_time, utc_text
from pipelines.store.db import table
from pipelines.sync.queue import DONE, PENDING

HOUR_COLUMNS = {"hour": "business hour (HH:00) in which Centra confirmed the movements",
                "movements": "movements applied in that hour", "p50_s": "median lag, POS event -> Centra",
                "p95_s": "95th percentile lag (s)", "max_s": "largest lag (s)"}


def lag_by_hour(rows: Iterable[Sequence[str]], tz: str) -> list[dict[str, object]]:
    """(event_time, applied_at) pairs -> per business-hour count and lag percentiles (seconds)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    hours: dict[str, list[float]] = defaultdict(list)
    for event_time, applied_at in rows:
        applied = parse_time(applied_at)
        hours[applied.astimezone(zone).strftime("%H:00")].append((applied - parse_time(event_time)).total_seconds())
    return [{"hour": h, "movements": len(v), "p50_s": round(percentile(v, 50) or 0, 2),
             "p95_s": round(percentile(v, 95) or 0, 2), "max_s": round(max(v), 2)} for h, v in sorted(hours.items())]


@dg.asset(
    group_name="sync", owners=["team:retail-operations"], kinds={"sql", "centra"},
    description="Freshness of store stock in the web shop over the current business day: movements applied "
                "to Centra per hour with the lag from POS event time to Centra confirmation (p50/p95/max), "
                "plus what is still waiting. Materialised hourly; the metadata plots lag over the days.",
)
def stock_sync_lag(store: StoreOfRecord) -> dg.MaterializeResult:
    engine = store.engine()
    now = datetime.now(UTC)
    start, end = day_window_utc(business_date(now, BUSINESS_TIMEZONE), BUSINESS_TIMEZONE)
    moves = table(engine, "stock_sync_movements")
    with engine.connect() as conn:
        rows = conn.execute(select(moves.c.event_time, moves.c.applied_at).where(
            moves.c.status == DONE, moves.c.applied_at >= utc_text(start), moves.c.applied_at < utc_text(end))).all()
        waiting, oldest = conn.execute(select(func.count(), func.min(moves.c.event_time))
                                       .where(moves.c.status == PENDING)).one()
        failed = conn.execute(select(func.count()).where(moves.c.status == "failed")).scalar()
    lags = [(parse_time(a) - parse_time(e)).total_seconds() for e, a in rows]
    by_hour = pd.DataFrame(lag_by_hour(rows, BUSINESS_TIMEZONE), columns=list(HOUR_COLUMNS))
    return dg.MaterializeResult(metadata=table_metadata(
        by_hour, HOUR_COLUMNS,
        movements_applied_today=len(lags),
        lag_p50_s=round(percentile(lags, 50) or 0.0, 2),
        lag_p95_s=round(percentile(lags, 95) or 0.0, 2),
        pending_movements=int(waiting or 0),
        oldest_pending_age_s=round((now - parse_time(oldest)).total_seconds(), 1) if oldest else 0.0,
        failed_movements=int(failed or 0),
        by_hour=dg.MetadataValue.md(by_hour.to_markdown(index=False) if len(by_hour) else
                                    "no movements applied yet today"),
    ))
