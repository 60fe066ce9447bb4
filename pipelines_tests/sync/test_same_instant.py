"""A count and a sale at the same POS instant (pure netting, `pipelines/domain/sync/netting.py`).

The documented order of one key's movements (`model.order_key`, docs/stock-sync.md "Counts and
deltas"): POS event time, then NewStore's logical timestamp, then counts before deltas ("a delta at
the very instant of a count is on top of it"), then the row id. So at the same event time:

* the logical timestamps decide: a sale stamped before the count was counted (absorbed); one stamped
  after it is on top of the count;
* without logical timestamps (or equal ones) the sale is on top of the count, whatever the row ids
  and the order of arrival.

The same holds when the count was already applied (the watermark) and the sale arrives late.
"""

from __future__ import annotations

import pytest

from pipelines.domain.sync import QueuedMovement, Watermark, net_key

T = "2026-11-20T10:00:00.000000Z"
WID, SKU = 7, "SKU-1"


def _count(ident: int, qty: int, lts: int | None) -> QueuedMovement:
    return QueuedMovement(ident, WID, SKU, "count", qty, T, lts)


def _sale(ident: int, lts: int | None) -> QueuedMovement:
    return QueuedMovement(ident, WID, SKU, "sale", -1, T, lts)


# (sale id, count id) pairs: both row-id orders, so the id never decides before the count/delta rule.
IDS = [(1, 2), (2, 1)]


@pytest.mark.parametrize(("sale_id", "count_id"), IDS)
def test_logical_timestamp_before_the_count_means_the_sale_was_counted(sale_id: int, count_id: int) -> None:
    # Kills: the logical timestamp ignored (`lts or 0` -> `0`: then counts-first puts the sale on top),
    # lts and the count/delta rank swapped in the order key.
    count, sold = _count(count_id, 10, lts=7), _sale(sale_id, lts=5)
    for pending in ([count, sold], [sold, count]):  # arrival order is irrelevant
        plan = net_key(pending, None)
        assert (plan.operation, plan.quantity) == ("set", 10)
        assert plan.applies == (count_id,) and plan.absorbs == (sale_id,)


@pytest.mark.parametrize(("sale_id", "count_id"), IDS)
def test_logical_timestamp_after_the_count_puts_the_sale_on_top(sale_id: int, count_id: int) -> None:
    # Kills: the logical timestamp ignored with deltas ranked before counts, `m.order > floor` flipped.
    count, sold = _count(count_id, 10, lts=7), _sale(sale_id, lts=9)
    for pending in ([count, sold], [sold, count]):
        plan = net_key(pending, None)
        assert (plan.operation, plan.quantity) == ("set", 9)
        assert set(plan.applies) == {count_id, sale_id} and plan.absorbs == ()


@pytest.mark.parametrize(("sale_id", "count_id"), IDS)
@pytest.mark.parametrize("lts", [(None, None), (7, 7)], ids=["both_none", "equal"])
def test_same_instant_without_an_order_puts_the_sale_on_top_of_the_count(
        sale_id: int, count_id: int, lts: tuple[int | None, int | None]) -> None:
    # Kills: counts ranked after deltas (`0 if is_count else 1` flipped), the count/delta rank dropped
    # from the order key (then the row id decides: caught by the (1, 2) ids).
    count, sold = _count(count_id, 10, lts=lts[0]), _sale(sale_id, lts=lts[1])
    for pending in ([count, sold], [sold, count]):
        plan = net_key(pending, None)
        assert (plan.operation, plan.quantity) == ("set", 9)
        assert set(plan.applies) == {count_id, sale_id} and plan.absorbs == ()


@pytest.mark.parametrize(("sale_lts", "count_lts", "expected"), [
    (5, 7, ("none", 0)),  # stamped before the applied count: it was counted, absorbed
    (9, 7, ("delta", -1)),  # stamped after it: on top
    (None, None, ("delta", -1)),  # no order: on top (counts first)
])
def test_a_late_sale_at_the_instant_of_an_applied_count(sale_lts: int | None, count_lts: int | None,
                                                        expected: tuple[str, int]) -> None:
    # The count went out already (watermark); the sale of the same instant arrives afterwards, with a
    # smaller row id than the count (re-queued). Kills: `Watermark.order` ranking the count as a delta,
    # the watermark floor ignored, `m.order > floor` flipped.
    watermark = Watermark(T, count_lts, 10, movement_id=50)
    plan = net_key([_sale(3, sale_lts)], watermark)
    assert (plan.operation, plan.quantity) == expected
    assert (plan.applies, plan.absorbs) == (((), (3,)) if expected[0] == "none" else ((3,), ()))
