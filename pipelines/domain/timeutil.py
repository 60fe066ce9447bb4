"""Time helpers: one canonical UTC text form, and business dates in the business timezone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def utc_text(dt: datetime) -> str:
    """Canonical sortable UTC text, e.g. 2026-11-24T09:15:02.123456Z."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip().replace(" ", "T", 1) if "T" not in value else value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def normalise_time(value: str | datetime) -> str:
    return utc_text(parse_time(value))


def business_date(value: str | datetime, tz: str) -> str:
    return parse_time(value).astimezone(ZoneInfo(tz)).date().isoformat()


def day_window_utc(day: str | date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of a business day in UTC."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    zone = ZoneInfo(tz)
    start = datetime.combine(d, time.min, tzinfo=zone)
    end = datetime.combine(d + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def human_duration(seconds: float | None) -> str:
    """A duration as people read it: "0.8 s", "42 s", "3 min 12 s", "2 h 05 min", "2 d 21 h"; "n/a" for None."""
    if seconds is None:
        return "n/a"
    sign, s = ("-" if seconds < 0 else ""), abs(float(seconds))
    if s < 9.95:  # one decimal below ten seconds ("9.96" would round up to "10.0 s")
        return f"{sign}{s:.1f} s"
    whole = int(round(s))
    if whole < 60:
        return f"{sign}{whole} s"
    if whole < 3600:
        return f"{sign}{whole // 60} min {whole % 60:02d} s"
    if whole < 86400:
        return f"{sign}{whole // 3600} h {whole % 3600 // 60:02d} min"
    return f"{sign}{whole // 86400} d {whole % 86400 // 3600} h"
