"""The rate-budget governor: Centra's token buckets mirrored locally, and what to send first.

Centra limits requests, mutations and query complexity per 10 s and per hour, for every
integration on the environment together. The governor is told the buckets (`rateLimits`), counts
what the sync spends, refills continuously like Centra does, and keeps `1 - share` of every quota
for the other integrations. A 429 blocks everything until its Retry-After.

When the budget does not cover every mutation of a pass, `prioritise` spends it first on those
that threaten an oversell: a line that leaves the warehouse's free-to-allocate at or below the
safety stock. Then removals before absolute counts before additions (late additions never
oversell), oldest first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipelines.domain.sync.model import ADD, REMOVE, SET, Mutation

MUTATIONS, REQUESTS, COMPLEXITY = "MUTATION_COUNT", "REQUEST_COUNT", "QUERY_COMPLEXITY"
_OP_RANK = {REMOVE: 0, SET: 1, ADD: 2}


class RateLimitRow(Protocol):
    type: str
    interval_seconds: int
    quota: int
    remaining_quota: int


@dataclass
class _Bucket:
    type: str
    interval_s: float
    quota: int
    remaining: float
    at: float

    def level(self, now: float) -> float:
        return min(float(self.quota), self.remaining + max(0.0, now - self.at) * self.quota / self.interval_s)


@dataclass(frozen=True)
class Budget:
    """What may be spent now: mutations (each also costs a request) and plain requests."""

    mutations: int
    requests: int
    wait_s: float = 0.0  # > 0 while blocked by a 429


class Governor:
    def __init__(self, share: float = 0.8, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self.clock = clock
        self._buckets: dict[tuple[str, float], _Bucket] = {}
        self.blocked_until = 0.0
        self.observed_at: float | None = None
        self.spent_mutations = 0
        self.spent_requests = 0
        self.rate_limited = 0

    def observe(self, rows: Iterable[RateLimitRow], now: float | None = None) -> None:
        """Take Centra's `rateLimits` answer as the new truth."""
        now = self.clock() if now is None else now
        for r in rows:
            if r.interval_seconds > 0:
                self._buckets[(r.type, float(r.interval_seconds))] = _Bucket(
                    r.type, float(r.interval_seconds), int(r.quota), float(r.remaining_quota), now)
        self.observed_at = now

    def spend(self, *, requests: int = 1, mutations: int = 0, complexity: int = 0, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        costs = {REQUESTS: requests, MUTATIONS: mutations, COMPLEXITY: complexity}
        for b in self._buckets.values():
            b.remaining, b.at = b.level(now) - costs.get(b.type, 0), now
        self.spent_requests += requests
        self.spent_mutations += mutations

    def on_rate_limited(self, retry_after_s: float | None, now: float | None = None) -> None:
        """A 429: nothing more until Retry-After (10 s when the server gave none)."""
        now = self.clock() if now is None else now
        self.rate_limited += 1
        self.blocked_until = max(self.blocked_until, now + (retry_after_s if retry_after_s is not None else 10.0))

    def _allowance(self, kind: str, now: float) -> float:
        levels = [b.level(now) - b.quota * (1 - self.share) for b in self._buckets.values() if b.type == kind]
        return min(levels) if levels else math.inf

    def budget(self, now: float | None = None) -> Budget:
        now = self.clock() if now is None else now
        if now < self.blocked_until:
            return Budget(0, 0, self.blocked_until - now)
        requests = self._allowance(REQUESTS, now)
        mutations = min(self._allowance(MUTATIONS, now), requests)
        cap = 1_000_000
        return Budget(max(0, int(min(mutations, cap))), max(0, int(min(requests, cap))))

    def seconds_until_mutation(self, now: float | None = None) -> float:
        """How long until one more mutation fits the budget (0 if it fits now)."""
        return self._seconds_until((MUTATIONS, REQUESTS), now)

    def seconds_until_request(self, now: float | None = None) -> float:
        """How long until one more query fits the budget (0 if it fits now)."""
        return self._seconds_until((REQUESTS,), now)

    def _seconds_until(self, kinds: tuple[str, ...], now: float | None) -> float:
        now = self.clock() if now is None else now
        wait = max(0.0, self.blocked_until - now)
        for b in self._buckets.values():
            if b.type not in kinds:
                continue
            missing = 1 + b.quota * (1 - self.share) - b.level(now + wait)
            if missing > 0:
                wait += missing * b.interval_s / b.quota
        return wait


def mark_critical(mutations: Iterable[Mutation], stock: Mapping[tuple[int, str], tuple[int, int]],
                  safety_stock: int, online: Mapping[int, Sequence[Sequence[int]]] | None = None) -> None:
    """Flag the lines that threaten an oversell: those leaving the SKU's online free-to-allocate at
    or below `safety_stock`.

    `stock`: (warehouse, SKU) -> (physical, free to allocate) as Centra reports them now; unknown
    keys count as zero (the safe assumption). `online`: warehouse -> the warehouse lists of the
    allocation rules it belongs to; a SKU's online free-to-allocate through a rule is the sum over
    its warehouses, and the most exposed rule counts. Without `online` a warehouse stands alone.
    """
    for m in mutations:
        m.critical_skus.clear()
        rules = (online or {}).get(m.warehouse_id) or [(m.warehouse_id,)]
        for sku, qty in m.lines.items():
            physical, _ = stock.get((m.warehouse_id, sku), (0, 0))
            if m.operation == REMOVE:
                change = -qty
            elif m.operation == SET and qty < physical:
                change = qty - physical
            else:
                continue
            exposed = min(sum(stock.get((w, sku), (0, 0))[1] for w in rule) for rule in rules)
            if exposed + change <= safety_stock:
                m.critical_skus.add(sku)


def online_keys(mutations: Iterable[Mutation], online: Mapping[int, Sequence[Sequence[int]]]) -> set[tuple[int, str]]:
    """The (warehouse, SKU) stock `mark_critical` needs for the removals and counts of `mutations`."""
    keys: set[tuple[int, str]] = set()
    for m in mutations:
        if m.operation == ADD:
            continue
        warehouses = {w for rule in online.get(m.warehouse_id) or [(m.warehouse_id,)] for w in rule}
        keys |= {(w, sku) for w in warehouses | {m.warehouse_id} for sku in m.lines}
    return keys


def priority(m: Mutation) -> tuple[int, int, str]:
    return (0 if m.critical else 1, _OP_RANK.get(m.operation, 3), m.oldest_event_time)


def prioritise(mutations: Sequence[Mutation], capacity: int) -> tuple[list[Mutation], list[Mutation]]:
    """Split into (send now, defer): the `capacity` most urgent mutations first."""
    ranked = sorted(mutations, key=priority)
    capacity = max(0, capacity)
    return ranked[:capacity], ranked[capacity:]
