"""The finance report cannot exist for a day whose money check is red, however it is launched; it says
what it was produced under; and the freshness check targets yesterday's partition and its deadline."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE
from pipelines.defs.reconciliation.assets import finance_daily_report
from pipelines.defs.reconciliation.freshness import (
    CHECK_NAME,
    deadline_of,
    finance_report_freshness_sensor,
    freshness,
)
from pipelines.defs.resources import EstateResource, FinanceReportFiles, ReconciliationSettings, StoreOfRecord
from pipelines.domain.reconciliation.engine import totals_by_type
from pipelines.domain.reconciliation.model import FINDING_COLUMNS, FINDING_DTYPES, FINDING_TYPES
from pipelines.simulators.estate_gen import write_estate
from pipelines.store.partitions import replace_partitions

DAY = "2026-03-10"


def finding(ftype: str, value: float) -> dict:
    t = FINDING_TYPES[ftype]
    return {"business_date": DAY, "finding_type": ftype, "severity": t.severity, "owner_team": t.owner_team,
            "location_id": "ST-SE01", "sku": "P1000BLKS", "order_ref": "100001", "transaction_id": None,
            "tax_rate": None, "quantity_pos": 1, "quantity_commerce": 0, "quantity_diff": -1, "amount_pos": value,
            "amount_commerce": 0.0, "amount_diff": -value, "currency": "EUR", "value_at_risk": value,
            "value_at_risk_base": value, "risk_rank": 1, "playbook": t.playbook, "detail": None}


@pytest.fixture
def world(tmp_path: Path):
    store = StoreOfRecord(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}")
    estate = EstateResource(path=str(write_estate(tmp_path / "estate.json", sizes=20, stores=2, seed=3)))
    files = FinanceReportFiles(reports_dir=str(tmp_path / "reports"))

    def land(*rows: dict, notes: tuple[str, ...] = ()) -> None:
        """The day as the reconciliation writes it: findings, the engine's totals of them, evidence notes."""
        frame = pd.DataFrame(list(rows), columns=FINDING_COLUMNS).astype(FINDING_DTYPES)
        replace_partitions(store.engine(), DAY, {
            "reconciliation_findings": frame.drop(columns=["business_date"]),
            "reconciliation_daily_totals": totals_by_type(frame),
            "reconciliation_evidence": pd.DataFrame({"note_no": range(1, len(notes) + 1), "note": list(notes)})})

    def report(blocking_value_base: float = 0.0) -> dg.ExecuteInProcessResult:
        limits = ReconciliationSettings(blocking_value_base=blocking_value_base)
        return dg.materialize([finance_daily_report], partition_key=DAY, raise_on_error=False,
                              resources={"store": store, "estate": estate, "reconciliation_settings": limits,
                                         "finance_reports": files})

    return land, report, tmp_path / "reports" / DAY


def test_the_report_alone_is_refused_while_money_is_red_and_an_earlier_one_is_removed(world) -> None:
    land, report, folder = world
    land(finding("stock_drift_oversell", 40.0))
    assert report().success and (folder / "summary.html").exists()  # drift warns, it does not block
    land(finding("refund_amount_mismatch", 12.5))  # the day is re-reconciled: now a money mismatch
    result = report()
    assert not result.success
    assert not folder.exists()  # not written, and the earlier (green) report is gone
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "money_mismatches_within_tolerance" in failure.event_specific_data.error.message


def test_at_the_limit_the_report_is_written_and_states_what_it_was_produced_under(world) -> None:
    land, report, folder = world
    land(finding("refund_amount_mismatch", 12.5), notes=("Evidence incomplete: 1 return(s) were not judged.",))
    result = report(blocking_value_base=12.5)
    assert result.success
    html = (folder / "summary.html").read_text()
    assert "money_mismatches_within_tolerance" in html and "12.50 at risk (limit 12.50)" in html
    assert "Evidence incomplete: 1 return(s) were not judged." in html
    meta = result.asset_materializations_for_node("finance_daily_report")[0].metadata
    assert meta["evidence_complete"].value is False
    assert not report(blocking_value_base=12.49).success  # one cent over the limit: refused


def test_freshness_is_judged_against_the_next_mornings_deadline() -> None:
    due = deadline_of(DAY)
    assert due == datetime(2026, 3, 11, 7, tzinfo=ZoneInfo(BUSINESS_TIMEZONE))
    assert freshness(DAY, False, due - timedelta(seconds=1))[0] is True
    assert freshness(DAY, False, due)[0] is False
    assert freshness(DAY, True, due + timedelta(days=3))[0] is True


def test_the_sensor_evaluates_yesterdays_partition_and_records_changes_only() -> None:
    now = datetime.now(ZoneInfo(BUSINESS_TIMEZONE))
    yesterday = (now.date() - timedelta(days=1)).isoformat()
    # Deadline at midnight: yesterday's report is overdue whatever the time of day the test runs (with the 07:00
    # default, a run between midnight and 07:00 saw "not yet due" before and after the report, so no change).
    resources = {"reconciliation_settings": ReconciliationSettings(report_deadline_hour=0)}
    with dg.instance_for_test() as instance:
        first = finance_report_freshness_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        (evaluation,) = first.asset_events
        assert evaluation.check_name == CHECK_NAME and evaluation.partition == yesterday
        assert evaluation.passed is False and now >= deadline_of(yesterday, 0)
        again = finance_report_freshness_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                                                        resources=resources))
        assert not again.asset_events  # unchanged: nothing recorded
        instance.report_runless_asset_event(dg.AssetMaterialization(finance_daily_report.key, partition=yesterday))
        written = finance_report_freshness_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                                                          resources=resources))
        assert [e.passed for e in written.asset_events] == [True]
        assert json.loads(written.cursor) == [yesterday, True]
