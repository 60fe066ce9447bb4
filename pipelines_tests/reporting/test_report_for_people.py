"""Issue 8, the report works for people: every column visible on a desktop and on A4, stores and SKUs by
name, unique ranks, details as sentences, money rounded to the currency's minor unit, and a "Produced
under" box. Only the public entry points are used, so each test runs (and fails) against the old module too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pipelines.domain.reconciliation.model import FINDING_COLUMNS, FINDING_DTYPES, FINDING_TYPES
from pipelines.estate import Estate, Location, Product, Size, Variant
from pipelines.estate.model import CentraConfig
from pipelines.reporting import summarise, top_risks, write_daily_report, write_month_report
from pipelines_tests.kiosk.test_kiosk_reconciliation import kiosk_rule_findings
from pipelines_tests.reporting.test_erp_report import erp_rule_findings
from pipelines_tests.reporting.test_finance_report import (
    DAY,
    NASTY,
    _open,
    _row,
    _save_screenshot,
    make_findings,
    make_history,
    money,
)

LONG_URL = "https://wiki.example.com/finance/reconciliation/playbooks/" + "_".join(["escalation"] * 12)
LONG_TOKEN = "ERP-EXPORT-BATCH-" + "0" * 90


def make_estate() -> Estate:
    def store(loc_id: str, name: str, country: str, currency: str, wh: int) -> Location:
        return Location(loc_id, name, "store", country, currency, "Europe/Stockholm", loc_id[3:], wh)

    def product(pid: int, name: str, colour: str, sizes: list[tuple[str, str]]) -> Product:
        sz = tuple(Size(pid * 100 + i, size, sku, f"{pid:06d}{i:07d}") for i, (sku, size) in enumerate(sizes))
        return Product(pid, f"P{pid}", name, (Variant(pid * 10, colour[:3].upper(), colour, {}, sz),))

    catalog = (
        product(1, "Merino Crew Neck", "Navy", [("A-001", "M")]),
        product(2, "Organic Cotton Tee", "Off White", [("B-002", "L")]),
        product(3, "Linen Shirt", "Sky", [("C-003", "S")]),
        product(4, "Wool Parka", "Forest", [("D-004", "XL")]),
        product(5, "Canvas Cap", "Black", [("E-005", "ONE")]),
        product(6, "Suede Boot With An Unusually Long Product Name For Layout", "Grey Melange",
                [(f"L-{i:03d}", str(36 + i % 9)) for i in range(1, 18)]),
    )
    locations = (
        Location("DC01", "Distribution centre Borås", "dc", "SE", "SEK", "Europe/Stockholm", "DC01", 1),
        store("ST-SE01", "Stockholm Drottninggatan", "SE", "SEK", 2),
        store("ST-DE01", "Berlin Mitte Rosenthaler Straße", "DE", "EUR", 3),
        store("ST-NO01", "Oslo Karl Johans gate", "NO", "NOK", 4),
    )
    return Estate("Acme Nordics", 1, "EUR", "Europe/Stockholm", {"EUR": 1.0, "SEK": 0.087, "NOK": 0.085},
                  {"SE": 0.25, "DE": 0.19, "NO": 0.25}, CentraConfig((), (), (), (), ()), locations, catalog)


def wordy_findings() -> pd.DataFrame:
    """make_findings with the rules' real detail formats, a long URL in every playbook and an unbreakable token."""
    f = make_findings()
    f["playbook"] = f["playbook"] + " Escalation: " + LONG_URL
    f.loc[f["finding_type"] == "stock_drift_oversell", "detail"] = "on_hand=2;physical=5;unit_price=499.00"
    f.loc[f["finding_type"] == "store_sales_mismatch", "detail"] = LONG_TOKEN
    f.loc[f["finding_type"] == "line_discount_mismatch", "detail"] = (
        "line_no=1;discount=-10.00;gross=499.00;reason=negative")
    return f


# ------------------------------------------------------------------------------------------- 1. layout

FIT = """() => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  const bad = [];
  if (document.documentElement.scrollWidth > window.innerWidth) bad.push('page scrolls sideways');
  document.querySelectorAll('table').forEach((t, i) => {
    const box = t.parentElement, br = box.getBoundingClientRect();
    const sec = box.closest('section');
    if (!box.offsetParent) return;  // not rendered (print hides the collapsed history table)
    if (t.scrollWidth > box.clientWidth) bad.push(`table ${i}: ${t.scrollWidth} > box ${box.clientWidth}`);
    if (sec && br.right > sec.getBoundingClientRect().right + 0.5) bad.push(`table ${i}: box leaves its section`);
    t.querySelectorAll('th, td').forEach(c => {
      if (!c.offsetParent) return;
      const r = c.getBoundingClientRect();
      if (r.right > br.left + box.clientWidth + 0.5) bad.push(`table ${i}: cell "${c.innerText.slice(0, 30)}" cut off`);
      if (c.scrollWidth > c.clientWidth + 1) bad.push(`table ${i}: text overflows cell "${c.innerText.slice(0, 30)}"`);
    });
  });
  return bad;
}"""
A4_LANDSCAPE_PX = round((297 - 2 * 12) / 25.4 * 96)  # printable width at the page's @page margins (12 mm)
A4_PORTRAIT_PX = round((210 - 2 * 12) / 25.4 * 96)


@pytest.mark.parametrize("with_estate", [False, True], ids=["ids", "names"])
def test_every_column_is_visible_on_desktops_and_on_a4(browser, tmp_path: Path, with_estate: bool) -> None:
    extra = {"estate": make_estate()} if with_estate else {}
    files = write_daily_report(tmp_path, DAY, wordy_findings(), make_history(), estate_name="Acme Nordics", **extra)
    page, _ = _open(browser, files.summary_html)
    for width in (1280, 1600, 1920, 2400):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(FIT) == [], f"at {width} px"
        if with_estate and width in (1280, 1920):
            _save_screenshot(page, tmp_path, f"finance_summary_{width}.png")
    # Print: the page's CSS under print media, laid out at the printable width of A4 (landscape, the @page
    # size, and portrait for a user who switches), then a real PDF whose page size must be A4 landscape.
    page.emulate_media(media="print")
    for width in (A4_LANDSCAPE_PX, A4_PORTRAIT_PX):
        page.set_viewport_size({"width": width, "height": 1000})
        assert page.evaluate(FIT) == [], f"print at {width} px"
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    boxes = {tuple(round(float(v)) for v in m) for m in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)}
    assert boxes == {(842, 595)}, boxes  # A4 landscape in points
    page.close()


# ------------------------------------------------------------------------------------------- 2. names


def _text(locator) -> str:
    return locator.inner_text().replace("\xa0", " ").strip()


def test_stores_and_skus_appear_by_name_with_their_ids(browser, tmp_path: Path) -> None:
    f = make_findings()
    f.loc[f["finding_type"] == "price_off_pricelist", "risk_rank"] = 1  # into the top 20
    named = write_daily_report(tmp_path / "named", DAY, f, None, estate=make_estate())
    plain = write_daily_report(tmp_path / "plain", DAY, f, None)
    page, _ = _open(browser, named.summary_html)
    row = page.locator('[data-testid="risk-row"][data-type="stock_drift_oversell"]').filter(has_text="A-001")
    row = row.filter(has_text="ST-SE01")
    assert _text(row.get_by_test_id("risk-location")) == "Stockholm Drottninggatan (ST-SE01)"
    assert _text(row.get_by_test_id("risk-item")) == "Merino Crew Neck, Navy, size M (SKU A-001)"
    cap = page.locator('[data-testid="risk-row"][data-type="price_off_pricelist"]')
    assert _text(cap.get_by_test_id("risk-item")) == "Canvas Cap, Black, one size (SKU E-005)"
    store = page.locator('[data-testid="store-row"][data-location="ST-DE01"]')
    assert _text(store.locator("td").first) == "Berlin Mitte Rosenthaler Straße (ST-DE01)"
    assert "Acme Nordics" in page.title()  # the estate's name when none is given
    order = page.locator('[data-testid="risk-row"][data-type="click_collect_open"]')
    assert _text(order.get_by_test_id("risk-item")) == "Order C<&>1"
    page.close()

    page, _ = _open(browser, plain.summary_html)  # without an estate: ids alone, as before
    row = page.locator('[data-testid="risk-row"][data-type="stock_drift_oversell"]').filter(has_text="A-001")
    row = row.filter(has_text="ST-SE01")
    assert _text(row.get_by_test_id("risk-location")) == "ST-SE01"
    assert _text(row.get_by_test_id("risk-item")) == "SKU A-001"
    page.close()


# ------------------------------------------------------------------------------------------- 3. ranks


def test_ranks_are_unique_and_ties_broken_deterministically(tmp_path: Path) -> None:
    rows = [_row("stock_drift_oversell", "ST-SE01", sku="B", qpos=0, qcom=1, var=10.0),
            _row("click_collect_open", "ST-SE01", order_ref="2", var=10.0),
            _row("click_collect_open", "ST-SE01", order_ref="1", var=10.0),
            _row("click_collect_open", "ST-DE01", order_ref="9", var=10.0),
            _row("stock_drift_oversell", "ST-SE01", sku="A", qpos=0, qcom=1, var=10.0),
            _row("price_off_pricelist", "ST-SE01", sku="Z", var=25.0),
            _row("line_tax_mismatch", "ST-SE01", sku="Y", var=99.0)]
    f = pd.DataFrame(rows).assign(risk_rank=[1, 1, 1, 1, 1, 1, 2]).astype(FINDING_DTYPES)[FINDING_COLUMNS]
    expected = [("price_off_pricelist", "ST-SE01", "Z", None),  # rank 1, highest value
                ("click_collect_open", "ST-DE01", None, "9"),   # then type, location, sku, order ref
                ("click_collect_open", "ST-SE01", None, "1"),
                ("click_collect_open", "ST-SE01", None, "2"),
                ("stock_drift_oversell", "ST-SE01", "A", None),
                ("stock_drift_oversell", "ST-SE01", "B", None),
                ("line_tax_mismatch", "ST-SE01", "Y", None)]    # risk rank 2 after every rank 1
    for seed in (0, 1, 2):
        top = top_risks(f.sample(frac=1.0, random_state=seed))
        assert list(top["report_rank"]) == list(range(1, 8))
        assert [(r.finding_type, r.location_id, r.sku, r.order_ref) for r in top.itertuples()] == expected

    files = write_daily_report(tmp_path, DAY, make_findings(), None)
    html = files.summary_html.read_text(encoding="utf-8")
    ranks = [int(r) for r in re.findall(r'data-testid="risk-row" data-rank="(\d+)"', html)]
    assert ranks == list(range(1, 21))
    cells = re.findall(r'data-testid="risk-row" data-rank="\d+"[^>]*><td class="num">(\d+)</td>', html)
    assert [int(c) for c in cells] == ranks  # the Rank column shows the same unique rank
    csv = pd.read_csv(files.findings_csv)
    assert list(csv["report_rank"]) == list(range(1, 28))


# ------------------------------------------------------------------------------------------- 4. details


def rule_findings() -> pd.DataFrame:
    """Findings of every type as the real rules write them (small scenarios of the rules' own tests)."""
    from pipelines_tests.reconciliation import test_rules as t

    def day_with(change) -> pd.DataFrame:
        day = t.clean_day()
        change(day)
        return t.run(day)

    def drift_and_pickup(d) -> None:
        d.centra_stock_snapshot.loc[0, "physical"] = 9
        d.centra_stock_snapshot.loc[4, "physical"] = 2
        d.centra_orders.loc[1, "status"] = "PROCESSING"
        d.pickups = pd.concat([d.pickups, pd.DataFrame([{"order_number": 5555, "location_id": "ST-SE01",
                                                         "completed_at": f"{t.DAY}T16:00:00Z"}])])

    def sync(d) -> None:
        d.centra_stock_changes = pd.concat([d.centra_stock_changes.drop(index=0),
                                            t.changes([(3, "B", -1, "Manual correction")])], ignore_index=True)
        t.with_centra_physical(d, 2, "A", 6)  # the T1 sale never reached Centra
        d.pos_stock_snapshot.loc[d.pos_stock_snapshot["fulfillment_node_id"].eq("DE01")
                                 & d.pos_stock_snapshot["sku"].eq("B"), "on_hand"] = 2
        t.with_centra_physical(d, 3, "B", 1)  # the manual correction took Centra from NewStore's 2 to 1

    def stream_gap(d) -> None:
        d.pos_stock_movements = d.pos_stock_movements.drop(index=0).reset_index(drop=True)  # the stream lost T1

    def orphans(d) -> None:
        d.pos_stock_snapshot = pd.concat([d.pos_stock_snapshot, t.pos_stock([("SE01", "X", 4), ("DE01", "D", 2)])])
        d.centra_stock_snapshot = pd.concat([d.centra_stock_snapshot, t.centra_stock([(3, "D", 5)])])

    def orphans_commerce(d) -> None:
        d.pos_catalog = t.pos_catalog(["A", "B", "C", "Y"])
        d.centra_catalog = t.catalog([("A", True), ("B", True), ("C", True), ("D", False), ("W", True), ("V", True)])
        d.centra_stock_snapshot = pd.concat([d.centra_stock_snapshot, t.centra_stock([(2, "W", 3), (3, "V", 0)])])

    def store_sales(d) -> None:
        se = d.downstream_sales["location_id"] == "ST-SE01"
        d.downstream_sales.loc[se, ["count", "gross", "discount", "tax", "net"]] = [1, 499.0, 0.0, 99.8, 399.2]

    def lines(d) -> None:
        d.pos_sale_lines = pd.concat([d.pos_sale_lines, pd.DataFrame([
            t.line("R3", "DE01", "A", 1, 49.95, 0.0, 0.19, kind="return")])], ignore_index=True)

    def refund(value: float, rate: float):
        def change(d) -> None:
            d.centra_return_lines.loc[0, ["line_value", "tax_percent"]] = [value, rate]
        return change

    def no_centra_return(d) -> None:
        d.centra_return_lines = d.centra_return_lines.iloc[0:0]
        d.centra_returns = d.centra_returns.iloc[0:0]

    def lost_transactions(d) -> None:
        d.missing_transactions = pd.DataFrame([
            {"kind": "order", "transaction_id": "O-9", "order_id": "O-9", "status": "unrecoverable",
             "evidence": '["order.completed", "order.created"]', "fulfillment_node_id": "SE01", "amount": 499.0,
             "currency": "SEK", "last_error": "NotFound: HTTP 404"},
            {"kind": "return", "transaction_id": "R-9", "order_id": None, "status": "waiting",
             "evidence": '["refund_request.issued"]', "fulfillment_node_id": "DE01", "amount": None,
             "currency": "EUR", "last_error": None}])

    frames = [day_with(c) for c in (drift_and_pickup, sync, stream_gap, orphans, orphans_commerce, store_sales,
                                    lines,
                                    refund(279.0, 25.0), refund(299.0, 12.0), no_centra_return, lost_transactions)]
    frames.append(t._line_findings(t.line("T1", "SE01", "A", 2, 479.0, 0.0, 0.25),
                                   t.line("T2", "SE01", "A", 1, 499.0, 0.0, 0.25, tax=95.0),
                                   t.line("T3", "SE01", "A", 1, 499.0, -10.0, 0.25),
                                   t.line("T4", "DE01", "B", 1, 29.95, 35.0, 0.19),
                                   t.line("T5", "SE01", "C", 1, 199.0, 25.0, 0.25), allowed=(0.1, 0.2)))
    frames.append(kiosk_rule_findings())
    frames.append(erp_rule_findings())
    return pd.concat(frames, ignore_index=True).astype(FINDING_DTYPES)[FINDING_COLUMNS]


def _detail_texts(tmp_path: Path, findings: pd.DataFrame, **kw) -> pd.DataFrame:
    files = write_daily_report(tmp_path, DAY, findings, None, **kw)
    return pd.read_csv(files.findings_csv, keep_default_na=False)


def test_every_rule_detail_reads_as_a_sentence(tmp_path: Path) -> None:
    f = rule_findings()
    assert set(f["finding_type"]) == set(FINDING_TYPES)  # the scenarios cover every finding type
    csv = _detail_texts(tmp_path, f)
    assert sorted(csv["detail"]) == sorted(f["detail"].fillna(""))  # the raw detail is kept
    for r in csv.itertuples():
        text = r.detail_text
        assert text and (text[0].isupper() or text[0].isdigit()) and text.endswith("."), (r.finding_type, text)
        assert not re.search(r"=|\b[a-z]+_[a-z_]+\b|\bn/a\b", text), (r.finding_type, r.detail, text)


@pytest.mark.parametrize(("row", "sentence"), [
    (_row("stock_drift_oversell", "ST-SE01", sku="A", qpos=2, qcom=5, currency="SEK",
          detail="on_hand=2;physical=5;unit_price=499.00"),
     "Centra shows 5 units in the store's warehouse, the POS has 2 units on hand: 3 units could be sold online "
     "although they are not in the store (499.00 SEK each)."),
    (_row("sync_missing_in_commerce", "ST-SE01", sku="A", qpos=6, qcom=0,
          detail="pos_net=6;commerce_net=0;pos_movements=1;commerce_changes=0"),
     "The POS recorded a net stock change of +6 units (1 movement); Centra's stock-change ledger recorded "
     "0 units (no changes)."),
    (_row("store_sales_mismatch", "ST-SE01", tax_rate=0.25, qpos=2, qcom=1, currency="SEK",
          detail="gross_diff=-499.00;discount_diff=0.00;tax_diff=-99.80;net_diff=-399.20"),
     "Downstream has 499.00 SEK less gross, 99.80 SEK less tax and 399.20 SEK less net than the POS; "
     "1 transaction downstream, 2 transactions in the POS (tax rate 25%)."),
    (_row("click_collect_open", "ST-DE01", order_ref="1002",
          detail="status=PROCESSING;order_total=49.95 EUR;completed_at=2026-11-24T15:00:00Z"),
     "Picked up in the store on 2026-11-24 15:00 UTC, but the order is still PROCESSING in Centra "
     "(order total 49.95 EUR)."),
    (_row("line_discount_mismatch", "ST-SE01", sku="A", txn="T3", currency="SEK",
          detail="line_no=1;discount=-10.00;gross=499.00;reason=negative"),
     "Line 1: a discount of \u221210.00 SEK on a gross of 499.00 SEK is negative."),
    (_row("line_tax_mismatch", "ST-SE01", sku="A", txn="T2", currency="SEK",
          detail="line_no=3;tax=95.00;expected=99.80;rate=0.25"),
     "Line 3: tax 95.00 SEK charged, 99.80 SEK expected at 25%."),
    (_row("refund_amount_mismatch", "ST-SE01", sku="B", order_ref="1001", qpos=1, qcom=1, amount_pos=299.0,
          amount_com=279.0, currency="SEK",
          detail="pos_returns=1;commerce_returns=1;commerce_refunded=1;pos_tax=59.80;commerce_tax=55.80"),
     "Refunded 299.00 SEK in the store (1 return, 1 unit), 279.00 SEK in Centra (1 return, 1 refunded, "
     "1 unit)."),
    (_row("click_collect_open", "ST-DE01", order_ref="7", detail="foo_bar=1;baz=x y"), "Foo bar 1; baz x y."),
    (_row("return_without_order_ref", "ST-SE01", txn="T-1", detail=NASTY), NASTY),
])
def test_detail_sentences_and_fallback(tmp_path: Path, row: dict, sentence: str) -> None:
    f = pd.DataFrame([row]).astype(FINDING_DTYPES)[FINDING_COLUMNS]
    csv = _detail_texts(tmp_path, f)
    assert csv.loc[0, "detail"] == row["detail"] and csv.loc[0, "detail_text"] == sentence
    html = (tmp_path / DAY / "summary.html").read_text(encoding="utf-8")
    shown = re.search(r'data-testid="risk-detail">([^<]*)<', html).group(1)
    assert shown.replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">").replace(
        "&quot;", '"').replace("&amp;", "&") == sentence


# ------------------------------------------------------------------------------------------- 5. money

MONEY_COLUMNS = ["amount_pos", "amount_commerce", "amount_diff", "value_at_risk", "value_at_risk_base"]


def _decimals(cell: str) -> int:
    assert re.fullmatch(r"-?\d+(\.\d+)?|", cell), cell
    return len(cell.partition(".")[2].rstrip("0"))


def test_money_is_rounded_to_cents_in_every_output(tmp_path: Path) -> None:
    f = make_findings()  # amount_commerce 10.0 * i - 1.11 * i carries float noise (26.669999999999998)
    f.loc[0, "amount_pos"] = 2142.6600000000003
    f.loc[1, "value_at_risk_base"] = 0.1 + 0.2
    files = write_daily_report(tmp_path, DAY, f, make_history())
    for k, v in files.summary.headline().items():
        assert re.fullmatch(r"\d+(\.\d{1,2})?", repr(v)), (k, v)
    raw = pd.read_csv(files.findings_csv, dtype=str, keep_default_na=False)
    for c in MONEY_COLUMNS:
        assert max(_decimals(x) for x in raw[c]) <= 2, (c, list(raw[c]))
    body = files.summary_html.read_text(encoding="utf-8").partition("<body>")[2]
    assert not re.search(r"\d\.\d{3,}", body.replace('points="', "")), "an amount with more than 2 decimals"
    month = write_month_report(tmp_path, DAY[:7], files.summary.totals_by_type.assign(business_date=DAY))
    totals = pd.read_csv(month.parent / "totals.csv", dtype=str)
    assert max(_decimals(x) for x in totals["value_at_risk_base"]) <= 2


def test_zero_decimal_currencies_show_no_decimals(browser, tmp_path: Path) -> None:
    f = pd.DataFrame([
        _row("stock_drift_oversell", "ST-JP01", sku="A-001", qpos=1, qcom=3, currency="JPY", var=2999.6),
        _row("stock_drift_lost_sales", "ST-SE01", sku="B-002", qpos=3, qcom=2, currency="SEK", var=299.45,
             var_base=1234.4),
    ]).assign(risk_rank=[1, 2]).astype(FINDING_DTYPES)[FINDING_COLUMNS]
    head = summarise(f, base_currency="JPY").headline()
    assert head["value_at_risk_base"] == 4234.0 and head["oversell_value_base"] == 3000.0
    assert all(float(v).is_integer() for v in head.values())
    files = write_daily_report(tmp_path, DAY, f, None, base_currency="JPY")
    csv = pd.read_csv(files.findings_csv).set_index("currency")
    assert csv.loc["JPY", "value_at_risk"] == 3000.0 and csv.loc["SEK", "value_at_risk"] == 299.45
    assert csv.loc["SEK", "value_at_risk_base"] == 1234.0
    page, _ = _open(browser, files.summary_html)
    tid = page.get_by_test_id
    assert tid("total-value-at-risk").inner_text().replace("\xa0", " ") == "4,234 JPY"
    risks = page.locator('[data-testid="risk-row"]')
    assert risks.nth(0).get_by_test_id("risk-value").inner_text().replace("\xa0", " ") == "3,000 JPY"
    assert money(risks.nth(1).get_by_test_id("risk-value").inner_text(), "SEK") == 299.45
    assert page.locator('[data-testid="chart-point"]').last.get_attribute("data-value") == "4234"
    page.close()


# ------------------------------------------------------------------------------------------- 6. produced under

CHECKS = [("reconciliation_findings_schema", True, "27 finding(s), well formed"),
          ("money_mismatches_within_tolerance", True, "1,954.07 EUR at risk, limit 5,000.00 EUR"),
          ("stock_drift_within_tolerance", False, "446.37 EUR of drift over the 250.00 EUR limit")]
NOTES = ["Evidence incomplete: 3 returns whose original sale could not be found were not judged; see table "
         "reconciliation_evidence.", NASTY]


def test_produced_under_box_at_the_top(browser, tmp_path: Path) -> None:
    files = write_daily_report(tmp_path, DAY, wordy_findings(), make_history(), estate=make_estate(),
                               produced_under=CHECKS, evidence_notes=NOTES, generated_at="2026-11-25 06:00 UTC")
    page, _ = _open(browser, files.summary_html)
    box = page.get_by_test_id("produced-under")
    assert box.is_visible() and box.get_attribute("data-state") == "failed"
    top = box.bounding_box()
    assert top["y"] + top["height"] < 900 and top["y"] < page.locator(".cards").bounding_box()["y"]
    items = box.get_by_test_id("produced-check")
    assert items.count() == 3
    for i, (name, passed, detail) in enumerate(CHECKS):
        item = items.nth(i)
        assert item.get_attribute("data-check") == name and item.get_attribute("data-passed") == str(passed).lower()
        text = item.inner_text()
        assert name in text and detail in text and ("PASS" if passed else "FAIL") in text
    assert box.get_by_test_id("evidence-note").all_inner_texts() == NOTES
    assert "2 of 3 checks passed" in box.inner_text() or "1 failed" in box.inner_text()
    _save_screenshot(page, tmp_path, "finance_summary_produced_under.png")
    page.close()
    plain = write_daily_report(tmp_path / "plain", DAY, make_findings(), None)
    assert 'data-testid="produced-under"' not in plain.summary_html.read_text(encoding="utf-8")
