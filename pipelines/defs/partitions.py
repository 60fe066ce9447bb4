"""Daily partitions by business date in the business timezone (PIPELINES_BUSINESS_TIMEZONE)."""

from __future__ import annotations

import dagster as dg

from pipelines.domain.timeutil import day_window_utc
from pipelines.settings import settings

_s = settings()
BUSINESS_TIMEZONE = _s.business_timezone

# end_offset=1 makes today's (still open) business day materialisable for intraday views.
daily_partitions = dg.DailyPartitionsDefinition(start_date=_s.partition_start, timezone=BUSINESS_TIMEZONE,
                                                end_offset=1)


def window(business_date: str):
    """The UTC [start, end) of a business date."""
    return day_window_utc(business_date, BUSINESS_TIMEZONE)
