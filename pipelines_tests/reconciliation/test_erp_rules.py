"""The ERP reconciliation rules (`rules.erp`, issue 15) on small hand-built frames, and their place in the engine.

Every expected value below is computed by hand in the comment next to it (the oracle is arithmetic on the fixture,
not the rule). A clean day gives no ERP finding of any type; each fault gives exactly its finding with its value,
owner and keys; differences at the tolerance are not findings, one cent (one unit) beyond it are.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.domain.erp.mapping import mapping_from_dict
from pipelines.domain.reconciliation import (
    FINDING_COLUMNS,
    FINDING_TYPES,
    ReconciliationInputs,
    Reference,
    RuleConfig,
    Tolerance,
    exception_records,
    reconcile,
)
from pipelines.domain.reconciliation import rules as R
from pipelines.domain.reconciliation.rules import erp as E

DAY = "2026-11-24"
PREV = "2026-11-23"
SEK_FX = 0.087  # SEK -> EUR (base)
LOCATIONS = pd.DataFrame([
    {"location_id": "ST-SE01", "fulfillment_node_id": "SE01", "warehouse_id": 2, "currency": "SEK",
     "country": "SE", "pricelist_id": 1, "tax_rate": 0.25, "fx_to_base": SEK_FX},
    {"location_id": "ST-DE01", "fulfillment_node_id": "DE01", "warehouse_id": 3, "currency": "EUR",
     "country": "DE", "pricelist_id": 2, "tax_rate": 0.19, "fx_to_base": 1.0},
])
_PRICES = {"A": (499.0, 49.95), "B": (299.0, 29.95), "C": (199.0, 19.95), "BUNDLE": (799.0, 79.95)}
PRICES = pd.DataFrame([{"pricelist_id": pl, "sku": sku, "price": p[pl - 1]} for sku, p in _PRICES.items()
                       for pl in (1, 2)])
REF = Reference.of(LOCATIONS, PRICES, "EUR", {"SEK": SEK_FX, "EUR": 1.0}, (0.19, 0.25))
DC_WAREHOUSE = 1
TOL = Tolerance()
CURRENCIES = {"SEK": "", "EUR": "EUR"}  # SEK is the ERP company's local currency
ERP_SECTION = {
    "currencies": CURRENCIES,
    "items": {"B": {"item": "1000", "variant": "BLUE"}},  # A and C: the ERP item numbered like the SKU
    "bundles": {"BUNDLE": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]},
    "dc_location_id": "DC-01",
}


def mapping(section: dict | None = None):
    return mapping_from_dict(section or ERP_SECTION, frozenset({"BUNDLE"}))


# ------------------------------------------------------------------ row builders (the loaders' columns)


def centra_order(number: int, status: str, currency: str, grand: float, tax: float, disc: float,
                 shipping: float = 0.0, day: str = DAY) -> dict:
    return {"business_date": day, "order_id": f"o{number}", "order_number": number, "status": status,
            "created_at": f"{day}T09:00:00Z", "store_id": 1, "market_id": 1, "pricelist_id": 1, "currency": currency,
            "country": "SE", "currency_base_rate": 1.0, "email": None, "external_id": None, "grand_total": grand,
            "tax_total": tax, "discount_total": disc, "shipping_total": shipping, "line_count": 1}


def erp_order(number: str, ref: str, currency: str, total: float, tax: float, disc: float) -> dict:
    return {"business_date": DAY, "order_id": f"id-{number}", "order_number": number, "external_ref": ref,
            "currency": currency, "customer_number": "C1", "status": "Open", "total_including_tax": total,
            "total_tax": tax, "discount_amount": disc, "line_count": 2}


def centra_orders() -> pd.DataFrame:
    return pd.DataFrame([
        centra_order(1001, "CONFIRMED", "SEK", 1248.00, 249.60, 100.00, shipping=49.00),
        centra_order(1002, "SHIPPED", "EUR", 79.90, 12.76, 0.00),
        centra_order(1003, "PENDING", "SEK", 499.00, 99.80, 0.00),    # not verified yet: not due in the ERP
        centra_order(1004, "CANCELLED", "SEK", 299.00, 59.80, 0.00),  # never goes to the ERP
        centra_order(1005, "PROCESSING", "EUR", 59.90, 9.56, 5.00),
        centra_order(990, "CONFIRMED", "SEK", 10.00, 2.00, 0.00, day=PREV),  # another day's order
    ])


def erp_orders() -> pd.DataFrame:
    return pd.DataFrame([erp_order("SO-1", "1001", "", 1248.00, 249.60, 100.00),
                         erp_order("SO-2", "1002", "EUR", 79.90, 12.76, 0.00),
                         erp_order("SO-5", "1005", "EUR", 59.90, 9.56, 5.00)])


def shipments() -> pd.DataFrame:
    def ship(number: str, ref: str, units: int, value: float, currency: str, in_commerce: bool,
             day: str = DAY) -> dict:
        return {"business_date": day, "shipment_id": f"id-{number}", "shipment_number": number, "order_number": "SO-1",
                "external_ref": ref, "units": units, "value": value, "currency": currency,
                "tracking_number": f"TRK-{number}", "carrier": "DHL", "in_commerce": in_commerce,
                "checked_at": f"{DAY}T23:00:00Z"}
    return pd.DataFrame([ship("SH-1", "1001", 1, 250.00, "", True), ship("SH-2", "1002", 1, 79.90, "EUR", True),
                         ship("SH-0", "990", 1, 10.00, "", False, day=PREV)])  # another day's shipment


def centra_stock(rows: list[tuple[int, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "snapshot_at": f"{DAY}T22:59:59Z", "warehouse_id": w,
                          "location_id": None, "size_id": i, "sku": s, "physical": q, "allocated": 0,
                          "free_to_allocate": q, "demand": 0} for i, (w, s, q) in enumerate(rows)])


def clean_centra_stock() -> pd.DataFrame:
    return centra_stock([(DC_WAREHOUSE, "A", 10), (DC_WAREHOUSE, "B", 5), (DC_WAREHOUSE, "C", 4),
                         (2, "A", 3),                  # a store warehouse: not the ERP's
                         (DC_WAREHOUSE, "BUNDLE", 0)])


def erp_stock(rows: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "snapshot_at": f"{DAY}T23:00:00Z", "sku": s, "item_number": s,
                          "variant_code": None, "on_hand": q} for s, q in rows])


def clean_erp_stock() -> pd.DataFrame:
    return erp_stock([("A", 10), ("B", 5), ("C", 4)])


def erp_items(rows: list[tuple[str, str | None]] | None = None) -> pd.DataFrame:
    rows = rows if rows is not None else [("A", None), ("1000", None), ("1000", "BLUE"), ("C", None)]
    return pd.DataFrame([{"business_date": DAY, "number": n, "variant_code": v} for n, v in rows])


def catalog() -> pd.DataFrame:
    rows = [("A", True), ("B", True), ("C", True), ("BUNDLE", True), ("OLD", False)]  # OLD: inactive, no ERP item
    return pd.DataFrame([{"business_date": DAY, "size_id": i, "sku": s, "ean": None, "product_number": "P",
                          "product_name": "n", "product_status": "ACTIVE", "variant_number": "V", "variant_name": "v",
                          "size_name": "M", "is_active": a} for i, (s, a) in enumerate(rows)])


def order_lines(rows: list[tuple[int, str, int, float, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"business_date": DAY, "order_number": o, "line_id": f"l{i}", "sku": s, "ean": None,
                          "product_number": "P", "quantity": q, "cancelled_quantity": 0, "returned_quantity": 0,
                          "unit_price": v / q, "unit_original_price": v / q, "discount_percent": 0.0,
                          "tax_percent": 25.0, "line_value": v, "currency": c}
                         for i, (o, s, q, v, c) in enumerate(rows)])


def orders_findings(c: pd.DataFrame, e: pd.DataFrame, *, blocked: pd.DataFrame | None = None,
                    expected: dict | None = CURRENCIES, tol: Tolerance = TOL) -> pd.DataFrame:
    return R.erp_orders_vs_commerce(DAY, c, e, REF.fx_to_base, tol, expected_currency=expected, blocked=blocked)


def one(f: pd.DataFrame, ftype: str) -> pd.Series:
    sub = f[f["finding_type"] == ftype]
    assert len(sub) == 1, (ftype, f[["finding_type", "order_ref", "sku", "detail"]].to_dict("records"))
    return sub.iloc[0]


def inputs(**over) -> ReconciliationInputs:
    base = dict(business_date=DAY, reference=REF, centra_orders=centra_orders(), centra_stock_snapshot=clean_centra_stock(),
                centra_catalog=catalog(), erp_orders=erp_orders(), erp_expected_currency=CURRENCIES,
                erp_blocked=pd.DataFrame(columns=["order_ref", "exception_type"]), erp_shipments=shipments(),
                erp_stock=clean_erp_stock(), erp_dc_warehouse_id=DC_WAREHOUSE, erp_items=erp_items(),
                erp_mapping=mapping(), centra_order_lines=order_lines([(1001, "A", 1, 499.0, "SEK")]))
    base.update(over)
    return ReconciliationInputs(**base)


def erp_findings(res) -> pd.DataFrame:
    return res.findings[res.findings["finding_type"].str.startswith("erp_")]


# ------------------------------------------------------------------ clean day


def test_a_clean_day_has_no_erp_finding_of_any_type() -> None:
    """Kills: a rule that judges PENDING/CANCELLED orders or another day's orders, reads the store warehouse or a
    bundle as DC stock, takes "" for a currency mismatch (the ERP's local currency), or flags mapped SKUs."""
    res = reconcile(inputs())
    assert erp_findings(res).empty, erp_findings(res)[["finding_type", "order_ref", "sku", "detail"]]
    assert not any(k.startswith("erp") for k in res.skipped)
    assert {"erp_orders", "erp_shipments", "erp_stock", "erp_mapping"} <= set(res.timings_s)


# ------------------------------------------------------------------ orders


def test_missing_order_is_valued_at_its_grand_total_and_names_the_blocking_exception() -> None:
    """Kills: matching on the wrong key, flagging orders not due (PENDING 1003, CANCELLED 1004, the previous day's
    990), taking the loader's appended current-state rows for orders of the day, losing the blocking type."""
    c = pd.concat([centra_orders(), pd.DataFrame([{  # the loader's current state of an older pickup order
        "business_date": DAY, "order_number": 777, "status": "CONFIRMED", "grand_total": 50.0, "currency": "SEK",
        "shipping_total": 0.0, "external_id": None}])], ignore_index=True)
    e = erp_orders()[lambda d: d["external_ref"] != "1002"]
    blocked = pd.DataFrame([{"order_ref": "1002", "exception_type": "erp_tax_code_unmapped"},
                            {"order_ref": "1003", "exception_type": "erp_sku_unmapped"}])
    f = orders_findings(c, e, blocked=blocked)
    assert list(f["finding_type"]) == ["erp_order_missing"]
    r = one(f, "erp_order_missing")
    assert r["order_ref"] == "1002" and r["currency"] == "EUR"
    assert r["value_at_risk"] == pytest.approx(79.90) and r["value_at_risk_base"] == pytest.approx(79.90)
    assert "blocked=erp_tax_code_unmapped" in r["detail"] and "status=SHIPPED" in r["detail"]
    assert (r["severity"], r["owner_team"]) == ("ERROR", "finance") and FINDING_TYPES[r["finding_type"]].money
    # a SEK order missing: 1248.00 SEK x 0.087 = 108.576 -> 108.58 EUR; no exception -> blocked=none
    f = orders_findings(centra_orders(), erp_orders().iloc[1:])
    r = one(f, "erp_order_missing")
    assert (r["order_ref"], r["value_at_risk"], r["value_at_risk_base"]) == ("1001", 1248.00, 108.58)
    assert r["detail"].endswith("blocked=none")


def test_statuses_due_in_the_erp_are_a_rule_setting() -> None:
    """Kills: a hard-coded status list (RuleConfig.erp_order_statuses not passed through)."""
    res = reconcile(inputs(erp_orders=erp_orders().iloc[1:]),
                    config=RuleConfig(erp_order_statuses=("SHIPPED", "PROCESSING")))
    assert erp_findings(res).empty  # 1001 is CONFIRMED: not due under this rule
    res = reconcile(inputs(erp_orders=erp_orders().iloc[1:]))
    assert list(erp_findings(res)["order_ref"]) == ["1001"]


def test_duplicated_order_is_valued_at_the_extra_orders_totals() -> None:
    """Kills: counting the kept order in the value, reporting one finding per ERP order, comparing a duplicate's
    amounts instead of the first order's."""
    e = pd.concat([erp_orders(), pd.DataFrame([erp_order("SO-9", "1001", "", 1000.00, 200.00, 0.00),
                                               erp_order("SO-7", "1001", "", 1248.00, 249.60, 100.00)])])
    f = orders_findings(centra_orders(), e)
    assert list(f["finding_type"]) == ["erp_order_duplicated"]  # SO-1 (first by number) agrees with Centra
    r = f.iloc[0]
    # extras SO-7 + SO-9 = 1248.00 + 1000.00 = 2248.00 SEK; x 0.087 = 195.576 -> 195.58 EUR
    assert (r["order_ref"], r["transaction_id"], r["value_at_risk"], r["value_at_risk_base"]) == (
        "1001", "SO-1", 2248.00, 195.58)
    assert "erp_numbers=SO-1,SO-7,SO-9" in r["detail"]


@pytest.mark.parametrize(("column", "erp_value", "ftype", "value"), [
    ("total_including_tax", 59.92, "erp_order_total_mismatch", 0.02),   # 59.92 - 59.90
    ("total_tax", 9.00, "erp_order_tax_mismatch", 0.56),                # 9.56 - 9.00
    ("discount_amount", 0.00, "erp_order_discount_mismatch", 5.00),     # 5.00 - 0.00
])
def test_amount_mismatches_are_valued_at_the_difference(column: str, erp_value: float, ftype: str,
                                                        value: float) -> None:
    """Kills: comparing the wrong Centra column (e.g. grand total without shipping, tax against discount), a signed
    value, a finding of another amount type."""
    e = erp_orders()
    e.loc[e["order_number"] == "SO-5", column] = erp_value
    f = orders_findings(centra_orders(), e)
    assert list(f["finding_type"]) == [ftype]
    r = f.iloc[0]
    assert (r["order_ref"], r["transaction_id"], r["currency"]) == ("1005", "SO-5", "EUR")
    assert r["value_at_risk"] == pytest.approx(value) and r["value_at_risk_base"] == pytest.approx(value)


def test_sek_tax_mismatch_converts_to_base_and_shipping_counts_in_the_total() -> None:
    """Kills: comparing the total without shipping (1248.00 includes 49.00 shipping on both sides), a missing fx."""
    e = erp_orders()
    e.loc[e["order_number"] == "SO-1", "total_tax"] = 240.00
    r = one(orders_findings(centra_orders(), e), "erp_order_tax_mismatch")
    # 249.60 - 240.00 = 9.60 SEK; x 0.087 = 0.8352 -> 0.84 EUR
    assert (r["value_at_risk"], r["value_at_risk_base"], r["amount_pos"], r["amount_commerce"]) == (
        9.60, 0.84, 249.60, 240.00)


def test_money_tolerance_boundary() -> None:
    """Kills: >= instead of > at the tolerance, float noise turning 0.01 into a finding."""
    e = erp_orders()
    e.loc[e["order_number"] == "SO-5", "total_including_tax"] = 59.91  # exactly the 0.01 tolerance: no finding
    e.loc[e["order_number"] == "SO-2", "total_tax"] = 12.75
    e.loc[e["order_number"] == "SO-1", "discount_amount"] = 100.01
    assert orders_findings(centra_orders(), e).empty
    f = orders_findings(centra_orders(), e, tol=Tolerance(money=0.0))
    assert sorted(f["finding_type"]) == ["erp_order_discount_mismatch", "erp_order_tax_mismatch",
                                         "erp_order_total_mismatch"]
    e.loc[e["order_number"] == "SO-5", "total_including_tax"] = 59.92  # one cent beyond
    assert list(orders_findings(centra_orders(), e)["finding_type"]) == ["erp_order_total_mismatch"]


def test_currency_mismatch_is_valued_at_the_grand_total_and_stops_the_amount_checks() -> None:
    """Kills: taking the ERP's "" for a mismatch, comparing amounts in two currencies, missing an unmapped currency."""
    e = erp_orders()
    e.loc[e["order_number"] == "SO-1", ["currency", "total_including_tax"]] = ["EUR", 114.00]  # booked in EUR
    f = orders_findings(centra_orders(), e)
    assert list(f["finding_type"]) == ["erp_order_currency_mismatch"]
    r = f.iloc[0]
    # 1248.00 SEK x 0.087 = 108.576 -> 108.58 EUR
    assert (r["order_ref"], r["value_at_risk"], r["value_at_risk_base"]) == ("1001", 1248.00, 108.58)
    assert "expected=local;erp_currency=EUR" in r["detail"]
    # EUR not in the mapping: both EUR orders' currency cannot be right
    f = orders_findings(centra_orders(), erp_orders(), expected={"SEK": ""})
    assert sorted(f["order_ref"]) == ["1002", "1005"] and set(f["finding_type"]) == {"erp_order_currency_mismatch"}
    assert f["detail"].str.contains("expected=unmapped").all()
    # without the mapping the currency is not judged
    e2 = erp_orders()
    e2.loc[e2["order_number"] == "SO-1", "currency"] = "EUR"
    assert orders_findings(centra_orders(), e2, expected=None).empty


# ------------------------------------------------------------------ shipments


def test_shipment_not_in_commerce_is_valued_in_the_commerce_currency() -> None:
    """Kills: flagging shipments Centra shows, another day's shipment, reading "" as no currency (the ERP's local
    currency is SEK through the mapping), a missing fx."""
    s = shipments()
    s.loc[s["shipment_number"] == "SH-1", "in_commerce"] = False
    f = R.erp_shipments_not_in_commerce(DAY, s, REF.fx_to_base, expected_currency=CURRENCIES)
    assert list(f["finding_type"]) == ["erp_shipment_not_in_commerce"]
    r = f.iloc[0]
    # 250.00 SEK x 0.087 = 21.75 EUR
    assert (r["order_ref"], r["transaction_id"], r["currency"], r["value_at_risk"], r["value_at_risk_base"]) == (
        "1001", "SH-1", "SEK", 250.00, 21.75)
    assert (r["severity"], r["owner_team"], int(r["quantity_pos"])) == ("ERROR", "ecommerce", 1)
    assert "carrier=DHL;tracking=TRK-SH-1" in r["detail"]
    assert R.erp_shipments_not_in_commerce(DAY, shipments(), REF.fx_to_base, expected_currency=CURRENCIES).empty


def test_shipment_currency_falls_back_to_the_centra_order() -> None:
    """Kills: a shipment with no ERP currency valued as if in the base currency."""
    s = shipments().drop(columns=["currency"])
    s.loc[s["shipment_number"] == "SH-1", "in_commerce"] = False
    r = R.erp_shipments_not_in_commerce(DAY, s, REF.fx_to_base, centra_orders=centra_orders()).iloc[0]
    assert (r["currency"], r["value_at_risk_base"]) == ("SEK", 21.75)


# ------------------------------------------------------------------ DC stock


def stock_findings(erp: pd.DataFrame, centra: pd.DataFrame, tol: Tolerance = TOL, **kw) -> pd.DataFrame:
    return R.erp_stock_drift(DAY, erp, centra, DC_WAREHOUSE, REF.prices, REF.locations, tol, base_currency="EUR",
                             dc_location_id="DC-01", **kw)


def test_erp_stock_drift_against_the_dc_warehouse_only() -> None:
    """Kills: reading store warehouses as the DC, a signed value, valuing at the wrong price, counting it as store
    drift."""
    assert stock_findings(clean_erp_stock(), clean_centra_stock(), erp_mapping=mapping(), erp_items=erp_items()).empty
    f = stock_findings(erp_stock([("A", 10), ("B", 3), ("C", 4)]), clean_centra_stock())
    r = one(f, "erp_stock_drift")
    # Centra 5 vs ERP 3: +2 units; B's lowest store price in EUR: min(299 x 0.087 = 26.013, 29.95) = 26.013;
    # 2 x 26.013 = 52.026 -> 52.03 EUR
    assert (r["sku"], r["location_id"], int(r["quantity_pos"]), int(r["quantity_commerce"]),
            int(r["quantity_diff"])) == ("B", "DC-01", 3, 5, 2)
    assert (r["currency"], r["value_at_risk"], r["value_at_risk_base"]) == ("EUR", 52.03, 52.03)
    assert (r["severity"], r["owner_team"]) == ("WARN", "integration")
    assert FINDING_TYPES["erp_stock_drift"].drift is None and not FINDING_TYPES["erp_stock_drift"].money
    # a SKU only the ERP has: Centra 0 vs ERP 4 (lost sales), A's DC price min(499 x 0.087 = 43.413, 49.95):
    # 4 x 43.413 = 173.652 -> 173.65
    f = stock_findings(erp_stock([("A", 10), ("B", 5), ("C", 4)]),
                       clean_centra_stock()[lambda d: ~((d["sku"] == "A") & (d["warehouse_id"] == DC_WAREHOUSE))]
                       .pipe(lambda d: pd.concat([d, centra_stock([(DC_WAREHOUSE, "A", 6)])], ignore_index=True)))
    r = one(f, "erp_stock_drift")
    assert (r["sku"], int(r["quantity_diff"]), r["value_at_risk"]) == ("A", -4, 173.65)


def test_erp_stock_units_tolerance_boundary_and_exclusions() -> None:
    """Kills: >= at the units tolerance, comparing bundles (their stock is their components'), reporting an
    unmapped SKU as drift as well as an orphan."""
    erp = erp_stock([("A", 10), ("B", 3), ("C", 4)])  # B: 2 units apart
    assert stock_findings(erp, clean_centra_stock(), Tolerance(units=2)).empty
    assert list(stock_findings(erp, clean_centra_stock(), Tolerance(units=1))["sku"]) == ["B"]
    centra = pd.concat([clean_centra_stock(), centra_stock([(DC_WAREHOUSE, "BUNDLE", 3), (DC_WAREHOUSE, "D", 5)])],
                       ignore_index=True)
    assert sorted(stock_findings(clean_erp_stock(), centra)["sku"]) == ["BUNDLE", "D"]  # without the mapping
    assert list(stock_findings(clean_erp_stock(), centra, erp_mapping=mapping())["sku"]) == ["D"]  # bundle out
    assert stock_findings(clean_erp_stock(), centra, erp_mapping=mapping(), erp_items=erp_items()).empty


def test_a_day_without_dc_stock_on_either_side_has_no_drift_and_no_crash() -> None:
    """Kills: filtering an empty frame with a plain list (pandas reads it as columns, and the rule raised
    KeyError on a day with no DC stock on either side once a mapping is given)."""
    empty_erp = erp_stock([("A", 1)]).iloc[0:0]
    empty_centra = clean_centra_stock().iloc[0:0]
    assert stock_findings(empty_erp, empty_centra, erp_mapping=mapping(), erp_items=erp_items()).empty


# ------------------------------------------------------------------ mapping orphans


def orphan_findings(items: pd.DataFrame | None = None, section: dict | None = None,
                    lines: pd.DataFrame | None = None) -> pd.DataFrame:
    return R.erp_mapping_orphans(DAY, catalog(), erp_items() if items is None else items, mapping(section),
                                 REF.fx_to_base, order_lines=lines, centra_orders=centra_orders())


def test_mapping_orphans_items_variants_and_bundles() -> None:
    """Kills: checking the SKU instead of the mapped item, ignoring the variant, checking inactive SKUs, treating a
    bundle as an item, missing a bundle component without an ERP item."""
    assert orphan_findings().empty
    f = orphan_findings(items=erp_items([("A", None), ("1000", None), ("1000", "BLUE")]))  # no item C
    r = one(f, "erp_mapping_orphan")
    assert (r["sku"], r["value_at_risk"], r["severity"], r["owner_team"]) == ("C", 0.0, "WARN", "ecommerce")
    assert r["detail"].startswith("reason=no_erp_item;item=C;variant=none;orders=0")
    f = orphan_findings(items=erp_items([("A", None), ("1000", None), ("C", None)]))  # no variant BLUE of 1000
    assert list(f["sku"]) == ["B", "BUNDLE"]
    assert f.iloc[0]["detail"].startswith("reason=no_erp_variant;item=1000;variant=BLUE")
    assert f.iloc[1]["detail"].startswith("reason=bundle_component_missing;components=B")
    section = {k: v for k, v in ERP_SECTION.items() if k != "bundles"}
    r = one(orphan_findings(section=section), "erp_mapping_orphan")
    assert r["sku"] == "BUNDLE" and r["detail"].startswith("reason=bundle_unmapped")


def test_orphan_carried_by_an_order_of_the_day_is_valued_at_its_lines() -> None:
    """Kills: valuing an orphan nobody ordered, counting lines of orders not due (PENDING 1003) or of SKUs that map."""
    lines = order_lines([(1001, "C", 2, 398.00, "SEK"), (1005, "C", 1, 19.95, "EUR"), (1003, "C", 5, 995.00, "SEK"),
                         (1001, "A", 1, 499.00, "SEK")])
    f = orphan_findings(items=erp_items([("A", None), ("1000", None), ("1000", "BLUE")]), lines=lines)
    assert list(f["finding_type"]) == ["erp_mapping_orphan"] * 2 and set(f["sku"]) == {"C"}
    by = f.set_index("currency")
    # SEK: 398.00 (the PENDING order's 995.00 is not counted); x 0.087 = 34.626 -> 34.63 EUR
    assert (by.loc["SEK", "value_at_risk"], by.loc["SEK", "value_at_risk_base"]) == (398.00, 34.63)
    assert (by.loc["EUR", "value_at_risk"], by.loc["EUR", "value_at_risk_base"]) == (19.95, 19.95)
    assert "orders=1;units=2;line_value=398.00 SEK" in by.loc["SEK", "detail"]


# ------------------------------------------------------------------ the engine


def test_engine_skips_each_erp_rule_with_a_reason_when_an_input_is_none() -> None:
    """Kills: rules run (or crash) on None inputs, a skip without its reason, ERP findings from nothing, skip noise
    for a retailer without an ERP."""
    res = reconcile(ReconciliationInputs(business_date=DAY, reference=REF))  # no ERP at all: the rules do not apply
    assert not any(k.startswith("erp") for k in res.skipped) and not any(k.startswith("erp") for k in res.timings_s)
    res = reconcile(ReconciliationInputs(business_date=DAY, reference=REF, erp_mapping=mapping()))  # datasets absent
    assert res.skipped["erp_orders"] == "needs erp_orders and centra_orders"
    assert res.skipped["erp_shipments"] == "needs erp_shipments"
    assert res.skipped["erp_stock"] == "needs erp_stock, centra_stock_snapshot and erp_dc_warehouse_id"
    assert res.skipped["erp_mapping"] == "needs erp_items, erp_mapping and centra_catalog"
    assert erp_findings(res).empty
    res = reconcile(inputs(erp_expected_currency=None, erp_dc_warehouse_id=None, erp_mapping=None))
    assert "erp_order_currency" in res.skipped and "erp_stock" in res.skipped and "erp_mapping" in res.skipped
    assert "erp_orders" not in res.skipped and "erp_shipments" not in res.skipped


def test_engine_finds_each_injected_fault_with_its_value() -> None:
    """The issue's injected faults through `reconcile`: an order blocked on an unmapped tax code, a currency
    mismatch, a missing bundle mapping carried by an order, a dropped shipment. Kills: rules not wired into the
    engine, inputs passed to the wrong parameter, findings missing from the exception records."""
    e = erp_orders()
    e = e[e["external_ref"] != "1002"]  # blocked: unmapped tax code
    e.loc[e["order_number"] == "SO-5", "currency"] = ""  # EUR order booked in the local currency
    s = shipments()
    s.loc[s["shipment_number"] == "SH-2", "in_commerce"] = False  # the dropped shipment
    section = {k: v for k, v in ERP_SECTION.items() if k != "bundles"}
    res = reconcile(inputs(
        erp_orders=e, erp_shipments=s, erp_mapping=mapping(section),
        erp_blocked=pd.DataFrame([{"order_ref": "1002", "exception_type": "erp_tax_code_unmapped"}]),
        centra_order_lines=order_lines([(1001, "BUNDLE", 1, 799.00, "SEK")])))
    f = erp_findings(res)
    got = {(r.finding_type, r.order_ref if r.order_ref else r.sku): (r.value_at_risk, r.value_at_risk_base)
           for r in f.itertuples()}
    assert got == {
        ("erp_order_missing", "1002"): (79.90, 79.90),
        ("erp_order_currency_mismatch", "1005"): (59.90, 59.90),
        ("erp_shipment_not_in_commerce", "1002"): (79.90, 79.90),
        ("erp_mapping_orphan", "BUNDLE"): (799.00, 69.51),  # 799.00 SEK x 0.087 = 69.513
    }
    assert "blocked=erp_tax_code_unmapped" in f.loc[f["finding_type"] == "erp_order_missing", "detail"].iloc[0]
    totals = res.totals.set_index("finding_type")
    assert totals.loc["erp_order_missing", "value_at_risk_base"] == 79.90
    recs = exception_records(f)
    assert sorted(r.type for r in recs) == sorted(f["finding_type"]) and len({r.key for r in recs}) == len(recs)
    assert all(r.playbook == FINDING_TYPES[r.type].playbook and r.owner_team == FINDING_TYPES[r.type].owner_team
               for r in recs)
    assert list(res.findings.columns) == FINDING_COLUMNS


def test_erp_types_are_declared_once_on_the_type() -> None:
    """Kills: an ERP type missing from FINDING_TYPES (exception records and the report need it) or with the wrong
    severity, owner or money flag."""
    want = {"erp_order_missing": ("ERROR", "finance", True), "erp_order_duplicated": ("ERROR", "finance", True),
            "erp_order_total_mismatch": ("ERROR", "finance", True), "erp_order_tax_mismatch": ("ERROR", "finance", True),
            "erp_order_discount_mismatch": ("ERROR", "finance", True),
            "erp_order_currency_mismatch": ("ERROR", "finance", True),
            "erp_shipment_not_in_commerce": ("ERROR", "ecommerce", False),
            "erp_stock_drift": ("WARN", "integration", False), "erp_mapping_orphan": ("WARN", "ecommerce", False)}
    got = {n: (t.severity, t.owner_team, t.money) for n, t in FINDING_TYPES.items() if t.family == "erp"}
    assert got == want
    assert all(FINDING_TYPES[n].playbook and FINDING_TYPES[n].drift is None for n in want)
    assert RuleConfig().erp_order_statuses == E.DUE_STATUSES == ("CONFIRMED", "PROCESSING", "SHIPPED", "ARCHIVED")
