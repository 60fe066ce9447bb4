"""Kiosk orders in the daily reconciliation and the finance report (issue 14, task CS4).

Pure rule tests with known-answer frames (each rule at its boundary), the posting modes' known answers, the report's
kiosk section, and one real Dagster materialisation of `cloudshelf_orders` against the Cloudshelf simulator (the
simulator's own orders are the oracle).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import pytest

from pipelines.connectors.cloudshelf import ids
from pipelines.domain.kiosk import postings as kp
from pipelines.domain.kiosk.orders_frame import ORDER_LINE_COLUMNS
from pipelines.domain.reconciliation import ReconciliationInputs, reconcile
from pipelines.domain.reconciliation.engine import RuleConfig, exception_records
from pipelines.domain.reconciliation.model import FINDING_TYPES, Tolerance
from pipelines.domain.reconciliation.reference import Reference
from pipelines.domain.reconciliation.rules import kiosk as rules
from pipelines.reporting.finance_report import write_daily_report
from pipelines.store.partitions import read_partition

DAY = "2026-12-01"
TZ = "Europe/Stockholm"  # 2026-12-01 is UTC+1 there: the day is [2026-11-30T23:00Z, 2026-12-01T23:00Z)

LOCATIONS = pd.DataFrame([
    {"location_id": "ST1", "fulfillment_node_id": "N1", "warehouse_id": 11, "currency": "SEK", "country": "SE",
     "pricelist_id": 1, "tax_rate": 0.25, "fx_to_base": 0.1},
    {"location_id": "ST2", "fulfillment_node_id": "N2", "warehouse_id": 12, "currency": "EUR", "country": "DE",
     "pricelist_id": 2, "tax_rate": 0.19, "fx_to_base": 1.0},
])
PRICES = pd.DataFrame([{"pricelist_id": 1, "sku": s, "price": 100.0} for s in "ABCDEF"]
                      + [{"pricelist_id": 2, "sku": s, "price": 10.0} for s in "ABCDEF"])
REF = Reference.of(LOCATIONS, PRICES)


def line(order: str, status: str, loc: str | None, kind: str, sku: str | None, qty: int, price: float,
         currency: str = "SEK", tp: str | None = None, at: str = "2026-12-01T09:00:00.000000Z",
         line_id: str = "1") -> dict:
    return {"business_date": DAY, "order_id": order, "line_id": line_id, "status": status, "location_id": loc,
            "location_gid": ids.location_gid(loc) if loc else None, "fulfilment_method": kind, "fulfilment_kind": kind,
            "sku": sku, "quantity": qty, "unit_price": price, "line_total": round(qty * price, 2),
            "currency": currency, "third_party_id": tp, "created_at": at, "updated_at": at}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["business_date", *ORDER_LINE_COLUMNS])


def centra_order(number: int, total: float, *, external: str | None = None, shipping: float = 0.0,
                 status: str = "CONFIRMED", currency: str = "SEK") -> dict:
    return {"business_date": DAY, "order_number": number, "external_id": external, "status": status,
            "grand_total": total, "shipping_total": shipping, "currency": currency}


# ------------------------------------------------------------------ kiosk orders vs Centra orders


def test_paid_delivery_order_without_centra_order_is_missing_and_only_that() -> None:
    """Kills: matching only by the written-back Centra number (D3 has none, found by external id) or only by external
    id (D2's Centra order has another external id); judging take-home sales, refunded-in-full or voided orders; a
    value other than the kiosk total in the store's currency."""
    kiosk = frame(
        line("D1", "PAID", "ST1", "delivery", "A", 2, 100.0, line_id="1"),
        line("D1", "PAID", "ST1", "delivery", "B", 1, 50.0, line_id="2"),
        line("D2", "PAID", "ST1", "delivery", "A", 1, 100.0, tp="1001"),
        line("D3", "PARTIALLY_REFUNDED", "ST1", "delivery", "A", 1, 100.0),
        line("D4", "REFUNDED", "ST1", "delivery", "A", 1, 100.0),
        line("D5", "VOIDED", "ST1", "delivery", "A", 1, 100.0),
        line("T1", "PAID", "ST1", "take_home", "A", 1, 100.0),
    )
    centra = pd.DataFrame([centra_order(1001, 100.0, external="someone-else"),
                           centra_order(1002, 100.0, external="D3")])
    f = rules.kiosk_orders_vs_commerce(DAY, kiosk, centra, REF.locations, REF.fx_to_base)
    assert f["finding_type"].tolist() == ["kiosk_order_missing_in_commerce"]
    r = f.iloc[0]
    assert (r.transaction_id, r.location_id, r.currency, r.value_at_risk, r.value_at_risk_base) == \
        ("D1", "ST1", "SEK", 250.0, 25.0)
    assert r.severity == "ERROR" and r.owner_team == "ecommerce" and FINDING_TYPES[r.finding_type].money


def test_total_mismatch_at_the_money_tolerance_edge() -> None:
    """Kills: comparing Centra's grand total with shipping against the kiosk's goods (every delivery order would
    differ by its shipping), >= instead of > at the tolerance, and judging a cancelled Centra order."""
    kiosk = frame(
        line("E1", "PAID", "ST1", "delivery", "A", 2, 100.0, tp="2001"),  # Centra goods 200.01: within 0.01
        line("E2", "PAID", "ST1", "delivery", "A", 1, 100.0, tp="2002"),  # Centra goods 100.02: 0.02 off
        line("E3", "PAID", "ST1", "delivery", "A", 1, 100.0, tp="2003"),  # cancelled in Centra: not compared
    )
    centra = pd.DataFrame([centra_order(2001, 249.01, shipping=49.0), centra_order(2002, 149.02, shipping=49.0),
                           centra_order(2003, 10.0, status="CANCELLED")])
    f = rules.kiosk_orders_vs_commerce(DAY, kiosk, centra, REF.locations, REF.fx_to_base, Tolerance(money=0.01))
    assert f["finding_type"].tolist() == ["kiosk_order_total_mismatch"]
    r = f.iloc[0]
    assert (r.transaction_id, r.order_ref, r.amount_pos, r.amount_commerce, r.amount_diff, r.value_at_risk) == \
        ("E2", "2002", 100.0, 100.02, 0.02, 0.02)


# ------------------------------------------------------------------ take-home sales vs Centra's ledger


def _change(wh: int, sku: str, qty: int, desc: str = "pipelines-stock-sync b-1") -> dict:
    return {"business_date": DAY, "warehouse_id": wh, "sku": sku, "quantity": qty, "description": desc}


def _move(loc: str, sku: str, qty: int, kind: str = "sale") -> dict:
    return {"business_date": DAY, "location_id": loc, "sku": sku, "movement_type": kind, "quantity": qty}


def test_take_home_units_not_deducted_at_zero_and_one_unit() -> None:
    """Kills: counting Centra changes that are not our sync's (C: an online allocation of the same SKU), ignoring the
    store's own till movements (A: Centra's -3 covers the till's -1 and the kiosk's -2), counting unpaid orders (V),
    judging a counted key (D), and a units tolerance off by one (B: 1 unit short is a finding, A: 0 is not)."""
    kiosk = frame(
        line("K1", "PAID", "ST1", "take_home", "A", 2, 100.0),
        line("K2", "PAID", "ST1", "take_home", "B", 1, 80.0),
        line("K3", "PAID", "ST1", "take_home", "C", 2, 100.0),
        line("K4", "PAID", "ST1", "take_home", "D", 1, 100.0),
        line("V1", "VOIDED", "ST1", "take_home", "E", 5, 100.0),
        line("X1", "PAID", "ST1", "delivery", "F", 1, 100.0),
    )
    changes = pd.DataFrame([_change(11, "A", -3), _change(11, "C", -1), _change(11, "C", -1, "Order 7 allocation"),
                            _change(12, "B", -1)])  # B deducted in another store's warehouse: not ST1's
    moves = pd.DataFrame([_move("ST1", "A", -1), _move("ST1", "D", 4, "count")])
    f = rules.kiosk_sales_not_deducted(DAY, kiosk, changes, REF.locations, Tolerance(units=0), pos_movements=moves)
    got = {r.sku: (int(r.quantity_diff), r.value_at_risk) for r in f.itertuples()}
    assert got == {"B": (1, 80.0), "C": (1, 100.0)}
    assert set(f["finding_type"]) == {"kiosk_sale_not_deducted"} and set(f["location_id"]) == {"ST1"}
    assert rules.kiosk_sales_not_deducted(DAY, kiosk, changes, REF.locations, Tolerance(units=1),
                                          pos_movements=moves).empty


def test_sync_prefix_is_the_sync_batches_description() -> None:
    """Kills: the rule and the stock sync drifting apart on how a sync change is marked in Centra (every kiosk sale
    would then look undeducted)."""
    from pipelines.sync.batches import DESCRIPTION_PREFIX

    assert rules.SYNC_DESCRIPTION_PREFIX == DESCRIPTION_PREFIX


# ------------------------------------------------------------------ kiosk availability vs Centra's stock

SNAP_AT = "2026-12-01T23:01:00.000000Z"


def _snap(wh: int, sku: str, fta: int) -> dict:
    return {"business_date": DAY, "snapshot_at": SNAP_AT, "warehouse_id": wh, "sku": sku, "physical": max(fta, 0),
            "allocated": 0, "free_to_allocate": fta, "demand": 0}


def _level(loc: str, sku: str, qty: int, at: str = "2026-12-01T20:00:00.000000Z") -> dict:
    return {"location_id": loc, "sku": sku, "quantity": qty, "published_at": at}


KIOSK_WAREHOUSES = pd.DataFrame({"location_id": ["ST1", "ST1"], "warehouse_id": [11, 99]})  # 99: the rule's DC


def test_availability_shown_vs_centra_at_zero_and_one_unit() -> None:
    """Kills: ignoring the allocation rule's other warehouses (B's unit is in the DC), summing negative free stock
    (A: -2 in the store and 0 elsewhere is nothing to sell), judging a pair published after the cut-off (E), flagging
    quantity differences that do not change what the shopper sees (F), and > vs >= against the safety stock."""
    levels = pd.DataFrame([_level("ST1", "A", 1), _level("ST1", "B", 0), _level("ST1", "C", 1), _level("ST1", "D", 0),
                           _level("ST1", "E", 3, at="2026-12-02T05:00:00.000000Z"), _level("ST1", "F", 5)])
    snap = pd.DataFrame([_snap(11, "A", -2), _snap(99, "B", 1), _snap(11, "C", 1), _snap(11, "D", 0),
                         _snap(11, "E", 0), _snap(11, "F", 1), _snap(12, "D", 7)])  # 12: ST2's, not read by ST1
    f = rules.kiosk_availability(DAY, levels, snap, KIOSK_WAREHOUSES, REF.locations, REF.prices)
    got = {r.sku: (r.finding_type, r.severity, int(r.quantity_pos), int(r.quantity_commerce), r.value_at_risk)
           for r in f.itertuples()}
    assert got == {"A": ("kiosk_availability_oversell", "ERROR", 1, 0, 100.0),
                   "B": ("kiosk_availability_lost_sales", "WARN", 0, 1, 100.0)}
    safety = rules.kiosk_availability(DAY, levels, snap, KIOSK_WAREHOUSES, REF.locations, REF.prices, safety_stock=1)
    # safety stock 1: C (1 shown, 1 in Centra) and B are out of stock on both sides; A still shows nothing; F 5 vs 1
    assert {(r.sku, r.finding_type) for r in safety.itertuples()} == {("F", "kiosk_availability_oversell")}


# ------------------------------------------------------------------ the engine


def test_engine_runs_the_kiosk_rules_and_raises_exception_records() -> None:
    """Kills: rules not wired into `reconcile`, finding types missing from FINDING_TYPES (the exception records and
    the findings schema read it), and kiosk rules running (or failing) when their inputs are absent."""
    inputs = ReconciliationInputs(
        business_date=DAY, reference=REF,
        kiosk_orders=frame(line("D1", "PAID", "ST1", "delivery", "A", 1, 100.0),
                           line("K1", "PAID", "ST1", "take_home", "B", 1, 100.0)),
        centra_orders=pd.DataFrame([centra_order(5, 1.0)]),
        centra_stock_changes=pd.DataFrame([_change(11, "Z", -1)]),
        centra_stock_snapshot=pd.DataFrame([_snap(11, "A", 0)]),
        kiosk_stock_levels=pd.DataFrame([_level("ST1", "A", 2)]), kiosk_warehouses=KIOSK_WAREHOUSES)
    result = reconcile(inputs, config=RuleConfig())
    assert sorted(result.findings["finding_type"]) == [
        "kiosk_availability_oversell", "kiosk_order_missing_in_commerce", "kiosk_sale_not_deducted"]
    assert len(exception_records(result.findings)) == 3
    bare = reconcile(ReconciliationInputs(business_date=DAY, reference=REF))
    # a retailer without kiosks: the rules do not apply (nothing found, nothing reported as skipped)
    assert bare.findings.empty and not {"kiosk_orders", "kiosk_sales", "kiosk_availability"} & set(bare.skipped)
    only_orders = reconcile(ReconciliationInputs(business_date=DAY, reference=REF,
                                                 kiosk_orders=frame(line("K9", "PAID", "ST1", "take_home", "A", 1, 100.0))))
    assert "kiosk_availability" in only_orders.skipped  # kiosk data without the levels: skipped, and said so


def kiosk_rule_findings() -> pd.DataFrame:
    """Findings of every kiosk type as the real rules write them (for the report's sentence tests too)."""
    kiosk = frame(line("D1", "PAID", "ST1", "delivery", "A", 2, 100.0, at="2026-12-01T10:00:00.000000Z"),
                  line("E2", "PAID", "ST1", "delivery", "A", 1, 100.0, tp="2002"),
                  line("K2", "PAID", "ST1", "take_home", "B", 1, 80.0))
    orders = rules.kiosk_orders_vs_commerce(DAY, kiosk, pd.DataFrame([centra_order(2002, 149.02, shipping=49.0)]),
                                            REF.locations, REF.fx_to_base)
    sales = rules.kiosk_sales_not_deducted(DAY, kiosk, pd.DataFrame([_change(11, "Z", -1)]), REF.locations)
    levels = pd.DataFrame([_level("ST1", "A", 1), _level("ST1", "B", 0)])
    shown = rules.kiosk_availability(DAY, levels, pd.DataFrame([_snap(11, "A", 0), _snap(11, "B", 2)]),
                                     KIOSK_WAREHOUSES, REF.locations, REF.prices)
    return pd.concat([orders, sales, shown], ignore_index=True)


def test_kiosk_findings_read_as_sentences(tmp_path: Path) -> None:
    """Kills: a kiosk finding whose detail the finance report prints as raw key=value text (the report's rule for
    every finding type: a sentence, no snake_case keys, no "n/a")."""
    f = kiosk_rule_findings()
    assert sorted(set(f["finding_type"])) == sorted(t for t in FINDING_TYPES if t.startswith("kiosk_"))
    files = write_daily_report(tmp_path, DAY, f, None)
    csv = pd.read_csv(files.findings_csv, keep_default_na=False)
    for r in csv.itertuples():
        text = r.detail_text
        assert text and (text[0].isupper() or text[0].isdigit()) and text.endswith("."), (r.finding_type, text)
        assert not re.search(r"=|\b[a-z]+_[a-z_]+\b|\bn/a\b", text), (r.finding_type, r.detail, text)
    sentences = dict(zip(csv["finding_type"], csv["detail_text"], strict=True))
    assert sentences["kiosk_availability_oversell"] == (
        "At the cut-off the kiosk showed 1 unit (in stock); Centra had 0 units to sell (safety stock 0).")


# ------------------------------------------------------------------ posting modes


def _day_lines() -> pd.DataFrame:
    return frame(
        line("T1", "PAID", "ST1", "take_home", "A", 1, 100.0, at="2026-12-01T09:00:00.000000Z"),  # 10:00 local
        line("D1", "PAID", "ST1", "delivery", "A", 2, 125.0, tp="3001", at="2026-12-01T14:00:00.000000Z"),
        line("V1", "VOIDED", "ST1", "take_home", "A", 1, 999.0, at="2026-12-01T15:00:00.000000Z"),
        line("T2", "PAID", "ST2", "take_home", "B", 4, 10.0, currency="EUR", at="2026-12-01T22:30:00.000000Z"),
    )


def test_posting_modes_known_answers() -> None:
    """Kills: a batch posted before the cut-off (intra-day figures would look complete), realtime postings lumped
    together, voided orders counted as traded, and the wrong cut-off (the business day's end in its timezone)."""
    missing = pd.DataFrame([{"finding_type": "kiosk_order_missing_in_commerce", "location_id": "ST1",
                             "currency": "SEK", "amount_pos": 250.0, "amount_diff": float("nan")}])
    rt = kp.day_summary(_day_lines(), missing, "realtime", DAY, TZ).set_index("location_id")
    batch = kp.day_summary(_day_lines(), missing, "daily_batch", DAY, TZ).set_index("location_id")
    for s in (rt, batch):
        assert (s.loc["ST1", "take_home_count"], s.loc["ST1", "take_home_amount"]) == (1, 100.0)
        assert (s.loc["ST1", "delivery_count"], s.loc["ST1", "delivery_amount"]) == (1, 250.0)
        assert (s.loc["ST1", "traded_amount"], s.loc["ST1", "posted_by_cutoff"]) == (350.0, 350.0)
        assert (s.loc["ST1", "centra_missing_count"], s.loc["ST1", "centra_delivery_amount"]) == (1, 0.0)
        assert (s.loc["ST2", "currency"], s.loc["ST2", "traded_amount"]) == ("EUR", 40.0)
    assert (rt.loc["ST1", "postings"], rt.loc["ST1", "posted_intraday"], rt.loc["ST1", "unposted_intraday"],
            rt.loc["ST1", "max_lag_s"]) == (2, 350.0, 0.0, 0.0)
    assert (batch.loc["ST1", "postings"], batch.loc["ST1", "posted_intraday"], batch.loc["ST1", "unposted_intraday"],
            batch.loc["ST1", "max_lag_s"]) == (1, 0.0, 350.0, 14 * 3600.0)  # 09:00Z to the 23:00Z cut-off
    assert batch.loc["ST2", "max_lag_s"] == 1800.0
    tx = kp.transactions(_day_lines())
    cut = kp.cutoff(DAY, TZ)
    assert cut == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    noon = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    assert kp.posted_as_of(kp.postings(tx, "realtime", cut), noon)["amount"].tolist() == [100.0]
    assert kp.posted_as_of(kp.postings(tx, "daily_batch", cut), noon).empty
    with pytest.raises(ValueError, match="realtime, daily_batch"):
        kp.day_summary(_day_lines(), None, "hourly", DAY, TZ)


def test_posting_mode_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: PIPELINES_FINANCE_POSTING_MODE not reaching ReconciliationSettings, or a typo accepted silently."""
    from pipelines import settings
    from pipelines.defs.resources import ReconciliationSettings

    assert ReconciliationSettings().posting_mode == "daily_batch"
    monkeypatch.setenv("PIPELINES_FINANCE_POSTING_MODE", "realtime")
    assert ReconciliationSettings(**settings.reconciliation()).posting_mode == "realtime"
    monkeypatch.setenv("PIPELINES_FINANCE_POSTING_MODE", "weekly")
    with pytest.raises(settings.SettingError, match="PIPELINES_FINANCE_POSTING_MODE"):
        settings.reconciliation()


def test_report_shows_the_posting_modes_effect(tmp_path: Path) -> None:
    """Kills: a report whose kiosk section does not follow the mode (intra-day posted amount) or leaves a stale
    kiosk.csv behind when the day has no kiosk section."""
    from pipelines.domain.reconciliation.model import empty_findings

    pages = {}
    for mode in kp.POSTING_MODES:
        summary = kp.day_summary(_day_lines(), None, mode, DAY, TZ)
        files = write_daily_report(tmp_path / mode, DAY, empty_findings(), None, kiosk=summary, posting_mode=mode)
        pages[mode] = files.summary_html.read_text()
        csv = pd.read_csv(files.directory / "kiosk.csv", encoding="utf-8-sig")
        assert csv.set_index("location_id").loc["ST1", "posted_intraday"] == (350.0 if mode == "realtime" else 0.0)
    assert 'data-posting-mode="daily_batch"' in pages["daily_batch"]

    def intraday(page: str) -> dict[str, str]:
        rows = re.findall(r'data-testid="kiosk-row" data-currency="(\w+)" data-location="(\w+)".*?'
                          r'data-testid="kiosk-posted-intraday">([^&<]*)', page)
        return {f"{loc} {cur}": value for cur, loc, value in rows}

    assert intraday(pages["daily_batch"]) == {"ST1 SEK": "0.00", "ST2 EUR": "0.00"}
    assert intraday(pages["realtime"]) == {"ST1 SEK": "350.00", "ST2 EUR": "40.00"}
    again = write_daily_report(tmp_path / "realtime", DAY, empty_findings(), None)
    assert not (again.directory / "kiosk.csv").exists() and "kiosk-section" not in again.summary_html.read_text()


# ------------------------------------------------------------------ the raw asset, for real



@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_cloudshelf_orders_materialises_the_business_day(tmp_path: Path, db: str, request: pytest.FixtureRequest
                                                         ) -> None:
    """Kills: orders of the wrong business day (UTC dates instead of the estate's timezone: the 23:30 and 00:30 local
    orders), lines lost or duplicated across pages, take-home/delivery from the wrong setting, the Centra number
    written back not landing, estate location ids not resolved, money read back differently on PostgreSQL
    (NUMERIC), and a check that does not run on the partition."""
    from pipelines.defs.kiosk.raw import cloudshelf_orders, cloudshelf_orders_checks
    from pipelines.devstack import Stack
    from pipelines_tests.kiosk.kiosk_support import resources

    url = None
    if db == "postgres":
        from pipelines_tests.pg_server import create_database

        url = create_database(request.getfixturevalue("pg_server_url"), "cs4_cloudshelf_orders")
    with Stack(tmp_path / "stack", sizes=24, stores=2, seed=11, kiosks=True, database_url=url) as stack:
        tz = ZoneInfo(stack.estate.business_timezone)
        store = stack.estate.stores[0]
        loc = ids.location_gid(store.id)
        skus = [s.sku for p in stack.estate.catalog for v in p.variants for s in v.sizes][:3]
        with stack.cloudshelf_client(page_size=2) as client:  # tiny pages: paging is exercised
            client.upsert_locations([{"id": loc, "displayName": store.id, "countryCode": store.country}])
            client.upsert_products([{"id": ids.product_gid("P1"), "displayName": "P1"}])
            client.upsert_variants(ids.product_gid("P1"), [
                {"id": ids.variant_gid(s), "sku": s, "currentPrice": 10.0 + i, "originalPrice": 10.0 + i,
                 "availableToPurchase": True} for i, s in enumerate(skus)])
            client.upsert_stock_levels([(loc, ids.variant_gid(s), 50) for s in skus])
        sim = stack.cloudshelf
        at = lambda h, m, d=1: datetime(2026, 12, d, h, m, tzinfo=tz)  # noqa: E731
        placed = {
            "before": sim.kiosk_order(loc, [(ids.variant_gid(skus[0]), 1)],
                                      at=datetime(2026, 11, 30, 23, 30, tzinfo=tz)),
            "first": sim.kiosk_order(loc, [(ids.variant_gid(skus[0]), 2), (ids.variant_gid(skus[1]), 1)],
                                     at=at(0, 30)),
            "delivery": sim.kiosk_order(loc, [(ids.variant_gid(skus[2]), 3)], fulfilment_method="home-standard",
                                        email="k@example.com", at=at(12, 0)),
            "late": sim.kiosk_order(loc, [(ids.variant_gid(skus[1]), 1)], at=at(23, 30)),
            "draft": sim.kiosk_order(loc, [(ids.variant_gid(skus[1]), 1)], at=at(13, 0), paid=False),
            "after": sim.kiosk_order(loc, [(ids.variant_gid(skus[0]), 1)], at=at(0, 30, d=2)),
        }
        with stack.cloudshelf_client() as client:
            client.upsert_orders([{"id": placed["delivery"], "newThirdPartyId": "424242", "status": "PAID"}])
        result = dg.materialize([cloudshelf_orders, *cloudshelf_orders_checks], partition_key=DAY,
                                resources={k: v for k, v in resources(stack).items()
                                           if k in ("store", "estate", "cloudshelf")}, raise_on_error=False)
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"cloudshelf_orders_schema": True, "cloudshelf_orders_mapped": True}
        stored = read_partition(stack.engine, "cloudshelf_orders", DAY)
        truth = [o for o in sim.orders() if o.id in {placed[k] for k in ("first", "delivery", "late", "draft")}]
    assert sorted(stored["order_id"].unique()) == sorted(o.id for o in truth)
    assert len(stored) == sum(len(o.lines) for o in truth) == 5
    kinds = stored.groupby("order_id")["fulfilment_kind"].first().to_dict()
    assert kinds[placed["delivery"]] == "delivery" and kinds[placed["first"]] == kinds[placed["late"]] == "take_home"
    status = stored.groupby("order_id")["status"].first().to_dict()
    assert status[placed["draft"]] == "DRAFT_BASKET" and status[placed["first"]] == "PAID"
    assert stored.loc[stored["order_id"] == placed["delivery"], "third_party_id"].tolist() == ["424242"]
    assert set(stored["location_id"]) == {store.id}
    first = stored[stored["order_id"] == placed["first"]].set_index("sku")
    assert (int(first.loc[skus[0], "quantity"]), float(first.loc[skus[0], "line_total"])) == (2, 20.0)
    assert float(stored.loc[stored["order_id"] == placed["delivery"], "line_total"].iloc[0]) == 36.0


def test_reconciliation_and_report_read_the_kiosk_day(tmp_path: Path) -> None:
    """The reconciliation and the finance report on a real day (Dagster runs, SQLite, the simulators): a paid delivery
    order Centra does not have, take-home sales the stock sync never applied, and a published kiosk level Centra
    cannot back. Kills: load_inputs not reading the kiosk datasets (or the published levels and the kiosk
    warehouses), the finance report not following PIPELINES_FINANCE_POSTING_MODE, and kiosk.csv not written."""
    from pipelines.defs.commerce.assets import centra_stock_snapshot
    from pipelines.defs.kiosk.raw import cloudshelf_orders
    from pipelines.defs.reconciliation.assets import finance_daily_report, reconciliation_findings
    from pipelines.defs.resources import CloudshelfResource, ReconciliationSettings
    from pipelines.devstack import Stack
    from pipelines.domain.kiosk.availability import kiosk_locations
    from pipelines.store.kiosk import record_levels
    from pipelines_tests.traded import Traded

    with Stack(tmp_path / "stack", sizes=24, stores=2, seed=11, kiosks=True) as stack:
        est, env = stack.estate, stack.env()
        tz = ZoneInfo(est.business_timezone)
        store = est.stores[0]
        loc = ids.location_gid(store.id)
        skus = [s.sku for p in est.catalog for v in p.variants for s in v.sizes][:3]
        with stack.cloudshelf_client() as client:
            client.upsert_locations([{"id": loc, "displayName": store.id, "countryCode": store.country}])
            client.upsert_products([{"id": ids.product_gid("P1"), "displayName": "P1"}])
            client.upsert_variants(ids.product_gid("P1"), [
                {"id": ids.variant_gid(s), "sku": s, "currentPrice": 10.0, "originalPrice": 10.0,
                 "availableToPurchase": True} for s in skus])
            client.upsert_stock_levels([(loc, ids.variant_gid(s), 50) for s in skus])
        sim = stack.cloudshelf
        sim.kiosk_order(loc, [(ids.variant_gid(skus[0]), 2)], at=datetime(2026, 12, 1, 10, 0, tzinfo=tz))
        delivery = sim.kiosk_order(loc, [(ids.variant_gid(skus[1]), 3)], fulfilment_method="home-standard",
                                   email="k@example.com", at=datetime(2026, 12, 1, 12, 0, tzinfo=tz))
        # the kiosk shows skus[2] in stock at the store; Centra has none of it in any warehouse the kiosk reads
        (kl,) = [k for k in kiosk_locations(est.locations, est.markets, est.centra.allocation_rules)
                 if k.location_id == store.id]
        for w in kl.warehouses:
            size_id = est.by_sku[skus[2]].size.size_id
            stack.centra.state.apply_stock_set("test setup", w, [(size_id, 0)])
        record_levels(stack.engine, {(store.id, skus[2]): 4}, at="2026-12-01T20:00:00.000000Z")
        traded = Traded(stack, ReconciliationSettings(blocking_value_base=1e9, posting_mode="realtime"))
        traded.resources["cloudshelf"] = CloudshelfResource(base_url=env["CLOUDSHELF_API_URL"],
                                                            token=env["CLOUDSHELF_API_TOKEN"])
        result = traded.materialize([cloudshelf_orders, centra_stock_snapshot, reconciliation_findings,
                                     finance_daily_report], partition_key=DAY)
        assert result.success
        findings = traded.table("reconciliation_findings", DAY)
        report_dir = stack.home / "reports" / DAY
        kiosk_csv = pd.read_csv(report_dir / "kiosk.csv", encoding="utf-8-sig")
        page = (report_dir / "summary.html").read_text()
    kiosk = findings[findings["finding_type"].str.startswith("kiosk_")]
    got = {(r.finding_type, r.location_id, r.sku, r.transaction_id) for r in kiosk.itertuples()}
    assert got == {("kiosk_order_missing_in_commerce", store.id, None, delivery),
                   ("kiosk_sale_not_deducted", store.id, skus[0], None),
                   ("kiosk_availability_oversell", store.id, skus[2], None)}
    assert float(kiosk.loc[kiosk["finding_type"] == "kiosk_order_missing_in_commerce", "value_at_risk"].iloc[0]) == 30.0
    row = kiosk_csv.set_index("location_id").loc[store.id]
    assert (row["posting_mode"], row["traded_amount"], row["posted_intraday"], row["centra_delivery_amount"]) == \
        ("realtime", 50.0, 50.0, 0.0)
    assert 'data-posting-mode="realtime"' in page
