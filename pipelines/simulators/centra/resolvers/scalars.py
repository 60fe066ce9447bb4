"""The DateTimeTz and Date scalars, and PHP `date()` formatting for fields with a `format:` argument."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from ariadne import ScalarType

# The tenant whose request is being executed: (business clock, instance timezone). The app sets it around
# a request (`tenant_time`), so naive and relative DateTimeTz inputs are read on the simulated clock in the
# instance's timezone, and outputs are written in that timezone. Outside a request: real time, UTC.
_TENANT_TIME: ContextVar[tuple[Callable[[], datetime], tzinfo] | None] = ContextVar("centra_tenant_time",
                                                                                    default=None)


@contextmanager
def tenant_time(now: Callable[[], datetime], tz: tzinfo) -> Iterator[None]:
    token = _TENANT_TIME.set((now, tz))
    try:
        yield
    finally:
        _TENANT_TIME.reset(token)


def _context() -> tuple[datetime, tzinfo]:
    ctx = _TENANT_TIME.get()
    if ctx is None:
        return datetime.now(UTC), UTC
    return ctx[0]().astimezone(UTC), ctx[1]


_UNITS = {"sec": "seconds", "second": "seconds", "min": "minutes", "minute": "minutes", "hour": "hours",
          "day": "days", "week": "weeks"}
_RELATIVE = re.compile(r"([+-]?)\s*(\d+)\s*(sec|second|min|minute|hour|day|week)s?", re.IGNORECASE)
_RELATIVE_ALL = re.compile(rf"(?:\s*{_RELATIVE.pattern})*\s*", re.IGNORECASE)


def _relative(text: str, now_local: datetime) -> datetime | None:
    """The PHP relative forms the docs show: now, today, yesterday, tomorrow, midnight, "-1 hour",
    "+2 days 3 hours" (sec/min/hour/day/week units), optionally after one of the day words."""
    low = text.lower().strip()
    base, word_found = now_local, False
    for word, shift in (("yesterday", -1), ("today", 0), ("midnight", 0), ("tomorrow", 1), ("now", None)):
        if low.startswith(word):
            if shift is not None:
                base = (now_local + timedelta(days=shift)).replace(hour=0, minute=0, second=0, microsecond=0)
            low, word_found = low[len(word):].strip(), True
            break
    if not low:
        return base if word_found else None
    if not _RELATIVE_ALL.fullmatch(low):
        return None
    for m in _RELATIVE.finditer(low):
        amount = -int(m.group(2)) if m.group(1) == "-" else int(m.group(2))
        base += timedelta(**{_UNITS[m.group(3).lower()]: amount})
    return base


def parse_datetime(value: Any) -> datetime:
    """DateTimeTz input: ISO-8601 (with 'T' or space; an offset, or none = the instance's timezone),
    day-first "21/10/2023", or a relative form ("now", "yesterday", "-1 hour") on the business clock."""
    now, tz = _context()
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        text = value.strip()
        rel = _relative(text, now.astimezone(tz))
        if rel is not None:
            return rel.astimezone(UTC)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
        try:
            dt = (datetime(int(m.group(3)), int(m.group(2)), int(m.group(1))) if m
                  else datetime.fromisoformat(text))
        except ValueError as exc:
            raise ValueError(f"Invalid DateTimeTz: {value!r}") from exc
    else:
        raise ValueError(f"Invalid DateTimeTz: {value!r}")
    return dt.replace(tzinfo=tz).astimezone(UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _local(dt: datetime) -> datetime:
    return dt.astimezone(_context()[1])


def format_datetime(dt: datetime) -> str:
    """Centra's default output format `Y-m-d\\TH:i:sP` (seconds precision, in the instance's timezone)."""
    return _local(dt).isoformat(timespec="seconds")


def _offset(d: datetime, colon: bool) -> str:
    minutes = int((d.utcoffset() or timedelta()).total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"{sign}{minutes // 60:02d}{':' if colon else ''}{minutes % 60:02d}"


_PHP: dict[str, Callable[[datetime], str]] = {
    "Y": lambda d: f"{d.year:04d}", "y": lambda d: f"{d.year % 100:02d}", "m": lambda d: f"{d.month:02d}",
    "n": lambda d: str(d.month), "d": lambda d: f"{d.day:02d}", "j": lambda d: str(d.day),
    "H": lambda d: f"{d.hour:02d}", "G": lambda d: str(d.hour), "i": lambda d: f"{d.minute:02d}",
    "s": lambda d: f"{d.second:02d}", "u": lambda d: f"{d.microsecond:06d}",
    "v": lambda d: f"{d.microsecond // 1000:03d}", "P": lambda d: _offset(d, True), "O": lambda d: _offset(d, False),
    "T": lambda d: d.tzname() or "UTC", "e": lambda d: str(d.tzinfo or "UTC"),
    "Z": lambda d: str(int((d.utcoffset() or timedelta()).total_seconds())), "U": lambda d: str(int(d.timestamp())),
    "c": lambda d: format_datetime(d), "D": lambda d: d.strftime("%a"), "M": lambda d: d.strftime("%b"),
}


def php_date(dt: datetime, fmt: str) -> str:
    """The subset of PHP `date()` formatting Centra's `format:` argument is used with."""
    out, escape = [], False
    for ch in fmt:
        if escape:
            out.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        else:
            fn = _PHP.get(ch)
            out.append(fn(_local(dt)) if fn else ch)
    return "".join(out)


datetime_scalar = ScalarType("DateTimeTz")


@datetime_scalar.serializer
def _serialize_dt(value: Any) -> str:
    return value if isinstance(value, str) else format_datetime(value)


@datetime_scalar.value_parser
def _parse_dt(value: Any) -> datetime:
    return parse_datetime(value)


date_scalar = ScalarType("Date")


@date_scalar.serializer
def _serialize_date(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else str(value)
