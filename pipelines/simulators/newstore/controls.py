"""Knobs of the NewStore fake (:class:`SimulatorControls`): rate limits, forced failures, issued tokens
and the log of every request/response pair."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ENDPOINT_RATES: dict[str, float] = {
    "fulfill_order": 20.0,
    "get_order": 100.0,
    "fulfillment_requests": 70.0,
    "stock_insights": 90.0,
}
"""Per-endpoint limits (requests/second) from the spec; the tenant bucket (default 200/s) applies on top."""


class TokenBucket:
    """Classic token bucket; ``take()`` returns 0 when allowed, else seconds until a token is free."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


@dataclass
class FaultRule:
    remaining: int
    status: int
    path: str | None = None  # prefix match on the request path
    method: str | None = None
    after_processing: bool = False  # run the handler (state changes happen), then answer with the fault
    retry_after: float | None = None


@dataclass
class Exchange:
    """One request/response pair seen by the fake (for spec validation and assertions)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    response: Any
    headers: dict[str, str] = field(default_factory=dict)


class SimulatorControls:
    """Test/generator knobs: forced failures, rate limits, token expiry, request log."""

    def __init__(self, *, tenant_rate: float | None = 200.0, endpoint_rates: dict[str, float] | None = None,
                 token_ttl: int = 3600, log_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.token_ttl = token_ttl
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry epoch seconds)
        self.faults: list[FaultRule] = []
        self.requests: deque[Exchange] = deque(maxlen=log_size)
        self.set_rate_limits(tenant_rate, endpoint_rates)

    def set_rate_limits(self, tenant_rate: float | None = 200.0, endpoint_rates: dict[str, float] | None = None,
                        *, burst: float | None = None) -> None:
        """Tenant rate (None = unlimited) and per-endpoint rates (defaults from the spec)."""
        with self._lock:
            self.tenant_bucket = TokenBucket(tenant_rate, burst) if tenant_rate else None
            rates = DEFAULT_ENDPOINT_RATES if endpoint_rates is None else endpoint_rates
            self.endpoint_buckets = {k: TokenBucket(v, burst if burst is not None else None) for k, v in rates.items()}

    def fail_next(self, n: int = 1, status: int = 500, *, path: str | None = None, method: str | None = None,
                  after_processing: bool = False, retry_after: float | None = 1) -> None:
        """Answer the next ``n`` matching API requests with ``status`` (429 carries ``Retry-After``)."""
        with self._lock:
            self.faults.append(FaultRule(n, status, path, method.upper() if method else None, after_processing,
                                         retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_tokens(self) -> None:
        """Invalidate every issued token (clients then get 403 until they fetch a new one)."""
        with self._lock:
            self.tokens.clear()

    def issue_token(self, client_id: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = (client_id, time.time() + self.token_ttl)
        return token, self.token_ttl

    def token_valid(self, token: str) -> bool:
        with self._lock:
            entry = self.tokens.get(token)
            return entry is not None and entry[1] > time.time()

    def take_fault(self, method: str, path: str, *, is_api: bool) -> FaultRule | None:
        with self._lock:
            for rule in self.faults:
                if rule.remaining <= 0:
                    continue
                if rule.path is None and not is_api:
                    continue
                if rule.path is not None and not path.startswith(rule.path):
                    continue
                if rule.method is not None and rule.method != method:
                    continue
                rule.remaining -= 1
                self.faults = [r for r in self.faults if r.remaining > 0]
                return rule
            return None

    def throttle(self, key: str | None) -> float:
        """Seconds to wait, or 0 if the request may pass (tenant bucket, then the endpoint bucket)."""
        with self._lock:
            tenant, endpoint = self.tenant_bucket, self.endpoint_buckets.get(key or "")
        if tenant is not None:
            wait = tenant.take()
            if wait:
                return wait
        return endpoint.take() if endpoint is not None else 0.0

    def log(self, exchange: Exchange) -> None:
        with self._lock:
            self.requests.append(exchange)

    def exchanges(self) -> list[Exchange]:
        """Every request/response seen so far (bounded), oldest first."""
        with self._lock:
            return list(self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
