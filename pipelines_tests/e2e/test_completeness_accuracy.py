"""Reconciliation with a lossy event stream: NewStore drops deliveries, publishes some events hours late (across
midnight) and re-delivers some changed. After recovery (`pos_transaction_recoveries`) every store sale and return
of the ground truth is in `pos_sale_lines` with its amount or reported as `store_transaction_missing` with it, and
the sync findings are exactly the ground truth's sync failures of the day: a lost store event is never read as a
Centra change to revert (real simulators, intake over loopback HTTP, the stand-in integration, Dagster runs)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.definitions import daily_assets, raw_assets, snapshot_assets
from pipelines.defs.pos.recovery import pos_transaction_recoveries
from pipelines.defs.reconciliation.assets import load_inputs, reconciliation_findings
from pipelines.devstack import Stack
from pipelines.domain.timeutil import business_date, day_window_utc
from pipelines.simulators.mirror import MirrorFaults, MirrorIntegration
from pipelines.simulators.newstore import EmitterConfig
from pipelines.simulators.trading import FaultConfig, TradingConfig
from pipelines.store.partitions import read_partition
from pipelines_tests.traded import Traded

DAY = "2026-11-20"
SEED = 21
LATE_S = 3 * 3600.0  # late publications: three hours, so evening events are published after midnight
STORE_KINDS = ("store_sale", "store_return", "online_return_in_store")
SYNC_TYPES = ("sync_missing_in_commerce", "sync_unexpected_in_commerce")


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp("lossy")
    stack = Stack(home, sizes=120, stores=3, seed=SEED,
                  trading=TradingConfig(faults=FaultConfig(), counts_per_store_per_day=0, seed=SEED,
                                        online_orders_per_hour=8, online_return_in_store_share=0.4,
                                        click_collect_per_store_per_day=3),
                  emitter_config=EmitterConfig(drop_rate=0.04, redelivery_rate=0.1, redelivery_shift_s=2 * 3600.0,
                                               redelivery_extra={"republished": True}, backoff_initial=0.01),
                  newstore_options={"late_publication_rate": 0.15, "late_publication_s": LATE_S})
    stack.start()
    try:
        start, end = day_window_utc(DAY, stack.estate.business_timezone)
        mirror = MirrorIntegration(stack.estate, stack.centra.state, stack.truth,
                                   MirrorFaults(lost=0.02, commerce_adjustments_per_store_day=1.5), seed=SEED)
        traded = Traded(stack)
        earlier = [(date.fromisoformat(DAY) - timedelta(days=n)).isoformat() for n in (5, 1)]
        t = start - timedelta(days=5)
        while t < end:  # bounded: 5 days and a quarter of an hour a step
            step = min(t + timedelta(minutes=15), end)
            stack.trader.simulate(t, step)
            mirror.run(t, step)
            t = step
            if t == start:  # the previous day's cut-off: recovery, then the days so far, as the schedules do
                stack.flush()
                assert traded.materialize([pos_transaction_recoveries]).success
                assert traded.materialize(daily_assets, tags={"dagster/asset_partition_range_start": earlier[0],
                                                              "dagster/asset_partition_range_end": earlier[1]}).success
                assert traded.materialize(snapshot_assets, partition_key=earlier[1]).success  # at its cut-off
        stack.flush()
        recovery = traded.materialize([pos_transaction_recoveries])  # before the day is materialised
        result = traded.materialize([*raw_assets, reconciliation_findings], partition_key=DAY)
        yield stack, traded, recovery, result
    finally:
        stack.stop()


def _findings(stack: Stack) -> pd.DataFrame:
    return read_partition(stack.engine, "reconciliation_findings", DAY)


def _keys(df: pd.DataFrame, types: tuple[str, ...]) -> set[tuple]:
    sub = df[df["finding_type"].isin(types)]
    return set(zip(sub["location_id"], sub["sku"], strict=True))


def test_the_stream_really_lost_late_dated_and_changed_events(lossy) -> None:
    """Kills a vacuous run: the knobs must have dropped store sales and returns (then recovered), published
    events on the next business day and re-delivered changed copies."""
    stack, traded, recovery, result = lossy
    assert recovery.success and result.success
    log = stack.newstore.emitter.deliveries()
    dropped = [d.event for d in log if d.outcome == "dropped"]
    lost_tx = [e for e in dropped if e["name"] in ("order.opened", "return.processed")]
    assert len(lost_tx) >= 3 and len(dropped) > len(lost_tx)  # store transactions and other stock events
    assert any(d.event.get("republished") and d.outcome == "delivered" for d in log)
    tz = stack.estate.business_timezone
    crossed = [e for at, e in stack.newstore.state._events  # noqa: SLF001 (the simulator's publication record)
               if business_date(datetime.fromisoformat(e["published_at"].replace("Z", "+00:00")), tz)
               != business_date(at, tz)]
    assert crossed, "no event was published after midnight"
    md = recovery.asset_materializations_for_node("pos_transaction_recoveries")[0].metadata
    assert md["recovered"].value >= 1


def test_every_store_sale_and_return_is_landed_or_reported_missing_with_its_amount(lossy) -> None:
    """Kills: a dropped `order.opened` / `return.processed` neither recovered nor reported, a recovered one
    landed with other amounts, and a `store_transaction_missing` with the wrong amount."""
    stack, traded, *_ = lossy
    truth = stack.truth.query(
        "SELECT kind, ref, amount FROM transactions WHERE business_date = ? AND kind IN (?, ?, ?)", DAY, *STORE_KINDS)
    assert len(truth) > 20
    lines = traded.table("pos_sale_lines", DAY)
    landed = (lines["unit_price"] * lines["quantity"] - lines["discount"]).groupby(lines["transaction_id"]).sum()
    findings = _findings(stack)
    missing = findings[findings["finding_type"] == "store_transaction_missing"].set_index("transaction_id")
    absent = []
    for kind, ref, amount in truth:
        if ref in landed.index:
            assert landed[ref] == pytest.approx(abs(amount), abs=0.011), (kind, ref)
        elif ref in missing.index:
            assert missing.loc[ref, "value_at_risk"] == pytest.approx(abs(amount), abs=0.011), (kind, ref)
        else:
            absent.append((kind, ref, amount))
    assert not absent, f"{len(absent)} of {len(truth)} store transactions neither landed nor reported: {absent[:5]}"


def _with_previous_cutoff(stack: Stack, traded: Traded) -> pd.DataFrame:
    """The day's findings as the reconciliation asset stored them; its inputs hold the previous business day's
    stock snapshots (taken at its cut-off above), the sync rule's evidence."""
    inputs = load_inputs(traded.resources["store"], traded.resources["estate"], DAY)
    assert len(inputs.pos_stock_snapshot_before) and len(inputs.centra_stock_snapshot_before)
    return _findings(stack)


def test_sync_findings_are_the_ground_truths_sync_failures_and_drops_never_say_revert(lossy) -> None:
    """Kills: the sync rule reading a lost or late store event as a Centra change to revert (or a sync failure
    to replay): its findings must be exactly the stand-in integration's lost movements and manual Centra edits of
    the day, and every difference the stream alone explains is a `pos_stream_gap` whose playbook changes nothing
    in Centra."""
    stack, traded, *_ = lossy
    est = stack.estate
    loc = lambda node: est.location_of(node).id  # noqa: E731
    day_diff: dict[tuple, int] = defaultdict(int)
    for f in stack.truth.faults(DAY):
        if f.fault in ("sync_lost", "commerce_adjustment"):  # Centra minus POS of the day
            day_diff[(loc(f.node_id), f.sku)] += -int(f.value or 0) if f.fault == "sync_lost" else int(f.value or 0)
    expected = {k for k, v in day_diff.items() if v}
    assert expected, "the stand-in integration injected no sync failure on the day"
    df = _with_previous_cutoff(stack, traded)
    got = _keys(df, SYNC_TYPES)
    assert got - expected == set(), df[df["finding_type"].isin(SYNC_TYPES)][["finding_type", "location_id", "sku",
                                                                                "detail"]].to_string()
    assert expected - got == set()
    for r in df[df["finding_type"].isin(SYNC_TYPES)].itertuples():  # the day's own difference, not the stream's
        assert r.quantity_diff == day_diff[(r.location_id, r.sku)], r.detail
        price = est.price(r.sku, est.location_of(r.location_id).centra_pricelist_id)
        assert r.value_at_risk == pytest.approx(abs(r.quantity_diff) * price, abs=0.01)
    gaps = df[df["finding_type"] == "pos_stream_gap"]
    assert len(gaps), "no lost stock event reached the sync rule"
    assert gaps["playbook"].str.contains("Change nothing in Centra").all()
    assert gaps["detail"].str.contains("newstore_on_hand=").all()
    revert = df["playbook"].str.contains(r"(?<!not )\brevert", case=False, regex=True)  # only "do not revert"
    assert not revert.any(), df[revert][["finding_type", "playbook"]].to_string()
