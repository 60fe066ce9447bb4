"""Stock sync settings (every variable is listed in docs/stock-sync.md; `pipelines.settings` reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from pipelines.settings import sync as sync_settings


@dataclass(frozen=True)
class SyncConfig:
    safety_stock: int = 1  # lines leaving free-to-allocate at or below this are critical
    rate_share: float = 0.8  # share of Centra's rate limits the sync may use (the rest: other integrations)
    location_kinds: tuple[str, ...] = ("store",)  # estate location kinds whose movements are synced
    max_lines: int = 200  # lines per mutation
    settle_s: float = 10.0  # inbox events younger than this are re-read (late commits on PostgreSQL)
    run_window_s: float = 900.0  # a sync run lives this long, then hands over to its successor (the sensor
    #                              launches it `handover_lead_s` before); it keeps going until one comes
    handover_lead_s: float = 60.0  # the successor is launched this long before the window ends
    handover_wait_s: float = 180.0  # a successor waits this long for the running sync to hand over
    poll_s: float = 0.5  # pause between passes while the queue is empty (PostgreSQL: woken by the intake)
    batch_delay_s: float | None = 60.0  # non-critical movements wait this long to be batched (critical ones
    #                                     go at once, and take the warehouse's waiting lines with them);
    #                                     under a short budget it is their deadline head start (EDF)
    max_in_flight: int = 8  # concurrent sends, never two for one warehouse (order per warehouse and SKU)
    rank_cache_s: float = 30.0  # Centra stock read for ranking is reused this long (keys we change: re-read)
    send_window_s: float = 1.5  # a pass keeps sending its ranked mutations as the budget refills this long
    rate_refresh_s: float = 30.0  # re-read rateLimits at least this often
    max_wait_s: float = 15.0  # the longest single pause between passes while waiting for budget
    location_ids: tuple[str, ...] = field(default=())  # optional allow-list of estate location ids
    backlog_after_s: float = 300.0  # events older than this when a run starts count as backlog, not steady lag
    clock_skew_s: float = 300.0  # an event stamped further ahead of its receive time is applied at receive time
    counts_as: str = "delta"  # "delta": a count goes out as changeStock against Centra's physical read just
    #                           before (merged with the warehouse's other lines); "set": as setStock

    @classmethod
    def from_env(cls) -> SyncConfig:
        """The defaults above with what the environment sets (`PIPELINES_SYNC_*`, read by `pipelines.settings`)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in sync_settings().items() if k in names}
        if "location_kinds" in values:
            values["location_kinds"] = tuple(values["location_kinds"])
        return cls(**values)
