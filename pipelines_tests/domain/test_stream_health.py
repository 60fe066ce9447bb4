"""The event stream's health judged from figures: expectation bands, trading periods, the halt and its boundary,
the unprocessed-event bounds. Known answers worked out by hand (see each test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.domain import stream_health as sh

S = sh.StreamHealthSettings()
STOCKHOLM, LONDON = "Europe/Stockholm", "Europe/London"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_busy_hour_band_is_the_ratio_band() -> None:
    """e = 100: low below min(0.5 x 100, 100 - 3 x 10) = 50, high above max(300, 130) = 300. Kills a band
    from the wrong rule (Poisson band for busy hours) and off-by-one comparisons at both edges."""
    exp = sh.expect([100, 90, 110, 100, 100, 80, 120], trading=True, settings=S)
    assert (exp.expected, exp.low, exp.high) == (100.0, 50.0, 300.0)
    assert [sh.verdict(n, exp) for n in (49, 50, 300, 301)] == [sh.LOW, sh.OK, sh.OK, sh.HIGH]


def test_quiet_hour_band_is_the_poisson_band() -> None:
    """e = 4 (median of 2..6): low bound max(0, min(2, 4 - 6)) = 0, so an empty quiet hour is not low; high
    above max(12, 4 + 6) = 12. Kills a ratio-only band that would flag 1 delivery instead of 4."""
    exp = sh.expect([4, 4, 5, 3, 4, 6, 2], trading=True, settings=S)
    assert (exp.expected, exp.low, exp.high) == (4.0, 0.0, 12.0)
    assert [sh.verdict(n, exp) for n in (0, 12, 13)] == [sh.OK, sh.OK, sh.HIGH]


def test_median_of_an_even_history_and_closed_hours() -> None:
    """Median of [10, 20, 1000] is 20 (one odd day does not move it); [10, 20] gives 15. A closed hour is never
    low; a closed hour with no deliveries before still flags more than 3 (e + 3 x sqrt(1))."""
    assert sh.expect([10, 1000, 20], True, S).expected == 20.0
    assert sh.expect([10, 20], True, S).expected == 15.0
    closed = sh.expect([100, 100], trading=False, settings=S)
    assert closed.low == 0.0 and sh.verdict(0, closed) == sh.OK
    night = sh.expect([0, 0, 0], trading=False, settings=S)
    assert (night.high, sh.verdict(3, night), sh.verdict(4, night)) == (3.0, sh.OK, sh.HIGH)


def test_no_history_is_no_verdict() -> None:
    assert sh.verdict(0, sh.expect([], True, S)) == sh.NO_HISTORY


def test_same_hour_on_previous_days_across_dst() -> None:
    """Stockholm left summer time on 2026-10-25 at 03:00: 10:00 local is 09:00Z on the 26th and 25th but 08:00Z
    on the 24th. The hour 02:00 local does not exist on 2026-03-29 and is left out. Kills a 24 h step in UTC."""
    hours = sh.same_hour_before(at("2026-10-26T09:00:00"), STOCKHOLM, 2)
    assert hours == [(at("2026-10-25T09:00:00"), at("2026-10-25T10:00:00")),
                     (at("2026-10-24T08:00:00"), at("2026-10-24T09:00:00"))]
    spring = sh.same_hour_before(at("2026-03-30T00:00:00"), STOCKHOLM, 2)  # 02:00 CEST on the 30th
    assert [a for a, _ in spring] == [at("2026-03-28T01:00:00")]


def test_last_complete_hour() -> None:
    assert sh.last_complete_hour(at("2026-12-01T10:00:00"), STOCKHOLM) == (at("2026-12-01T09:00:00"),
                                                                           at("2026-12-01T10:00:00"))
    assert sh.last_complete_hour(at("2026-12-01T10:59:59"), STOCKHOLM)[0] == at("2026-12-01T09:00:00")


def test_trading_period_over_two_timezones() -> None:
    """Stores 9-20 local in Stockholm (08:00Z-19:00Z in December) and London (09:00Z-20:00Z): one period
    08:00Z-20:00Z; closed at 20:00Z exactly and before 08:00Z."""
    zones = [STOCKHOLM, LONDON]
    assert sh.trading_since(at("2026-12-01T08:30:00"), zones, (9, 20)) == at("2026-12-01T08:00:00")
    assert sh.trading_since(at("2026-12-01T19:30:00"), zones, (9, 20)) == at("2026-12-01T08:00:00")
    assert sh.trading_since(at("2026-12-01T20:00:00"), zones, (9, 20)) is None
    assert sh.trading_since(at("2026-12-01T07:59:59"), zones, (9, 20)) is None
    assert sh.trading_since(at("2026-12-01T03:00:00"), [STOCKHOLM], (0, 24)) == at("2026-11-29T23:00:00")
    assert sh.hour_trades(at("2026-12-01T07:00:00"), at("2026-12-01T08:00:00"), zones, (9, 20)) is False
    assert sh.hour_trades(at("2026-12-01T19:00:00"), at("2026-12-01T20:00:00"), zones, (9, 20)) is True


OPEN = at("2026-12-01T08:00:00")


def test_halt_exactly_at_the_bound() -> None:
    """No delivery for exactly 10 minutes while stores trade is a halt; a microsecond less is not. Kills `>`
    for `>=` and a halt measured from the wrong end."""
    last = at("2026-12-01T10:00:00")
    assert sh.halt(last + timedelta(minutes=10), last, OPEN, None, S).halted
    early = sh.halt(last + timedelta(minutes=10) - timedelta(microseconds=1), last, OPEN, None, S)
    assert not early.halted and early.trading and early.silent_for < timedelta(minutes=10)


def test_the_night_does_not_count_and_closed_stores_never_halt() -> None:
    """The last delivery was at 19:00Z yesterday: the silence counts from opening (08:00Z), so 08:09Z is fine
    and 08:10Z is a halt. With no store trading, a day of silence is no halt."""
    night = at("2026-11-30T19:00:00")
    assert not sh.halt(OPEN + timedelta(minutes=9), night, OPEN, None, S).halted
    assert sh.halt(OPEN + timedelta(minutes=10), night, OPEN, None, S).halted
    assert sh.halt(OPEN + timedelta(minutes=10), None, OPEN, None, S).halted  # never delivered
    closed = sh.halt(at("2026-12-01T23:00:00"), night, None, None, S)
    assert not closed.halted and not closed.trading


def test_a_thin_stream_needs_a_longer_silence() -> None:
    """At 6 deliveries an hour a 10-minute gap expects 1 delivery (normal); 30 minutes expect 3: a halt."""
    last = at("2026-12-01T10:00:00")
    short = sh.halt(last + timedelta(minutes=10), last, OPEN, 6.0, S)
    assert not short.halted and short.expected_in_silence == pytest.approx(1.0)
    assert sh.halt(last + timedelta(minutes=30), last, OPEN, 6.0, S).halted
    assert sh.halt(last + timedelta(minutes=10), last, OPEN, 600.0, S).halted


def test_unprocessed_bounds_inclusive() -> None:
    now = at("2026-12-01T10:00:00")
    cases = {None: None, timedelta(minutes=5) - timedelta(microseconds=1): None, timedelta(minutes=5): sh.WARN,
             timedelta(minutes=30) - timedelta(microseconds=1): sh.WARN, timedelta(minutes=30): sh.ERROR}
    for age, severity in cases.items():
        assert sh.unprocessed_severity(now, None if age is None else now - age, S) == severity, age


def test_recovery_verdict() -> None:
    assert sh.recovery_ok(0, 0) and not sh.recovery_ok(1, 0) and not sh.recovery_ok(0, 2)
