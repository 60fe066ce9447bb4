"""Late events restate a closed day, end to end: a small simulated estate trades the day, it is landed,
reconciled and reported in Dagster; then two store returns of that day are published by NewStore hours
late (over the event stream and the intake, as any event). The restatement sensor (evaluated with its clock
moved on, nothing sleeps) waits out its coalescing window, then requests one run; run for real, it counts
the returns on their own day, adds their findings, records what changed and marks the report restated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import build_definitions, raw_assets
from pipelines.defs.reconciliation.assets import finance_daily_report, reconciliation_findings
from pipelines.defs.reconciliation.restatement import TAG, WINDOW_S, build_restatement_sensor
from pipelines.defs.resources import ReconciliationSettings
from pipelines.devstack import Stack
from pipelines.domain.timeutil import day_window_utc
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.partitions import read_partition, read_sql
from pipelines_tests.traded import DAY, Traded

REFUND = 100.0


def _keys(df, ftype: str) -> list[tuple]:  # noqa: ANN001
    sub = df[df["finding_type"] == ftype]
    return sorted(zip(sub["location_id"], sub["sku"], strict=True))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_late_returns_restate_their_day_once_with_the_changes_in_the_report(backend: str, tmp_path: Path,
                                                                            request: pytest.FixtureRequest) -> None:
    """Kills: late events counted on the day they landed (or not at all), a restatement before the window or
    one run per event, a restated day whose findings or report stay stale, a report without the changes,
    a sensor that restates the same events again."""
    url = None
    if backend == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"restate_{id(tmp_path)}")
    stack = Stack(tmp_path, sizes=60, stores=2, seed=13, database_url=url,
                  trading=TradingConfig(faults=FaultConfig(), counts_per_store_per_day=0, online_orders_per_hour=4,
                                        seed=13))
    with stack, dg.instance_for_test() as instance:
        start, end = day_window_utc(DAY, stack.estate.business_timezone)
        stack.simulate(start - timedelta(days=1), end)
        traded = Traded(stack, ReconciliationSettings(blocking_value_base=1e9))
        first = dg.materialize([*raw_assets, reconciliation_findings, finance_daily_report], partition_key=DAY,
                               resources=traded.resources, instance=instance)
        assert first.success
        lines_before = traded.table("pos_sale_lines")
        findings_before = traded.table("reconciliation_findings")
        assert not findings_before.empty  # no stock sync runs here: the day has drift findings to keep

        # Two blind store returns of DAY (12:00 and 12:05 business day), published now: hours after the
        # day was reconciled, a few seconds apart (one burst).
        node = stack.estate.stores[0].newstore_node_id
        location = stack.estate.location_of(node).id
        skus = stack.estate.skus()[:2]
        returns = [stack.newstore.state.record_return(node, [{"sku": sku, "quantity": 1, "refund_amount": REFUND}],
                                                      at=start + timedelta(hours=12, minutes=5 * i), restock=False)
                   for i, sku in enumerate(skus)]
        stack.flush()
        landed = read_sql(stack.engine, "SELECT count(*) AS n FROM inbox_events WHERE event_name = "
                                        "'return.processed' AND payload LIKE :id", id=f"%{returns[-1]['id']}%")
        assert landed["n"].iloc[0] == 1

        now = datetime.now(UTC)
        clock = [now + timedelta(seconds=30)]
        sensor = build_restatement_sensor(clock=lambda: clock[0], name="restatement_sensor_under_test")
        defs = build_definitions(resources=traded.resources)

        def evaluate(cursor: str | None) -> dg.SensorResult:
            return sensor(dg.build_sensor_context(instance=instance, resources=traded.resources, cursor=cursor))

        waiting = evaluate(None)
        assert waiting.run_requests == []  # inside the coalescing window
        clock[0] = now + timedelta(seconds=WINDOW_S + 60)
        due = evaluate(waiting.cursor)
        (request,) = due.run_requests  # both returns, one run
        assert request.partition_key == DAY and request.tags[TAG] == "true"
        # a store return publishes return.processed, refund_request.issued and payment_account.amount_refunded
        assert request.tags["pipelines/restatement_reason"].startswith(f"6 event(s) of {DAY} received after")
        run = defs.resolve_job_def("restatement_job").execute_in_process(
            instance=instance, partition_key=DAY, tags={**request.tags, "dagster/run_key": request.run_key})
        assert run.success
        assert instance.get_run_by_id(run.run_id).tags[TAG] == "true"  # the restatement is a run in the UI

        # The returns count on their own day, and nothing else of the day moved.
        lines = traded.table("pos_sale_lines")
        assert len(lines) == len(lines_before) + 2
        new = lines[~lines["transaction_id"].isin(lines_before["transaction_id"])]
        assert sorted(new["transaction_id"]) == sorted(r["id"] for r in returns)
        assert set(new["kind"]) == {"return"} and sorted(new["sku"]) == sorted(skus)
        assert set(new["location_id"]) == {location}

        findings = traded.table("reconciliation_findings")
        added = _keys(findings, "return_without_order_ref")
        assert sorted(set(added) - set(_keys(findings_before, "return_without_order_ref"))) == \
            sorted((location, sku) for sku in skus)
        assert len(findings) == len(findings_before) + 2
        blind = findings[(findings["finding_type"] == "return_without_order_ref") & findings["sku"].isin(skus)]
        assert blind["value_at_risk"].tolist() == pytest.approx([REFUND, REFUND], abs=0.01)

        # What changed is stored ...
        changes = read_partition(stack.engine, "reconciliation_restatements", DAY)
        assert set(changes["restatement_no"]) == {1} and set(changes["run_id"]) == {run.run_id}
        total = changes[changes["change"] == "total"].iloc[0]
        assert (total["count_before"], total["count_after"]) == (len(findings_before), len(findings_before) + 2)
        added_rows = changes[changes["change"] == "added"]
        assert sorted(zip(added_rows["location_id"], added_rows["sku"], strict=True)) == \
            sorted((location, sku) for sku in skus)
        assert sorted(added_rows["value_after"]) == pytest.approx(sorted(blind["value_at_risk_base"]), abs=0.01)
        assert set(changes["change"]) == {"total", "added", "sales"}  # nothing resolved or changed
        sales = changes[(changes["change"] == "sales") & (changes["finding_type"] == "return")].iloc[0]
        assert sales["count_after"] - sales["count_before"] == 2

        # ... and the report of the day says restated, with the change.
        report = run.asset_materializations_for_node("finance_daily_report")[0].metadata
        assert report["restated"].value is True
        html = Path(report["summary_html"].value).read_text()
        assert 'data-testid="restated"' in html
        assert html.count('data-change="added" data-type="return_without_order_ref"') == 2
        assert (Path(report["summary_html"].value).parent / "restatement.csv").exists()

        # The same events never restate the day again, whether the cursor moved on or is lost.
        clock[0] += timedelta(minutes=5)
        assert evaluate(due.cursor).run_requests == []
        assert evaluate(None).run_requests == []
