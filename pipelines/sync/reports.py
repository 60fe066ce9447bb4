"""What a sync pass and a sync run did: `PassReport`, `RunReport` (summed over the passes) and
`record_run`, which keeps a run's report in `stock_sync_runs`.

Lags are POS event time -> Centra confirmation. Events that happened more than `backlog_after_s`
before the run started (downtime, or the history at a first start) are counted apart as backlog, so a
caught-up backlog does not read as the sync being days behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from pipelines.domain.sync.stats import percentile
from pipelines.domain.timeutil import human_duration, parse_time
from pipelines.store.db import table
from pipelines.sync.queue import now_text


@dataclass
class PassReport:
    """What one pass (or one concurrent send of it) did; `merge` adds another's figures."""

    ingested: int = 0
    applied: int = 0
    superseded: int = 0
    failed: int = 0
    mutations: int = 0
    recovered: int = 0
    deferred: int = 0  # mutations the budget left for a later pass
    held: int = 0  # non-critical mutations batched until their delay is up
    pending_keys: int = 0
    lags: list[float] = field(default_factory=list)  # steady state: events that happened during the run
    backlog_lags: list[float] = field(default_factory=list)  # events from before the run started
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.ingested or self.mutations or self.recovered or self.applied or self.superseded)

    def merge(self, other: PassReport) -> None:
        for name in ("ingested", "applied", "superseded", "failed", "mutations", "recovered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.lags += other.lags
        self.backlog_lags += other.backlog_lags
        self.errors += other.errors


@dataclass(kw_only=True)
class RunReport(PassReport):
    """A run: its passes' figures summed, and what the run as a whole used of Centra's budget."""

    run_id: str | None = None
    kind: str = "sync"
    started_at: str = field(default_factory=now_text)
    finished_at: str = ""
    passes: int = 0
    rate_limited: int = 0
    budget_used: int = 0
    budget_available: int = 0
    pending_after: int = 0
    quota_share: float | None = None  # mutations used / Centra's hourly mutation quota over the run's life
    handed_over: bool = False  # ended because a successor took over

    def add(self, rep: PassReport) -> None:
        self.passes += 1
        self.merge(rep)
        self.deferred, self.held = rep.deferred, rep.held

    def lag(self, q: float) -> float | None:
        value = percentile(self.lags, q)
        return None if value is None else round(value, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passes": self.passes, "movements_ingested": self.ingested, "movements_applied": self.applied,
            "movements_superseded": self.superseded, "movements_failed": self.failed, "mutations": self.mutations,
            "batches_recovered": self.recovered, "mutations_deferred": self.deferred,
            "rate_limited": self.rate_limited, "budget_used": self.budget_used,
            "budget_available": self.budget_available, "pending_after": self.pending_after,
            "held_non_critical": self.held, "quota_share": self.quota_share,
            "lag_p50_s": self.lag(50), "lag_p95_s": self.lag(95),
            "lag_max_s": round(max(self.lags), 3) if self.lags else None,
            "backlog_movements": len(self.backlog_lags),
            "backlog_max_age_s": round(max(self.backlog_lags), 3) if self.backlog_lags else None,
        }

    def readable(self) -> dict[str, str]:
        """The lags in human units (s, min, h, d), for run tags and metadata."""
        d = self.as_dict()
        return {"lag_p50": human_duration(d["lag_p50_s"]), "lag_p95": human_duration(d["lag_p95_s"]),
                "lag_max": human_duration(d["lag_max_s"]),
                "backlog_caught_up": f"{d['backlog_movements']} movement(s), oldest "
                                     f"{human_duration(d['backlog_max_age_s'])} old"
                if d["backlog_movements"] else "none"}


def lag_s(event_time: str, confirmed_at: str) -> float:
    """Seconds from a movement's POS event time to Centra's confirmation."""
    return (parse_time(confirmed_at) - parse_time(event_time)).total_seconds()


def record_run(engine: Engine, report: RunReport) -> None:
    runs = table(engine, "stock_sync_runs")
    d = report.as_dict()
    with engine.begin() as conn:
        conn.execute(runs.insert().values(
            run_id=report.run_id, kind=report.kind, started_at=report.started_at,
            finished_at=report.finished_at or now_text(), passes=report.passes, ingested=report.ingested,
            applied=report.applied, superseded=report.superseded, failed=report.failed, mutations=report.mutations,
            recovered=report.recovered, deferred=report.deferred, rate_limited=report.rate_limited,
            budget_used=report.budget_used, budget_available=report.budget_available,
            pending_after=report.pending_after, lag_p50_s=d["lag_p50_s"], lag_p95_s=d["lag_p95_s"],
            lag_max_s=d["lag_max_s"], quota_share=report.quota_share))
