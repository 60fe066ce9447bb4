"""The NewStore event stream's own health: is it delivering as much as the hour of the day says it should,
has it halted, how old is the oldest event nobody processed yet (pure: no Dagster, no I/O).

NewStore stops delivering when its callbacks get errors, so a halted stream looks like a quiet one. The
expectation of an hour comes from the same local hour on the previous days (median of their delivery counts,
days before the stream's first delivery left out) and from trading hours: stores trade `opening_hours` in
their own local time (the estate has no opening hours; the trading generator trades 9-20 local). An hour's
count is `low` below min(low_ratio x e, e - sigmas x sqrt(e)) while stores trade (a closed hour is never too
low) and `high` above max(high_ratio x e, e + sigmas x sqrt(max(e, 1))): the ratio band for busy hours, the
Poisson band so a few events more or less in a quiet hour are not a finding.

A halt is a silence of `halt_after` while stores trade: the silence counts from the later of the last
delivery and the start of the current trading period (opening time does not flag the night's quiet), and
when the hour's expectation is known the silence must also be long enough to expect `halt_min_expected`
deliveries (a 10-minute gap is normal for a stream of 5 an hour, not for one of 500).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

OK, LOW, HIGH, NO_HISTORY = "ok", "low", "high", "no_history"


@dataclass(frozen=True)
class StreamHealthSettings:
    halt_after: timedelta = timedelta(minutes=10)  # silence while stores trade that is a halt
    halt_min_expected: float = 3.0  # ... and that long a silence must be unlikely at the expected rate
    opening_hours: tuple[int, int] = (9, 20)  # local hours [open, close) of every store
    history_days: int = 7  # previous days whose same hour makes the expectation
    low_ratio: float = 0.5
    high_ratio: float = 3.0
    sigmas: float = 3.0
    unprocessed_warn: timedelta = timedelta(minutes=5)  # oldest unprocessed event older: WARN
    unprocessed_error: timedelta = timedelta(minutes=30)  # ... older: ERROR
    recovery_overdue: timedelta = timedelta(minutes=10)  # a lost transaction waiting this long past due
    unrecoverable_window: timedelta = timedelta(hours=24)  # unrecoverable ones resolved within this count


# --- trading hours ------------------------------------------------------------------------------------

def trading_intervals(timezones: Iterable[str], opening_hours: tuple[int, int], around: datetime,
                      days: int = 1) -> list[tuple[datetime, datetime]]:
    """Each store's trading periods (UTC [open, close)) on the local days within `days` of `around`,
    merged where they overlap or touch, in time order."""
    lo, hi = opening_hours
    spans = []
    for tz in set(timezones):
        zone = ZoneInfo(tz)
        today = around.astimezone(zone).date()
        for k in range(-days, days + 1):
            day = today + timedelta(days=k)
            spans.append((_local(day, lo, zone), _local(day, hi, zone)))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _local(day: date, hour: int, zone: ZoneInfo) -> datetime:
    extra = timedelta(days=1) if hour >= 24 else timedelta(0)
    return datetime.combine(day + extra, time(hour % 24), tzinfo=zone).astimezone(ZoneInfo("UTC"))


def trading_since(now: datetime, timezones: Iterable[str], opening_hours: tuple[int, int]) -> datetime | None:
    """When the trading period containing `now` began (some store trading throughout since), or None when no
    store trades at `now`."""
    for start, end in trading_intervals(timezones, opening_hours, now):
        if start <= now < end:
            return start
    return None


# --- hours and their expectation ----------------------------------------------------------------------

def hour_start(t: datetime, tz: str) -> datetime:
    """The start (UTC) of the local hour containing `t`."""
    local = t.astimezone(ZoneInfo(tz))
    return local.replace(minute=0, second=0, microsecond=0).astimezone(ZoneInfo("UTC"))


def last_complete_hour(now: datetime, tz: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the last local hour that has ended at `now`."""
    end = hour_start(now, tz)
    return hour_start(end - timedelta(minutes=1), tz), end


def same_hour_before(start: datetime, tz: str, days: int) -> list[tuple[datetime, datetime]]:
    """The same local wall-clock hour as the one starting at `start` on each of the `days` previous days
    (UTC [start, end), most recent first); an hour a DST change skips is left out."""
    zone = ZoneInfo(tz)
    local = start.astimezone(zone).replace(tzinfo=None)
    out = []
    for k in range(1, days + 1):
        wall = local - timedelta(days=k)
        a = wall.replace(tzinfo=zone).astimezone(ZoneInfo("UTC"))
        if a.astimezone(zone).replace(tzinfo=None) != wall:  # not a wall-clock time that day
            continue
        out.append((a, a + timedelta(hours=1)))
    return out


@dataclass(frozen=True)
class Expectation:
    expected: float | None  # deliveries in the hour; None without history
    low: float  # fewer than this is low
    high: float | None  # more than this is high
    history: tuple[int, ...]
    trading: bool


def expect(history: Sequence[int], trading: bool, settings: StreamHealthSettings) -> Expectation:
    """The expectation of an hour from the same hour's counts on previous days (see module docstring)."""
    if not history:
        return Expectation(None, 0.0, None, tuple(history), trading)
    e = float(statistics.median(history))
    low = max(0.0, min(settings.low_ratio * e, e - settings.sigmas * math.sqrt(e))) if trading else 0.0
    high = max(settings.high_ratio * e, e + settings.sigmas * math.sqrt(max(e, 1.0)))
    return Expectation(e, low, high, tuple(history), trading)


def verdict(observed: int, expectation: Expectation) -> str:
    if expectation.expected is None:
        return NO_HISTORY
    if observed < expectation.low:
        return LOW
    if expectation.high is not None and observed > expectation.high:
        return HIGH
    return OK


def hour_trades(start: datetime, end: datetime, timezones: Iterable[str], opening_hours: tuple[int, int]) -> bool:
    """Whether some store trades during part of [start, end)."""
    return any(a < end and start < b for a, b in trading_intervals(timezones, opening_hours, start))


# --- halt ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Halt:
    halted: bool
    trading: bool
    silent_for: timedelta | None  # since the later of the last delivery and the trading period's start
    expected_in_silence: float | None  # deliveries the expectation gives the silence


def halt(now: datetime, last_delivery: datetime | None, since_trading: datetime | None,
         expected_per_hour: float | None, settings: StreamHealthSettings) -> Halt:
    """A halt: stores trade and nothing was delivered for `halt_after` (exactly `halt_after` is a halt)."""
    if since_trading is None:
        return Halt(False, False, None, None)
    quiet_from = since_trading if last_delivery is None else max(last_delivery, since_trading)
    silent = max(timedelta(0), now - quiet_from)
    expected = None if expected_per_hour is None else expected_per_hour * silent / timedelta(hours=1)
    halted = silent >= settings.halt_after and (expected is None or expected >= settings.halt_min_expected)
    return Halt(halted, True, silent, expected)


# --- the oldest unprocessed event and the lost transactions ----------------------------------------------

WARN, ERROR = "WARN", "ERROR"


def unprocessed_severity(now: datetime, oldest: datetime | None, settings: StreamHealthSettings) -> str | None:
    """None when nothing waits or the oldest is younger than `unprocessed_warn`; WARN; ERROR from
    `unprocessed_error` on (bounds inclusive)."""
    if oldest is None:
        return None
    age = now - oldest
    if age >= settings.unprocessed_error:
        return ERROR
    return WARN if age >= settings.unprocessed_warn else None


def recovery_ok(overdue_waiting: int, recent_unrecoverable: int) -> bool:
    """Lost transactions are being recovered: none waiting long past due, none found unrecoverable lately."""
    return overdue_waiting == 0 and recent_unrecoverable == 0
