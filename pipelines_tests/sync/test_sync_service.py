"""The sync service against the Centra simulator over loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import text

from pipelines.domain.sync import Governor
from pipelines.sync import StockSync, SyncConfig
from pipelines.sync.batches import Batch
from pipelines.sync.replay import requeue
from pipelines_tests.sync.conftest import T0, SyncWorld, age_inbox, count, land, receipt, sale
from pipelines_tests.sync.conftest import RateRow as Row


class SimulatedCrash(BaseException):
    """The process dies: not an Exception, so nothing in the sync catches it."""


def ledger_entries(world: SyncWorld, description: str) -> list[dict]:
    return [c for c in world.centra.stock_changes() if c["description"] == description]


def test_movements_reach_centra_and_are_recorded(world: SyncWorld) -> None:
    sku, other = world.skus(2, min_stock=2)
    node = world.store.newstore_node_id
    land(world.engine, sale(node, sku, T0, quantity=2), receipt(node, {other: 3}, T0 + timedelta(minutes=1)),
         sale(node, other, T0 + timedelta(minutes=2)))
    report = world.sync().run(window_s=0)
    assert world.physical(sku) == world.initial(sku) - 2
    assert world.physical(other) == world.initial(other) + 2
    assert report.applied == 3 and report.mutations == 2 and report.pending_after == 0
    assert world.statuses() == {"done": 3}
    with world.engine.connect() as conn:
        ledger = conn.execute(text("SELECT sku, operation, quantity FROM stock_sync_ledger ORDER BY sku")).all()
        runs = conn.execute(text("SELECT applied, mutations FROM stock_sync_runs")).all()
    assert sorted(map(tuple, ledger)) == sorted([(sku, "remove", -2), (other, "add", 2)])
    assert [tuple(r) for r in runs] == [(3, 2)]


def test_duplicate_deliveries_apply_once(world: SyncWorld) -> None:
    sku = world.skus(1, min_stock=1)[0]
    event = sale(world.store.newstore_node_id, sku, T0)
    assert land(world.engine, event, event) == [True, False]
    world.sync().run(window_s=0)
    land(world.engine, event)
    world.sync().run(window_s=0)
    assert world.physical(sku) == world.initial(sku) - 1


@pytest.mark.parametrize(("seed", "counts_as"), [(1, "delta"), (2, "delta"), (3, "set")])
def test_count_vs_delta_ordering_in_any_arrival_order(world: SyncWorld, seed: int, counts_as: str) -> None:
    """The same story (sale, count, sale, receipt, adjustment, count, sale) delivered in different
    orders and batches, one SKU per ordering: Centra ends at the event-time truth every time, with
    counts sent as deltas against Centra's physical stock or as setStock."""
    node = world.store.newstore_node_id
    story = [lambda s, t: sale(node, s, t), lambda s, t: count(node, {s: 5}, t), lambda s, t: sale(node, s, t),
             lambda s, t: receipt(node, {s: 3}, t), lambda s, t: receipt(node, {s: 1}, t, adjusted=True),
             lambda s, t: count(node, {s: 9}, t), lambda s, t: sale(node, s, t, quantity=2)]
    rng = random.Random(seed)
    skus = world.skus(6)
    orders = [list(range(len(story)))] + [rng.sample(range(len(story)), len(story)) for _ in skus[1:]]
    events = {sku: [make(sku, T0 + timedelta(minutes=i)) for i, make in enumerate(story)] for sku in skus}
    sync = world.sync(SyncConfig(settle_s=0, poll_s=0, counts_as=counts_as))
    for step in range(len(story)):
        land(world.engine, *[events[sku][order[step]] for sku, order in zip(skus, orders, strict=True)])
        if rng.random() < 0.6:  # sometimes several arrive before a pass
            sync.run(window_s=0)
    sync.run(window_s=0)
    for sku in skus:
        assert world.physical(sku) == 9 - 2, sku
    statuses = world.statuses()
    assert set(statuses) <= {"done", "superseded"} and sum(statuses.values()) == len(skus) * len(story)


def test_crash_between_centra_accepting_and_our_commit_is_not_applied_twice(world: SyncWorld) -> None:
    sku, other = world.skus(2, min_stock=2)
    node = world.store.newstore_node_id
    land(world.engine, sale(node, sku, T0), sale(node, other, T0))
    accepted: list[Batch] = []

    def die(batch: Batch) -> None:
        accepted.append(batch)
        raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        world.sync(after_accept=die).run(window_s=0)
    (batch,) = accepted
    assert world.physical(sku) == world.initial(sku) - 1  # Centra has it...
    assert world.statuses() == {"in_flight": 2}  # ...we never committed

    land(world.engine, sale(node, sku, T0 + timedelta(minutes=1)))  # more trading meanwhile
    report = world.sync().run(window_s=0)
    assert report.recovered == 1
    assert len({c["stock_change_id"] for c in ledger_entries(world, batch.description)}) == 1
    assert world.physical(sku) == world.initial(sku) - 2
    assert world.physical(other) == world.initial(other) - 1
    assert world.statuses() == {"done": 3}
    with world.engine.connect() as conn:
        row = conn.execute(text("SELECT status, recovered, attempts FROM stock_sync_batches WHERE batch_id = :b"),
                           {"b": batch.batch_id}).one()
    assert tuple(row) == ("applied", 1, 1)


def test_crash_before_centra_accepted_resends_once(world: SyncWorld) -> None:
    sku = world.skus(1, min_stock=1)[0]
    land(world.engine, sale(world.store.newstore_node_id, sku, T0))
    sync = world.sync()
    sync.governor.observe(world.client().rate_limits())  # so the next request is the mutation
    world.centra.fail_next(500)  # the mutation fails; the ledger lookup that follows finds nothing
    first = sync.run(window_s=0)
    assert first.errors and world.physical(sku) == world.initial(sku)
    assert world.statuses() == {"in_flight": 1}
    second = world.sync().run(window_s=0)
    assert second.recovered == 0 and second.applied == 1
    assert world.physical(sku) == world.initial(sku) - 1


def test_gateway_error_after_centra_applied_is_found_in_the_ledger(world: SyncWorld) -> None:
    sku = world.skus(1, min_stock=1)[0]
    land(world.engine, sale(world.store.newstore_node_id, sku, T0))
    sync = world.sync()
    sync.governor.observe(world.client().rate_limits())
    world.centra.fail_next(502, after_execute=True)  # applied, then answered 502
    report = sync.run(window_s=0)
    assert report.applied == 1 and world.statuses() == {"done": 1}
    assert world.physical(sku) == world.initial(sku) - 1


def test_429_storm_is_waited_out_without_loss(world: SyncWorld) -> None:
    skus = world.skus(3, min_stock=1)
    land(world.engine, *[sale(world.store.newstore_node_id, s, T0) for s in skus])
    world.centra.fail_next(429, count=3, retry_after=0)
    sync = world.sync(SyncConfig(settle_s=0, poll_s=0, max_wait_s=0.2))
    for _ in range(6):
        sync.run(window_s=0)
    assert all(world.physical(s) == world.initial(s) - 1 for s in skus)
    assert world.statuses() == {"done": 3}


def test_starved_budget_serves_the_oversell_risk_first(world: SyncWorld) -> None:
    """Three warehouses wait; the budget covers one mutation: it goes to the sale that leaves the SKU's
    online free-to-allocate (DC + stores of the market's allocation rule) at the safety stock."""
    a, b, c = world.estate.stores[:3]
    node_stock = world.estate.initial_stock
    risky = next(s for s in world.estate.skus() if node_stock[b.newstore_node_id][s] == 1)
    plenty = next(s for s in world.estate.skus() if node_stock[a.newstore_node_id][s] >= 5)
    size = world.estate.by_sku[risky].size.size_id
    for loc in (world.estate.distribution_centre, a, c):  # sold out online except the one unit in store b
        world.centra.apply_stock_set("test setup", loc.centra_warehouse_id, [(size, 0)])
    land(world.engine, sale(a.newstore_node_id, plenty, T0),  # oldest, but the DC has plenty online
         receipt(c.newstore_node_id, {plenty: 2}, T0 + timedelta(seconds=1)),
         sale(b.newstore_node_id, risky, T0 + timedelta(seconds=2)))  # the last unit online (within max_defer_s)
    now = [0.0]  # a frozen clock: no refill between observations
    governor = Governor(share=0.5, clock=lambda: now[0])
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])  # one mutation left
    sync = world.sync(SyncConfig(settle_s=0, safety_stock=0, send_window_s=0), governor=governor,
                      clock=lambda: now[0])
    report = sync.pass_once()
    assert report.mutations == 1 and report.deferred == 2
    assert world.physical(risky, b) == 0
    assert world.physical(plenty, a) == world.initial(plenty, a)
    now[0] = 10.0
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])  # again only one
    sync.pass_once()
    assert world.physical(plenty, a) == world.initial(plenty, a) - 1  # then the oldest
    assert world.physical(plenty, c) == world.initial(plenty, c)


def test_a_pass_keeps_sending_in_priority_order_as_the_budget_refills(world: SyncWorld) -> None:
    """One token now, more later: within its send window the pass waits for each token instead of
    ending (planning a pass costs more than waiting), and sends every warehouse's mutation in order."""
    a, b, c = world.estate.stores[:3]
    skus = world.skus(3, min_stock=2)
    land(world.engine, sale(a.newstore_node_id, skus[0], T0), sale(b.newstore_node_id, skus[1], T0),
         sale(c.newstore_node_id, skus[2], T0))
    now, waits = [0.0], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    governor = Governor(share=0.5, clock=lambda: now[0])
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])
    sync = world.sync(SyncConfig(settle_s=0, send_window_s=5), governor=governor, clock=lambda: now[0], sleep=sleep)
    report = sync.pass_once()
    assert report.mutations == 3 and report.deferred == 0 and len(waits) == 2
    assert [world.physical(s, st) for s, st in zip(skus, (a, b, c), strict=True)] == [
        world.initial(s, st) - 1 for s, st in zip(skus, (a, b, c), strict=True)]
    fresh = Governor(share=0.5, clock=lambda: now[0])
    fresh.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])
    short = world.sync(SyncConfig(settle_s=0, send_window_s=0), governor=fresh, clock=lambda: now[0], sleep=sleep)
    land(world.engine, sale(a.newstore_node_id, skus[0], T0 + timedelta(minutes=1)),
         sale(b.newstore_node_id, skus[1], T0 + timedelta(minutes=1)))
    rep = short.pass_once()
    assert (rep.mutations, rep.deferred) == (1, 1)  # no window: what the budget does not cover waits for the next pass


def test_ranking_reuses_its_stock_read_and_rereads_keys_it_changed(world: SyncWorld) -> None:
    """Ranking reads Centra's stock of every warehouse of the allocation rule: that read is cached for
    `rank_cache_s`, except for the keys a committed batch changed."""
    a, b = world.estate.stores[:2]
    stock = world.estate.initial_stock
    skus = [s for s in world.estate.skus()
            if min(stock[a.newstore_node_id][s], stock[b.newstore_node_id][s]) >= 3][:2]
    now, queries = [0.0], []
    client = world.client()
    execute = client.execute

    def counting(query: str, variables: dict | None = None) -> dict:
        queries.append(query.split("(")[0].split()[-1])
        return execute(query, variables)

    client.execute = counting  # type: ignore[method-assign]  # a spy on the real client
    governor = Governor(share=0.5, clock=lambda: now[0])
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])
    sync = StockSync(world.engine, world.estate, client, SyncConfig(settle_s=0, send_window_s=0, rank_cache_s=30),
                     governor=governor, clock=lambda: now[0])
    land(world.engine, sale(a.newstore_node_id, skus[0], T0), sale(b.newstore_node_id, skus[1], T0))
    sync.pass_once()  # two mutations, one token: ranked with one stock read; one sent
    assert queries.count("SyncStock") == 1
    before = dict(sync._stock_cache)
    land(world.engine, sale(a.newstore_node_id, skus[0], T0 + timedelta(seconds=1)),
         sale(b.newstore_node_id, skus[1], T0 + timedelta(seconds=1)))
    now[0] = 5.0
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])  # short again
    rep2 = sync.pass_once()  # within the cache age: only the key changed by the sent batch is read again
    assert queries.count("SyncStock") == 2, (queries, rep2)
    reread = {k for k, v in sync._stock_cache.items() if v[2] == 5.0}
    assert len(reread) == 1 and reread.isdisjoint(before)  # only the key pass 1 changed (dropped on commit)
    assert all(sync._stock_cache[k] == v for k, v in before.items() if k in sync._stock_cache)  # reused
    now[0] = 100.0
    land(world.engine, sale(a.newstore_node_id, skus[0], T0 + timedelta(seconds=2)),
         sale(b.newstore_node_id, skus[1], T0 + timedelta(seconds=2)))
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])
    sync.pass_once()
    assert queries.count("SyncStock") == 3  # expired: read again


def test_unknown_sku_and_location_become_exceptions_not_crashes(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    known = world.skus(1, min_stock=1)[0]
    land(world.engine, sale(node, "POSONLY-00001", T0), sale("XX99", known, T0), sale(node, known, T0))
    report = world.sync().run(window_s=0)
    assert report.applied == 1 and world.physical(known) == world.initial(known) - 1
    assert world.statuses() == {"done": 1, "unmapped": 2}
    with world.engine.connect() as conn:
        rows = conn.execute(text("SELECT exception_type, owner_team, payload FROM exceptions ORDER BY 1")).all()
    assert [(r[0], r[1]) for r in rows] == [("unknown_sku", "ecommerce"), ("unmapped_location", "integration")]
    assert all(json.loads(r[2])["name"] == "order.opened" for r in rows)  # the raw event is kept


def test_dc_movements_are_kept_but_not_synced(world: SyncWorld) -> None:
    dc = world.estate.distribution_centre
    sku = world.skus(1)[0]
    land(world.engine, receipt(dc.newstore_node_id, {sku: 5}, T0))
    world.sync().run(window_s=0)
    assert world.statuses() == {"skipped": 1}
    assert world.physical(sku, dc) == world.initial(sku, dc)


def test_rejection_fails_only_the_culprit_and_replay_sends_it_later(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    empty = next(s for s in world.estate.skus() if world.initial(s) == 0)
    fine = world.skus(1, min_stock=1)[0]
    land(world.engine, sale(node, empty, T0), sale(node, fine, T0))  # POS sold a unit Centra does not have
    first = world.sync().run(window_s=0)
    assert first.failed == 1 and first.pending_after == 1  # the other line goes back to the queue...
    world.sync().run(window_s=0)  # ...and out with the next pass
    assert world.physical(fine) == world.initial(fine) - 1
    assert world.statuses() == {"done": 1, "failed": 1}
    with world.engine.connect() as conn:
        exc = conn.execute(text("SELECT exception_type, owner_team, sku FROM exceptions")).all()
    assert [tuple(r) for r in exc] == [("stock_sync_rejected", "ecommerce", empty)]

    wid = world.store.centra_warehouse_id
    world.centra.apply_stock_change("manual fix", [(world.estate.by_sku[empty].size.size_id, 1)], into=wid)
    replayed = requeue(world.engine, world.estate, sku=empty)
    assert replayed.requeued == 1
    world.sync().run(window_s=0)
    assert world.physical(empty) == 0 and world.statuses() == {"done": 2}


def test_ingest_cursor_skips_settled_events_and_rereads_recent_ones(world: SyncWorld) -> None:
    node = world.store.newstore_node_id
    skus = world.skus(2, min_stock=1)
    land(world.engine, sale(node, skus[0], T0))
    sync = world.sync(SyncConfig(settle_s=60, poll_s=0))
    sync.run(window_s=0)
    with world.engine.connect() as conn:
        cursor = conn.execute(text("SELECT value FROM stock_sync_cursors WHERE name = 'inbox'")).scalar()
    assert cursor is None  # younger than the settle window: read again next time (but not re-applied)
    age_inbox(world.engine)
    land(world.engine, sale(node, skus[1], T0))
    sync.run(window_s=0)
    assert [world.physical(s) for s in skus] == [world.initial(s) - 1 for s in skus]
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM stock_sync_cursors WHERE name = 'inbox'")).scalar() >= 1


def test_a_second_sync_process_is_refused(world: SyncWorld) -> None:
    from pipelines.sync import SyncBusy, sync_lock

    with sync_lock(world.engine), pytest.raises(SyncBusy):
        world.sync().run(window_s=0)


def test_drain_keeps_sending_while_movements_arrive(world: SyncWorld) -> None:
    """One run drains: a movement that lands while it runs goes out in the same run, by a later pass.

    No wall clock: the run's clock is fake and its `sleep` (called between passes) is where the trader
    lands the next sale, so each sale lands after the previous pass and before the next one; the last
    sale moves the clock to the end of the drain, leaving exactly one more pass. Kills: a run that stops
    after one pass (deadline from `drain_s` lost, `now >= deadline` flipped), an ingest cursor that
    skips events landed between passes, passes that stop ingesting or sending after the first."""
    node = world.store.newstore_node_id
    skus = world.skus(8, min_stock=1)
    drain_s = 50.0
    now = [0.0]
    landed: list[str] = []

    def between_passes(seconds: float) -> None:
        assert len(landed) < len(skus), "the run should have ended"  # bounds the loop
        prev = landed[-1]
        assert world.physical(prev) == world.initial(prev) - 1, f"{prev} not applied by the pass after it landed"
        sku = skus[len(landed)]
        land(world.engine, sale(node, sku, T0 + timedelta(seconds=len(landed))))
        landed.append(sku)
        now[0] += max(seconds, 0.5)
        if len(landed) == len(skus):
            now[0] = max(now[0], drain_s)  # the drain ends after the next pass

    land(world.engine, sale(node, skus[0], T0))
    landed.append(skus[0])
    sync = StockSync(world.engine, world.estate, world.client(), SyncConfig(settle_s=0, poll_s=0.05),
                     clock=lambda: now[0], sleep=between_passes)
    report = sync.run(window_s=drain_s)
    assert landed == skus
    assert report.passes == len(skus)  # one pass per landed sale
    assert report.applied == len(skus) and report.pending_after == 0
    assert all(world.physical(s) == world.initial(s) - 1 for s in skus)  # no catch-up run needed
