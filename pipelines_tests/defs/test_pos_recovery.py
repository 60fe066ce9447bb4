"""Lost store transactions recovered for real: the NewStore simulator loses chosen deliveries on its event
stream (never redelivered), the intake lands the rest over loopback HTTP, the recovery sensor requests a run
and `pos_transaction_recoveries` fetches what is missing from NewStore's API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from sqlalchemy import text

from pipelines.defs.pos.assets import pos_sale_lines
from pipelines.defs.pos.recovery import pos_recovery_sensor, pos_transaction_recoveries
from pipelines.devstack import Stack
from pipelines.domain.reconciliation import rules
from pipelines.domain.reconciliation.reference import build_reference
from pipelines.domain.timeutil import day_window_utc
from pipelines.intake.verify import InboundEvent
from pipelines.reporting.finance_report.details import detail_sentence
from pipelines.simulators.newstore import EmitterConfig
from pipelines.simulators.trading import TradingConfig
from pipelines.store.inbox import store_events
from pipelines.store.recoveries import missing_on
from pipelines.sync import SyncConfig
from pipelines.sync.queue import ingest
from pipelines_tests.traded import DAY, Traded

LOST_SALE, KEPT_SALE, LOST_REASON = "LOST-0001", "KEPT-0001", "lost-in-test"
UNKNOWN_ORDER = "00000000-0000-4000-8000-00000000dead"


def _lost(envelope: dict) -> bool:
    """The sale's `order.opened` and the return's `return.processed` never arrive."""
    p = envelope.get("payload") or {}
    if envelope.get("name") == "order.opened":
        return p.get("external_id") == LOST_SALE
    if envelope.get("name") == "return.processed":
        return any(i.get("return_reason") == LOST_REASON for i in p.get("items") or [])
    return False


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def recovered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp(f"recovery-{request.param}")
    url = None
    if request.param == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), f"recovery_{id(home)}")
    stack = Stack(home, sizes=30, stores=2, seed=3, database_url=url, trading=TradingConfig(),
                  emitter_config=EmitterConfig(drop_when=_lost, backoff_initial=0.01))
    with stack:
        state, store = stack.newstore.state, stack.estate.stores[0]
        node, sku = store.newstore_node_id, stack.estate.skus()[0]
        start, _ = day_window_utc(DAY, stack.estate.business_timezone)
        items = [{"sku": sku, "quantity": 2, "unit_price": "100.00", "discount": "10.00"}]
        kept = state.record_store_sale(node, items, at=start + timedelta(hours=10), external_id=KEPT_SALE)
        lost = state.record_store_sale(node, items, at=start + timedelta(hours=11), external_id=LOST_SALE)
        state.record_return(node, [{"sku": sku, "quantity": 1, "refund_amount": "90.00"}], order_id=kept["id"],
                            at=start + timedelta(hours=12), return_reason=LOST_REASON)
        stack.flush()
        # A sibling of an order NewStore does not know: the order cannot be fetched.
        store_events(stack.engine, [InboundEvent(
            "newstore", f"order.created:{UNKNOWN_ORDER}", "order.created",
            (start + timedelta(hours=13)).isoformat().replace("+00:00", "Z"),
            {"name": "order.created", "payload": {"id": UNKNOWN_ORDER, "channel": node, "currency": store.currency,
                                                  "grand_total": 123.45}})])
        traded = Traded(stack)
        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(instance=instance, resources=traded.resources)
            before = pos_recovery_sensor(context)
            run = traded.materialize([pos_transaction_recoveries])
            after = pos_recovery_sensor(dg.build_sensor_context(instance=instance, resources=traded.resources))
        yield stack, traded, kept, lost, before, run, after


def _rows(stack: Stack, sql: str, **params) -> pd.DataFrame:
    with stack.engine.connect() as conn:
        return pd.DataFrame(conn.execute(text(sql), params).mappings().all())


def test_the_sensor_requests_a_run_and_the_run_recovers_what_siblings_prove(recovered) -> None:
    stack, _, kept, lost, before, run, after = recovered
    assert len(before.run_requests) == 1 and run.success
    assert isinstance(after, dg.SkipReason) and "nothing to recover" in str(after.skip_message)
    got = _rows(stack, "SELECT kind, transaction_id, status, evidence FROM pos_transaction_recoveries")
    status = {(k, t): s for k, t, s in got[["kind", "transaction_id", "status"]].itertuples(index=False)}
    (return_id,) = got.loc[got["kind"] == "return", "transaction_id"]
    assert status == {("order", lost["id"]): "recovered", ("return", return_id): "recovered",
                      ("order", UNKNOWN_ORDER): "unrecoverable"}
    assert ("order", kept["id"]) not in status  # its own event landed: nothing to recover
    md = run.asset_materializations_for_node("pos_transaction_recoveries")[0].metadata
    assert (md["recovered"].value, md["unrecoverable"].value, md["newstore_requests"].value) == (2, 1, 4)


def test_a_recovered_sale_lands_with_the_streamed_sales_amounts_and_known_answers(recovered) -> None:
    stack, traded, kept, lost, *_ = recovered
    assert traded.materialize([pos_sale_lines], partition_key=DAY).success
    lines = traded.table("pos_sale_lines").set_index("transaction_id")
    cols = ["kind", "sku", "quantity", "unit_price", "discount", "tax", "net_amount", "currency"]
    assert lines.loc[lost["id"], cols].tolist() == lines.loc[kept["id"], cols].tolist()
    # Known answer: 2 units at 100.00 less 10.00 each, tax included at the store country's rate, per unit.
    rate = Decimal(str(stack.newstore.state._rate(stack.estate.stores[0].country)))  # noqa: SLF001
    unit_tax = (Decimal("90") * rate / (1 + rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    row = lines.loc[lost["id"]]
    assert (row["quantity"], row["unit_price"], row["discount"]) == (2, 100.0, 20.0)
    assert row["tax"] == pytest.approx(float(2 * unit_tax)) and row["net_amount"] == pytest.approx(float(180 - 2 * unit_tax))
    returned = lines[lines["kind"] == "return"]
    assert len(returned) == 1 and returned.iloc[0]["unit_price"] == 90.0 and returned.iloc[0]["quantity"] == 1


def test_recovered_events_are_marked_and_a_late_streamed_copy_is_a_duplicate(recovered) -> None:
    stack, _, _, lost, *_ = recovered
    marked = _rows(stack, "SELECT event_name, payload FROM inbox_events WHERE payload LIKE '%\"recovered\"%'")
    assert sorted(marked["event_name"]) == ["order.opened", "return.processed"]
    dropped = [d.event for d in stack.newstore.emitter.deliveries() if d.outcome == "dropped"]
    assert sorted(e["name"] for e in dropped) == ["order.opened", "return.processed"]
    count = _rows(stack, "SELECT COUNT(*) AS n FROM inbox_events")["n"][0]
    for envelope in dropped:  # NewStore re-publishes the lost events after all (publication log)
        resp = httpx.post(f"{stack.intake.url}/newstore/events", json=envelope,
                          headers={"Authorization": f"Bearer {stack.secrets['NEWSTORE_EVENTSTREAM_API_KEY']}"})
        assert resp.status_code == 200
    assert _rows(stack, "SELECT COUNT(*) AS n FROM inbox_events")["n"][0] == count


def test_the_recovered_sale_and_return_move_stock_exactly_once(recovered) -> None:
    stack, _, kept, lost, *_ = recovered
    ingest(stack.engine, stack.estate, SyncConfig(settle_s=0))
    moves = _rows(stack, "SELECT event_name, movement_type, quantity, movement_key FROM stock_sync_movements")
    of = lambda tid: moves[moves["movement_key"].str.contains(tid, regex=False)]  # noqa: E731
    assert of(lost["id"])["quantity"].tolist() == [-2] and of(kept["id"])["quantity"].tolist() == [-2]
    restocks = moves[moves["event_name"] == "return.processed"]
    assert restocks["quantity"].tolist() == [1]


def test_what_newstore_cannot_give_back_is_a_money_finding_with_its_value(recovered) -> None:
    stack, *_ = recovered
    missing = missing_on(stack.engine, DAY, stack.estate.business_timezone)
    assert missing["transaction_id"].tolist() == [UNKNOWN_ORDER]
    ref = build_reference(stack.estate)
    findings = rules.missing_transactions(DAY, missing, ref.locations)
    (f,) = findings.itertuples()
    assert (f.finding_type, f.location_id, f.transaction_id, f.value_at_risk) == \
        ("store_transaction_missing", stack.estate.stores[0].id, UNKNOWN_ORDER, 123.45)
    assert "evidence=[\"order.created\"]" in f.detail and "NotFound" in f.detail
    assert detail_sentence(f) == (f"A sale of 123.45 {stack.estate.stores[0].currency} happened in NewStore (one of "
                                  "its other events arrived), but its own event never did and NewStore did not return it.")
    nothing = missing_on(stack.engine, "2026-11-19", stack.estate.business_timezone)
    assert nothing.empty  # dated by its evidence's business day
