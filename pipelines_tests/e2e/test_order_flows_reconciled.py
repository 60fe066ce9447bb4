"""The order flows keep the reconciliation clean: two days of simulated trading in which the world plays only
customers and stores (no stand-in integration), the product's order flows run every simulated hour in
process (the code the `order_flow_work` asset runs), then the day is reconciled. The flow-related findings are
exactly the faults injected on the store side (a return without its order reference, a refund with the wrong
amount or tax rate), each also an exception record; click-and-collect orders left open and returns missing in
Centra, which the flows prevent, are zero. Oracle: the trading generator's ground truth."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from pipelines.definitions import daily_assets, raw_assets
from pipelines.defs.flows import flow_context, run_once
from pipelines.defs.reconciliation.assets import reconciliation_findings
from pipelines.devstack import Stack
from pipelines.domain.timeutil import day_window_utc
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.partitions import read_partition
from pipelines_tests.traded import Traded

DAY = "2026-11-20"
FLOW_FINDINGS = ("click_collect_open", "return_missing_in_commerce", "return_without_order_ref",
                 "refund_amount_mismatch", "refund_tax_mismatch")


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory):
    faults = FaultConfig(missing_order_ref=0.15, refund_wrong_tax=0.15, refund_wrong_amount=0.15)
    stack = Stack(tmp_path_factory.mktemp("flows-e2e"), sizes=120, stores=3, seed=23,
                  trading=TradingConfig(faults=faults, counts_per_store_per_day=0, seed=23, world_integrates=False,
                                        online_orders_per_hour=8, online_return_in_store_share=0.5,
                                        click_collect_per_store_per_day=4))
    with stack:
        traded = Traded(stack)
        r = traded.resources
        start, end = day_window_utc(DAY, stack.estate.business_timezone)
        state, real_clock = stack.centra.state, stack.centra.state.clock
        # Days of trading squeezed into seconds: Centra's real-time rate limits raised, as `Stack.history` does.
        state.set_rate_limits(tier="ENTERPRISE", multiplier=4, overrides={})
        t = start - timedelta(days=2)
        try:
            while t < end:
                step = min(t + timedelta(hours=1), end)
                state.clock = lambda at=step - timedelta(milliseconds=1): at
                stack.trader.simulate(t, step)
                stack.flush()
                ctx = flow_context(r["store"], r["centra"], r["newstore"], r["estate"], r["order_flow_settings"])
                ctx.now = lambda at=step: at
                run_once(ctx)
                t = step
        finally:
            state.clock = real_clock
        earlier = [(date.fromisoformat(DAY) - timedelta(days=n)).isoformat() for n in (2, 1)]
        traded.materialize(daily_assets, tags={"dagster/asset_partition_range_start": earlier[0],
                                               "dagster/asset_partition_range_end": earlier[1]})
        result = traded.materialize([*raw_assets, reconciliation_findings], partition_key=DAY)
        yield traded, result


def test_flow_findings_are_exactly_the_store_side_faults(reconciled) -> None:
    traded, result = reconciled
    assert result.success
    stack = traded.stack
    loc = lambda node: stack.estate.location_of(node).id  # noqa: E731
    df = read_partition(stack.engine, "reconciliation_findings", DAY)
    found = defaultdict(set)
    for row in df[df["finding_type"].isin(FLOW_FINDINGS)].itertuples(index=False):
        found[row.finding_type].add((row.location_id, row.sku, str(row.order_ref)))
    truth = defaultdict(set)
    for f in stack.truth.faults(DAY):
        ref = f.ref if f.fault != "return_without_order_ref" else None
        truth[f.fault].add((loc(f.node_id), f.sku, str(ref)))
    assert truth["return_without_order_ref"] and truth["refund_amount_mismatch"] and truth["refund_tax_mismatch"]
    assert found["click_collect_open"] == set() and found["return_missing_in_commerce"] == set()
    for kind in ("refund_amount_mismatch", "refund_tax_mismatch"):
        assert found[kind] == truth[kind], kind
    assert {(lo, s) for lo, s, _ in found["return_without_order_ref"]} == \
        {(lo, s) for lo, s, _ in truth["return_without_order_ref"]}


def test_the_flows_did_the_work_and_raised_each_store_side_fault_as_an_exception(reconciled) -> None:
    traded, _ = reconciled
    stack = traded.stack
    stats = stack.trader.stats
    assert stats["click_collect_orders"] > 0 and stats["pickups"] > 0 and stats["online_returns_in_store"] > 0
    centra = stack.centra.state
    pickups = [n for n, o in centra.orders.items() if o.shipping_option_id == centra.shipping_option_id("Click & Collect")]
    shipped = Counter(centra.orders[n].status for n in pickups)
    assert shipped["SHIPPED"] == stats["pickups"]  # every handover shipped online, no e-mail
    assert all(not s.emails_sent for s in centra.shipments.values() if s.order_number in pickups)
    faults = Counter(f.fault for f in stack.truth.faults())
    with stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT exception_type, message FROM exceptions WHERE source = 'order_flows'")).all()
    exc = Counter(t for t, _ in rows)
    unexpected = [m for t, m in rows if t not in ("return_without_order_ref", "refund_amount_mismatch",
                                                   "refund_tax_mismatch", "pickup_uncollected")]
    assert not unexpected
    assert exc["return_without_order_ref"] == faults["return_without_order_ref"]
    assert exc["refund_amount_mismatch"] == faults["refund_amount_mismatch"]
    assert exc["refund_tax_mismatch"] == faults["refund_tax_mismatch"]
