"""The reconciliation and the finance report run unchanged on commercetools' data (issue 13): two days of history
traded through the commercetools simulator (online orders, shipments, in-store returns of online orders,
click-and-collect) with the product's own stock sync writing to commercetools, then the raw datasets, the
reconciliation and the report for each day. Findings are exactly the injected faults (the ground truth), and the
store stock in commercetools equals the ground truth's (no drift per supply channel, nothing lost or doubled)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.definitions import raw_assets
from pipelines.defs.reconciliation.assets import finance_daily_report, reconciliation_findings
from pipelines.defs.reconciliation.checks import reconciliation_checks
from pipelines.devstack import Stack
from pipelines.domain.timeutil import business_date
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.partitions import read_partition
from pipelines_tests.traded import Traded

ASSETS = [*raw_assets, reconciliation_findings, finance_daily_report, *reconciliation_checks]
#: Returns come back within a day of shipping, so the two-day history holds dozens of in-store returns to fault
#: (with the default 1-5 days a run could hold none).
BUSY = {"store_sales_per_hour": 6.0, "online_orders_per_hour": 20.0, "online_return_in_store_share": 0.15,
        "click_collect_per_store_per_day": 3.0, "store_return_share": 0.1, "counts_per_store_per_day": 1.0,
        "return_after_days": (0.2, 1.0)}


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp("ct-reconciled")
    stack = Stack(home / "stack", sizes=200, stores=3, seed=47, commerce="commercetools",
                  trading=TradingConfig(seed=47, faults=FaultConfig(refund_wrong_amount=0.5), **BUSY)).start()
    try:
        start = datetime.now(UTC) - timedelta(days=2)
        stack.history(2)
        tz = stack.estate.business_timezone
        days = [d.date().isoformat() for d in pd.date_range(business_date(start, tz),
                                                             business_date(datetime.now(UTC), tz), freq="D")]
        traded = Traded(stack)
        out = {}
        for day in days:
            result = traded.materialize(ASSETS, partition_key=day)
            out[day] = (read_partition(stack.engine, "reconciliation_findings", day),
                        {c.check_name: c for c in result.get_asset_check_evaluations()})
        yield stack, out
    finally:
        stack.stop()


def _show(df: pd.DataFrame) -> str:
    return df[["finding_type", "severity", "location_id", "sku", "order_ref", "detail"]].head(20).to_string()


def test_the_world_traded_online_through_commercetools(reconciled) -> None:
    """Kills: a history that never reaches the commerce paths (the other assertions would hold vacuously)."""
    stack, _ = reconciled
    stats = stack.trader.stats
    assert stats["online_orders"] > 20 and stats["online_returns_in_store"] > 0 and stats["store_sales"] > 100
    assert stack.commercetools.state.message_count("OrderCreated") >= stats["online_orders"]
    assert any(f.fault == "refund_amount_mismatch" for f in stack.truth.faults())


def test_findings_are_exactly_the_injected_refund_faults(reconciled) -> None:
    """Kills: commercetools orders, returns or refunds read wrong (missing returns, wrong amounts, open orders and
    drift would show), store stock drifting per supply channel, and a fault the reconciliation misses."""
    stack, days = reconciled
    faults = stack.truth.faults()
    loc = lambda node: stack.estate.location_of(node).id  # noqa: E731
    for day, (findings, checks) in days.items():
        today = [f for f in faults if f.business_date == day]
        assert +Counter(findings["finding_type"]) == +Counter({"refund_amount_mismatch": len(today)}), \
            f"{day}:\n{_show(findings)}"
        assert Counter(zip(findings["location_id"], findings["sku"], strict=True)) == \
            Counter((loc(f.node_id), f.sku) for f in today)
        assert checks["money_mismatches_within_tolerance"].passed == (not today), day


def test_store_stock_in_commercetools_is_the_ground_truths(reconciled) -> None:
    """Kills: a stock movement lost or applied twice on its way to the store's inventory entry."""
    stack, _ = reconciled
    ct = stack.commercetools.state
    wrong = []
    for store in stack.estate.stores:
        node = store.newstore_node_id
        for sku in stack.estate.skus():
            expected = max(0, stack.truth.expected_stock(node, sku, stack.estate.initial_stock[node][sku]))
            on_stock = ct.stock(store.id, sku)[0]
            if on_stock != expected:
                wrong.append((store.id, sku, expected, on_stock))
    assert wrong == []
