"""The devstack's simulated history goes through the product (issue 8): trading in simulated time steps,
the event stream into the intake, the product's own stock sync with Centra's clock at the simulated
time. Reconciling the history's days (oldest first, as the README says) then finds nothing on a clean
estate, finds exactly each injected trading fault, and the Dagster sync started afterwards applies
only what happens after the history (exactly once)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.definitions import raw_assets
from pipelines.defs.reconciliation.assets import finance_daily_report, reconciliation_findings
from pipelines.defs.reconciliation.checks import reconciliation_checks
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.devstack import Stack
from pipelines.domain.timeutil import business_date
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.partitions import read_partition
from pipelines_tests.traded import Traded, physical_mismatches, run_requested_sync

ASSETS = [*raw_assets, reconciliation_findings, finance_daily_report, *reconciliation_checks]

#: FaultConfig knob -> (the fault the ground truth records, the finding type it must produce (one per
#: fault), the knob's rate: every return or pickup as they are few, a share of the many sale lines; days
#: of history: returns of online orders come back after shipping (BUSY), sale lines any time).
KNOBS = {
    "unknown_sku": ("unknown_sku", "orphan_sku_pos_unknown_in_commerce", 0.1, 1),
    "missing_order_ref": ("return_without_order_ref", "return_without_order_ref", 1.0, 2),
    "wrong_price": ("price_off_pricelist", "price_off_pricelist", 0.1, 1),
    "missing_centra_return": ("return_missing_in_commerce", "return_missing_in_commerce", 1.0, 2),
    "refund_wrong_tax": ("refund_tax_mismatch", "refund_tax_mismatch", 1.0, 2),
    "refund_wrong_amount": ("refund_amount_mismatch", "refund_amount_mismatch", 1.0, 2),
    "line_wrong_tax": ("line_tax_mismatch", "line_tax_mismatch", 0.1, 1),
    "uncollected_pickup_open": ("click_collect_open", "click_collect_open", 1.0, 2),
}
#: Trading that reaches every code path within two days on a small estate: in-store returns of online
#: orders, click-and-collect pickups, store returns, counts, replenishments. Returns come back within a day
#: or two of shipping, so a two-day history holds dozens of them (with the default 1-5 days only a handful land in
#: it, and a run whose few fell outside had no fault to find).
BUSY = {"store_sales_per_hour": 6.0, "online_orders_per_hour": 20.0, "online_return_in_store_share": 0.15,
        "click_collect_per_store_per_day": 3.0, "store_return_share": 0.1, "counts_per_store_per_day": 1.0,
        "return_after_days": (0.2, 1.0)}


def _stack(home: Path, faults: FaultConfig, seed: int, database_url: str | None = None, history_days: int = 2,
           **trading) -> tuple[Stack, list[str]]:  # noqa: ANN003
    """A small estate after `history_days` of history, and the business days the history touched."""
    stack = Stack(home, sizes=200, stores=3, seed=seed, database_url=database_url,
                  trading=TradingConfig(seed=seed, faults=faults, **{**BUSY, **trading})).start()
    start = datetime.now(UTC) - timedelta(days=history_days)
    progress: list[tuple[str, float]] = []
    stack.history(history_days, progress=lambda message, fraction: progress.append((message, fraction)))
    assert progress and progress[-1][1] == pytest.approx(1.0)
    assert all(0 <= f <= 1 for _, f in progress) and [f for _, f in progress] == sorted(f for _, f in progress)
    tz = stack.estate.business_timezone
    first, last = business_date(start, tz), business_date(datetime.now(UTC), tz)
    days = [d.date().isoformat() for d in pd.date_range(first, last, freq="D")]
    return stack, days


def _reconcile(traded: Traded, days: list[str]) -> dict[str, tuple[pd.DataFrame, dict]]:
    """Raw datasets, reconciliation and its checks for each day, oldest first."""
    out = {}
    for day in days:
        result = traded.materialize(ASSETS, partition_key=day)
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        out[day] = (read_partition(traded.stack.engine, "reconciliation_findings", day), checks)
    return out


def _show(df: pd.DataFrame) -> str:
    cols = ["finding_type", "severity", "location_id", "sku", "order_ref", "quantity_pos", "quantity_commerce",
            "detail"]
    return df[cols].head(20).to_string()


def _resources(stack: Stack) -> dict:
    env = stack.env()
    return {"store": StoreOfRecord(database_url=stack.database_url),
            "estate": EstateResource(path=str(stack.estate_file)),
            "centra": CentraResource(base_url=env["CENTRA_API_URL"], token=env["CENTRA_API_TOKEN"]),
            "commercetools": CommercetoolsResource(),
            # no batching delay: the one-pass run sends the fresh sale at once, critical or not
            "sync_settings": SyncSettings(batch_delay_s=None)}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_clean_history_reconciles_clean_and_the_dagster_sync_continues_exactly_once(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = None
    if backend == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"history_{id(tmp_path)}")
    stack, days = _stack(tmp_path / "stack", FaultConfig(), seed=41, database_url=url)
    try:
        stats = stack.trader.stats
        assert stats["store_sales"] > 100 and stats["online_returns_in_store"] > 0 and stats["pickups"] > 0
        assert stats.get("store_returns", 0) > 0 and stats["counts"] > 0 and stats.get("replenishments", 0) > 0
        state = stack.centra.state
        assert state.rate_limiter.tier == "GROWTH" and state.rate_limiter.multiplier == 1.0  # restored
        assert abs((state.now() - datetime.now(UTC)).total_seconds()) < 5  # Centra's clock is real time again
        with stack.engine.connect() as conn:
            statuses = dict(conn.execute(text("SELECT status, COUNT(*) FROM stock_sync_movements GROUP BY status"))
                            .all())
            left = conn.execute(text(
                "SELECT status, warehouse_id, sku, movement_type, quantity, event_time, error FROM stock_sync_movements "
                "WHERE status NOT IN ('done', 'superseded') ORDER BY id LIMIT 10")).all()
        assert statuses.get("done") and set(statuses) <= {"done", "superseded"}, (statuses, left)  # nothing left over
        assert physical_mismatches(stack) == []
        # Centra dated every change the sync made within a step (15 simulated minutes) after its POS
        # movements, on their business day, never in the future.
        tz = stack.estate.business_timezone
        created = {c["description"]: c["created_at"] for c in state.stock_changes()}
        with stack.engine.connect() as conn:
            rows = conn.execute(text("SELECT m.event_time, b.description FROM stock_sync_movements m JOIN "
                                     "stock_sync_batches b ON b.batch_id = m.batch_id")).all()
        assert len(rows) > 100
        for event_time, description in rows:
            at, moved = created[description], datetime.fromisoformat(event_time.replace("Z", "+00:00"))
            assert timedelta(0) <= at - moved <= Stack.HISTORY_STEP, (event_time, at)
            assert business_date(at, tz) == business_date(moved, tz)
        assert max(created.values()) <= datetime.now(UTC)

        traded = Traded(stack)
        for day, (findings, checks) in _reconcile(traded, days).items():
            errors = findings[findings["severity"] == "ERROR"]
            assert errors.empty, f"{day}:\n{_show(errors)}"
            assert findings.empty, f"{day} (warnings):\n{_show(findings)}"
            assert checks["money_mismatches_within_tolerance"].passed, day

        # The Dagster sync started now finds nothing to do, then applies a new sale exactly once.
        before = len(state.stock_changes())
        with dg.instance_for_test() as instance:
            assert run_requested_sync(instance, _resources(stack)) == 0
            assert len(state.stock_changes()) == before
            store, sku = stack.estate.stores[0], next(s for s in stack.estate.skus()
                                                      if stack.newstore.state.on_hand(
                                                          stack.estate.stores[0].newstore_node_id, s) > 0)
            at = datetime.now(UTC).replace(microsecond=0)
            order = stack.newstore.state.record_store_sale(
                store.newstore_node_id, [{"sku": sku, "quantity": 1, "unit_price": 100.0, "discount": 0.0}], at=at)
            stack.truth.movement(at, store.newstore_node_id, sku, -1, "sale", str(order["id"]))
            stack.flush()
            assert run_requested_sync(instance, _resources(stack)) == 1
        new = state.stock_changes()[before:]
        assert [(c["warehouse_id"], c["sku"], c["quantity"]) for c in new] == [(store.centra_warehouse_id, sku, -1)]
        assert physical_mismatches(stack) == []
    finally:
        stack.stop()


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_each_trading_fault_is_found_exactly(knob: str, tmp_path: Path) -> None:
    # Counts would correct the stock an open pickup leaves in Centra; without them its drift is exact.
    fault, expected_type, rate, history_days = KNOBS[knob]
    stack, days = _stack(tmp_path / "stack", FaultConfig(**{knob: rate}), seed=43, history_days=history_days,
                         counts_per_store_per_day=0.0)
    try:
        faults = stack.truth.faults()
        assert faults and {f.fault for f in faults} == {fault}, Counter(f.fault for f in faults)
        loc = lambda node: stack.estate.location_of(node).id  # noqa: E731
        open_pickups = Counter((loc(f.node_id), f.sku) for f in faults if f.fault == "click_collect_open")
        for day, (findings, _checks) in _reconcile(Traded(stack), days).items():
            today = [f for f in faults if f.business_date == day]
            at_store = findings[findings["location_id"].notna()]
            wanted = Counter({expected_type: len(today)})
            if open_pickups:  # the unit stays in Centra's store warehouse: an oversell risk at every cut-off
                wanted["stock_drift_oversell"] = len(open_pickups)
            assert +Counter(at_store["finding_type"]) == +wanted, f"{day}:\n{_show(findings)}"
            mine = at_store[at_store["finding_type"] == expected_type]
            if knob == "uncollected_pickup_open":
                assert Counter(zip(mine["location_id"], mine["order_ref"], strict=True)) == \
                    Counter((loc(f.node_id), f.ref) for f in today)
                drift = at_store[at_store["finding_type"] == "stock_drift_oversell"]
                assert {(r.location_id, r.sku): r.quantity_diff for r in drift.itertuples()} == dict(open_pickups)
            else:
                assert Counter(zip(mine["location_id"], mine["sku"], strict=True)) == \
                    Counter((loc(f.node_id), f.sku) for f in today)
            sku_level = findings[findings["location_id"].isna()]
            if knob == "unknown_sku":
                # The POS catalog is read when the day is materialised (now): every POS-only SKU in it
                # without store activity on the day is also reported, SKU-level, with value 0.
                assert set(sku_level["finding_type"]) <= {expected_type}
                assert set(sku_level["sku"]) == {f.sku for f in faults} - {f.sku for f in today}
                assert (sku_level["value_at_risk"] == 0).all()
            else:
                assert sku_level.empty, f"{day}:\n{_show(sku_level)}"
    finally:
        stack.stop()
