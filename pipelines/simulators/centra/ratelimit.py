"""Centra's token-bucket rate limits: 3 bucket types x 2 windows, per tier.

Buckets start full and refill continuously at quota / window. A request needs every bucket it
touches to hold enough tokens; it then consumes from all of them atomically, or from none.
The limiter runs on its own (monotonic, real-time) clock, not the state's business clock, so a
frozen test clock never starves it. `interval_scale` shrinks the windows (0.1 makes TEN_SECONDS
refill in 1 s) while `rateLimits` keeps reporting the nominal interval.

A 429's `Retry-After` is, as AD-rl documents, "a timestamp at which it is possible to try again": by default
a Unix timestamp in seconds, rounded up so that it is never earlier than the moment the buckets allow the
request (`retry_after_value`); "http-date" (RFC 9110 form of the same instant) and "seconds" (delta-seconds,
rounded up) are the other values of the `retry_after_style` knob.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

REQUEST_COUNT = "REQUEST_COUNT"
QUERY_COMPLEXITY = "QUERY_COMPLEXITY"
MUTATION_COUNT = "MUTATION_COUNT"
TYPES = (REQUEST_COUNT, QUERY_COMPLEXITY, MUTATION_COUNT)
INTERVALS = {"TEN_SECONDS": 10, "ONE_HOUR": 3600}

# (type, interval) -> quota, from centra.md ("Rate limiting").
TIERS: dict[str, dict[tuple[str, str], int]] = {
    "GROWTH": {
        (REQUEST_COUNT, "TEN_SECONDS"): 60, (REQUEST_COUNT, "ONE_HOUR"): 5_000,
        (MUTATION_COUNT, "TEN_SECONDS"): 20, (MUTATION_COUNT, "ONE_HOUR"): 1_800,
        (QUERY_COMPLEXITY, "TEN_SECONDS"): 250_000, (QUERY_COMPLEXITY, "ONE_HOUR"): 30_000_000,
    },
    "ENHANCED": {
        (REQUEST_COUNT, "TEN_SECONDS"): 150, (REQUEST_COUNT, "ONE_HOUR"): 20_000,
        (MUTATION_COUNT, "TEN_SECONDS"): 50, (MUTATION_COUNT, "ONE_HOUR"): 4_500,
        (QUERY_COMPLEXITY, "TEN_SECONDS"): 900_000, (QUERY_COMPLEXITY, "ONE_HOUR"): 90_000_000,
    },
    "HIGH_VOLUME": {
        (REQUEST_COUNT, "TEN_SECONDS"): 450, (REQUEST_COUNT, "ONE_HOUR"): 40_000,
        (MUTATION_COUNT, "TEN_SECONDS"): 150, (MUTATION_COUNT, "ONE_HOUR"): 7_000,
        (QUERY_COMPLEXITY, "TEN_SECONDS"): 1_800_000, (QUERY_COMPLEXITY, "ONE_HOUR"): 180_000_000,
    },
    "ENTERPRISE": {
        (REQUEST_COUNT, "TEN_SECONDS"): 1_500, (REQUEST_COUNT, "ONE_HOUR"): 85_000,
        (MUTATION_COUNT, "TEN_SECONDS"): 500, (MUTATION_COUNT, "ONE_HOUR"): 25_000,
        (QUERY_COMPLEXITY, "TEN_SECONDS"): 4_000_000, (QUERY_COMPLEXITY, "ONE_HOUR"): 400_000_000,
    },
}


#: The forms a 429's `Retry-After` can take (`CentraState.retry_after_style`).
RETRY_AFTER_STYLES = ("epoch", "http-date", "seconds")
#: The documented form: a timestamp (AD-rl "### Rate limits in Centra's Integration API").
DEFAULT_RETRY_AFTER_STYLE = "epoch"


def retry_after_value(seconds: float, style: str = DEFAULT_RETRY_AFTER_STYLE, *, now: float | None = None) -> str:
    """The `Retry-After` header for a wait of `seconds` from `now` (wall clock, default `time.time()`).

    Timestamps are rounded up to the whole second, so a client that waits until then is never early; no
    wait at all is the current second rounded down ("now": a client reads it as no wait either)."""
    if style not in RETRY_AFTER_STYLES:
        raise ValueError(f"unknown retry_after_style {style!r}; one of {RETRY_AFTER_STYLES}")
    wait = seconds if math.isfinite(seconds) and seconds > 0 else 0.0
    if style == "seconds":
        return str(math.ceil(wait))
    moment = (time.time() if now is None else now) + wait
    at = math.ceil(moment) if wait > 0 else math.floor(moment)
    return str(at) if style == "epoch" else email.utils.formatdate(at, usegmt=True)


def normalise_tier(tier: str) -> str:
    key = tier.strip().upper().replace(" ", "_").replace("-", "_")
    if key not in TIERS:
        raise ValueError(f"unknown rate-limit tier {tier!r}; one of {sorted(TIERS)}")
    return key


@dataclass
class Bucket:
    type: str
    interval: str
    quota: int
    window_s: float  # effective refill window (nominal x interval_scale)
    tokens: float
    updated: float

    @property
    def rate(self) -> float:
        return self.quota / self.window_s

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.quota), self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, cost: int) -> float:
        """Seconds until `cost` tokens are available (costs above the quota need a full bucket)."""
        need = min(float(cost), float(self.quota))
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0
    limited_by: tuple[str, str] | None = None


class RateLimiter:
    """Thread-safe token buckets for one Centra environment."""

    def __init__(self, tier: str = "GROWTH", *, multiplier: float = 1.0,
                 overrides: Mapping[tuple[str, str], int] | None = None, interval_scale: float = 1.0,
                 enabled: bool = True, time_fn: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._time = time_fn
        self.enabled = enabled
        self.tier = normalise_tier(tier)
        self.multiplier = multiplier
        self.overrides: dict[tuple[str, str], int] = dict(overrides or {})
        self.interval_scale = interval_scale
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._rebuild()

    def configure(self, *, tier: str | None = None, multiplier: float | None = None,
                  overrides: Mapping[tuple[str, str], int] | None = None, interval_scale: float | None = None,
                  enabled: bool | None = None) -> None:
        """Change tier/limits (test knob); buckets are reset to full."""
        with self._lock:
            if tier is not None:
                self.tier = normalise_tier(tier)
            if multiplier is not None:
                self.multiplier = multiplier
            if overrides is not None:
                self.overrides = dict(overrides)
            if interval_scale is not None:
                self.interval_scale = interval_scale
            if enabled is not None:
                self.enabled = enabled
            self._rebuild()

    def reset(self) -> None:
        with self._lock:
            self._rebuild()

    def set_remaining(self, kind: str, interval: str, tokens: float) -> None:
        """Test knob: the tokens left in one bucket now (e.g. an hourly quota other integrations used up)."""
        with self._lock:
            bucket = self._buckets[(kind, interval)]
            bucket.refill(self._time())
            bucket.tokens = max(0.0, min(float(bucket.quota), tokens))

    def _rebuild(self) -> None:
        if self.multiplier <= 0 or self.interval_scale <= 0:
            raise ValueError("multiplier and interval_scale must be positive")
        now = self._time()
        self._buckets = {}
        for (kind, interval), base in TIERS[self.tier].items():
            quota = self.overrides.get((kind, interval), max(1, int(base * self.multiplier)))
            self._buckets[(kind, interval)] = Bucket(kind, interval, quota, INTERVALS[interval] * self.interval_scale,
                                                     float(quota), now)

    def acquire(self, costs: Mapping[str, int]) -> Decision:
        """Consume `costs` (type -> tokens) from both windows of each type, all or nothing."""
        with self._lock:
            now = self._time()
            worst = Decision(True)
            for bucket in self._buckets.values():
                bucket.refill(now)
                cost = costs.get(bucket.type, 0)
                if cost <= 0 or not self.enabled:
                    continue
                wait = bucket.wait_for(cost)
                if wait > worst.retry_after_s:
                    worst = Decision(False, wait, (bucket.type, bucket.interval))
            if not worst.allowed:
                return worst
            for bucket in self._buckets.values():
                cost = costs.get(bucket.type, 0)
                if cost > 0:
                    bucket.tokens = max(0.0, bucket.tokens - min(float(cost), float(bucket.quota)))
            return worst

    def snapshot(self) -> list[dict[str, object]]:
        """Current buckets as `rateLimits` rows (integers; quota = used + remaining)."""
        with self._lock:
            now = self._time()
            rows = []
            for kind in TYPES:
                for interval in INTERVALS:
                    b = self._buckets[(kind, interval)]
                    b.refill(now)
                    remaining = int(math.floor(b.tokens))
                    rows.append({"type": kind, "interval_seconds": interval, "quota": b.quota,
                                 "used_quota": b.quota - remaining, "remaining_quota": remaining})
            return rows
