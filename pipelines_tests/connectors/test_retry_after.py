"""`Retry-After` against the retry policy's wait budget (`retrying(max_wait_s=...)`), without sleeping; its
forms (delta-seconds, Unix timestamp, HTTP-date) and the clamp to [0, `MAX_RETRY_AFTER_S`].

The injected `sleep` records the waits and returns at once, so the policy must count the time it
asked to sleep, not only the clock, against its budget.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from pipelines.connectors.errors import RateLimited, TransientError
from pipelines.connectors.retry import MAX_RETRY_AFTER_S, parse_retry_after, raise_for_status, retrying
from pipelines.simulators.centra.ratelimit import RETRY_AFTER_STYLES, retry_after_value

REQUEST = httpx.Request("POST", "https://centra.invalid/graphql")


def _answers(*responses: httpx.Response) -> tuple[Callable[[], str], list[int]]:
    """A call that answers `responses` in turn (raising like the connectors do); and its call log."""
    calls: list[int] = []
    queue: Iterator[httpx.Response] = iter(responses)

    def call() -> str:
        response = next(queue)
        calls.append(response.status_code)
        raise_for_status(response)
        return "ok"

    return call, calls


def _429(retry_after: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": retry_after}, request=REQUEST)


OK = httpx.Response(200, request=REQUEST)


def test_retry_after_45_within_a_60_s_budget_is_waited_then_the_call_succeeds() -> None:
    # Kills: the Retry-After ignored for backoff (a sleep < 1 s), retry_after - jitter, a wait capped at
    # the jitter only, 429 not retryable.
    sleeps: list[float] = []
    call, calls = _answers(_429("45"), OK)
    assert retrying(max_wait_s=60, sleep=sleeps.append)(call) == "ok"
    assert calls == [429, 200]
    assert len(sleeps) == 1 and 45.0 <= sleeps[0] <= 46.0  # Retry-After + at most 1 s of jitter


def test_a_second_retry_after_45_does_not_fit_the_60_s_budget_and_is_re_raised() -> None:
    # 45 + 45 > 60: the second 429 must not be waited. Kills: the budget counting only the clock (an
    # injected or interrupted sleep makes every wait look free), stop `>` flipped, the budget ignored.
    sleeps: list[float] = []
    call, calls = _answers(_429("45"), _429("45"), OK)
    with pytest.raises(RateLimited) as raised:
        retrying(max_wait_s=60, sleep=sleeps.append)(call)
    assert raised.value.retry_after == 45.0
    assert calls == [429, 429] and len(sleeps) == 1  # no third attempt, no second sleep


@pytest.mark.parametrize("seed", range(20))
def test_retry_after_equal_to_the_remaining_budget_is_waited_exactly(seed: int) -> None:
    # The boundary: a wait ending exactly at the budget is within it, and the jitter must not push it
    # past the budget (before the fix 59.5 + up to 1 s of jitter, capped at 60, met `elapsed + 60 >= 60`
    # and gave up about half the time). Kills: jitter added unclipped, an inclusive (`>=`) stop. The
    # time the failed calls took counts too, so a first 429 of exactly 60 s does not fit a 60 s budget.
    sleeps: list[float] = []
    remaining: list[float] = []

    def call() -> str:
        if not sleeps:
            raise RateLimited("first", retry_after=45.0)
        if len(sleeps) == 1:
            remaining.append(60.0 - sleeps[0])
            raise RateLimited("second", retry_after=remaining[0])  # exactly what is left of the budget
        return "ok"

    assert retrying(max_wait_s=60, sleep=sleeps.append, rng=random.Random(seed))(call) == "ok"
    assert len(sleeps) == 2 and sleeps[1] == pytest.approx(remaining[0], abs=1e-6)
    assert sum(sleeps) == pytest.approx(60.0, abs=1e-6)

    almost: list[float] = []
    call595, _ = _answers(_429("59.5"), OK)  # fits; the jitter (up to 1 s) is clipped to the budget
    assert retrying(max_wait_s=60, sleep=almost.append, rng=random.Random(seed))(call595) == "ok"
    assert len(almost) == 1 and 59.5 <= almost[0] <= 60.0


def test_retry_after_beyond_the_remaining_budget_is_not_shortened() -> None:
    # A Retry-After of 60.5 with 60 s of budget: re-raised at once, never waited as 60 s (which would
    # retry before the server allows). Kills: the wait capped at the budget together with an inclusive stop.
    sleeps: list[float] = []
    call, calls = _answers(_429("60.5"), OK)
    with pytest.raises(RateLimited):
        retrying(max_wait_s=60, sleep=sleeps.append)(call)
    assert calls == [429] and sleeps == []


def test_backoff_sleeps_count_against_the_budget_too() -> None:
    # Transient errors without Retry-After back off up to 30 s each; with a 10 s budget and a sleep that
    # returns at once, the policy must still stop once 10 s of sleeps were asked for.
    sleeps: list[float] = []

    def always() -> None:
        raise TransientError("down", status=503)

    with pytest.raises(TransientError):
        retrying(max_attempts=50, max_wait_s=10, base_delay_s=4, sleep=sleeps.append, rng=random.Random(1))(always)
    assert sum(sleeps) <= 10.0 + 1e-6 and len(sleeps) < 49


def test_parse_retry_after_http_date() -> None:
    # Kills: `when - now` flipped (a date in the future parsed as 0), the HTTP-date branch dropped.
    now = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("Fri, 20 Nov 2026 10:00:45 GMT", now=now) == 45.0
    assert parse_retry_after(format_datetime(datetime(2026, 11, 20, 10, 1, 0, tzinfo=UTC), usegmt=True),
                             now=now) == 60.0
    assert parse_retry_after("Fri, 20 Nov 2026 09:59:00 GMT", now=now) == 0.0  # in the past: no wait
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:45 +0100", now=now) == 45.0  # a numeric zone
    assert parse_retry_after("2026-11-20T10:00:45Z", now=now) == 45.0
    assert parse_retry_after("45", now=now) == 45.0
    assert parse_retry_after("not a date", now=now) is None


def test_429_with_an_http_date_retry_after_is_waited() -> None:
    # The date form end to end: a 429 whose Retry-After is an HTTP-date 45 s ahead is waited ~45 s.
    sleeps: list[float] = []
    when = datetime.fromtimestamp(datetime.now(UTC).timestamp() + 45, UTC)
    call, calls = _answers(_429(format_datetime(when, usegmt=True)), OK)
    assert retrying(max_wait_s=60, sleep=sleeps.append)(call) == "ok"
    assert calls == [429, 200] and len(sleeps) == 1 and 43.0 <= sleeps[0] <= 46.0  # second resolution


# ------------------------------------------------------------------ timestamps (Centra documents a timestamp)

NOW = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC).timestamp()


def test_parse_retry_after_epoch_at_the_boundaries() -> None:
    # Kills: the epoch read as delta-seconds (a wait of ~56 years), `ts - now` flipped, a negative wait for a
    # timestamp in the past, no clamp for a bogus far-future one, the milliseconds form misread.
    assert parse_retry_after(str(int(NOW) + 45), now=NOW) == 45.0
    assert parse_retry_after(str(int(NOW)), now=NOW) == 0.0  # exactly now: no wait
    assert parse_retry_after(str(NOW + 0.5), now=NOW) == 0.5
    assert parse_retry_after(str(int(NOW) - 1), now=NOW) == 0.0  # one second ago: no wait, never negative
    assert parse_retry_after(str(int(NOW) - 86_400), now=NOW) == 0.0
    assert parse_retry_after(str(int(NOW * 1000) + 2500), now=NOW) == 2.5  # milliseconds
    assert parse_retry_after(str(int(NOW) + int(MAX_RETRY_AFTER_S)), now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after(str(int(NOW) + int(MAX_RETRY_AFTER_S) + 1), now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("32503680000", now=NOW) == MAX_RETRY_AFTER_S  # the year 3000
    assert parse_retry_after("1e308", now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("-5", now=NOW) == 0.0
    assert parse_retry_after(str(int(MAX_RETRY_AFTER_S) + 1), now=NOW) == MAX_RETRY_AFTER_S  # delta-seconds too
    for bad in ("nan", "inf", "-inf", ""):
        assert parse_retry_after(bad, now=NOW) is None


def test_parse_retry_after_http_date_is_clamped_both_ways() -> None:
    # Kills: an HTTP-date far ahead taken at face value (blocking the sync's governor for a year).
    assert parse_retry_after("Sat, 20 Nov 2027 10:00:00 GMT", now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:00 GMT", now=NOW) == MAX_RETRY_AFTER_S  # exactly the cap
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:01 GMT", now=NOW) == MAX_RETRY_AFTER_S
    assert parse_retry_after("Fri, 20 Nov 2026 10:59:59 GMT", now=NOW) == MAX_RETRY_AFTER_S - 1


def test_429_with_an_epoch_retry_after_is_waited() -> None:
    # The documented form end to end: a 429 whose Retry-After is a Unix timestamp 45 s ahead is waited ~45 s,
    # not ~1.8e9 s (the budget would re-raise) and not 0 s.
    sleeps: list[float] = []
    call, calls = _answers(_429(str(int(datetime.now(UTC).timestamp()) + 45)), OK)
    assert retrying(max_wait_s=60, sleep=sleeps.append)(call) == "ok"
    assert calls == [429, 200] and len(sleeps) == 1 and 43.0 <= sleeps[0] <= 46.0


def test_a_far_future_retry_after_waits_at_most_the_cap() -> None:
    # With a budget larger than the cap, a bogus timestamp years ahead is waited as the cap, not for years.
    sleeps: list[float] = []
    call, calls = _answers(_429("32503680000"), OK)
    assert retrying(max_wait_s=2 * MAX_RETRY_AFTER_S, sleep=sleeps.append)(call) == "ok"
    assert calls == [429, 200] and len(sleeps) == 1
    assert MAX_RETRY_AFTER_S <= sleeps[0] <= MAX_RETRY_AFTER_S + 1.0


@pytest.mark.parametrize("advice", [float("nan"), -30.0, float("-inf")])
def test_a_nonsensical_retry_after_never_sleeps_negative_or_nan(advice: float) -> None:
    # Kills: a negative or NaN sleep handed to `time.sleep` (ValueError there, or a busy loop).
    sleeps: list[float] = []
    attempts: list[int] = []

    def call() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RateLimited("odd", retry_after=advice)
        return "ok"

    assert retrying(max_wait_s=60, sleep=sleeps.append, rng=random.Random(3))(call) == "ok"
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 60.0 and sleeps[0] == sleeps[0]  # not NaN


@pytest.mark.parametrize("wait", [0.0, 0.001, 0.5, 1.0, 29.999, 30.0])
@pytest.mark.parametrize("offset", [0.0, 0.5, 0.999])
@pytest.mark.parametrize("style", RETRY_AFTER_STYLES)
def test_the_simulators_retry_after_read_back_is_never_early(wait: float, offset: float, style: str) -> None:
    # The Centra simulator's header (every style) read by the production parser: never earlier than the
    # wait the limiter computed, at most a second later. Kills: truncating the timestamp (int(now) + ceil(w)
    # is up to a second early), rounding the delta down, a "no wait" read back as a wait.
    now = NOW + offset
    parsed = parse_retry_after(retry_after_value(wait, style, now=now), now=now)
    assert parsed is not None
    if wait == 0:
        assert parsed == 0.0
    else:
        assert wait - 1e-6 <= parsed <= wait + 1.0
