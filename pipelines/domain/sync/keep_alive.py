"""What the stock sync sensor does on a tick: keep exactly one always-on sync run going.

Pure: the sensor (pipelines/defs/sync/sensors.py) turns Dagster's run records into `SyncRun`s and a
`KeepAlive` decision back into a run request. The running sync lives `window_s`; its successor is
requested `lead_s` before that, so it has started and waits for the lock when the window ends (the
handover: pipelines/sync/lock.py). A run Dagster still lists as started but that has held no sync
lock for `grace_s` since it started has died (killed, its host lost): it is reported failed and a
new run is requested. A run that just failed is not restarted for `backoff_s`, so a broken
configuration does not start a run every tick.
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUED, STARTED = "queued", "started"


@dataclass(frozen=True)
class SyncRun:
    run_id: str
    state: str  # QUEUED (queued, not started, starting) or STARTED
    started_at: float | None = None  # epoch seconds


@dataclass(frozen=True)
class LastRun:
    run_id: str
    failed: bool
    ended_at: float | None


@dataclass(frozen=True)
class KeepAlive:
    action: str  # "start", "successor", "restart" or "skip"
    reason: str
    run_key: str | None = None
    dead_run_id: str | None = None  # "restart": the run to report failed


def decide(active: list[SyncRun], last: LastRun | None, now: float, *, window_s: float, lead_s: float,
           grace_s: float = 60.0, backoff_s: float = 30.0, lock_held: bool | None = None) -> KeepAlive:
    """The tick's decision. `lock_held` (whether any process holds the sync lock) is only needed for
    a single started run past its grace (`needs_lock_check`)."""
    if len(active) > 1:
        return KeepAlive("skip", f"handover in progress ({len(active)} sync runs active)")
    if not active:
        if last is not None and last.failed and last.ended_at is not None and now - last.ended_at < backoff_s:
            return KeepAlive("skip", f"the last sync run {last.run_id[:8]} failed "
                                     f"{now - last.ended_at:.0f} s ago; restarting after {backoff_s:.0f} s")
        return KeepAlive("start", "no stock sync run is active", f"stock-sync:after:{last.run_id if last else 'none'}")
    run = active[0]
    if run.state != STARTED or run.started_at is None:
        return KeepAlive("skip", f"stock sync run {run.run_id[:8]} is starting")
    if needs_lock_check(run, now, grace_s) and lock_held is False:
        return KeepAlive("restart", f"stock sync run {run.run_id[:8]} has held no sync lock "
                                    f"{now - run.started_at:.0f} s after it started: it died",
                         f"stock-sync:restart:{run.run_id}", dead_run_id=run.run_id)
    ends = run.started_at + window_s
    if now >= ends - lead_s:
        return KeepAlive("successor", f"stock sync run {run.run_id[:8]}'s window ends in "
                                      f"{max(0.0, ends - now):.0f} s", f"stock-sync:successor-of:{run.run_id}")
    return KeepAlive("skip", f"stock sync run {run.run_id[:8]} is running; its successor is due in "
                             f"{ends - lead_s - now:.0f} s")


def needs_lock_check(run: SyncRun, now: float, grace_s: float) -> bool:
    return run.state == STARTED and run.started_at is not None and now - run.started_at >= grace_s
