"""The rate-budget governor: Centra's token buckets mirrored locally, and what to send first.

Centra limits requests, mutations and query complexity per 10 s and per hour, for every
integration on the environment together (token buckets). The governor mirrors each bucket from
`rateLimits` (refilling it like Centra does, and counting what the sync spends), and gives the sync
its own bucket beside it: refilled at `share` of the quota's rate, holding at most `share` of an
hourly quota, but for short windows only what keeps any 10 s window within the nominal quota
(`quota - share * quota`, at least 1). The sync may spend what both allow, so it never takes more
than its share over time, never bursts past the quota, and never causes a 429 when other
integrations use their part. A 429 blocks everything until its Retry-After.

Critical mutations (those that threaten an oversell, `mark_critical`) go at once; the others wait
`delay_s` to be batched, additions four times that (`split_due`, `head_start`). When the budget does not cover every mutation of a pass, it is
spent earliest-deadline-first: a critical mutation is due at its oldest critical line, or once the lines riding
along waited `RIDE_ALONG_SHARE` of `delay_s` (`due_at`), any other `delay_s` later (additions four times that),
so a stream of oversell risks cannot starve the rest. Removals before counts before additions only
break ties.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipelines.domain.sync.model import ADD, REMOVE, SET, Mutation
from pipelines.domain.timeutil import parse_time

MUTATIONS, REQUESTS, COMPLEXITY = "MUTATION_COUNT", "REQUEST_COUNT", "QUERY_COMPLEXITY"
_OP_RANK = {REMOVE: 0, SET: 1, ADD: 2}
_SHORT_WINDOW_S = 60.0
#: A critical mutation is due at the latest when its other lines have waited this share of the batching
#: delay (5 s of 60 s; `due_at`). Measured at Enhanced stress (bench/stock_sync_latency.py, additions after 2 x
#: the delay): 0 (due at the oldest line) gave critical p95 13.7 s, all 14.7 s; 1/6: 12.6 s and 18.1 s; never
#: (due at the oldest risk) 11.8 s and 21.0 s.
RIDE_ALONG_SHARE = 1 / 12
#: Additions are due this many batching delays after their oldest movement (`head_start`).
ADDITION_DELAYS = 4


class RateLimitRow(Protocol):
    type: str
    interval_seconds: int
    quota: int
    remaining_quota: int


@dataclass
class _Bucket:
    """A token bucket: `level` tokens at time `at`, refilling at `rate` per second up to `cap`."""

    cap: float
    rate: float
    level_at: float
    at: float

    def level(self, now: float) -> float:
        return min(self.cap, self.level_at + max(0.0, now - self.at) * self.rate)

    def take(self, tokens: float, now: float) -> None:
        self.level_at, self.at = self.level(now) - tokens, now


@dataclass(frozen=True)
class Budget:
    """What may be spent now: mutations (each also costs a request) and plain requests."""

    mutations: int
    requests: int
    wait_s: float = 0.0  # > 0 while blocked by a 429


class SharedBuckets(Protocol):
    """Where the sync's own buckets live when several runs or replicas share them (the store of record;
    `pipelines.sync.rate_state`). Levels are at the epoch-seconds time `now` the caller passes."""

    def adopt(self, key: tuple[str, float], cap: float, rate: float, level: float, now: float) -> float:
        """The bucket's shared level now (created at `level` if new; `cap`/`rate` updated)."""

    def take(self, costs: Mapping[tuple[str, float], float], now: float) -> dict[tuple[str, float], float]:
        """Take each bucket's tokens atomically (one transaction for all); the levels after."""

    def levels(self, now: float) -> tuple[dict[tuple[str, float], float], float]:
        """Every shared bucket's level now, and until when a 429 blocks everyone."""

    def block(self, until: float) -> None:
        """Nothing may be sent before `until` (a 429's Retry-After), by anyone."""


class Governor:
    """The sync's view of Centra's budget (see module docstring). Thread-safe: concurrent sends spend
    from one governor. With `shared`, the sync's own buckets (its share) and a 429's block live there,
    so consecutive runs and replicas draw on one share instead of each starting afresh from what Centra
    says is left (which over a long peak hands the sync Centra's whole refill)."""

    def __init__(self, share: float = 0.8, clock: Callable[[], float] = time.monotonic,
                 shared: SharedBuckets | None = None) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self.clock = clock
        self.shared = shared
        self._lock = threading.RLock()
        self._centra: dict[tuple[str, float], _Bucket] = {}
        self._own: dict[tuple[str, float], _Bucket] = {}
        self.blocked_until = 0.0
        self.observed_at: float | None = None
        self.spent_mutations = 0
        self.spent_requests = 0
        self.rate_limited = 0

    def observe(self, rows: Iterable[RateLimitRow], now: float | None = None) -> None:
        """Take Centra's `rateLimits` answer as the new truth for Centra's buckets (the ceiling)."""
        now = self.clock() if now is None else now
        with self._lock:
            for r in rows:
                if r.interval_seconds <= 0 or r.quota <= 0:
                    continue
                key, interval = (r.type, float(r.interval_seconds)), float(r.interval_seconds)
                self._centra[key] = _Bucket(float(r.quota), r.quota / interval, float(r.remaining_quota), now)
                if key in self._own and self.shared is None:
                    continue
                if interval < _SHORT_WINDOW_S:
                    cap = max(1.0, round(r.quota * (1 - self.share), 6))
                    rate = min(r.quota * self.share, r.quota - cap) / interval
                else:
                    cap, rate = r.quota * self.share, r.quota * self.share / interval
                level = min(cap, float(r.remaining_quota))
                if self.shared is not None:
                    level = self.shared.adopt(key, cap, max(rate, 1e-9), level, now)
                self._own[key] = _Bucket(cap, max(rate, 1e-9), level, now)
            self.observed_at = now

    def refresh(self, now: float | None = None) -> None:
        """Take the shared levels (what other runs and replicas spent) into this governor."""
        if self.shared is None:
            return
        now = self.clock() if now is None else now
        levels, blocked_until = self.shared.levels(now)
        with self._lock:
            for key, level in levels.items():
                if key in self._own:
                    self._own[key].level_at, self._own[key].at = level, now
            self.blocked_until = max(self.blocked_until, blocked_until)

    def spend(self, *, requests: int = 1, mutations: int = 0, complexity: int = 0, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        costs = {REQUESTS: requests, MUTATIONS: mutations, COMPLEXITY: complexity}
        with self._lock:
            for buckets in (self._centra, self._own):
                for (kind, _), b in buckets.items():
                    b.take(costs.get(kind, 0), now)
            shared_costs = {key: costs[key[0]] for key in self._own if costs.get(key[0], 0)}
            if self.shared is not None and shared_costs:
                for key, level in self.shared.take(shared_costs, now).items():
                    self._own[key].level_at, self._own[key].at = level, now
            self.spent_requests += requests
            self.spent_mutations += mutations

    def on_rate_limited(self, retry_after_s: float | None, now: float | None = None) -> None:
        """A 429: nothing more until Retry-After (10 s when the server gave none), and the mirror was
        wrong (others spent more than it knew): `rateLimits` is to be read again once unblocked."""
        now = self.clock() if now is None else now
        with self._lock:
            self.rate_limited += 1
            self.observed_at = None
            self.blocked_until = max(self.blocked_until, now + (retry_after_s if retry_after_s is not None else 10.0))
            if self.shared is not None:
                self.shared.block(self.blocked_until)

    def hourly_mutation_quota(self) -> int | None:
        """Centra's mutation quota per hour as last observed (for the share of quota a run used)."""
        bucket = self._centra.get((MUTATIONS, 3600.0))
        return int(bucket.cap) if bucket else None

    def _allowance(self, kind: str, now: float) -> float:
        with self._lock:
            levels = [b.level(now) for buckets in (self._centra, self._own) for (k, _), b in buckets.items()
                      if k == kind]
        return min(levels) if levels else math.inf

    def budget(self, now: float | None = None) -> Budget:
        now = self.clock() if now is None else now
        if now < self.blocked_until:
            return Budget(0, 0, self.blocked_until - now)
        requests = self._allowance(REQUESTS, now)
        mutations = min(self._allowance(MUTATIONS, now), requests)
        cap = 1_000_000
        return Budget(max(0, int(min(mutations, cap) + 1e-9)), max(0, int(min(requests, cap) + 1e-9)))

    def seconds_until_mutation(self, now: float | None = None) -> float:
        """How long until one more mutation fits the budget (0 if it fits now)."""
        return self._seconds_until((MUTATIONS, REQUESTS), now)

    def seconds_until_request(self, now: float | None = None) -> float:
        """How long until one more query fits the budget (0 if it fits now)."""
        return self._seconds_until((REQUESTS,), now)

    def _seconds_until(self, kinds: tuple[str, ...], now: float | None) -> float:
        now = self.clock() if now is None else now
        wait = max(0.0, self.blocked_until - now)
        with self._lock:
            for buckets in (self._centra, self._own):
                for (kind, _), b in buckets.items():
                    if kind in kinds:
                        missing = 1 - b.level(now + wait)
                        if missing > 0:
                            wait += missing / b.rate
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


def priority(m: Mutation, max_defer_s: float | None = None) -> tuple[float | int | str, ...]:
    """Sort key. Without `max_defer_s`: critical first, then the oldest. With it: earliest deadline
    first (`due_at`), so an oversell risk gets a head start of `max_defer_s` (four times that over additions)
    but nothing starves behind a stream of critical work (a removal that waited `max_defer_s` ranks like
    a fresh critical one)."""
    op = _OP_RANK.get(m.operation, 3)
    if max_defer_s is None:
        return (0 if m.critical else 1, m.critical_since or m.oldest_event_time, op)
    return (due_at(m, max_defer_s), op)


def due_at(m: Mutation, delay_s: float) -> float:
    """When a mutation is due (epoch seconds). A non-critical one: its oldest movement plus `head_start`.
    A critical one: when its oldest critical line appeared, or once the lines riding along with it have
    waited `RIDE_ALONG_SHARE` of `delay_s`, whichever comes first. Ranking critical mutations by their
    oldest line alone would put a fresh risk riding on an old trickle before an older risk (critical
    latency); by their critical lines alone, a warehouse's other lines would wait for its next risk."""
    oldest = parse_time(m.oldest_event_time).timestamp()
    since = m.critical_since
    if since is None:
        return oldest + head_start(m, delay_s)
    return min(parse_time(since).timestamp(), oldest + RIDE_ALONG_SHARE * delay_s)


def split_due(mutations: Iterable[Mutation], now: float,
              delay_s: float | None) -> tuple[list[Mutation], list[Mutation]]:
    """(send now, hold): a critical mutation is due at once; any other once its oldest movement is
    `delay_s` old (epoch seconds `now`), so non-critical lines are batched and quota goes where an
    oversell is at stake. Lines of a warehouse ride along with its critical mutation (they share it)."""
    ready: list[Mutation] = []
    held: list[Mutation] = []
    for m in mutations:
        due = not delay_s or due_at(m, delay_s) <= now
        (ready if due else held).append(m)
    return ready, held


def head_start(m: Mutation, delay_s: float) -> float:
    """How long after its oldest movement a mutation is due unless an oversell risk makes it due at once
    (`due_at`): removals and counts after `delay_s`, additions (they can lose an online sale, never oversell)
    after `ADDITION_DELAYS` times that. Additions are a few per cent of the movements but, a warehouse and a
    direction a mutation, a tenth of the mutations under peak load: their longer wait leaves that budget to the
    removals (at Enhanced stress, 2 x the delay cost the removals 8 % of the budget)."""
    return ADDITION_DELAYS * delay_s if m.operation == ADD else delay_s


def rank(mutations: Iterable[Mutation], max_defer_s: float | None = None) -> list[Mutation]:
    """Most urgent first (see `priority`)."""
    return sorted(mutations, key=lambda m: priority(m, max_defer_s))


def prioritise(mutations: Sequence[Mutation], capacity: int,
               max_defer_s: float | None = None) -> tuple[list[Mutation], list[Mutation]]:
    """Split into (send now, defer): the `capacity` most urgent mutations first."""
    ranked = rank(mutations, max_defer_s)
    capacity = max(0, capacity)
    return ranked[:capacity], ranked[capacity:]
