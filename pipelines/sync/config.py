"""Stock sync settings, read from the environment (every variable is listed in docs/stock-sync.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _num(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class SyncConfig:
    safety_stock: int = 1  # lines leaving free-to-allocate at or below this are critical
    rate_share: float = 0.8  # share of Centra's rate limits the sync may use (the rest: other integrations)
    location_kinds: tuple[str, ...] = ("store",)  # estate location kinds whose movements are synced
    max_lines: int = 200  # lines per mutation
    settle_s: float = 10.0  # inbox events younger than this are re-read (late commits on PostgreSQL)
    drain_s: float = 50.0  # a sync run keeps draining new movements this long
    poll_s: float = 0.5  # pause between passes while the queue is empty
    max_defer_s: float | None = 60.0  # a non-critical line ranks like a fresh critical one after this wait
    rank_cache_s: float = 30.0  # Centra stock read for ranking is reused this long (keys we change: re-read)
    send_window_s: float = 3.0  # a pass keeps sending its ranked mutations as the budget refills this long
    rate_refresh_s: float = 30.0  # re-read rateLimits at least this often
    max_wait_s: float = 15.0  # the longest single pause between passes while waiting for budget
    location_ids: tuple[str, ...] = field(default=())  # optional allow-list of estate location ids
    backlog_after_s: float = 300.0  # events older than this when a run starts count as backlog, not steady lag
    clock_skew_s: float = 300.0  # an event stamped further ahead of its receive time is applied at receive time
    counts_as: str = "delta"  # "delta": a count goes out as changeStock against Centra's physical read just
    #                           before (merged with the warehouse's other lines); "set": as setStock

    @classmethod
    def from_env(cls) -> SyncConfig:
        kinds = os.environ.get("PIPELINES_SYNC_LOCATION_KINDS", "store")
        return cls(
            safety_stock=int(_num("PIPELINES_SYNC_SAFETY_STOCK", 1)),
            rate_share=_num("PIPELINES_SYNC_RATE_SHARE", 0.8),
            location_kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
            max_lines=int(_num("PIPELINES_SYNC_MAX_LINES", 200)),
            settle_s=_num("PIPELINES_SYNC_SETTLE_S", 10.0),
            drain_s=_num("PIPELINES_SYNC_DRAIN_S", 50.0),
            poll_s=_num("PIPELINES_SYNC_POLL_S", 0.5),
            send_window_s=_num("PIPELINES_SYNC_SEND_WINDOW_S", 3.0),
            rank_cache_s=_num("PIPELINES_SYNC_RANK_CACHE_S", 30.0),
            max_defer_s=_num("PIPELINES_SYNC_MAX_DEFER_S", 60.0) or None,
            clock_skew_s=_num("PIPELINES_SYNC_CLOCK_SKEW_S", 300.0),
            counts_as=os.environ.get("PIPELINES_SYNC_COUNTS_AS", "delta").strip() or "delta",
        )
