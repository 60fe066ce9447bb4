"""Restatements: the pure diff of a day's findings and sales totals (known answers), the report of a restated
day, and the sensor's decisions over a real SQLite inbox and a real Dagster instance (late or not, closed
day or not, coalescing window, cursor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.defs.reconciliation.restatement import REASON_TAG, TAG, plan
from pipelines.domain.reconciliation.model import FINDING_COLUMNS, FINDING_TYPES
from pipelines.domain.reconciliation.restatement import (
    ADDED,
    CHANGE_COLUMNS,
    CHANGED,
    RESOLVED,
    SALES,
    TOTAL,
    describe,
    restate,
    sales_totals,
)
from pipelines.domain.timeutil import business_date, day_window_utc, utc_text
from pipelines.reporting.finance_report import write_daily_report
from pipelines.store.db import make_engine

DAY = "2026-03-10"
TZ = "Europe/Stockholm"


def finding(ftype: str, value: float, *, sku: str = "P1", order_ref: str | None = None, qty: int | None = -1,
            location: str = "ST-SE01") -> dict:
    t = FINDING_TYPES[ftype]
    return {"business_date": DAY, "finding_type": ftype, "severity": t.severity, "owner_team": t.owner_team,
            "location_id": location, "sku": sku, "order_ref": order_ref, "transaction_id": None, "tax_rate": None,
            "quantity_pos": 1, "quantity_commerce": 0, "quantity_diff": qty, "amount_pos": value,
            "amount_commerce": 0.0, "amount_diff": -value, "currency": "SEK", "value_at_risk": value * 10,
            "value_at_risk_base": value, "risk_rank": 1, "playbook": t.playbook, "detail": None}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=FINDING_COLUMNS)


def test_diff_names_added_resolved_and_changed_findings_with_values() -> None:
    """Kills: a diff by row position or by type alone, a changed value reported as added+resolved, totals
    taken from the wrong side."""
    before = frame(finding("return_without_order_ref", 50.0, sku="P1"),
                   finding("refund_amount_mismatch", 10.0, sku="P2", order_ref="100001"),
                   finding("stock_drift_oversell", 40.0, sku="P3", qty=2))
    after = frame(finding("return_without_order_ref", 30.0, sku="P4"),  # new, listed first
                  finding("refund_amount_mismatch", 12.0, sku="P2", order_ref="100001"),
                  finding("return_without_order_ref", 50.0, sku="P1"))
    r = restate(DAY, before, after)
    assert [(x.finding_type, x.sku) for x in r.added.itertuples()] == [("return_without_order_ref", "P4")]
    assert [(x.finding_type, x.sku) for x in r.resolved.itertuples()] == [("stock_drift_oversell", "P3")]
    assert [(x.finding_type, x.value_before, x.value_after) for x in r.changed.itertuples()] == \
        [("refund_amount_mismatch", 10.0, 12.0)]
    assert (r.findings_before, r.findings_after, r.value_before, r.value_after) == (3, 3, 100.0, 92.0)
    ch = r.changes()
    assert list(ch.columns) == CHANGE_COLUMNS
    assert list(ch["change"]) == [TOTAL, ADDED, RESOLVED, CHANGED]
    total = ch.iloc[0]
    assert (total.count_before, total.count_after, total.value_before, total.value_after) == (3, 3, 100.0, 92.0)
    added = ch[ch["change"] == ADDED].iloc[0]
    assert (added.sku, added.value_before, added.value_after) == ("P4", 0.0, 30.0)
    resolved = ch[ch["change"] == RESOLVED].iloc[0]
    assert (resolved.sku, resolved.value_before, resolved.value_after) == ("P3", 40.0, 0.0)
    text = describe(ch)
    assert text[0].startswith("Findings 3 -> 3, value at risk 100.00 -> 92.00") and "1 added, 1 resolved" in text[0]
    assert "Added: return_without_order_ref (ST-SE01 / P4), value at risk 30.00." in text


def test_repeated_keys_quantity_changes_and_noise() -> None:
    """Kills: collapsing findings with the same keys (a second identical return would vanish), ignoring a
    quantity change at equal value, reporting sub-cent float noise or a reordering as a change."""
    one = finding("return_without_order_ref", 20.0)
    r = restate(DAY, frame(one), frame(one, one))
    assert len(r.added) == 1 and r.resolved.empty and r.changed.empty and r.has_changes

    r = restate(DAY, frame(finding("stock_drift_lost_sales", 5.0, qty=-1)),
                frame(finding("stock_drift_lost_sales", 5.0, qty=-3)))
    assert r.added.empty and r.resolved.empty
    assert [(x.quantity_before, x.quantity_after) for x in r.changed.itertuples()] == [(-1, -3)]

    a, b = finding("refund_amount_mismatch", 10.0, sku="A"), finding("line_tax_mismatch", 3.0, sku="B")
    noisy = {**b, "value_at_risk_base": 3.001}
    r = restate(DAY, frame(a, b), frame(noisy, a))
    assert not r.has_changes and list(r.changes()["change"]) == [TOTAL]


def test_sales_totals_and_their_change() -> None:
    """Kills: totals not split by kind and currency, units counted as lines, a late return missing from the
    sales change."""
    lines = pd.DataFrame([
        {"kind": "sale", "currency": "SEK", "quantity": 1, "net_amount": 100.0},
        {"kind": "sale", "currency": "SEK", "quantity": 2, "net_amount": 50.0},
        {"kind": "sale", "currency": "EUR", "quantity": 1, "net_amount": 9.5},
        {"kind": "return", "currency": "SEK", "quantity": 1, "net_amount": 30.0},
    ])
    after = sales_totals(lines)
    assert after.to_dict("records") == [
        {"kind": "return", "currency": "SEK", "lines": 1, "units": 1, "net_amount": 30.0},
        {"kind": "sale", "currency": "EUR", "lines": 1, "units": 1, "net_amount": 9.5},
        {"kind": "sale", "currency": "SEK", "lines": 2, "units": 3, "net_amount": 150.0},
    ]
    before = sales_totals(lines[lines["kind"] == "sale"])
    r = restate(DAY, frame(), frame(), before, after)
    assert r.has_changes
    ch = r.changes()
    (row,) = ch[ch["change"] == SALES].itertuples()
    assert (row.finding_type, row.currency, row.count_before, row.count_after, row.value_before, row.value_after,
            row.detail) == ("return", "SEK", 0, 1, 0.0, 30.0, "units 0 -> 1")
    assert not restate(DAY, frame(), frame(), after, after).has_changes


def test_report_of_a_restated_day_says_so_and_a_later_plain_report_does_not(tmp_path: Path) -> None:
    """Kills: the page ignoring the restatement, a restatement.csv left over once the day is reported plain."""
    before = frame(finding("refund_amount_mismatch", 10.0, sku="P2", order_ref="100001"))
    after = frame(finding("refund_amount_mismatch", 10.0, sku="P2", order_ref="100001"),
                  finding("return_without_order_ref", 30.0, sku="P4"))
    rows = restate(DAY, before, after).changes().assign(restatement_no=2, restated_at="2026-03-11T18:00:00Z",
                                                       reason="1 event(s) received late")
    files = write_daily_report(tmp_path, DAY, after, None, base_currency="EUR", restatement=rows)
    html = files.summary_html.read_text()
    assert 'data-testid="restated" data-restatement-no="2"' in html
    assert 'data-change="added" data-type="return_without_order_ref" data-value-before="0.00" ' \
           'data-value-after="30.00"' in html
    assert "1 event(s) received late" in html and "Findings 1 -&gt; 2" in html
    csv = pd.read_csv(tmp_path / DAY / "restatement.csv", encoding="utf-8-sig")
    assert list(csv["change"]) == ["total", "added"] and list(csv["restatement_no"]) == [2, 2]
    files = write_daily_report(tmp_path, DAY, after, None, base_currency="EUR")
    assert 'data-testid="restated"' not in files.summary_html.read_text()
    assert not (tmp_path / DAY / "restatement.csv").exists()


# -- the sensor's decisions (real SQLite inbox, real Dagster instance) ---------------------------------------

@pytest.fixture
def engine(db_url: str):  # SQLite and PostgreSQL, migrated
    return make_engine(db_url)


def _land(engine, key: str, event_time: datetime, received_at: datetime) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO inbox_events (source, dedup_key, event_name, event_time, received_at, payload) "
                          "VALUES ('newstore', :k, 'return.processed', :t, :r, '{}')"),
                     {"k": key, "t": utc_text(event_time), "r": utc_text(received_at)})


def _reconciled(instance: dg.DagsterInstance, day: str) -> datetime:
    instance.report_runless_asset_event(dg.AssetMaterialization("reconciliation_findings", partition=day))
    return datetime.now(UTC)


def test_sensor_plan_restates_late_events_of_a_reconciled_closed_day_once(engine) -> None:  # noqa: ANN001
    """Kills: restating on events that preceded the reconciliation, on days never reconciled or still open,
    before the coalescing window has passed (one run per burst), twice for the same events (cursor), and a
    run key that changes between evaluations of the same events."""
    start, _ = day_window_utc(DAY, TZ)
    noon = start + timedelta(hours=12)
    other = "2026-03-09"
    with dg.instance_for_test() as instance:
        _land(engine, "early", noon, datetime.now(UTC) - timedelta(hours=1))  # landed before the reconciliation
        done = _reconciled(instance, DAY)
        later = done + timedelta(minutes=11)  # the clock of the evaluation that restates
        today_done = _reconciled(instance, business_date(later, TZ))  # today's open day, reconciled intraday
        us = timedelta(microseconds=1)
        _land(engine, "not-reconciled", noon - timedelta(days=1), done + us)  # `other` day: never reconciled
        _land(engine, "late-1", noon, done + 2 * us)
        _land(engine, "late-2", noon + timedelta(minutes=5), done + 3 * us)
        _land(engine, "today", later, today_done + us)  # late for today's partition, but today is still open
        # within the window of the last late event: nothing yet, the cursor stays before the late events
        requests, cursor, _ = plan(engine, instance, TZ, 0, done + timedelta(minutes=3), window_s=600)
        assert requests == [] and cursor == 2
        requests, cursor2, _ = plan(engine, instance, TZ, cursor, later, window_s=600)
        (req,) = requests
        assert req.partition_key == DAY and req.tags[TAG] == "true"
        assert "2 event(s) of 2026-03-10" in req.tags[REASON_TAG]
        assert req.run_key == f"restatement-{DAY}-4" and cursor2 == 5
        again, _, _ = plan(engine, instance, TZ, 0, later, window_s=600)
        assert [r.run_key for r in again] == [req.run_key]  # re-read from scratch: the same run key
        assert plan(engine, instance, TZ, cursor2, later, window_s=600)[0] == []
        # the day is restated (re-reconciled after the late events): reading from scratch finds nothing late
        _reconciled(instance, DAY)
        assert plan(engine, instance, TZ, 0, later, window_s=600)[0] == []
        assert other not in {r.partition_key for r in again}


def test_sensor_cursor_holds_rows_that_may_not_have_settled(engine) -> None:  # noqa: ANN001
    """Kills: a cursor moved past inbox rows younger than the settle time (PostgreSQL may commit a lower id
    later)."""
    with dg.instance_for_test() as instance:
        now = datetime.now(UTC)
        _land(engine, "a", now - timedelta(days=3), now - timedelta(minutes=5))
        _land(engine, "b", now - timedelta(days=3), now - timedelta(seconds=1))
        _, cursor, _ = plan(engine, instance, TZ, 0, now)
        assert cursor == 1
        _, cursor, _ = plan(engine, instance, TZ, cursor, now + timedelta(minutes=1))
        assert cursor == 2
