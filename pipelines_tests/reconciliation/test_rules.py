"""Reconciliation rules on small hand-built frames: each discrepancy found with its type, keys and value."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipelines.domain.reconciliation import (
    FINDING_COLUMNS,
    ReconciliationInputs,
    Reference,
    RuleConfig,
    Tolerance,
    build_reference,
    exception_records,
    model,
    reconcile,
)
from pipelines.domain.reconciliation import rules as R

DAY = "2026-11-24"
PREV = "2026-11-23"

LOCATIONS = pd.DataFrame([
    {"location_id": "ST-SE01", "fulfillment_node_id": "SE01", "warehouse_id": 2, "currency": "SEK",
     "country": "SE", "pricelist_id": 1, "tax_rate": 0.25, "fx_to_base": 0.087},
    {"location_id": "ST-DE01", "fulfillment_node_id": "DE01", "warehouse_id": 3, "currency": "EUR",
     "country": "DE", "pricelist_id": 2, "tax_rate": 0.19, "fx_to_base": 1.0},
])
_PRICES = {"A": (499.0, 49.95), "B": (299.0, 29.95), "C": (199.0, 19.95), "D": (999.0, 99.95), "W": (99.0, 9.95)}
PRICES = pd.DataFrame([{"pricelist_id": pl, "sku": sku, "price": p[pl - 1]} for sku, p in _PRICES.items()
                       for pl in (1, 2)])
REF = Reference.of(LOCATIONS, PRICES, "EUR", {"SEK": 0.087, "EUR": 1.0}, (0.12, 0.19, 0.25))
TOL = Tolerance()


# ------------------------------------------------------------------ row builders (exact table columns)


def pos_stock(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "snapshot_at": f"{DAY}T22:59:59Z", "fulfillment_node_id": n,
                          "location_id": None, "sku": s, "on_hand": q, "atp": q, "allocations": 0,
                          "safety_stock": 0} for n, s, q in rows])


def centra_stock(rows: list[tuple[int, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "snapshot_at": f"{DAY}T22:59:59Z", "warehouse_id": w,
                          "location_id": None, "size_id": i, "sku": s, "physical": q, "allocated": 0,
                          "free_to_allocate": q, "demand": 0} for i, (w, s, q) in enumerate(rows)])


def movements(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "movement_key": f"m{i}", "event_name": "x", "event_time": f"{DAY}T10:00:00Z",
                          "logical_timestamp": i, "fulfillment_node_id": n, "location_id": None, "sku": s,
                          "sku_known": True, "movement_type": t, "quantity": q, "source_event": f"e{i}"}
                         for i, (n, s, t, q) in enumerate(rows)])


def changes(rows: list[tuple[int, str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "change_id": f"c{i}", "created_at": f"{DAY}T10:00:01Z",
                          "warehouse_id": w, "location_id": None, "size_id": i, "sku": s, "quantity": q,
                          "description": d} for i, (w, s, q, d) in enumerate(rows)])


def line(tid: str, node: str, sku: str, qty: int, unit: float, disc: float, rate: float, *, kind: str = "sale",
         ref: str | None = None, day: str = DAY, tax: float | None = None, line_no: int = 1) -> dict:
    gross = round(unit * qty, 2)
    tax = round((gross - disc) * rate / (1 + rate), 2) if tax is None else tax
    return {"business_date": day, "transaction_id": tid, "line_no": line_no, "kind": kind,
            "fulfillment_node_id": node, "location_id": None, "sku": sku, "ean": None, "sku_known": True,
            "quantity": qty, "unit_price": unit, "discount": disc, "tax": tax,
            "net_amount": round(gross - disc - tax, 2), "currency": "SEK" if node == "SE01" else "EUR",
            "event_time": f"{day}T12:00:00Z", "original_order_ref": ref, "source_event": f"ev-{tid}"}


def catalog(rows: list[tuple[str, bool]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "size_id": i, "sku": s, "ean": None, "product_number": "P",
                          "product_name": "n", "product_status": "ACTIVE", "variant_number": "V",
                          "variant_name": "v", "size_name": "M", "is_active": a} for i, (s, a) in enumerate(rows)])


def pos_catalog(skus: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "sku": s, "product_id": s, "locations": 2, "on_hand_total": 1}
                         for s in skus])


def centra_returns(rows: list[tuple[str, int, bool, int | None]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "return_id": r, "order_number": o, "created_at": f"{DAY}T13:00:00Z",
                          "status": "COMPLETED", "currency": "SEK", "grand_total": 0.0, "tax_total": 0.0,
                          "refunded": f, "refund_amount": 0.0, "refunded_at": None, "return_warehouse_id": w,
                          "external_id": None, "line_count": 1} for r, o, f, w in rows])


def centra_return_lines(rows: list[tuple[str, int, str, int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "return_id": r, "order_number": o, "line_id": f"{r}-{i}", "sku": s,
                          "quantity": q, "unit_price": v / q, "line_value": v, "tax_percent": t}
                         for i, (r, o, s, q, v, t) in enumerate(rows)])


def orders(rows: list[tuple[int, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": PREV, "order_id": f"o{n}", "order_number": n, "status": st,
                          "created_at": f"{PREV}T09:00:00Z", "store_id": 1, "market_id": 1, "pricelist_id": 1,
                          "currency": c, "country": "SE", "currency_base_rate": 1.0, "email": None,
                          "external_id": None, "grand_total": g, "tax_total": 0.0, "discount_total": 0.0,
                          "shipping_total": 0.0, "line_count": 1} for n, st, g, c in rows])


def clean_lines() -> pd.DataFrame:
    return pd.DataFrame([
        line("T1", "SE01", "A", 1, 499.0, 0.0, 0.25),
        line("T2", "DE01", "B", 2, 29.95, 5.99, 0.19),
        line("T3", "SE01", "C", 1, 199.0, 19.90, 0.25),
        line("T3", "SE01", "B", 1, 299.0, 0.0, 0.25, line_no=2),
        line("R1", "SE01", "B", 1, 299.0, 0.0, 0.25, kind="return", ref="1001"),
        line("R2", "SE01", "A", 1, 499.0, 0.0, 0.25, kind="return", ref="T0"),  # return of a store sale
        line("T0", "SE01", "A", 1, 499.0, 0.0, 0.25, day=PREV),
    ])


def downstream_of(lines: pd.DataFrame) -> pd.DataFrame:
    sale = lines[(lines["kind"] == "sale") & (lines["business_date"] == DAY)].copy()
    sale["location_id"] = sale["fulfillment_node_id"].map({"SE01": "ST-SE01", "DE01": "ST-DE01"})
    sale["tax_rate"] = sale["location_id"].map({"ST-SE01": 0.25, "ST-DE01": 0.19})
    sale["gross"] = sale["unit_price"] * sale["quantity"]
    g = sale.groupby(["location_id", "tax_rate"], as_index=False).agg(
        count=("transaction_id", "nunique"), gross=("gross", "sum"), discount=("discount", "sum"),
        tax=("tax", "sum"), net=("net_amount", "sum"))
    g.insert(1, "business_date", DAY)
    return g


def clean_day() -> ReconciliationInputs:
    lines = clean_lines()
    return ReconciliationInputs(
        business_date=DAY, reference=REF, pos_sale_lines=lines,
        pos_stock_snapshot=pos_stock([("SE01", "A", 5), ("SE01", "B", 3), ("SE01", "C", 0),
                                      ("DE01", "A", 2), ("DE01", "B", 0), ("DE01", "C", 7)]),
        centra_stock_snapshot=centra_stock([(2, "A", 5), (2, "B", 3), (2, "C", 0), (3, "A", 2), (3, "C", 7),
                                            (1, "A", 100), (1, "D", 4)]),  # warehouse 1 is the DC
        pos_catalog=pos_catalog(["A", "B", "C"]),
        centra_catalog=catalog([("A", True), ("B", True), ("C", True), ("D", False)]),
        pos_stock_movements=movements([("SE01", "A", "sale", -1), ("SE01", "B", "return", 1),
                                       ("DE01", "C", "receipt", 5), ("SE01", "C", "count", 0)]),
        centra_stock_changes=changes([(2, "A", -1, "POS sale T1"), (2, "B", 1, "Return 7 of order 1001"),
                                      (3, "C", 5, "POS receipt"), (2, "A", -2, "Shipment 55-1"),
                                      (2, "A", 0, "Order 1009 allocation"), (1, "A", 50, "Delivery"),
                                      (2, "C", 3, "POS count")]),
        centra_returns=centra_returns([("ret-1", 1001, True, 2)]),
        centra_return_lines=centra_return_lines([("ret-1", 1001, "B", 1, 299.0, 25.0)]),
        centra_orders=orders([(1001, "SHIPPED", 299.0, "SEK"), (1002, "SHIPPED", 49.95, "EUR")]),
        pickups=pd.DataFrame([{"order_number": 1002, "location_id": "ST-DE01", "completed_at": f"{DAY}T15:00:00Z"}]),
        downstream_sales=downstream_of(lines),
        missing_transactions=pd.DataFrame(columns=["kind", "transaction_id", "order_id", "status", "evidence",
                                                   "fulfillment_node_id", "amount", "currency", "last_error"]),
    )


def run(inputs: ReconciliationInputs, tolerance: Tolerance = TOL, config: RuleConfig | None = None) -> pd.DataFrame:
    res = reconcile(inputs, tolerance, config)
    assert list(res.findings.columns) == FINDING_COLUMNS
    return res.findings


def only(findings: pd.DataFrame) -> pd.Series:
    assert len(findings) == 1, findings[["finding_type", "location_id", "sku", "order_ref", "value_at_risk"]]
    return findings.iloc[0]


# ------------------------------------------------------------------ clean day, determinism, summaries


def test_clean_day_has_no_findings() -> None:
    res = reconcile(clean_day(), TOL)
    assert res.findings.empty, res.findings[["finding_type", "location_id", "sku", "detail"]]
    assert res.skipped == {}
    assert set(res.drift_by_store["location_id"]) == {"ST-SE01", "ST-DE01"}
    assert (res.drift_by_store["value_at_risk_base"] == 0).all()


def test_missing_inputs_skip_their_rules() -> None:
    res = reconcile(ReconciliationInputs(business_date=DAY, reference=REF, pos_sale_lines=clean_lines()), TOL)
    assert res.findings.empty
    assert {"stock_drift", "sync", "orphan_sku", "store_sales", "click_collect", "returns"} <= set(res.skipped)


def test_findings_are_deterministic_and_ordered_by_value() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[0, "physical"] = 9   # SE01 A +4
    day.centra_stock_snapshot.loc[4, "physical"] = 2   # DE01 C -5
    day.centra_orders.loc[1, "status"] = "PROCESSING"
    a = run(day)
    shuffled = dataclasses.replace(day, **{f: getattr(day, f).sample(frac=1.0, random_state=1) for f in (
        "pos_stock_snapshot", "centra_stock_snapshot", "pos_sale_lines", "pos_stock_movements",
        "centra_stock_changes", "centra_catalog")})
    b = run(shuffled)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["value_at_risk_base"]) == sorted(a["value_at_risk_base"], reverse=True)
    assert list(a["risk_rank"]) == [1, 2, 3]
    assert (a["value_at_risk"] >= 0).all()


# ------------------------------------------------------------------ stock drift


def test_oversell_drift_with_value_in_store_and_base_currency() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[0, "physical"] = 7  # SE01 A: POS 5, Centra 7
    f = only(run(day))
    assert (f.finding_type, f.location_id, f.sku) == ("stock_drift_oversell", "ST-SE01", "A")
    assert (f.quantity_pos, f.quantity_commerce, f.quantity_diff) == (5, 7, 2)
    assert (f.currency, f.value_at_risk, f.value_at_risk_base) == ("SEK", 998.0, round(998.0 * 0.087, 2))
    assert (f.severity, f.owner_team) == ("ERROR", "retail_operations")
    assert pd.isna(f.order_ref) and pd.isna(f.transaction_id) and pd.isna(f.tax_rate)


def test_lost_sales_drift_when_centra_row_is_missing() -> None:
    day = clean_day()
    day.centra_stock_snapshot = day.centra_stock_snapshot.drop(index=4)  # DE01 C: POS 7, Centra none
    f = only(run(day))
    assert (f.finding_type, f.location_id, f.sku, f.quantity_diff) == ("stock_drift_lost_sales", "ST-DE01", "C", -7)
    assert f.value_at_risk == pytest.approx(7 * 19.95)


def test_drift_units_tolerance_edge() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[0, "physical"] = 7  # diff 2
    assert run(day, Tolerance(units=2)).empty
    day.centra_stock_snapshot.loc[0, "physical"] = 8  # diff 3
    assert only(run(day, Tolerance(units=2))).quantity_diff == 3


def test_dc_stock_is_not_store_drift() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[5, "physical"] = 0
    assert run(day).empty


def test_stock_drift_rule_alone_without_catalog() -> None:
    f = R.stock_drift(DAY, pos_stock([("SE01", "A", 1)]), centra_stock([(2, "A", 1), (3, "B", 2)]),
                      REF.locations, REF.prices, TOL)
    assert list(f.columns) == FINDING_COLUMNS
    f = only(f)
    assert (f.finding_type, f.location_id, f.sku, f.value_at_risk) == ("stock_drift_oversell", "ST-DE01", "B", 59.9)


# ------------------------------------------------------------------ sync


def not_drift(findings: pd.DataFrame) -> pd.DataFrame:
    """The findings but stock drift (a sync failure leaves drift at the cut-off too)."""
    return findings[~findings["finding_type"].isin(model.DRIFT_TYPES)].reset_index(drop=True)


def with_centra_physical(day: ReconciliationInputs, warehouse: int, sku: str, physical: int) -> None:
    """Centra's snapshot as the ledger left it: set (or add) the physical stock of one key."""
    cs = day.centra_stock_snapshot
    hit = (cs["warehouse_id"] == warehouse) & (cs["sku"] == sku)
    if hit.any():
        cs.loc[hit, ["physical", "free_to_allocate"]] = physical
    else:
        day.centra_stock_snapshot = pd.concat([cs, centra_stock([(warehouse, sku, physical)])], ignore_index=True)


def test_pos_movement_missing_in_centra() -> None:
    day = clean_day()
    day.centra_stock_changes = day.centra_stock_changes.drop(index=0)  # the T1 sale never reached Centra
    with_centra_physical(day, 2, "A", 6)  # ... so Centra still shows the unit NewStore sold
    f = only(not_drift(run(day)))
    assert (f.finding_type, f.location_id, f.sku) == ("sync_missing_in_commerce", "ST-SE01", "A")
    assert (f.quantity_pos, f.quantity_commerce, f.quantity_diff, f.value_at_risk) == (-1, 0, 1, 499.0)
    assert f.owner_team == "integration"
    assert f.detail.endswith(";newstore_on_hand=5;centra_physical=6")


def test_partial_sync_is_missing_and_extra_centra_change_is_unexpected() -> None:
    day = clean_day()
    day.centra_stock_changes.loc[2, "quantity"] = 3  # receipt of 5 applied as 3
    with_centra_physical(day, 3, "C", 5)
    extra = changes([(3, "B", -1, "Manual correction")])
    day.centra_stock_changes = pd.concat([day.centra_stock_changes, extra], ignore_index=True)
    day.pos_stock_snapshot.loc[day.pos_stock_snapshot["fulfillment_node_id"].eq("DE01")
                               & day.pos_stock_snapshot["sku"].eq("B"), "on_hand"] = 2
    with_centra_physical(day, 3, "B", 1)  # the manual correction took Centra from NewStore's 2 to 1
    f = not_drift(run(day)).set_index("finding_type")
    assert f.loc["sync_missing_in_commerce", "sku"] == "C"
    assert f.loc["sync_missing_in_commerce", "value_at_risk"] == pytest.approx(2 * 19.95)
    u = f.loc["sync_unexpected_in_commerce"]
    assert (u.location_id, u.sku, u.quantity_pos, u.quantity_commerce, u.value_at_risk) == ("ST-DE01", "B", 0, -1, 29.95)


def test_centra_moving_more_than_the_pos_is_unexpected() -> None:
    day = clean_day()
    day.centra_stock_changes.loc[0, "quantity"] = -2
    with_centra_physical(day, 2, "A", 4)
    f = only(not_drift(run(day)))
    assert (f.finding_type, f.quantity_pos, f.quantity_commerce, f.value_at_risk) == \
        ("sync_unexpected_in_commerce", -1, -2, 499.0)


def test_description_prefix_filter_is_configurable() -> None:
    day = clean_day()
    day.centra_stock_snapshot = None  # no cut-off evidence: the ledgers alone decide
    f = only(run(day, config=RuleConfig(exclude_change_description_prefixes=())))
    assert (f.finding_type, f.sku, f.quantity_commerce, f.quantity_diff) == ("sync_unexpected_in_commerce", "A", -3, -2)
    assert "newstore_on_hand" not in f.detail


def test_counted_keys_are_skipped_unless_configured() -> None:
    day = clean_day()
    day.centra_stock_snapshot = None
    f = only(not_drift(run(day, config=RuleConfig(skip_counted_keys=False))))
    assert (f.finding_type, f.location_id, f.sku, f.quantity_commerce) == ("sync_unexpected_in_commerce", "ST-SE01", "C", 3)


def test_a_store_movement_lost_on_the_stream_is_a_stream_gap_never_a_revert() -> None:
    """Kills: the rule judging Centra by the event stream alone (a lost POS event read as a foreign Centra
    change to revert), and evidence read for the wrong key when several keys differ in one call."""
    day = clean_day()
    # The stream lost the T1 sale (SE01, A): Centra got it (another integration) and NewStore's stock has it.
    day.pos_stock_movements = day.pos_stock_movements.drop(index=0).reset_index(drop=True)
    # A real foreign change at DE01 (Centra -1 on B, NewStore still 2) and a receipt Centra only half got.
    day.pos_stock_snapshot.loc[day.pos_stock_snapshot["fulfillment_node_id"].eq("DE01")
                               & day.pos_stock_snapshot["sku"].eq("B"), "on_hand"] = 2
    day.centra_stock_changes = pd.concat([day.centra_stock_changes, changes([(3, "B", -1, "AMS manual edit")])],
                                         ignore_index=True)
    with_centra_physical(day, 3, "B", 1)
    day.centra_stock_changes.loc[2, "quantity"] = 3
    with_centra_physical(day, 3, "C", 5)
    f = not_drift(run(day)).set_index(["location_id", "sku"])
    assert f["finding_type"].to_dict() == {("ST-SE01", "A"): "pos_stream_gap",
                                           ("ST-DE01", "B"): "sync_unexpected_in_commerce",
                                           ("ST-DE01", "C"): "sync_missing_in_commerce"}
    gap = f.loc[("ST-SE01", "A")]
    assert (gap.quantity_pos, gap.quantity_commerce, gap.quantity_diff, gap.value_at_risk) == (0, -1, -1, 499.0)
    assert (gap.severity, gap.owner_team) == ("WARN", "integration")
    assert gap.detail == "pos_net=0;commerce_net=-1;pos_movements=0;commerce_changes=1;newstore_on_hand=5;centra_physical=5"
    assert "Change nothing in Centra" in gap.playbook and "do not revert" in gap.playbook
    assert f.loc[("ST-DE01", "B"), "detail"].endswith("newstore_on_hand=2;centra_physical=1")
    assert f.loc[("ST-DE01", "C"), "detail"].endswith("newstore_on_hand=7;centra_physical=5")
    day.pos_stock_snapshot_before = day.pos_stock_snapshot.iloc[0:0]  # no previous cut-off of any store:
    day.centra_stock_snapshot_before = day.centra_stock_snapshot.iloc[0:0]  # the day's cut-off still judges
    assert not_drift(run(day)).set_index(["location_id", "sku"])["finding_type"].to_dict() == \
        f["finding_type"].to_dict()
    drift = run(day)
    drift = drift[drift["finding_type"].isin(model.DRIFT_TYPES)]
    assert ("ST-SE01", "A") not in set(zip(drift["location_id"], drift["sku"], strict=True))


def test_a_stream_movement_centra_and_newstore_never_saw_is_not_replayed() -> None:
    """Kills: a replay instruction for a movement NewStore's own stock does not show (a late-dated or duplicated
    stream event): replaying it would create the drift the finding is meant to remove."""
    day = clean_day()
    extra = movements([("DE01", "A", "sale", -1)])
    day.pos_stock_movements = pd.concat([day.pos_stock_movements, extra], ignore_index=True)
    f = only(not_drift(run(day)))
    assert (f.finding_type, f.location_id, f.sku, f.quantity_pos, f.quantity_commerce) == \
        ("pos_stream_gap", "ST-DE01", "A", -1, 0)
    assert f.detail.endswith("newstore_on_hand=2;centra_physical=2")


def test_within_tolerance_agreement_is_a_gap_and_a_store_without_snapshot_rows_has_no_evidence() -> None:
    """Kills: the cut-off agreement ignoring the units tolerance, and a store missing from NewStore's snapshot
    read as 0 = 0 agreement (no evidence must keep the sync type)."""
    day = clean_day()
    day.centra_stock_changes.loc[0, "quantity"] = -3  # SE01 A: Centra -3, POS -1
    with_centra_physical(day, 2, "A", 4)  # NewStore 5: one unit apart
    assert only(not_drift(run(day))).finding_type == "sync_unexpected_in_commerce"
    assert only(not_drift(run(day, Tolerance(units=1)))).finding_type == "pos_stream_gap"
    with_centra_physical(day, 2, "A", 3)  # two units apart
    assert only(not_drift(run(day, Tolerance(units=1)))).finding_type == "sync_unexpected_in_commerce"
    gone = clean_day()
    gone.pos_stock_movements = gone.pos_stock_movements.drop(index=2).reset_index(drop=True)  # DE01 C receipt lost
    gone.pos_stock_snapshot = gone.pos_stock_snapshot[gone.pos_stock_snapshot["fulfillment_node_id"] != "DE01"]
    f = R.sync_failures(DAY, gone.pos_stock_movements, gone.centra_stock_changes, REF.locations, REF.prices, TOL,
                        pos_stock=gone.pos_stock_snapshot, centra_stock=gone.centra_stock_snapshot)
    f = only(f)
    assert (f.finding_type, f.location_id, f.sku) == ("sync_unexpected_in_commerce", "ST-DE01", "C")
    assert "newstore_on_hand" not in f.detail


def before_cutoff(day: ReconciliationInputs, pos: dict[tuple[str, str], int] | None = None,
                  centra: dict[tuple[int, str], int] | None = None) -> None:
    """The previous cut-off's snapshots: today's, with some keys set to other quantities."""
    ps, cs = day.pos_stock_snapshot.assign(business_date=PREV), day.centra_stock_snapshot.assign(business_date=PREV)
    for (node, sku), q in (pos or {}).items():
        ps.loc[ps["fulfillment_node_id"].eq(node) & ps["sku"].eq(sku), "on_hand"] = q
    for (wh, sku), q in (centra or {}).items():
        cs.loc[cs["warehouse_id"].eq(wh) & cs["sku"].eq(sku), "physical"] = q
    day.pos_stock_snapshot_before, day.centra_stock_snapshot_before = ps, cs


def test_with_the_previous_cutoff_an_old_drift_does_not_make_todays_stream_gap_a_sync_failure() -> None:
    """Kills: judging the day by the drift left at its cut-off (drift from earlier days turning a lost store
    event into a 'sync failure'), and a sync finding valued by the stream's gap instead of the day's own
    difference."""
    day = clean_day()
    day.pos_stock_movements = day.pos_stock_movements.drop(index=0).reset_index(drop=True)  # stream lost T1
    with_centra_physical(day, 2, "A", 7)  # Centra 2 above NewStore's 5 since an earlier day
    before_cutoff(day, pos={("SE01", "A"): 6}, centra={(2, "A"): 8})  # both moved -1 over the day
    assert only(not_drift(run(day))).finding_type == "pos_stream_gap"
    day.pos_stock_snapshot_before = day.centra_stock_snapshot_before = None
    assert only(not_drift(run(day))).finding_type == "sync_unexpected_in_commerce"  # cut-off alone: ambiguous
    # A receipt of 5 Centra got as 3 while the stream also lost the T1 sale of the same key's store.
    day = clean_day()
    day.pos_stock_movements = day.pos_stock_movements.drop(index=0).reset_index(drop=True)
    day.centra_stock_changes.loc[2, "quantity"] = 3
    with_centra_physical(day, 3, "C", 5)
    before_cutoff(day, pos={("SE01", "A"): 6, ("DE01", "C"): 2}, centra={(2, "A"): 6, (3, "C"): 2})
    f = not_drift(run(day)).set_index(["location_id", "sku"])
    assert f["finding_type"].to_dict() == {("ST-SE01", "A"): "pos_stream_gap",
                                           ("ST-DE01", "C"): "sync_missing_in_commerce"}
    c = f.loc[("ST-DE01", "C")]
    assert (c.quantity_pos, c.quantity_commerce, c.quantity_diff, c.value_at_risk) == (5, 3, -2, 2 * 19.95)
    assert c.detail.endswith("newstore_on_hand=7;centra_physical=5;newstore_change=5;centra_change=3")


def test_a_loss_both_ledgers_missed_is_a_sync_failure_with_the_previous_cutoff() -> None:
    """Kills: the rule being blind to a store event lost before either ledger saw it (the stream feeds both),
    which only NewStore's own stock shows; and that finding when switched off or without the previous cut-off."""
    day = clean_day()  # NewStore sold one more unit of B at DE01 than anyone heard of: 1 -> 0; Centra stayed at 1
    day.pos_stock_snapshot.loc[day.pos_stock_snapshot["fulfillment_node_id"].eq("DE01")
                               & day.pos_stock_snapshot["sku"].eq("B"), "on_hand"] = 0
    with_centra_physical(day, 3, "B", 1)
    before_cutoff(day, pos={("DE01", "B"): 1})
    f = only(not_drift(run(day)))
    assert (f.finding_type, f.location_id, f.sku) == ("sync_missing_in_commerce", "ST-DE01", "B")
    assert (f.quantity_pos, f.quantity_commerce, f.quantity_diff, f.value_at_risk) == (-1, 0, 1, 29.95)
    assert "pos_net=0;commerce_net=0" in f.detail and f.detail.endswith("newstore_change=-1;centra_change=0")
    got = R.sync_failures(DAY, day.pos_stock_movements, day.centra_stock_changes, REF.locations, REF.prices, TOL,
                          pos_stock=day.pos_stock_snapshot, centra_stock=day.centra_stock_snapshot,
                          pos_stock_before=day.pos_stock_snapshot_before,
                          centra_stock_before=day.centra_stock_snapshot_before, see_stream_loss=False)
    assert got.empty
    day.pos_stock_snapshot_before = None
    assert not_drift(run(day)).empty  # the day's cut-off alone cannot date the loss


def test_sync_playbooks_are_safe_whichever_side_is_wrong() -> None:
    """Kills: a sync playbook telling someone to revert a Centra change or replay a movement before both systems'
    own records were checked (following it when the other side is wrong creates real drift)."""
    for ft in (model.SYNC_MISSING_IN_COMMERCE, model.SYNC_UNEXPECTED_IN_COMMERCE):
        assert "Before changing either system" in ft.playbook and "NewStore's stock" in ft.playbook
        assert "revert it" not in ft.playbook and "either side can be wrong" in ft.playbook.lower()
    assert "Do not revert" in model.SYNC_UNEXPECTED_IN_COMMERCE.playbook
    assert "never re-send" in model.SYNC_MISSING_IN_COMMERCE.playbook
    gap = model.FINDING_TYPES["pos_stream_gap"]
    assert not gap.money and gap.drift is None and gap.family != "sync"  # not a sync failure


# ------------------------------------------------------------------ orphans


def test_unknown_and_inactive_pos_skus_are_orphans_not_drift() -> None:
    day = clean_day()
    day.pos_stock_snapshot = pd.concat([day.pos_stock_snapshot, pos_stock([("SE01", "X", 4), ("DE01", "D", 2)])],
                                       ignore_index=True)
    day.centra_stock_snapshot = pd.concat([day.centra_stock_snapshot, centra_stock([(3, "D", 5)])], ignore_index=True)
    f = run(day).set_index("finding_type")
    assert set(f.index) == {"orphan_sku_pos_unknown_in_commerce", "orphan_sku_pos_inactive_in_commerce"}
    unknown = f.loc["orphan_sku_pos_unknown_in_commerce"]
    assert (unknown.location_id, unknown.sku, unknown.quantity_pos, unknown.value_at_risk) == ("ST-SE01", "X", 4, 0.0)
    inactive = f.loc["orphan_sku_pos_inactive_in_commerce"]
    assert (inactive.location_id, inactive.sku, inactive.quantity_pos, inactive.quantity_commerce) == ("ST-DE01", "D", 2, 5)
    assert inactive.value_at_risk == pytest.approx(2 * 99.95)
    assert (unknown.severity, inactive.severity) == ("ERROR", "WARN")


def test_unknown_sku_sold_is_valued_at_its_pos_price() -> None:
    lines = pd.DataFrame([line("T9", "SE01", "X", 2, 150.0, 0.0, 0.25)])
    f = only(R.orphan_skus(DAY, catalog([("A", True)]), REF.locations, REF.prices,
                           pos_stock=pos_stock([("SE01", "A", 1), ("SE01", "X", 4)]), pos_sale_lines=lines,
                           pos_catalog=pos_catalog(["A", "X"]), centra_stock=centra_stock([(2, "A", 1)])))
    assert (f.finding_type, f.location_id, f.sku, f.quantity_pos, f.quantity_commerce) == \
        ("orphan_sku_pos_unknown_in_commerce", "ST-SE01", "X", 4, 0)
    assert f.value_at_risk == 4 * 150.0 + 300.0


def test_catalog_only_pos_orphan_and_commerce_orphans() -> None:
    day = clean_day()
    day.pos_catalog = pos_catalog(["A", "B", "C", "Y"])
    day.centra_catalog = catalog([("A", True), ("B", True), ("C", True), ("D", False), ("W", True), ("V", True)])
    day.centra_stock_snapshot = pd.concat([day.centra_stock_snapshot, centra_stock([(2, "W", 3), (3, "V", 0)])],
                                          ignore_index=True)
    f = run(day)
    got = {(r.finding_type, r.location_id, r.sku, r.value_at_risk) for r in f.itertuples()}
    assert got == {("orphan_sku_pos_unknown_in_commerce", None, "Y", 0.0),
                   ("orphan_sku_commerce_unknown_in_pos", "ST-SE01", "W", 297.0),
                   ("orphan_sku_commerce_unknown_in_pos", None, "V", 0.0)}
    f = run(day, config=RuleConfig(report_unstocked_commerce_skus=False))
    assert set(f["sku"]) == {"Y", "W"}


# ------------------------------------------------------------------ store sales


def test_store_sales_against_downstream() -> None:
    day = clean_day()
    ds = day.downstream_sales
    se = ds["location_id"] == "ST-SE01"
    # T3 (two lines: C and B) was never posted downstream; DE posted twice
    ds.loc[se, ["count", "gross", "discount", "tax", "net"]] = [1, 499.0, 0.0, 99.8, 399.2]
    de = ds["location_id"] == "ST-DE01"
    ds.loc[de, "count"] = 2
    extra = pd.DataFrame([{"location_id": "ST-SE01", "business_date": DAY, "tax_rate": 0.12, "count": 1,
                           "gross": 10.0, "discount": 0.0, "tax": 1.07, "net": 8.93}])
    day.downstream_sales = pd.concat([ds, extra], ignore_index=True)
    f = run(day)
    assert set(f["finding_type"]) == {"store_sales_mismatch"}
    got = {(r.location_id, r.tax_rate): (r.quantity_pos, r.quantity_commerce, r.value_at_risk) for r in f.itertuples()}
    assert got == {("ST-SE01", 0.25): (2, 1, 498.0), ("ST-DE01", 0.19): (1, 2, 0.0), ("ST-SE01", 0.12): (0, 1, 10.0)}
    assert (f["owner_team"] == "finance").all()


def test_store_sales_money_tolerance_edge() -> None:
    day = clean_day()
    day.downstream_sales.loc[0, "net"] += 0.01
    assert run(day).empty
    day.downstream_sales.loc[0, "net"] += 0.01
    assert only(run(day)).value_at_risk == 0.02


def test_tax_rate_derivation_snaps_to_reference_rates() -> None:
    lines = pd.DataFrame([line("T1", "SE01", "A", 1, 112.0, 0.0, 0.12), line("T2", "SE01", "A", 1, 125.0, 0.0, 0.25)])
    codes = R.KeySpace(REF.locations).store(lines)
    assert list(R.derive_tax_rates(lines, codes, REF.locations, REF.tax_rates, TOL)) == [0.12, 0.25]


# ------------------------------------------------------------------ returns and refunds


def with_lines(day: ReconciliationInputs, *extra: dict) -> ReconciliationInputs:
    day.pos_sale_lines = pd.concat([day.pos_sale_lines, pd.DataFrame(list(extra))], ignore_index=True)
    return day


def test_return_without_order_ref() -> None:
    day = with_lines(clean_day(), line("R3", "DE01", "A", 1, 49.95, 0.0, 0.19, kind="return"),
                     line("T2", "DE01", "B", 1, 29.95, 0.0, 0.19, kind="return", line_no=9))  # own store sale
    f = only(run(day))
    assert (f.finding_type, f.location_id, f.sku, f.transaction_id) == ("return_without_order_ref", "ST-DE01", "A", "R3")
    assert (f.quantity_pos, f.value_at_risk, f.currency) == (1, 49.95, "EUR")


def test_unjudged_returns_raise_nothing_whether_given_as_a_list_or_a_series() -> None:
    day = with_lines(clean_day(), line("R3", "DE01", "A", 1, 49.95, 0.0, 0.19, kind="return"))
    assert only(run(day)).finding_type == "return_without_order_ref"
    for ids in (["R3"], pd.Series(["R3"])):
        assert R.returns_and_refunds(DAY, day.pos_sale_lines, REF.locations, TOL,
                                     unjudged_transaction_ids=ids).empty


def test_return_missing_in_commerce() -> None:
    day = clean_day()
    day.centra_return_lines = day.centra_return_lines.iloc[0:0]
    day.centra_returns = day.centra_returns.iloc[0:0]
    f = only(run(day))
    assert (f.finding_type, f.location_id, f.sku, f.order_ref, f.transaction_id) == \
        ("return_missing_in_commerce", "ST-SE01", "B", "1001", "R1")
    assert (f.quantity_pos, f.quantity_commerce, f.value_at_risk) == (1, 0, 299.0)


def test_refund_amount_and_tax_mismatch() -> None:
    day = clean_day()
    day.centra_return_lines.loc[0, "line_value"] = 279.0
    f = only(run(day))
    assert (f.finding_type, f.order_ref, f.sku, f.amount_pos, f.amount_commerce, f.value_at_risk) == \
        ("refund_amount_mismatch", "1001", "B", 299.0, 279.0, 20.0)
    day = clean_day()
    day.centra_return_lines.loc[0, "tax_percent"] = 12.0
    f = only(run(day))
    assert (f.finding_type, f.amount_pos) == ("refund_tax_mismatch", 59.8)
    assert f.value_at_risk == pytest.approx(round(59.8 - 299.0 * 0.12 / 1.12, 2))


def test_refund_money_tolerance_edge() -> None:
    day = clean_day()
    day.centra_return_lines.loc[0, "line_value"] = 298.99
    assert run(day).empty
    day.centra_return_lines.loc[0, "line_value"] = 298.98
    assert only(run(day)).finding_type == "refund_amount_mismatch"


def test_unrefunded_centra_return_is_an_amount_mismatch() -> None:
    day = clean_day()
    day.centra_returns.loc[0, "refunded"] = False
    f = only(run(day))
    assert (f.finding_type, f.quantity_commerce, f.amount_commerce, f.value_at_risk) == \
        ("refund_amount_mismatch", 1, 0.0, 299.0)


def _partial_day(centra: list[tuple[str, int, str, int, float, float]]) -> ReconciliationInputs:
    day = with_lines(clean_day(),
                     line("R4", "SE01", "A", 1, 499.0, 0.0, 0.25, kind="return", ref="1003", day=PREV),
                     line("R5", "SE01", "A", 2, 499.0, 0.0, 0.25, kind="return", ref="1003"))
    day.centra_returns = pd.concat([day.centra_returns, centra_returns([(r[0], 1003, True, 2) for r in centra])])
    day.centra_return_lines = pd.concat([day.centra_return_lines, centra_return_lines(centra)], ignore_index=True)
    return day


def test_partial_refunds_match_per_order_and_sku_with_summed_quantities() -> None:
    assert run(_partial_day([("ret-2", 1003, "A", 1, 499.0, 25.0), ("ret-3", 1003, "A", 2, 998.0, 25.0)])).empty
    assert run(_partial_day([("ret-2", 1003, "A", 3, 1497.0, 25.0)])).empty
    f = only(run(_partial_day([("ret-2", 1003, "A", 1, 499.0, 25.0)])))
    assert (f.finding_type, f.order_ref, f.sku, f.transaction_id) == ("refund_amount_mismatch", "1003", "A", "R5")
    assert (f.quantity_pos, f.quantity_commerce, f.value_at_risk) == (3, 1, 998.0)


def test_online_returns_to_the_dc_are_not_store_refunds() -> None:
    day = clean_day()
    day.centra_returns = centra_returns([("ret-1", 1001, True, 2), ("ret-9", 1001, True, 1)])
    day.centra_return_lines = centra_return_lines([("ret-1", 1001, "B", 1, 299.0, 25.0),
                                                   ("ret-9", 1001, "B", 1, 299.0, 25.0)])
    assert run(day).empty
    assert only(run(day, config=RuleConfig(store_returns_only=False))).finding_type == "refund_amount_mismatch"


# ------------------------------------------------------------------ click and collect


def test_click_collect_open_and_missing_orders() -> None:
    day = clean_day()
    day.centra_orders.loc[1, "status"] = "PROCESSING"
    day.pickups = pd.concat([day.pickups, pd.DataFrame([
        {"order_number": "1001", "location_id": "ST-SE01", "completed_at": f"{DAY}T16:00:00Z"},
        {"order_number": 5555, "location_id": "ST-SE01", "completed_at": f"{DAY}T16:00:00Z"}])], ignore_index=True)
    f = run(day).set_index("order_ref")
    assert set(f.index) == {"1002", "5555"}
    assert (f.loc["1002", "finding_type"], f.loc["1002", "location_id"], f.loc["1002", "value_at_risk"]) == \
        ("click_collect_open", "ST-DE01", 49.95)
    assert f.loc["5555", "value_at_risk"] == 0.0 and "MISSING" in f.loc["5555", "detail"]


def test_click_collect_value_is_converted_to_the_store_currency() -> None:
    f = only(R.click_collect(DAY, pd.DataFrame([{"order_number": 7, "location_id": "ST-SE01", "completed_at": "t"}]),
                             orders([(7, "CONFIRMED", 10.0, "EUR")]), REF.locations, REF.fx_to_base))
    assert (f.currency, f.value_at_risk, f.value_at_risk_base) == ("SEK", round(10.0 / 0.087, 2), 10.0)


# ------------------------------------------------------------------ sale lines


def _line_findings(*rows: dict, allowed: tuple[float, ...] | None = None) -> pd.DataFrame:
    return R.sale_line_checks(DAY, pd.DataFrame(list(rows)), REF.locations, REF.prices, TOL,
                              allowed_discount_rates=allowed)


def test_clean_lines_have_no_line_findings() -> None:
    assert _line_findings(*clean_lines().to_dict("records")).empty


def test_price_off_pricelist_with_tolerance_edge() -> None:
    assert _line_findings(line("T1", "SE01", "A", 2, 499.01, 0.0, 0.25)).empty
    f = only(_line_findings(line("T1", "SE01", "A", 2, 479.0, 0.0, 0.25)))
    assert (f.finding_type, f.location_id, f.sku, f.transaction_id, f.value_at_risk) == \
        ("price_off_pricelist", "ST-SE01", "A", "T1", 40.0)


def test_line_tax_mismatch_with_tolerance_edge() -> None:
    assert _line_findings(line("T1", "SE01", "A", 1, 499.0, 0.0, 0.25, tax=99.81)).empty
    f = only(_line_findings(line("T1", "SE01", "A", 1, 499.0, 0.0, 0.25, tax=95.0)))
    assert (f.finding_type, f.tax_rate, f.amount_pos, f.amount_commerce, f.value_at_risk) == \
        ("line_tax_mismatch", 0.25, 95.0, 99.8, 4.8)


def test_line_discount_mismatches() -> None:
    f = _line_findings(line("T1", "SE01", "A", 1, 499.0, -10.0, 0.25), line("T2", "DE01", "B", 1, 29.95, 35.0, 0.19))
    got = {(r.transaction_id, r.finding_type, r.value_at_risk) for r in f.itertuples()}
    assert got == {("T1", "line_discount_mismatch", 10.0), ("T2", "line_discount_mismatch", 5.05)}
    ok = line("T3", "SE01", "C", 1, 199.0, 19.90, 0.25)
    assert _line_findings(ok, allowed=(0.1, 0.2)).empty
    f = only(_line_findings(line("T3", "SE01", "C", 1, 199.0, 25.0, 0.25), allowed=(0.1, 0.2)))
    assert (f.finding_type, f.amount_commerce, f.value_at_risk) == ("line_discount_mismatch", 19.9, 5.1)


# ------------------------------------------------------------------ ranking, records, reference


def test_sell_through_weights_stock_risk_rank() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[3, "physical"] = 4   # DE01 A +2 -> 99.90 EUR
    day.centra_stock_snapshot.loc[1, "physical"] = 8   # SE01 B +5 -> 1495 SEK = 130.07 EUR
    f = run(day)
    assert list(f["sku"]) == ["B", "A"] and list(f["risk_rank"]) == [1, 2]
    day.sell_through = pd.DataFrame([{"location_id": "ST-DE01", "sku": "A", "units_sold_recent": 6}])
    f = run(day)  # A: 99.90 x (1 + 6/8) = 174.8 outranks B
    assert list(f["sku"]) == ["B", "A"] and list(f["risk_rank"]) == [2, 1]


def test_exception_records_carry_owner_and_idempotent_key() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[0, "physical"] = 7
    rec = exception_records(run(day))[0]
    assert rec.type == "stock_drift_oversell" and rec.owner_team == "retail_operations"
    assert rec.key == f"stock_drift_oversell:{DAY}:ST-SE01:A:::"
    assert rec.key == exception_records(run(day))[0].key


def test_reference_from_estate(small_estate) -> None:
    ref = build_reference(small_estate)
    assert len(ref.locations) == len(small_estate.stores)
    assert list(ref.locations.columns) == ["location_id", "fulfillment_node_id", "warehouse_id", "currency", "country",
                                           "pricelist_id", "tax_rate", "fx_to_base"]
    store = small_estate.stores[0]
    sku = small_estate.skus()[0]
    p = ref.prices[(ref.prices["pricelist_id"] == store.centra_pricelist_id) & (ref.prices["sku"] == sku)]
    assert p["price"].item() == small_estate.price(sku, store.centra_pricelist_id)
    assert np.isclose(ref.locations.loc[0, "tax_rate"], small_estate.tax_rates[store.country])


def test_categorical_strings_and_float_ids_give_the_same_findings() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[0, "physical"] = 7
    day.centra_orders.loc[1, "status"] = "PROCESSING"
    expected = run(day)
    frames = ("pos_sale_lines", "pos_stock_snapshot", "pos_catalog", "pos_stock_movements", "centra_stock_snapshot",
              "centra_stock_changes", "centra_catalog")
    cat = dataclasses.replace(day, **{f: getattr(day, f).astype(
        {c: "category" for c in ("business_date", "sku", "location_id", "fulfillment_node_id", "kind",
                                 "movement_type", "transaction_id") if c in getattr(day, f).columns})
        for f in frames})
    cat.centra_stock_snapshot["warehouse_id"] = cat.centra_stock_snapshot["warehouse_id"].astype(float)
    pd.testing.assert_frame_equal(run(cat), expected)


def test_pos_known_skus_of_the_day() -> None:
    old = pos_stock([("SE01", "Z", 1)]).assign(business_date=PREV)
    known = R.pos_known_skus(pos_catalog=pos_catalog(["A"]), pos_stock=pd.concat([pos_stock([("SE01", "B", 0)]), old]),
                             business_date=DAY)
    assert sorted(known) == ["A", "B"]


def test_a_transaction_with_two_tax_rates_counts_once_in_each_group() -> None:
    lines = pd.DataFrame([line("T1", "SE01", "A", 1, 499.0, 0.0, 0.25), line("T1", "SE01", "B", 1, 112.0, 0.0, 0.12,
                                                                            line_no=2),
                          line("T2", "SE01", "A", 1, 499.0, 0.0, 0.25)])
    ds = pd.DataFrame([{"location_id": "ST-SE01", "business_date": DAY, "tax_rate": 0.25, "count": 2, "gross": 998.0,
                        "discount": 0.0, "tax": 199.6, "net": 798.4},
                       {"location_id": "ST-SE01", "business_date": DAY, "tax_rate": 0.12, "count": 1, "gross": 112.0,
                        "discount": 0.0, "tax": 12.0, "net": 100.0}])
    assert R.store_sales(DAY, lines, ds, REF.locations, TOL, tax_rates=REF.tax_rates).empty
    ds.loc[1, "count"] = 2
    f = only(R.store_sales(DAY, lines, ds, REF.locations, TOL, tax_rates=REF.tax_rates))
    assert (f.tax_rate, f.quantity_pos, f.quantity_commerce, f.value_at_risk) == (0.12, 1, 2, 0.0)


# ------------------------------------------------------------------ finding-type meanings, package names


def test_what_a_finding_type_means_is_said_once_on_the_type() -> None:
    assert model.MONEY_TYPES == ("store_sales_mismatch", "return_without_order_ref", "return_missing_in_commerce",
                                 "refund_amount_mismatch", "refund_tax_mismatch", "click_collect_open",
                                 "line_tax_mismatch", "store_transaction_missing", "kiosk_order_missing_in_commerce",
                                 "kiosk_order_total_mismatch", "erp_order_missing", "erp_order_duplicated",
                                 "erp_order_total_mismatch", "erp_order_tax_mismatch", "erp_order_discount_mismatch",
                                 "erp_order_currency_mismatch")
    assert model.DRIFT_TYPES == ("stock_drift_oversell", "stock_drift_lost_sales")
    assert model.DRIFT_TYPE_BY_KIND == {"oversell": "stock_drift_oversell", "lost_sales": "stock_drift_lost_sales"}
    types = model.FINDING_TYPES.values()
    assert [t.name for t in types if t.blocks_report] == list(model.MONEY_TYPES)
    assert not any(t.money and t.drift for t in types)
    with pytest.raises(ValueError, match="drift"):
        dataclasses.replace(model.STOCK_DRIFT_OVERSELL, drift="both")


def test_drift_by_store_splits_oversell_and_lost_sales_by_the_type_attribute() -> None:
    day = clean_day()
    day.centra_stock_snapshot.loc[0, "physical"] = 7   # SE01 A +2: oversell
    day.pos_stock_snapshot.loc[3, "on_hand"] = 9      # DE01 A 9 on hand vs 2: lost sales 7
    res = reconcile(day, TOL, RuleConfig())
    by = res.drift_by_store.set_index("location_id")
    assert (by.loc["ST-SE01", "oversell_units"], by.loc["ST-SE01", "lost_sales_units"]) == (2, 0)
    assert (by.loc["ST-DE01", "oversell_units"], by.loc["ST-DE01", "lost_sales_units"]) == (0, 7)


def test_the_rules_package_keeps_its_public_names() -> None:
    for name in R.__all__:
        assert getattr(R, name) is not None
    assert R.DRIFT_TYPES is model.DRIFT_TYPES
    assert R.DEFAULT_EXCLUDED_CHANGE_PREFIXES == ("Order ", "Shipment ")
