"""Netting per (warehouse, SKU): deltas commute, counts combine with deltas by event time."""

from __future__ import annotations

import itertools
import random

import pytest

from pipelines.domain.sync import QueuedMovement, Watermark, group_mutations, net_key, newer_count

W, SKU = 2, "P1001BLKS"


def mv(i: int, kind: str, qty: int, minute: int, lt: int | None = None) -> QueuedMovement:
    return QueuedMovement(i, W, SKU, kind, qty, f"2026-11-20T10:{minute:02d}:00.000000Z", lt if lt else minute)


def simulate(arrivals: list[list[QueuedMovement]], initial: int) -> int:
    """Apply plans batch by batch as the sync would, against a fake Centra physical quantity."""
    physical, watermark, applied = initial, None, []
    for batch in arrivals:
        count = newer_count(batch, watermark)
        after = sum(m.quantity for m in applied
                    if not m.is_count and count is not None and m.order > count.order)
        plan = net_key(batch, watermark, after)
        if plan.operation == "set":
            physical, watermark = plan.quantity, plan.watermark
        elif plan.operation == "delta":
            physical += plan.quantity
        applied += [m for m in batch if m.id in plan.applies]
    return physical


def truth(moves: list[QueuedMovement], initial: int) -> int:
    qty = initial
    for m in sorted(moves, key=lambda m: m.order):
        qty = m.quantity if m.is_count else qty + m.quantity
    return qty


STREAM = [mv(1, "sale", -1, 1), mv(2, "count", 5, 2), mv(3, "sale", -1, 3), mv(4, "receipt", 3, 4),
          mv(5, "return", 1, 5), mv(6, "count", 9, 6), mv(7, "sale", -2, 7)]


def test_deltas_only_net_to_their_sum() -> None:
    plan = net_key([mv(1, "sale", -1, 1), mv(2, "sale", -2, 2), mv(3, "return", 1, 3)], None)
    assert (plan.operation, plan.quantity, set(plan.applies), plan.absorbs) == ("delta", -2, {1, 2, 3}, ())


def test_deltas_that_cancel_need_no_mutation() -> None:
    plan = net_key([mv(1, "sale", -1, 1), mv(2, "return", 1, 2)], None)
    assert plan.operation == "none" and set(plan.applies) == {1, 2}


def test_count_absorbs_older_deltas_and_carries_newer_ones() -> None:
    plan = net_key([mv(1, "sale", -1, 1), mv(2, "count", 5, 2), mv(3, "sale", -1, 3)], None)
    assert (plan.operation, plan.quantity) == ("set", 4)
    assert plan.absorbs == (1,) and set(plan.applies) == {2, 3}
    assert plan.watermark == Watermark("2026-11-20T10:02:00.000000Z", 2, 5, 2)


def test_count_includes_deltas_already_applied_after_it() -> None:
    """A sale at 10:03 went out before the 10:02 count arrived: setStock must keep it."""
    late_count = [mv(2, "count", 5, 2)]
    assert net_key(late_count, None, applied_after=-1).quantity == 4


def test_late_delta_older_than_the_watermark_is_absorbed() -> None:
    wm = Watermark("2026-11-20T10:02:00.000000Z", 2, 5, 2)
    plan = net_key([mv(1, "sale", -1, 1), mv(3, "sale", -1, 3)], wm)
    assert (plan.operation, plan.quantity, plan.absorbs, plan.applies) == ("delta", -1, (1,), (3,))


def test_late_count_older_than_the_watermark_changes_nothing() -> None:
    wm = Watermark("2026-11-20T10:06:00.000000Z", 6, 9, 6)
    plan = net_key([mv(2, "count", 5, 2)], wm)
    assert plan.operation == "none" and plan.absorbs == (2,) and plan.applies == ()


def test_same_instant_orders_by_logical_timestamp_then_count_first() -> None:
    sale_first = [mv(1, "sale", -1, 2, lt=10), mv(2, "count", 5, 2, lt=11)]
    assert net_key(sale_first, None).quantity == 5  # the count already includes the sale
    count_first = [mv(1, "sale", -1, 2, lt=12), mv(2, "count", 5, 2, lt=11)]
    assert net_key(count_first, None).quantity == 4


def test_negative_pos_stock_is_mirrored_as_zero() -> None:
    assert net_key([mv(1, "count", 0, 1), mv(2, "sale", -1, 2)], None).quantity == 0


@pytest.mark.parametrize("seed", range(12))
def test_any_arrival_order_and_batching_ends_at_the_event_time_truth(seed: int) -> None:
    rng = random.Random(seed)
    order = STREAM[:]
    rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(order)), rng.randint(0, len(order) - 1)))
    batches = [order[a:b] for a, b in itertools.pairwise([0, *cuts, len(order)])]
    assert simulate(batches, initial=3) == truth(STREAM, 3) == 7


def test_every_permutation_one_at_a_time() -> None:
    for perm in itertools.permutations(STREAM[:5]):
        assert simulate([[m] for m in perm], initial=2) == truth(list(perm), 2)


def test_grouping_per_warehouse_and_direction() -> None:
    plans = [QueuedMovement(1, 2, "A", "sale", -1, "2026-11-20T10:00:00.000000Z"),
             QueuedMovement(2, 2, "B", "receipt", 2, "2026-11-20T10:00:00.000000Z"),
             QueuedMovement(3, 2, "C", "count", 4, "2026-11-20T10:00:00.000000Z"),
             QueuedMovement(4, 3, "A", "sale", -1, "2026-11-20T10:00:00.000000Z"),
             QueuedMovement(5, 2, "D", "sale", -1, "2026-11-20T10:00:00.000000Z", isolate=True)]
    muts = group_mutations([net_key([m], None) for m in plans], max_lines=200)
    shape = sorted((m.warehouse_id, m.operation, tuple(sorted(m.lines.items()))) for m in muts)
    assert shape == [(2, "add", (("B", 2),)), (2, "remove", (("A", 1),)), (2, "remove", (("D", 1),)),
                     (2, "set", (("C", 4),)), (3, "remove", (("A", 1),))]
    assert len(group_mutations([net_key([QueuedMovement(i, 2, f"S{i}", "sale", -1, "t")], None)
                                for i in range(5)], max_lines=2)) == 3
