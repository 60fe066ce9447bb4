"""Generic retry policy for the HTTP connectors (tenacity based).

What is retried: `RateLimited` (HTTP 429, honouring `Retry-After`), `TransientError` (5xx and other
retryable statuses, see `raise_for_status`) and httpx transport errors. Waits use the server's
`Retry-After` when there is one, else exponential backoff with full jitter. Attempts and the total
time spent waiting are both bounded; the last exception is re-raised as is (never `RetryError`).

`Retry-After` may be delta-seconds, a Unix timestamp (Centra documents "a timestamp at which it is possible
to try again") or an HTTP-date; whatever the form, the wait it gives is clamped to
[0, `MAX_RETRY_AFTER_S`]: a time in the past means "now", never a negative sleep, and a bogus far-future
value (or a clock far off) cannot block a caller (the sync's governor included) for longer than an hour.

For non-idempotent requests (`idempotent=False`) only failures where the server provably did not
process the request are retried: 429 and connection errors raised before the request was sent.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import httpx
import tenacity
from tenacity import RetryCallState

from pipelines.connectors.errors import AuthError, ConnectorError, RateLimited, TransientError

log = logging.getLogger(__name__)

#: Statuses treated as transient besides every 5xx (499: client closed request, seen behind proxies).
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 425, 429, 499})
#: Values above this are read as a Unix timestamp rather than a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000
#: Float slack when comparing waits with the budget.
_EPSILON_S = 1e-6
#: The longest wait a `Retry-After` is believed for: Centra's longest rate-limit window is one hour.
MAX_RETRY_AFTER_S = 3600.0


def _clamp_wait(seconds: float) -> float:
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait according to a `Retry-After` value, or None if absent/unparseable.

    Accepts delta-seconds ("3", "1.5"), a Unix timestamp in seconds or milliseconds ("1735689600")
    and an HTTP-date ("Wed, 01 Jan 2025 00:00:00 GMT", or an ISO-8601 timestamp). Never negative, never
    more than `MAX_RETRY_AFTER_S`.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    now_ts = time.time() if now is None else now
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if math.isnan(number) or math.isinf(number):
            return None
        if number > _EPOCH_THRESHOLD * 1000:  # epoch milliseconds
            number = number / 1000.0 - now_ts
        elif number > _EPOCH_THRESHOLD:
            number = number - now_ts
        return _clamp_wait(number)
    when: datetime | None = None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _clamp_wait(when.timestamp() - now_ts)


def raise_for_status(response: httpx.Response, *, retry_statuses: Iterable[int] = RETRYABLE_STATUSES) -> None:
    """Raise the typed error for a non-2xx response; return silently for 2xx/3xx.

    401/403 -> AuthError; 429 -> RateLimited(retry_after); 5xx or `retry_statuses` -> TransientError;
    any other 4xx -> ConnectorError.
    """
    status = response.status_code
    if status < 400:
        return
    body = _safe_text(response)
    where = _describe(response)
    if status in (401, 403):
        raise AuthError(f"{where}: HTTP {status} (authentication failed)", status=status, body=body)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RateLimited(f"{where}: HTTP 429 (rate limited, Retry-After={response.headers.get('Retry-After')})",
                          retry_after=retry_after, body=body)
    if status >= 500 or status in set(retry_statuses):
        raise TransientError(f"{where}: HTTP {status}", status=status, body=body, request_sent=True)
    raise ConnectorError(f"{where}: HTTP {status}", status=status, body=body)


def transient_from_transport(exc: httpx.TransportError) -> TransientError:
    """Wrap an httpx transport error; `request_sent` is False only when it provably never left."""
    not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol)
    err = TransientError(f"{type(exc).__name__}: {exc}", request_sent=not not_sent)
    err.__cause__ = exc
    return err


def is_retryable(exc: BaseException, *, idempotent: bool = True) -> bool:
    """Whether `exc` is worth another attempt (see module docstring)."""
    if isinstance(exc, RateLimited):
        return True
    if isinstance(exc, TransientError):
        return idempotent or exc.request_sent is False
    if isinstance(exc, httpx.TransportError):
        return idempotent or not transient_from_transport(exc).request_sent
    return False


def _elapsed(retry_state: RetryCallState) -> float:
    """Time spent so far: the clock, or the sleeps taken if more (an injected `sleep` may not advance
    the clock, and then the budget must still count every second it was asked to wait)."""
    return max(retry_state.seconds_since_start or 0.0, retry_state.idle_for)


class wait_retry_after_or_backoff(tenacity.wait.wait_base):
    """Wait `Retry-After` (+ small jitter) when the error carries one, else exponential full jitter.

    `cap_s` is the total wait budget: a `Retry-After` that fits what is left of it is waited, its
    jitter clipped so as never to push it past the budget; one that does not fit is returned as is,
    so `stop_before_budget` gives up instead of retrying before the server allows.
    """

    def __init__(self, *, base_s: float = 0.5, max_s: float = 30.0, cap_s: float = 60.0,
                 rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.cap_s = cap_s
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and math.isnan(float(retry_after)):
            retry_after = None  # no usable advice: back off instead of sleeping NaN
        if retry_after is not None:
            retry_after = _clamp_wait(float(retry_after))
            remaining = self.cap_s - _elapsed(retry_state)
            if retry_after > remaining + _EPSILON_S:
                return retry_after
            jitter = self.rng.uniform(0.0, min(1.0, 0.1 * retry_after + 0.05))
            return max(retry_after, min(retry_after + jitter, remaining))
        exp = self.base_s * (2 ** max(0, retry_state.attempt_number - 1))
        return min(self.cap_s, self.rng.uniform(0.0, min(self.max_s, exp)))


class stop_before_budget(tenacity.stop.stop_base):
    """Stop when the next sleep would end past `budget_s` after the first attempt (ending exactly at
    the budget is allowed). Time is counted as in `_elapsed`."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        return _elapsed(retry_state) + retry_state.upcoming_sleep > self.budget_s + _EPSILON_S


def _log_before_sleep(logger: logging.Logger) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.warning("retrying after %s (attempt %d, sleeping %.2fs)", exc, state.attempt_number,
                       state.upcoming_sleep)
    return before_sleep


def retrying(*, max_attempts: int = 6, max_wait_s: float = 60.0, base_delay_s: float = 0.5,
             max_delay_s: float = 30.0, idempotent: bool = True,
             retry_if: Callable[[BaseException], bool] | None = None,
             sleep: Callable[[float], None] = time.sleep,
             logger: logging.Logger | None = None, rng: random.Random | None = None) -> tenacity.Retrying:
    """A `tenacity.Retrying` with the policy above.

    `max_attempts` counts the first try; `max_wait_s` bounds the elapsed time including the next
    sleep (a Retry-After beyond what is left of it stops retrying and re-raises; one ending exactly at
    the budget is waited). `retry_if` replaces the default predicate (`is_retryable`); `rng` drives
    the jitter.
    """
    predicate = retry_if or functools.partial(is_retryable, idempotent=idempotent)
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, max_attempts)) | stop_before_budget(max_wait_s),
        wait=wait_retry_after_or_backoff(base_s=base_delay_s, max_s=max_delay_s, cap_s=max_wait_s, rng=rng),
        retry=tenacity.retry_if_exception(predicate),
        reraise=True,
        sleep=sleep,
        before_sleep=_log_before_sleep(logger or log),
    )


def _describe(response: httpx.Response) -> str:
    try:
        return f"{response.request.method} {response.request.url.copy_with(query=None)}"
    except RuntimeError:  # a Response built without a request
        return "HTTP request"


def _safe_text(response: httpx.Response, limit: int = 2000) -> str | None:
    try:
        return response.text[:limit]
    except Exception:  # noqa: BLE001 - body decoding must never mask the real error
        return None
