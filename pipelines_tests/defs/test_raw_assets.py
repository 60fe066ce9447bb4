"""Raw datasets materialised for real: simulators over loopback HTTP, intake, SQLite and PostgreSQL,
compared with the trading generator's ground truth."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from pipelines.definitions import daily_assets, raw_assets
from pipelines.defs.raw_checks import raw_checks
from pipelines.devstack import Stack
from pipelines.domain.timeutil import day_window_utc
from pipelines.intake.verify import InboundEvent
from pipelines.simulators.newstore import EmitterConfig
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.inbox import store_events
from pipelines_tests.traded import DAY, Traded

RANGE = ["2026-11-18", "2026-11-19", "2026-11-20"]
DAILY_ASSETS = daily_assets  # not the snapshots


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def traded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"stack-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"assets_{id(home)}")
    faults = FaultConfig(unknown_sku=0.03)
    stack = Stack(home, sizes=150, stores=3, seed=5, database_url=url,
                  trading=TradingConfig(faults=faults, online_orders_per_hour=6),
                  emitter_config=EmitterConfig(duplicate_rate=0.1, shuffle_window=20, backoff_initial=0.01))
    with stack:
        start, end = day_window_utc(DAY, stack.estate.business_timezone)
        stack.simulate(start - timedelta(days=5), end + timedelta(hours=1))
        yield Traded(stack)


def test_day_materialises_and_every_schema_check_passes(traded: Traded) -> None:
    result = traded.materialize([*raw_assets, *raw_checks], partition_key=DAY)
    assert result.success
    materialised = {m.asset_key.to_user_string(): m.materialization.metadata
                    for m in result.get_asset_materialization_events()}
    assert set(materialised) == {s.key.to_user_string() for a in raw_assets for s in a.specs}
    for key in ("pos_sale_lines", "pos_stock_movements", "pos_stock_snapshot", "centra_orders", "centra_order_lines",
                "centra_stock_snapshot", "centra_stock_changes", "centra_catalog", "centra_returns"):
        assert materialised[key]["dagster/row_count"].value > 0, key
        assert "dagster/column_schema" in materialised[key] and "preview" in materialised[key]
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert all(passed for name, passed in checks.items() if name.endswith("_schema")), checks
    assert checks["pos_sale_lines_mapped"] is False  # the injected unknown SKUs


def test_datasets_match_ground_truth(traded: Traded) -> None:
    traded.materialize(DAILY_ASSETS, partition_key=DAY)
    truth = traded.stack.truth
    lines = traded.table("pos_sale_lines")
    sales = lines[lines["kind"] == "sale"]
    (n_sales,) = truth.query("SELECT count(*) FROM transactions WHERE kind = 'store_sale' AND business_date = ?", DAY)[0]
    (units,) = truth.query("SELECT -sum(delta) FROM movements WHERE kind = 'sale' AND business_date = ?", DAY)[0]
    assert sales["transaction_id"].nunique() == n_sales > 0
    assert sales["quantity"].sum() == units  # duplicated and reordered deliveries counted once
    (n_orders,) = truth.query("SELECT count(*) FROM transactions WHERE kind IN ('online_order', 'click_collect_order')"
                              " AND business_date = ?",
                              DAY)[0]
    assert len(traded.table("centra_orders")) == n_orders > 0
    moves = traded.table("pos_stock_movements")
    assert -moves.loc[moves["movement_type"] == "sale", "quantity"].sum() == units


def test_rematerialising_a_day_leaves_the_same_rows(traded: Traded) -> None:
    assert traded.materialize(DAILY_ASSETS, partition_key=DAY).success
    before = {a: traded.table(a) for a in ("pos_sale_lines", "centra_orders", "centra_order_lines", "centra_returns")}
    assert traded.materialize(DAILY_ASSETS, partition_key=DAY).success
    for name, df in before.items():
        after = traded.table(name)
        key = list(df.columns)
        assert df.sort_values(key).reset_index(drop=True).equals(after.sort_values(key).reset_index(drop=True)), name


def test_unknown_skus_become_exception_records(traded: Traded) -> None:
    traded.materialize(DAILY_ASSETS, partition_key=DAY)
    lines = traded.table("pos_sale_lines")
    unknown = set(lines.loc[~lines["sku_known"], "sku"])
    assert unknown
    with traded.stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT sku, owner_team, playbook FROM exceptions WHERE exception_type = 'unknown_sku'"
                                 " AND business_date = :d"), {"d": DAY}).all()
    assert unknown <= {r.sku for r in rows}
    assert {r.owner_team for r in rows} == {"ecommerce"} and all(r.playbook for r in rows)


def test_corrupted_partition_fails_its_check_with_the_rows(traded: Traded) -> None:
    """A bad event in the inbox (negative quantity, lower-case currency) corrupts the day's partition."""
    store = traded.stack.estate.stores[0]
    sku = traded.stack.estate.skus()[0]
    bad = {"name": "order.opened", "payload": {
        "id": "corrupt-1", "channel_type": "store", "fulfillment_node_id": store.newstore_node_id,
        "currency": "sek", "placed_at": f"{DAY}T10:00:00Z",
        "items": [{"id": "i1", "product_id": sku, "list_price": 100, "tax": 20, "quantity": -5,
                   "external_identifiers": {"sku": sku}, "shipping_service_level": "IN_STORE_HANDOVER"}]}}
    store_events(traded.stack.engine, [InboundEvent("newstore", "corrupt-1", "order.opened",
                                                    f"{DAY}T10:00:00.000000Z", bad)])
    try:
        check = next(c for c in raw_checks if next(iter(c.check_keys)).name == "pos_sale_lines_schema")
        pos_sale_lines = next(a for a in raw_assets if a.key.to_user_string() == "pos_sale_lines")
        result = traded.materialize([pos_sale_lines, check], partition_key=DAY)
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        md = evaluation.metadata
        assert md["failing_rows"].value == 1
        assert "corrupt-1" in md["failing_rows_sample"].value
        assert "sek" in md["failure_sample"].value and "-5" in md["failure_sample"].value
    finally:
        with traded.stack.engine.begin() as conn:
            conn.execute(text("DELETE FROM inbox_events WHERE dedup_key = 'corrupt-1'"))
        traded.materialize(DAILY_ASSETS, partition_key=DAY)


def test_date_range_backfill_in_one_run(traded: Traded) -> None:
    result = traded.materialize(DAILY_ASSETS, tags={"dagster/asset_partition_range_start": RANGE[0],
                                                    "dagster/asset_partition_range_end": RANGE[-1]})
    assert result.success
    days = result.asset_materializations_for_node("pos_sale_lines")[0].metadata["days"].value
    assert list(days) == RANGE
    for day in RANGE:
        assert len(traded.table("pos_sale_lines", day)) > 0
        assert len(traded.table("centra_orders", day)) > 0
