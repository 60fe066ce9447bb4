"""The always-on sync: the quota share shared across runs, concurrent sends, critical-first batching,
the lock handover between two runs, and the intake's wake-up on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.domain.sync import Governor
from pipelines.domain.sync.keep_alive import LastRun, SyncRun, decide
from pipelines.store import make_engine
from pipelines.store.inbox import store_events
from pipelines.sync import SyncConfig, sync_lock
from pipelines.sync.lock import successor_waiting, sync_running
from pipelines.sync.rate_state import RateState
from pipelines.sync.wakeup import Wakeup
from pipelines_tests.sync.conftest import T0, SyncWorld, land, receipt, sale
from pipelines_tests.sync.conftest import RateRow as Row

HOUR = 3600.0


class CentraHourly:
    """Centra's hourly mutation bucket as the tests' oracle: 1,800 per hour (Growth), refilled
    continuously, spent by the sync and, at the start, drained by a long peak."""

    quota = 1800

    def __init__(self, remaining: float) -> None:
        self.level, self.at = remaining, 0.0

    def rows(self, now: float) -> list[Row]:
        self.level = min(self.quota, self.level + (now - self.at) * self.quota / HOUR)
        self.at = now
        return [Row("MUTATION_COUNT", 3600, self.quota, int(self.level)), Row("REQUEST_COUNT", 3600, 5000, 5000)]

    def spend(self, now: float) -> None:
        self.rows(now)
        self.level -= 1


def _drained_hour(make_governor: Any) -> int:
    """Mutations a greedy sync spends in an hour of drained peak, a fresh governor per 50 s run."""
    centra, spent, now = CentraHourly(remaining=0), 0, 0.0
    while now < HOUR:
        governor = make_governor(now)
        governor.observe(centra.rows(now), now=now)
        end = min(HOUR, now + 50.0)
        while now < end:
            if governor.budget(now=now).mutations >= 1 and centra.level >= 1:
                governor.spend(requests=1, mutations=1, now=now)
                centra.spend(now)
                spent += 1
            now = round(now + 0.25, 2)
    return spent


def test_the_share_holds_over_an_hour_of_drained_peak_only_when_runs_share_the_budget(world: SyncWorld) -> None:
    """Oracle: the configured share of Centra's hourly quota (0.8 x 1,800 = 1,440 in an hour). A
    governor per run that starts from what Centra says is left takes Centra's whole refill (~1,800);
    with the buckets in the store of record the runs together keep to the share.
    Kills: `shared` ignored in observe/spend, `adopt` resetting the level, refill at Centra's rate."""
    private = _drained_hour(lambda now: Governor(0.8, clock=lambda: now))
    assert private > 0.95 * CentraHourly.quota  # the leak the shared state closes
    state = RateState(world.engine)
    shared = _drained_hour(lambda now: Governor(0.8, clock=lambda: now, shared=state))
    assert 0.75 * CentraHourly.quota <= shared <= 0.8 * CentraHourly.quota + 1


def test_two_governors_on_one_store_draw_on_one_budget(world: SyncWorld) -> None:
    """Replicas: what one spends, the other no longer has; a 429 seen by one blocks both."""
    state = RateState(world.engine)
    rows = [Row("MUTATION_COUNT", 10, 20, 20), Row("REQUEST_COUNT", 10, 60, 60)]
    one, two = (Governor(0.5, clock=lambda: 100.0, shared=state) for _ in range(2))
    one.observe(rows, now=100.0)
    two.observe(rows, now=100.0)
    assert one.budget(now=100.0).mutations == two.budget(now=100.0).mutations == 10
    one.spend(requests=4, mutations=4, now=100.0)
    two.refresh(now=100.0)
    assert two.budget(now=100.0).mutations == 6
    two.spend(requests=6, mutations=6, now=100.0)
    one.refresh(now=100.0)
    assert one.budget(now=100.0).mutations == 0
    one.on_rate_limited(30.0, now=100.0)
    two.refresh(now=100.0)
    assert two.budget(now=120.0).mutations == 0 and two.budget(now=131.0).mutations > 0


def test_sends_run_concurrently_across_warehouses_but_never_two_for_one_warehouse(world: SyncWorld) -> None:
    """Three warehouses with work, store a with a removal and an addition (two mutations). Two sends
    must be in flight at once to pass the barrier (sequential sends break it and fail); one
    warehouse never has two at once, and its removal goes before its addition (ranked order).
    Kills: max_in_flight ignored (sequential), the per-warehouse exclusion dropped."""
    a, b, c = world.estate.stores[:3]
    skus = world.skus(3, min_stock=2)
    land(world.engine, sale(a.newstore_node_id, skus[0], T0), receipt(a.newstore_node_id, {skus[1]: 3}, T0),
         *(sale(st.newstore_node_id, sku, T0) for st, sku in zip((b, c), skus[1:], strict=True)))
    client = world.client()
    change_stock = client.change_stock
    barrier = threading.Barrier(2, timeout=10)
    lock, active, calls, overlap = threading.Lock(), set(), [], []

    def spy(warehouse_id: int, deltas: dict[str, int], description: str) -> Any:
        with lock:
            assert warehouse_id not in active, "two sends in flight for one warehouse"
            active.add(warehouse_id)
            calls.append((warehouse_id, sorted(deltas.values())))
            first_two = len(calls) <= 2
        try:
            if first_two:
                barrier.wait()  # only passes when two sends are in flight together
                overlap.append(True)
            return change_stock(warehouse_id, deltas, description)
        finally:
            with lock:
                active.discard(warehouse_id)

    client.change_stock = spy  # type: ignore[method-assign]
    from pipelines.sync import StockSync

    sync = StockSync(world.engine, world.estate, client,
                     SyncConfig(settle_s=0, poll_s=0, batch_delay_s=None, max_in_flight=4))
    report = sync.run(window_s=0)
    assert overlap == [True, True] and report.mutations == 4 and report.errors == []
    a_calls = [deltas for wid, deltas in calls if wid == a.centra_warehouse_id]
    assert a_calls == [[-1], [3]]  # removal first, then the addition
    assert world.physical(skus[0], a) == world.initial(skus[0], a) - 1
    assert world.physical(skus[1], a) == world.initial(skus[1], a) + 3


def test_concurrent_sends_never_spend_more_than_the_budget(world: SyncWorld) -> None:
    """Six mutations wait (a removal and an addition in each of three stores), three are left in the
    budget: three go, three wait (the token is taken before a send goes, not when its answer comes
    back). Kills: reserving after the send."""
    (sku,) = world.skus(1, min_stock=2)
    land(world.engine, *(e for st in world.estate.stores[:3] for e in (
        sale(st.newstore_node_id, sku, T0), receipt(st.newstore_node_id, {world.skus(2)[1]: 1}, T0))))
    now = [0.0]
    governor = Governor(share=0.5, clock=lambda: now[0])
    governor.observe([Row("MUTATION_COUNT", 10, 20, 3), Row("REQUEST_COUNT", 10, 60, 60)])
    sync = world.sync(SyncConfig(settle_s=0, send_window_s=0, batch_delay_s=None, max_in_flight=6),
                      governor=governor, clock=lambda: now[0])
    report = sync.pass_once()
    assert (report.mutations, report.deferred) == (3, 3)


def test_critical_goes_at_once_and_takes_its_warehouse_with_it_the_rest_waits_its_delay(world: SyncWorld) -> None:
    """Fresh sales: one takes the last unit online (critical), one of the same store and one of another
    store have plenty. The critical mutation goes now and carries its store's other removal; the other
    store's sale waits for `batch_delay_s`, and goes once it is that old.
    Kills: criticality not read for young mutations, `split_due` inverted, the delay ignored."""
    a, b = world.estate.stores[:2]
    stock = world.estate.initial_stock
    risky = next(s for s in world.estate.skus() if stock[a.newstore_node_id][s] == 1)
    plenty = [s for s in world.estate.skus() if stock[a.newstore_node_id][s] >= 5
              and stock[b.newstore_node_id][s] >= 5 and s != risky][:2]
    size = world.estate.by_sku[risky].size.size_id
    for loc in world.estate.locations:  # sold out online but for the one unit in store a
        if loc.centra_warehouse_id is not None and loc.centra_warehouse_id != a.centra_warehouse_id:
            world.centra.apply_stock_set("test setup", loc.centra_warehouse_id, [(size, 0)])
    now = datetime.now(UTC)
    land(world.engine, sale(a.newstore_node_id, risky, now), sale(a.newstore_node_id, plenty[0], now),
         sale(b.newstore_node_id, plenty[1], now))
    sync = world.sync(SyncConfig(settle_s=0, poll_s=0, safety_stock=0, batch_delay_s=60))
    first = sync.pass_once()
    assert (first.mutations, first.held) == (1, 1)
    assert world.physical(risky, a) == 0 and world.physical(plenty[0], a) == world.initial(plenty[0], a) - 1
    assert world.physical(plenty[1], b) == world.initial(plenty[1], b)  # batched: waits
    land(world.engine, sale(b.newstore_node_id, plenty[1], now - timedelta(seconds=61)))  # an older one lands
    second = sync.pass_once()
    assert (second.mutations, second.held) == (1, 0)  # its delay is up: both of store b's go together
    assert world.physical(plenty[1], b) == world.initial(plenty[1], b) - 2


def test_a_successor_takes_over_without_a_gap_and_nothing_is_lost_or_doubled(world: SyncWorld) -> None:
    """Run A (always-on, a long window) holds the lock; run B starts and waits as successor; A sees it,
    finishes its pass and hands over; B takes the lock and sends what lands next. Bounded: A's window
    is 120 s, the test's joins wait at most 60 s. Kills: no successor check (A runs its whole window
    and the join times out), B not waiting (SyncBusy), the successor lock not released."""
    skus = world.skus(6, min_stock=2)
    node = world.store.newstore_node_id
    config = SyncConfig(settle_s=0, poll_s=0.05, batch_delay_s=None, handover_wait_s=60)
    reports: dict[str, Any] = {}
    stop = threading.Event()

    def run(name: str, window: float) -> None:
        reports[name] = world.sync(config).run(window_s=window, stop=stop, hand_over=True)

    land(world.engine, *(sale(node, s, T0) for s in skus[:3]))
    first = threading.Thread(target=run, args=("a", 120.0))
    first.start()
    try:
        for _ in range(600):  # until A holds the lock and has sent the first sales
            if sync_running(world.engine) and world.physical(skus[0]) == world.initial(skus[0]) - 1:
                break
            threading.Event().wait(0.05)
        assert not successor_waiting(world.engine)
        second = threading.Thread(target=run, args=("b", 1.0))
        second.start()
        first.join(timeout=60)
        assert not first.is_alive(), "the running sync did not hand over"
        land(world.engine, *(sale(node, s, T0 + timedelta(minutes=1)) for s in skus[3:]))
        second.join(timeout=60)
        assert not second.is_alive()
    finally:
        stop.set()
        first.join(timeout=10)
    assert reports["a"].handed_over and not reports["b"].handed_over
    assert reports["a"].applied + reports["b"].applied == 6
    assert all(world.physical(s) == world.initial(s) - 1 for s in skus)  # each exactly once
    with sync_lock(world.engine):  # released by both
        pass


def test_without_hand_over_a_second_sync_is_refused_at_once(world: SyncWorld) -> None:
    from pipelines.sync import SyncBusy

    with sync_lock(world.engine), pytest.raises(SyncBusy):
        world.sync().run(window_s=0)


def test_the_intake_wakes_an_idle_sync_on_postgresql(world: SyncWorld) -> None:
    """PostgreSQL (psycopg 3 and psycopg2): new inbox events NOTIFY, and the waiting sync returns at
    once (the wait would otherwise last its 30 s timeout and say False). SQLite: a sleep of the timeout."""
    if world.engine.dialect.name != "postgresql":
        slept: list[float] = []
        with Wakeup(world.engine, slept.append) as wakeup:
            assert wakeup.wait(0.5) is False and slept == [0.5]
        return
    for driver in ("postgresql+psycopg", "postgresql+psycopg2"):
        engine = make_engine(world.engine.url.set(drivername=driver).render_as_string(hide_password=False))
        slept = []
        with Wakeup(engine, slept.append) as wakeup:
            timer = threading.Timer(0.2, lambda: land(world.engine, sale(world.store.newstore_node_id,
                                                                          world.skus(1)[0], T0)))
            timer.start()
            try:
                assert wakeup.wait(30.0) is True and slept == [], driver
            finally:
                timer.cancel()
            assert store_events(world.engine, []) == []  # no events, no notification
            assert wakeup.wait(0.1) is False, driver
        engine.dispose()


def test_keep_alive_waits_after_a_failed_run_then_restarts() -> None:
    last = LastRun("f" * 32, failed=True, ended_at=1000.0)
    assert decide([], last, 1010.0, window_s=900, lead_s=60).action == "skip"
    start = decide([], last, 1030.0, window_s=900, lead_s=60)
    assert (start.action, start.run_key) == ("start", f"stock-sync:after:{'f' * 32}")
    queued = decide([SyncRun("r" * 32, "queued")], None, 1030.0, window_s=900, lead_s=60)
    assert queued.action == "skip" and "starting" in queued.reason


def test_quota_share_is_mutations_over_the_hourly_quota_for_the_runs_life(world: SyncWorld) -> None:
    """900 mutations in half an hour against 1,800 an hour: the whole quota (1.0). Under a minute: None."""
    from pipelines.sync import RunReport

    governor = Governor(0.8, clock=lambda: 0.0)
    governor.observe([Row("MUTATION_COUNT", 3600, 1800, 1800)], now=0.0)
    sync = world.sync(governor=governor)
    report = RunReport(started_at="2026-11-20T10:00:00Z", finished_at="2026-11-20T10:30:00Z", budget_used=900)
    assert sync._quota_share(report) == 1.0
    short = RunReport(started_at="2026-11-20T10:00:00Z", finished_at="2026-11-20T10:00:59Z", budget_used=9)
    assert sync._quota_share(short) is None
