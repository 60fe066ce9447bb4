"""The planning side of a sync pass: net every pending key, turn counts into deltas, rank by urgency.

Netting (pure, `pipelines.domain.sync.netting`) needs the key's watermark, the failed movements a
newer count re-bases and the deltas applied after that count; counts go out as deltas to Centra's
physical stock read just now (`counts_as="delta"`). When the budget does not cover every mutation of a
pass, `_rank` flags the lines that threaten an oversell from the platform's free-to-sell stock over the
warehouses a market sells from (`StockTarget.selling_groups`) (`pipelines.domain.sync.governor`), read through a short-lived cache.

`Planning` is a part of `StockSync` (`pipelines.sync.service`), which holds the state it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine

from pipelines.connectors.errors import RateLimited
from pipelines.domain.sync.governor import Governor, mark_critical, online_keys
from pipelines.domain.sync.model import KeyPlan, Mutation, QueuedMovement
from pipelines.domain.sync.netting import net_key, newer_count
from pipelines.sync.config import SyncConfig
from pipelines.sync.queue import applied_after, load_failed, load_watermarks
from pipelines.sync.sending import TRANSIENT, log
from pipelines.sync.target import StockTarget


class Planning:
    """Net the pending keys, counts as deltas, rank mutations by oversell risk."""

    engine: Engine
    target: StockTarget
    config: SyncConfig
    governor: Governor
    clock: Callable[[], float]
    online: dict[int, list[tuple[int, ...]]]
    _event_times: dict[int, str]
    _stock_cache: dict[tuple[int, str], tuple[int, int, float]]

    def _plan(self, pending: dict[tuple[int, str], list[QueuedMovement]]) -> list[KeyPlan]:
        """Net every key. A key getting a newer count also takes its failed movements: the count
        re-bases them (absorbed if older, carried in the absolute quantity if newer)."""
        watermarks = load_watermarks(self.engine, pending)
        counts = {key: newer_count(moves, watermarks.get(key)) for key, moves in pending.items()}
        failed = load_failed(self.engine, [k for k, c in counts.items() if c is not None])
        plans = []
        for key, moves in pending.items():
            moves = moves + failed.get(key, [])
            for m in moves:
                self._event_times[m.id] = m.event_time
            count = counts[key]
            plans.append(net_key(moves, watermarks.get(key), applied_after(self.engine, key, count) if count else 0))
        return plans

    def _counts_as_deltas(self, plans: list[KeyPlan]) -> list[KeyPlan]:
        """With `counts_as="delta"`, an absolute quantity becomes the difference to Centra's physical
        stock read just now, so it rides in the warehouse's changeStock instead of a setStock of its
        own (one mutation fewer) and can always be found in the ledger. Keys whose stock cannot be
        read now wait for the next pass."""
        sets = [p for p in plans if p.operation == "set"]
        if self.config.counts_as != "delta" or not sets:
            return plans
        others = [p for p in plans if p.operation != "set"]
        if self.governor.budget().requests < 1:
            return others
        stock = self._read_stock([p.key for p in sets], "counts wait for the next pass")
        if stock is None:
            return others
        for p in sets:
            delta = p.quantity - stock.get(p.key, (0, 0))[0]
            others.append(replace(p, operation="delta" if delta else "none", quantity=delta))
        return others

    def _rank(self, mutations: list[Mutation]) -> None:
        """The budget is short: flag the critical lines from Centra's stock of the keys at stake.

        The stock is cached for `rank_cache_s` (a key the sync changes is dropped on commit), so a
        pass reads only keys it has not seen lately: reading every warehouse of an allocation rule for
        every SKU at stake on every pass costs more time and request budget than the ranking is worth.
        Keys Centra has no stock row for are cached as zero; unreadable keys count as zero (critical).
        """
        keys = online_keys(mutations, self.online)
        now = self.clock()
        stale = [k for k in keys if k not in self._stock_cache or now - self._stock_cache[k][2] > self.config.rank_cache_s]
        read = self._read_stock(stale, "unread keys count as critical") if stale else None
        if read is not None:
            for k in {*stale, *read}:
                self._stock_cache[k] = (*read.get(k, (0, 0)), now)
        stock = {k: self._stock_cache[k][:2] for k in keys if k in self._stock_cache}
        mark_critical(mutations, stock, self.config.safety_stock, self.online)

    def _read_stock(self, keys: list[tuple[int, str]], if_unread: str) -> dict[tuple[int, str], tuple[int, int]] | None:
        """Centra's (physical, free to allocate) of `keys`, every request charged to the budget;
        None when it cannot be read now (a 429 blocks the governor until its Retry-After)."""
        try:
            return self.target.stock_view(keys, lambda: self.governor.spend(requests=1))
        except RateLimited as exc:
            self.governor.on_rate_limited(exc.retry_after)
        except TRANSIENT as exc:
            log.warning("stock read failed (%s); %s", exc, if_unread)
        return None

