"""Oversell-risk ranking for a warehouse that sells online through two allocation rules.

Store a's warehouse belongs to rule "DC + a" (the DC has plenty) and to rule "a + b" (nearly sold
out). A sale in store a threatens an oversell through the second rule, so when the budget covers one
mutation it must go before an older, harmless sale elsewhere; when both rules have plenty, the older
sale goes first.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text

from pipelines.domain.sync import Governor
from pipelines.estate.model import AllocationRule
from pipelines.sync import StockSync, SyncConfig
from pipelines_tests.sync.conftest import T0, SyncWorld, land, sale
from pipelines_tests.sync.conftest import RateRow as Row


@pytest.mark.parametrize("risky_rule_first", [True, False])
@pytest.mark.parametrize("b_stock", [1, 5], ids=["rule_a_b_nearly_sold_out", "both_rules_plenty"])
def test_a_sale_is_critical_when_any_rule_its_warehouse_sells_through_is_nearly_sold_out(
        world: SyncWorld, risky_rule_first: bool, b_stock: int) -> None:
    # Kills (CentraStockTarget.selling_groups / governor.mark_critical): a warehouse mapped to its last rule only
    # (`out[w] = [...]`, caught with the risky rule first), to its first rule only (caught with it last),
    # the least exposed rule counted instead of the most exposed (`min` -> `max`), and, in the mirror
    # case, a rule's warehouses left unread (unread stock counts as zero, so the mirror turns critical).
    dc, (a, b, c) = world.estate.distribution_centre, world.estate.stores[:3]
    stock = world.estate.initial_stock
    risky = world.estate.skus()[0]
    plenty = next(s for s in world.estate.skus()[1:] if stock[c.newstore_node_id][s] >= 5)
    size = world.estate.by_sku[risky].size.size_id
    for loc, qty in ((dc, 40), (a, 1), (b, b_stock)):
        world.centra.apply_stock_set("test setup", loc.centra_warehouse_id, [(size, qty)])
    rules = [AllocationRule(1, "DC + a", (dc.centra_warehouse_id, a.centra_warehouse_id)),
             AllocationRule(2, "a + b", (a.centra_warehouse_id, b.centra_warehouse_id))]
    if risky_rule_first:
        rules.reverse()
    estate = replace(world.estate, centra=replace(world.estate.centra, allocation_rules=tuple(rules)))

    land(world.engine, sale(c.newstore_node_id, plenty, T0),  # older; store c is in no rule, plenty there
         sale(a.newstore_node_id, risky, T0 + timedelta(seconds=2)))  # a + b: 1 + 1 - 1 = 1 <= safety stock
    now = [0.0]  # a frozen clock: no refill
    governor = Governor(share=0.5, clock=lambda: now[0])
    governor.observe([Row("MUTATION_COUNT", 10, 20, 1), Row("REQUEST_COUNT", 10, 60, 60)])  # one mutation
    sync = StockSync(world.engine, estate, world.client(), SyncConfig(settle_s=0, safety_stock=1, send_window_s=0),
                     governor=governor, clock=lambda: now[0])
    report = sync.pass_once()
    assert (report.mutations, report.deferred) == (1, 1)
    with world.engine.connect() as conn:
        ((warehouse, critical),) = conn.execute(text("SELECT warehouse_id, critical FROM stock_sync_batches")).all()
    if b_stock == 1:  # the oversell risk overtakes the older sale
        assert (warehouse, critical) == (a.centra_warehouse_id, 1)
        assert world.physical(risky, a) == 0 and world.physical(plenty, c) == world.initial(plenty, c)
    else:  # mirror: nothing at risk through either rule, the oldest goes first
        assert (warehouse, critical) == (c.centra_warehouse_id, 0)
        assert world.physical(risky, a) == 1 and world.physical(plenty, c) == world.initial(plenty, c) - 1
