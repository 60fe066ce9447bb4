"""Reconciliation on the simulated estate: every injected discrepancy is found with the right type, keys
and value, and a clean day produces no findings (real simulators, intake, raw assets, Dagster runs)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import daily_assets, raw_assets
from pipelines.defs.reconciliation.assets import finance_daily_report, reconciliation_findings
from pipelines.defs.reconciliation.checks import reconciliation_checks
from pipelines.devstack import Stack
from pipelines.domain.timeutil import day_window_utc
from pipelines.simulators.mirror import MirrorFaults, MirrorIntegration
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.partitions import read_partition
from pipelines_tests.traded import Traded

DAY = "2026-11-20"
ASSETS = [*raw_assets, reconciliation_findings, finance_daily_report]


def _run_estate(home: Path, faults: FaultConfig, mirror_faults: MirrorFaults, database_url: str | None = None,
                seed: int = 21) -> tuple[Traded, dg.ExecuteInProcessResult]:
    stack = Stack(home, sizes=120, stores=3, seed=seed, database_url=database_url,
                  trading=TradingConfig(faults=faults, counts_per_store_per_day=0, seed=seed,
                                        online_orders_per_hour=8, online_return_in_store_share=0.4,
                                        click_collect_per_store_per_day=3))
    stack.start()
    start, end = day_window_utc(DAY, stack.estate.business_timezone)
    # Trade up to the day's cut-off, the stand-in integration mirroring every quarter of an hour.
    mirror = MirrorIntegration(stack.estate, stack.centra.state, stack.truth, mirror_faults, seed=seed)
    t = start - timedelta(days=5)
    while t < end:
        step = min(t + timedelta(minutes=15), end)
        stack.trader.simulate(t, step)
        mirror.run(t, step)
        t = step
    stack.flush()
    traded = Traded(stack)
    earlier = [(date.fromisoformat(DAY) - timedelta(days=n)).isoformat() for n in (5, 1)]
    traded.materialize(daily_assets, tags={"dagster/asset_partition_range_start": earlier[0],
                                           "dagster/asset_partition_range_end": earlier[1]})
    result = traded.materialize([*ASSETS, *reconciliation_checks], partition_key=DAY)
    return traded, result


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory):
    faults = FaultConfig(unknown_sku=0.02, missing_order_ref=0.15, wrong_price=0.03, refund_wrong_tax=0.15,
                         refund_wrong_amount=0.15, line_wrong_tax=0.02, missing_centra_return=0.1,
                         uncollected_pickup_open=0.3)
    traded, result = _run_estate(tmp_path_factory.mktemp("faulty"), faults,
                                 MirrorFaults(lost=0.02, commerce_adjustments_per_store_day=1.5))
    yield traded, result
    traded.stack.stop()


def _findings(traded: Traded):
    return read_partition(traded.stack.engine, "reconciliation_findings", DAY)


def _keys(df, finding_type: str, cols=("location_id", "sku")) -> set[tuple]:
    sub = df[df["finding_type"] == finding_type]
    return {tuple(r) for r in sub[list(cols)].itertuples(index=False)}


def test_run_succeeds_and_blocks_the_report_on_money_mismatches(faulty) -> None:
    traded, result = faulty
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["money_mismatches_within_tolerance"].passed
    assert checks["reconciliation_findings_schema"].passed
    materialised = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert "reconciliation_findings" in materialised
    assert "finance_daily_report" not in materialised  # blocked by the ERROR check


def test_every_injected_fault_is_found_with_its_keys(faulty) -> None:
    traded, _ = faulty
    est, truth = traded.stack.estate, traded.stack.truth
    df = _findings(traded)
    loc = lambda node: est.location_of(node).id  # noqa: E731
    faults = truth.faults(DAY)
    by_type: dict[str, list] = defaultdict(list)
    for f in faults:
        by_type[f.fault].append(f)
    assert {"unknown_sku", "return_without_order_ref", "refund_tax_mismatch", "refund_amount_mismatch",
            "sync_lost", "commerce_adjustment"} <= set(by_type), sorted(by_type)

    assert {(loc(f.node_id), f.sku) for f in by_type["unknown_sku"]} <= _keys(df, "orphan_sku_pos_unknown_in_commerce")
    assert {(loc(f.node_id), f.sku) for f in by_type["price_off_pricelist"]} == _keys(df, "price_off_pricelist")
    assert {(loc(f.node_id), f.sku) for f in by_type["line_tax_mismatch"]} == _keys(df, "line_tax_mismatch")
    assert {(loc(f.node_id), f.sku) for f in by_type["return_without_order_ref"]} == \
        _keys(df, "return_without_order_ref")
    for fault in ("refund_tax_mismatch", "refund_amount_mismatch"):
        expected = {(loc(f.node_id), f.sku, f.ref) for f in by_type[fault]}
        assert expected == _keys(df, fault, ("location_id", "sku", "order_ref")), fault
    expected_missing = {(loc(f.node_id), f.sku, str(f.detail["order_number"])) for f in by_type["return_missing_in_commerce"]}
    assert expected_missing == _keys(df, "return_missing_in_commerce", ("location_id", "sku", "order_ref"))
    expected_open = {(loc(f.node_id), f.ref) for f in by_type["click_collect_open"]}
    assert expected_open and expected_open == _keys(df, "click_collect_open", ("location_id", "order_ref"))
    amounts = df[df["finding_type"] == "refund_amount_mismatch"].set_index("order_ref")["value_at_risk"]
    for f in by_type["refund_amount_mismatch"]:
        assert amounts[f.ref] == pytest.approx(f.value, abs=0.02)


def test_sync_failures_and_drift_match_the_ground_truth(faulty) -> None:
    traded, _ = faulty
    est, truth = traded.stack.estate, traded.stack.truth
    df = _findings(traded)
    loc = lambda node: est.location_of(node).id  # noqa: E731
    day_diff: dict[tuple, int] = defaultdict(int)
    total_diff: dict[tuple, int] = defaultdict(int)
    for f in truth.faults():
        if f.fault not in ("sync_lost", "commerce_adjustment", "click_collect_open") or f.business_date > DAY:
            continue
        # Centra minus POS: a lost POS delta, a manual Centra edit, a pickup Centra never shipped
        effect = {"sync_lost": -int(f.value or 0), "commerce_adjustment": int(f.value or 0),
                  "click_collect_open": 1}[f.fault]
        total_diff[(loc(f.node_id), f.sku)] += effect
        if f.business_date == DAY and f.fault != "click_collect_open":
            day_diff[(loc(f.node_id), f.sku)] += effect
    sync_keys = _keys(df, "sync_missing_in_commerce") | _keys(df, "sync_unexpected_in_commerce")
    assert sync_keys == {k for k, v in day_diff.items() if v}
    oversell = df[df["finding_type"] == "stock_drift_oversell"]
    lost = df[df["finding_type"] == "stock_drift_lost_sales"]
    assert _keys(df, "stock_drift_oversell") == {k for k, v in total_diff.items() if v > 0}
    assert _keys(df, "stock_drift_lost_sales") == {k for k, v in total_diff.items() if v < 0}
    for frame in (oversell, lost):
        for r in frame.itertuples():
            assert r.quantity_diff == total_diff[(r.location_id, r.sku)]
            price = est.price(r.sku, est.location_of(r.location_id).centra_pricelist_id)
            assert r.value_at_risk == pytest.approx(abs(r.quantity_diff) * price, abs=0.01)
    assert (df["value_at_risk_base"] >= 0).all() and df["owner_team"].notna().all() and df["playbook"].str.len().min() > 10


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_clean_day_has_no_findings_and_writes_the_report(backend: str, tmp_path: Path, request) -> None:
    url = None
    if backend == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"clean_{id(tmp_path)}")
    traded, result = _run_estate(tmp_path, FaultConfig(), MirrorFaults(), database_url=url, seed=33)
    try:
        assert result.success
        df = _findings(traded)
        assert df.empty, df[["finding_type", "location_id", "sku", "detail"]].head(20).to_string()
        report = result.asset_materializations_for_node("finance_daily_report")[0].metadata
        html = Path(report["summary_html"].value)
        assert html.exists() and "No discrepancies found" in html.read_text()
        assert report["findings"].value == 0
    finally:
        traded.stack.stop()
