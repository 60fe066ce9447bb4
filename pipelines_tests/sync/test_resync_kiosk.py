"""The full resync and kiosk take-home sales: NewStore never records them, so its on-hand stays too high until the
store counts the key; the resync must set Centra to the shelf (on-hand less the kiosk units sold after the key's
latest real count), not to NewStore's figure (which would undo the kiosk deductions: an oversell).

Real SQLite and PostgreSQL (`db_url`), Centra and NewStore simulators over loopback, the real stock sync. The oracle
is the estate's initial stock (what both simulators start with) and the units the test sells and counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from pipelines.connectors.newstore import NewStoreClient
from pipelines.domain.flows.kiosk import Movement, movement_key
from pipelines.domain.kiosk.uncounted import shelf_on_hand, uncounted_units
from pipelines.domain.timeutil import utc_text
from pipelines.simulators.newstore import NewStoreSimulator
from pipelines.simulators.serving import serve
from pipelines.sync.kiosk_movements import queue_kiosk_sales
from pipelines.sync.resync import kiosk_units_uncounted, kiosk_units_uncounted_at, queue_corrections
from pipelines_tests.sync.conftest import T0, SyncWorld, iso, land

_ORDER = iter(range(1, 1000))


def _kiosk_sale(world: SyncWorld, sku: str, units: int, at: datetime) -> None:
    """A paid take-home kiosk order of `units` of `sku` at the world's store, queued as the order flow does."""
    order = f"gid://cloudshelf/Order/test-{next(_ORDER)}"
    move = Movement(movement_key(order, "line-1"), world.store.id, sku, -units, utc_text(at))
    assert queue_kiosk_sales(world.engine, world.estate, [move], inbox_event_id=0, order_id=order) == 1


def _count(world: SyncWorld, ns: NewStoreSimulator, sku: str, shelf: int, at: datetime) -> None:
    """A store count: NewStore's on-hand becomes `shelf`, and its event lands in the inbox for the sync."""
    node = world.store.newstore_node_id
    for payload in ns.state.count_stock(node, {sku: shelf}, at=at):
        land(world.engine, {"name": "inventory_count.items_counted", "published_at": iso(at), "payload": payload})


def _resync(world: SyncWorld, ns: NewStoreSimulator, **kw):  # noqa: ANN202
    with serve(ns.app) as srv, NewStoreClient(srv.url, "t", "pipelines", "secret") as pos:
        return queue_corrections(world.engine, world.estate, world.client(), pos, **kw)


def _corrections(world: SyncWorld) -> list[tuple[str, int]]:
    with world.engine.connect() as conn:
        rows = conn.execute(text("SELECT sku, quantity FROM stock_sync_movements WHERE event_name = 'stock_resync' "
                                 "ORDER BY event_time, sku")).all()
    return [tuple(r) for r in rows]


def test_resync_keeps_kiosk_deductions_and_still_corrects_real_drift(world: SyncWorld) -> None:
    """Kills: the resync setting Centra to NewStore's on-hand (kiosk units given back: oversell); skipping keys with
    kiosk sales altogether (B's real drift would stay); a resync correction taken for a count of the shelf (the
    second resync would give B's kiosk unit back)."""
    ns = NewStoreSimulator(world.estate, tenant="t", clients={"pipelines": "secret"})
    a, b = world.skus(2, min_stock=4)
    wid = world.store.centra_warehouse_id
    _kiosk_sale(world, a, 2, T0 - timedelta(days=3))
    _kiosk_sale(world, b, 1, T0 - timedelta(days=3))
    world.sync().run(window_s=0)
    assert world.physical(a) == world.initial(a) - 2 and world.physical(b) == world.initial(b) - 1
    assert ns.state.on_hand(world.store.newstore_node_id, a) == world.initial(a)  # NewStore never saw the sale
    # someone else's integration adds a unit of B in Centra: real drift, the shelf has initial - 1
    world.centra.apply_stock_change("manual edit", [(world.estate.by_sku[b].size.size_id, 1)], into=wid)

    first = _resync(world, ns, now=lambda: T0 - timedelta(days=2))
    assert first.differing == 1 and first.corrections_queued == 1
    assert first.kiosk_units == 3
    assert _corrections(world) == [(b, world.initial(b) - 1)]
    world.sync().run(window_s=0)
    assert world.physical(a) == world.initial(a) - 2
    assert world.physical(b) == world.initial(b) - 1

    second = _resync(world, ns)  # after the first resync's synthetic count of B
    assert second.differing == 0 and second.corrections_queued == 0 and second.kiosk_units == 3
    world.sync().run(window_s=0)
    assert world.physical(a) == world.initial(a) - 2 and world.physical(b) == world.initial(b) - 1


def test_resync_after_a_count_subtracts_only_the_kiosk_units_sold_since(world: SyncWorld) -> None:
    """A count measures the shelf: kiosk units before it are in it. Kills: subtracting every kiosk unit of the key
    (would want initial - 5), ignoring the kiosk units after the count (would want initial - 2) or the count
    itself (would want initial - 5 or leave Centra at initial - 2)."""
    ns = NewStoreSimulator(world.estate, tenant="t", clients={"pipelines": "secret"})
    (a,) = world.skus(1, min_stock=6)
    wid = world.store.centra_warehouse_id
    _kiosk_sale(world, a, 2, T0 - timedelta(days=3))
    world.sync().run(window_s=0)
    counted_at = T0 - timedelta(days=2)
    _count(world, ns, a, world.initial(a) - 2, counted_at)  # the shelf: the kiosk's 2 units are gone
    world.sync().run(window_s=0)
    assert world.physical(a) == world.initial(a) - 2
    _kiosk_sale(world, a, 1, T0 - timedelta(days=1))  # after the count: NewStore does not know it
    world.sync().run(window_s=0)
    assert world.physical(a) == world.initial(a) - 3
    world.centra.apply_stock_change("manual edit", [(world.estate.by_sku[a].size.size_id, 1)], into=wid)

    # as of a moment (the reconciliation's cut-offs): before the count all 2 units, after it only the later one
    assert kiosk_units_uncounted(world.engine, at=utc_text(counted_at - timedelta(hours=1))) == {(wid, a): 2}
    assert kiosk_units_uncounted(world.engine, at=utc_text(counted_at)) == {}
    assert kiosk_units_uncounted(world.engine) == {(wid, a): 1}
    # several cut-offs from one read (the reconciliation's day and previous day): the same known answers
    assert kiosk_units_uncounted_at(world.engine, [utc_text(counted_at - timedelta(hours=1)), utc_text(counted_at),
                                                   None]) == [{(wid, a): 2}, {}, {(wid, a): 1}]
    report = _resync(world, ns)
    assert report.kiosk_units == 1
    assert _corrections(world) == [(a, world.initial(a) - 3)]
    world.sync().run(window_s=0)
    assert world.physical(a) == world.initial(a) - 3
    settled = _resync(world, ns, quiet_s=0)  # the correction is no count: the kiosk unit still counts
    assert settled.differing == 0 and settled.kiosk_units == 1


def test_uncounted_units_known_answers() -> None:
    """The pure arithmetic. Kills: a sale at the count's instant counted as uncounted, a count after `at` taken,
    a later count of another key applied to this one, and a negative shelf."""
    t = lambda h: datetime(2026, 11, 20, h, tzinfo=UTC)  # noqa: E731
    sales = [("A", t(1), 2), ("A", t(3), 1), ("A", t(5), 4), ("B", t(2), 3), ("C", t(4), 1), ("D", t(9), 2)]
    counts = [("A", t(3)), ("A", t(2)), ("B", t(6)), ("A", t(8)), ("D", t(7))]
    assert uncounted_units(sales, counts, at=t(7)) == {"A": 4, "C": 1}
    assert uncounted_units(sales, counts) == {"C": 1, "D": 2}
    assert uncounted_units(sales, [], at=utc_text(t(4))) == {"A": 3, "B": 3, "C": 1}
    assert shelf_on_hand(5, 2) == 3 and shelf_on_hand(1, 3) == 0
    assert uncounted_units([], counts) == {}
