"""Business days: daily (and monthly) partitions in the business timezone, and "yesterday".

The partitions' start date and timezone are read once, at import: Dagster needs them when it loads the
definitions (PIPELINES_PARTITION_START, PIPELINES_BUSINESS_TIMEZONE).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.domain.timeutil import day_window_utc
from pipelines.settings import settings

_s = settings()
BUSINESS_TIMEZONE = _s.business_timezone

# end_offset=1 makes today's (still open) business day materialisable for intraday views.
daily_partitions = dg.DailyPartitionsDefinition(start_date=_s.partition_start, timezone=BUSINESS_TIMEZONE,
                                                end_offset=1)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=daily_partitions.start.strftime("%Y-%m-01"),
                                                    timezone=BUSINESS_TIMEZONE, end_offset=1)


def window(business_date: str):
    """The UTC [start, end) of a business date."""
    return day_window_utc(business_date, BUSINESS_TIMEZONE)


def yesterday(now: datetime, tz: str = BUSINESS_TIMEZONE) -> str:
    """The business day before `now`'s (a schedule's `scheduled_execution_time`, or the clock)."""
    return (now.astimezone(ZoneInfo(tz)).date() - timedelta(days=1)).isoformat()
