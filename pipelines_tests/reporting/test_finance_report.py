"""Finance report: summary figures, the files of a day, and the HTML page as a person sees it in Chromium."""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pipelines.domain.reconciliation.engine import totals_by_type
from pipelines.domain.reconciliation.model import (
    FINDING_COLUMNS,
    FINDING_DTYPES,
    FINDING_TYPES,
    empty_findings,
)
from pipelines.reporting import (
    ALL_FINDINGS_CSV,
    SUMMARY_HTML,
    read_findings_csv,
    summarise,
    top_risks,
    write_daily_report,
    write_month_report,
)

#: a findings CSV: the contract's columns, then the detail as a sentence and the report's unique rank.
CSV_COLUMNS = [*FINDING_COLUMNS, "detail_text", "report_rank"]

DAY = "2026-11-24"
NASTY = "<script>alert('x')</script> & \"quoted\""


def _row(ftype: str, location: str, *, sku: str | None = None, order_ref: str | None = None,
         txn: str | None = None, tax_rate: float = math.nan, qpos: int | None = None, qcom: int | None = None,
         amount_pos: float = math.nan, amount_com: float = math.nan, currency: str = "EUR", var: float = 0.0,
         var_base: float | None = None, detail: str | None = None) -> dict:
    t = FINDING_TYPES[ftype]
    qdiff = None if qpos is None or qcom is None else qcom - qpos
    return {
        "business_date": DAY, "finding_type": ftype, "severity": t.severity, "owner_team": t.owner_team,
        "location_id": location, "sku": sku, "order_ref": order_ref, "transaction_id": txn, "tax_rate": tax_rate,
        "quantity_pos": qpos, "quantity_commerce": qcom, "quantity_diff": qdiff, "amount_pos": amount_pos,
        "amount_commerce": amount_com, "amount_diff": amount_com - amount_pos, "currency": currency,
        "value_at_risk": var, "value_at_risk_base": var if var_base is None else var_base, "risk_rank": 0,
        "playbook": t.playbook, "detail": detail,
    }


def make_findings() -> pd.DataFrame:
    """27 findings of 8 types, 3 stores, 3 currencies, with a 4-digit value, a zero value and a missing one."""
    rows = [
        _row("stock_drift_oversell", "ST-SE01", sku="A-001", qpos=2, qcom=5, currency="SEK", var=1497.0,
             var_base=130.24, detail="POS on hand 2, Centra physical 5"),
        _row("stock_drift_oversell", "ST-SE01", sku="B-002", qpos=0, qcom=1, currency="SEK", var=299.0,
             var_base=26.01),
        _row("stock_drift_oversell", "ST-DE01", sku="A-001", qpos=1, qcom=3, var=99.9),
        _row("stock_drift_lost_sales", "ST-DE01", sku="C-003", qpos=6, qcom=2, var=79.8),
        _row("stock_drift_lost_sales", "ST-NO01", sku="D-004", qpos=3, qcom=2, currency="NOK", var=1299.0,
             var_base=110.42),
        _row("store_sales_mismatch", "ST-DE01", tax_rate=0.19, amount_pos=12_345.67, amount_com=11_111.11,
             var=1234.56, detail="net differs by 1,234.56"),
        _row("return_without_order_ref", "ST-SE01", txn="T-0001", amount_pos=-499.0, amount_com=0.0,
             currency="SEK", var=499.0, var_base=43.41, detail=NASTY),
        _row("click_collect_open", "ST-DE01", order_ref="C<&>1", var=59.9),
        _row("orphan_sku_commerce_unknown_in_pos", "ST-NO01", sku="Z-999", currency="NOK", var=0.0),
        _row("price_off_pricelist", "ST-NO01", sku="E-005", currency="NOK", var=10.0, var_base=math.nan),
    ]
    rows += [_row("line_discount_mismatch", f"ST-{'SE' if i % 2 else 'DE'}01", sku=f"L-{i:03d}",
                  txn=f"T-{100 + i}", amount_pos=10.0 * i, amount_com=10.0 * i - 1.11 * i, var=round(1.11 * i, 2))
             for i in range(1, 18)]
    df = pd.DataFrame(rows)
    df["risk_rank"] = df["value_at_risk_base"].fillna(0).rank(method="dense", ascending=False).astype("int64")
    df = df.astype(FINDING_DTYPES)[FINDING_COLUMNS]
    return df.sort_values(["value_at_risk_base", "risk_rank"], ascending=[False, True]).reset_index(drop=True)


def make_history(day: str = DAY) -> pd.DataFrame:
    """35 days ending the day before ``day``, two of them missing; plus a stale row for ``day`` itself."""
    end = date.fromisoformat(day)
    rows = []
    for back in range(1, 36):
        if back in (7, 8):
            continue
        d = end - timedelta(days=back)
        rows.append({"business_date": d.isoformat(), "drift_value_base": round(200 + 37.5 * (back % 9) + back, 2),
                     "value_at_risk_base": 1500.0 + back, "findings": 20 + back})
    rows.append({"business_date": day, "drift_value_base": 9999.0, "value_at_risk_base": 9999.0, "findings": 1})
    return pd.DataFrame(rows)


def expected_history(findings: pd.DataFrame, history: pd.DataFrame, day: str = DAY) -> pd.DataFrame:
    first = (date.fromisoformat(day) - timedelta(days=29)).isoformat()
    h = history[(history["business_date"] >= first) & (history["business_date"] < day)].copy()
    drift = findings.loc[findings["finding_type"].str.startswith("stock_drift"), "value_at_risk_base"].sum()
    today = {"business_date": day, "drift_value_base": round(drift, 2),
             "value_at_risk_base": round(findings["value_at_risk_base"].sum(), 2), "findings": len(findings)}
    return pd.concat([h, pd.DataFrame([today])]).sort_values("business_date").reset_index(drop=True)


# ------------------------------------------------------------------------------------------- summarise


def test_summarise_sums_and_groups() -> None:
    f = make_findings()
    s = summarise(f)
    var = f["value_at_risk_base"].fillna(0)

    assert s.findings == 27
    assert s.value_at_risk_base == pytest.approx(round(var.sum(), 2))
    assert s.error_findings == int((f["severity"] == "ERROR").sum()) == 6
    assert s.oversell_value_base == pytest.approx(130.24 + 26.01 + 99.9)
    assert s.lost_sales_value_base == pytest.approx(79.8 + 110.42)
    assert s.drift_value_base == pytest.approx(130.24 + 26.01 + 99.9 + 79.8 + 110.42)

    t = s.totals_by_type
    assert list(t.columns) == ["finding_type", "severity", "owner_team", "count", "value_at_risk_base"]
    assert set(t["finding_type"]) == set(f["finding_type"]) and len(t) == 8
    assert t["count"].sum() == len(f)
    exp = f.assign(v=var).groupby("finding_type").agg(n=("v", "size"), v=("v", "sum"))
    for r in t.itertuples(index=False):
        assert r.count == exp.loc[r.finding_type, "n"]
        assert r.value_at_risk_base == pytest.approx(round(exp.loc[r.finding_type, "v"], 2))
        assert (r.severity, r.owner_team) == (FINDING_TYPES[r.finding_type].severity,
                                              FINDING_TYPES[r.finding_type].owner_team)
    assert t["value_at_risk_base"].is_monotonic_decreasing
    assert t.iloc[0]["finding_type"] == "store_sales_mismatch"
    ldm = t.set_index("finding_type").loc["line_discount_mismatch"]
    assert ldm["count"] == 17 and ldm["value_at_risk_base"] == pytest.approx(round(sum(1.11 * i for i in range(1, 18)), 2))

    team = s.totals_by_team.set_index("owner_team")
    assert list(s.totals_by_team.columns) == ["owner_team", "count", "value_at_risk_base"]
    assert team["count"].to_dict() == {"finance": 18, "retail_operations": 8, "ecommerce": 1}
    assert team.loc["finance", "value_at_risk_base"] == pytest.approx(1234.56 + round(sum(1.11 * i for i in range(1, 18)), 2))
    assert team.loc["ecommerce", "value_at_risk_base"] == pytest.approx(59.9)

    st = s.drift_by_store.set_index("location_id")
    assert list(s.drift_by_store.columns) == ["location_id", "oversell_value_base", "lost_sales_value_base",
                                              "drift_value_base", "units"]
    assert list(s.drift_by_store["location_id"]) == ["ST-DE01", "ST-SE01", "ST-NO01"]  # drift value desc
    assert st.loc["ST-SE01"].to_dict() == {"oversell_value_base": 156.25, "lost_sales_value_base": 0.0,
                                           "drift_value_base": 156.25, "units": 4}
    assert st.loc["ST-DE01"].to_dict() == pytest.approx({"oversell_value_base": 99.9, "lost_sales_value_base": 79.8,
                                                         "drift_value_base": 179.7, "units": 6})
    assert st.loc["ST-NO01", "units"] == 1
    assert s.headline()["drift_value_base"] == pytest.approx(s.drift_by_store["drift_value_base"].sum())


def test_summarise_shows_the_engines_totals() -> None:
    """The totals and the headline are the engine's (the day's reconciliation_daily_totals), not a count of the
    report's own: given them, the report shows them; without them, it derives them with the engine's function."""
    f = make_findings()
    engine = totals_by_type(f)
    own, given = summarise(f), summarise(f, totals=engine)
    pd.testing.assert_frame_equal(own.totals_by_type, given.totals_by_type)
    pd.testing.assert_frame_equal(own.totals_by_team, given.totals_by_team)
    assert own.headline() == given.headline()
    assert list(given.totals_by_type["count"]) == list(engine["findings"])  # the engine's `findings` is `count`
    doubled = summarise(f, totals=engine.assign(findings=engine["findings"] * 2))
    assert doubled.findings == 2 * len(f) and doubled.totals_by_team["count"].sum() == 2 * len(f)


def test_summarise_clean_day_and_bad_frame() -> None:
    s = summarise(empty_findings())
    assert (s.findings, s.value_at_risk_base, s.error_findings, s.oversell_value_base, s.lost_sales_value_base) == (
        0, 0.0, 0, 0.0, 0.0)
    assert s.totals_by_type.empty and s.totals_by_team.empty and s.drift_by_store.empty
    assert list(s.drift_by_store.columns)[-1] == "units"
    with pytest.raises(ValueError, match="risk_rank"):
        summarise(make_findings().drop(columns=["risk_rank"]))


def test_summarise_categorical_text_columns() -> None:
    f = make_findings()
    cat = f.astype({c: "category" for c in ("finding_type", "severity", "owner_team", "location_id")})
    cat["finding_type"] = cat["finding_type"].cat.add_categories(["click_collect_open_x"])
    a, b = summarise(f), summarise(cat)
    pd.testing.assert_frame_equal(a.totals_by_type, b.totals_by_type)
    pd.testing.assert_frame_equal(a.totals_by_team, b.totals_by_team)
    pd.testing.assert_frame_equal(a.drift_by_store, b.drift_by_store)


def test_top_risks_are_the_20_lowest_ranks() -> None:
    f = make_findings()
    top = top_risks(f)
    assert len(top) == 20
    assert top["risk_rank"].is_monotonic_increasing and top.iloc[0]["risk_rank"] == 1
    assert list(top["report_rank"]) == list(range(1, 21))  # unique, 1..n, though risk_rank has ties
    assert top.iloc[0]["finding_type"] == "store_sales_mismatch"
    assert top["risk_rank"].max() <= f["risk_rank"].nsmallest(20).max()


# ------------------------------------------------------------------------------------------- files


def test_daily_files_one_csv_per_type_present(tmp_path: Path) -> None:
    f = make_findings()
    files = write_daily_report(tmp_path, DAY, f, make_history(), estate_name="Acme Nordics",
                               generated_at="2026-11-25 06:00 UTC")
    folder = tmp_path / DAY
    assert files.directory == folder and files.summary_html == folder / SUMMARY_HTML
    present = set(f["finding_type"])
    assert set(files.csv_by_type) == present
    assert {p.name for p in folder.iterdir()} == {SUMMARY_HTML, ALL_FINDINGS_CSV} | {f"{t}.csv" for t in present}
    for absent in set(FINDING_TYPES) - present:
        assert not (folder / f"{absent}.csv").exists()

    back = read_findings_csv(files.findings_csv)  # rows in report rank order (top_risks' order)
    ranked = top_risks(f, n=len(f))[FINDING_COLUMNS]
    pd.testing.assert_frame_equal(back, ranked.astype(object).where(ranked.notna(), None).astype(FINDING_DTYPES))
    plain = pd.read_csv(files.findings_csv)  # an ordinary reader sees the contract's header (BOM stripped)
    assert list(plain.columns) == CSV_COLUMNS and len(plain) == len(f)
    assert list(plain["report_rank"]) == list(range(1, len(f) + 1))
    for ftype, path in files.csv_by_type.items():
        part = read_findings_csv(path)
        assert set(part["finding_type"]) == {ftype}
        assert len(part) == (f["finding_type"] == ftype).sum()
        assert part["value_at_risk_base"].sum() == pytest.approx(
            f.loc[f["finding_type"] == ftype, "value_at_risk_base"].sum())
    assert read_findings_csv(files.csv_by_type["return_without_order_ref"]).loc[0, "detail"] == NASTY

    # A re-run of the day with fewer types replaces the files and deletes the CSVs of types now absent.
    files2 = write_daily_report(tmp_path, DAY, f[f["finding_type"].str.startswith("stock_drift")], None)
    assert {p.name for p in folder.iterdir()} == {SUMMARY_HTML, ALL_FINDINGS_CSV, "stock_drift_oversell.csv",
                                                  "stock_drift_lost_sales.csv"}
    assert len(read_findings_csv(files2.findings_csv)) == 5


def test_clean_day_files_and_page(tmp_path: Path) -> None:
    files = write_daily_report(tmp_path, DAY, empty_findings(), None)
    assert files.csv_by_type == {}
    assert {p.name for p in files.directory.iterdir()} == {SUMMARY_HTML, ALL_FINDINGS_CSV}
    assert read_findings_csv(files.findings_csv).empty
    assert list(pd.read_csv(files.findings_csv).columns) == CSV_COLUMNS
    page = files.summary_html.read_text(encoding="utf-8")
    assert 'data-testid="no-discrepancies"' in page and "No discrepancies found" in page
    assert re.search(r'data-testid="total-value-at-risk"[^>]*>0\.00&nbsp;<span class="ccy">EUR</span>', page)
    assert 'data-testid="type-row"' not in page and page.count('data-testid="chart-point"') == 1


def test_page_is_escaped_and_self_contained(tmp_path: Path) -> None:
    files = write_daily_report(tmp_path, DAY, make_findings(), make_history(), estate_name="Müller & <Söhne>")
    page = files.summary_html.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "C&lt;&amp;&gt;1" in page and "Müller &amp; &lt;Söhne&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\(""", page, re.I)
    assert "Content-Security-Policy" in page
    assert list(files.directory.glob(".*")) == []  # no temp file left behind


def test_history_window_keeps_30_days_and_todays_figures(tmp_path: Path) -> None:
    f = make_findings()
    files = write_daily_report(tmp_path, DAY, f, make_history())
    page = files.summary_html.read_text(encoding="utf-8")
    exp = expected_history(f, make_history())
    dates = re.findall(r'data-testid="chart-point" data-date="([\d-]+)" data-value="([\d.]+)"', page)
    assert [d for d, _ in dates] == list(exp["business_date"])
    assert len(dates) == 28  # 30 days minus the two missing
    assert float(dates[-1][1]) == pytest.approx(files.summary.drift_value_base)  # not the stale 9999.0
    with pytest.raises(ValueError):
        write_daily_report(tmp_path, "../2026-11-24", f, None)


def test_month_report(tmp_path: Path) -> None:
    day1 = summarise(make_findings()).totals_by_type.assign(business_date="2026-11-23")
    day2 = summarise(make_findings().head(5)).totals_by_type.assign(business_date="2026-11-24")
    other = day2.assign(business_date="2026-12-01")
    write_daily_report(tmp_path, "2026-11-24", make_findings().head(5), None)
    path = write_month_report(tmp_path, "2026-11", pd.concat([day1, day2, other]))
    assert path == tmp_path / "2026-11" / SUMMARY_HTML
    totals = pd.read_csv(tmp_path / "2026-11" / "totals.csv")
    assert list(totals.columns) == ["business_date", "finding_type", "severity", "owner_team", "count",
                                    "value_at_risk_base"]
    assert set(totals["business_date"]) == {"2026-11-23", "2026-11-24"}
    assert totals["count"].sum() == 27 + 5
    assert totals["value_at_risk_base"].sum() == pytest.approx(day1["value_at_risk_base"].sum()
                                                               + day2["value_at_risk_base"].sum())
    page = path.read_text(encoding="utf-8")
    assert page.count('data-testid="day-row"') == 2 and 'href="../2026-11-24/summary.html"' in page
    assert 'href="../2026-11-23/summary.html"' not in page  # no daily page written for that day
    with pytest.raises(ValueError):
        write_month_report(tmp_path, "2026-13", day1)
    empty = write_month_report(tmp_path, "2026-10", day1)  # no row in that month
    assert "No findings this month." in empty.read_text(encoding="utf-8")
    assert len(pd.read_csv(tmp_path / "2026-10" / "totals.csv")) == 0


# ------------------------------------------------------------------------------------------- in a browser

MONEY = re.compile(r"^\s*(-|\u2212)?([\d,]+\.\d{2})\s+([A-Z]{3})\s*$")


def money(text: str, currency: str = "EUR") -> float:
    """A figure as the page shows it ("1,234.56 EUR"): 2 decimals, thousands separator, currency code."""
    m = MONEY.match(text.replace("\xa0", " "))
    assert m, f"not a money figure: {text!r}"
    assert m.group(3) == currency
    return (-1 if m.group(1) else 1) * float(m.group(2).replace(",", ""))


def count(text: str) -> int:
    assert re.fullmatch(r"\s*[\d,]+\s*", text), text
    return int(text.replace(",", ""))


FITS = """() => document.documentElement.scrollWidth <= window.innerWidth &&
    [...document.querySelectorAll('section, .tw')].every(s => s.scrollWidth <= s.clientWidth + 1)"""


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, requests


def _save_screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("PIPELINES_REPORT_SCREENSHOT_DIR")  # look at the page after a run
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / name)
    return shot


def test_summary_in_headless_chromium_shows_the_frames_totals(browser, tmp_path: Path) -> None:
    started = time.perf_counter()
    f = make_findings()
    history = make_history()
    files = write_daily_report(tmp_path, DAY, f, history, estate_name="Acme Nordics",
                               generated_at="2026-11-25 06:00 UTC")
    page, requests = _open(browser, files.summary_html)
    tid = page.get_by_test_id
    var = f["value_at_risk_base"].fillna(0)

    assert DAY in page.title() and "Acme Nordics" in page.title()
    for card in ("total-value-at-risk", "findings-count", "error-findings", "oversell-value", "lost-sales-value"):
        assert tid(card).is_visible(), card
    assert money(tid("total-value-at-risk").inner_text()) == pytest.approx(round(var.sum(), 2))
    assert count(tid("findings-count").inner_text()) == len(f)
    assert count(tid("error-findings").inner_text()) == (f["severity"] == "ERROR").sum()
    is_type = f["finding_type"].eq
    assert money(tid("oversell-value").inner_text()) == pytest.approx(round(var[is_type("stock_drift_oversell")].sum(), 2))
    assert money(tid("lost-sales-value").inner_text()) == pytest.approx(
        round(var[is_type("stock_drift_lost_sales")].sum(), 2))
    assert tid("no-discrepancies").count() == 0

    by_type = f.assign(v=var).groupby("finding_type").agg(n=("v", "size"), v=("v", "sum"))
    rows = page.locator('[data-testid="type-row"]')
    assert rows.count() == len(by_type)
    seen = set()
    for i in range(rows.count()):
        row = rows.nth(i)
        assert row.is_visible()
        ftype = row.get_attribute("data-type")
        seen.add(ftype)
        assert count(row.get_by_test_id("type-count").inner_text()) == by_type.loc[ftype, "n"]
        assert money(row.get_by_test_id("type-value").inner_text()) == pytest.approx(round(by_type.loc[ftype, "v"], 2))
        assert FINDING_TYPES[ftype].severity in row.inner_text()
    assert seen == set(f["finding_type"])
    assert count(tid("type-total-count").inner_text()) == len(f)
    assert money(tid("type-total-value").inner_text()) == pytest.approx(round(var.sum(), 2))

    by_team = f.assign(v=var).groupby("owner_team").agg(n=("v", "size"), v=("v", "sum"))
    rows = page.locator('[data-testid="team-row"]')
    assert rows.count() == len(by_team)
    for i in range(rows.count()):
        row = rows.nth(i)
        team = row.get_attribute("data-team")
        assert count(row.get_by_test_id("team-count").inner_text()) == by_team.loc[team, "n"]
        assert money(row.get_by_test_id("team-value").inner_text()) == pytest.approx(round(by_team.loc[team, "v"], 2))

    drift = f[f["finding_type"].str.startswith("stock_drift")].assign(v=var)
    rows = page.locator('[data-testid="store-row"]')
    assert rows.count() == drift["location_id"].nunique() == 3
    for i in range(rows.count()):
        row = rows.nth(i)
        d = drift[drift["location_id"] == row.get_attribute("data-location")]
        over, lost = d.loc[d["finding_type"] == "stock_drift_oversell", "v"].sum(), d.loc[
            d["finding_type"] == "stock_drift_lost_sales", "v"].sum()
        assert money(row.get_by_test_id("store-oversell").inner_text()) == pytest.approx(round(over, 2))
        assert money(row.get_by_test_id("store-lost-sales").inner_text()) == pytest.approx(round(lost, 2))
        assert money(row.get_by_test_id("store-drift").inner_text()) == pytest.approx(round(over + lost, 2))
        assert count(row.get_by_test_id("store-units").inner_text()) == d["quantity_diff"].abs().sum()
    assert money(tid("store-total-drift").inner_text()) == pytest.approx(round(drift["v"].sum(), 2))

    risks = page.locator('[data-testid="risk-row"]')
    assert risks.count() == 20
    ranks = [int(risks.nth(i).get_attribute("data-rank")) for i in range(20)]
    assert ranks == list(range(1, 21))
    first = risks.nth(0)
    assert "Store sales mismatch" in first.inner_text() and "ST-DE01" in first.inner_text()
    assert money(first.get_by_test_id("risk-value-base").inner_text()) == pytest.approx(1234.56)
    se = page.locator('[data-testid="risk-row"][data-type="stock_drift_oversell"]').filter(has_text="SKU A-001")
    se = se.filter(has_text="ST-SE01")
    assert money(se.get_by_test_id("risk-value").inner_text(), "SEK") == pytest.approx(1497.0)
    assert se.get_by_test_id("risk-qty").inner_text().strip() == "+3"
    assert NASTY in page.locator('[data-testid="risk-row"][data-type="return_without_order_ref"]').inner_text()

    exp = expected_history(f, history)
    chart = tid("drift-chart")
    assert chart.is_visible()
    points = page.locator('[data-testid="chart-point"]')
    assert points.count() == len(exp) == 28
    for i in range(points.count()):
        tip = points.nth(i).locator("title").text_content()
        m = re.match(r"(\d{4}-\d{2}-\d{2}): drift value ([\d,]+\.\d{2}) EUR", tip)
        assert m, tip
        assert m.group(1) == exp.loc[i, "business_date"]
        assert float(m.group(2).replace(",", "")) == pytest.approx(exp.loc[i, "drift_value_base"])
    assert money(tid("chart-today-value").text_content()) == pytest.approx(round(drift["v"].sum(), 2))
    axis = chart.locator("text.axis").all_text_contents()
    assert "Drift value (EUR)" in axis and "Business day" in axis and "24 Nov" in axis

    assert requests and all(u.startswith("file://") for u in requests), requests  # nothing from the network
    assert page.evaluate(FITS), "a table overflows its section or the page scrolls sideways"
    page.set_viewport_size({"width": 1024, "height": 900})  # a laptop: still no sideways scrolling
    assert page.evaluate(FITS), "a table overflows its section at 1024 px"
    page.set_viewport_size({"width": 1280, "height": 900})
    shot = _save_screenshot(page, tmp_path, "finance_summary.png")
    assert shot.stat().st_size > 10_000
    page.close()
    assert time.perf_counter() - started < 30


def test_clean_day_in_headless_chromium(browser, tmp_path: Path) -> None:
    files = write_daily_report(tmp_path, DAY, empty_findings(), make_history(), estate_name="Acme Nordics")
    page, _ = _open(browser, files.summary_html)
    tid = page.get_by_test_id
    assert tid("no-discrepancies").is_visible()
    assert "No discrepancies found" in tid("no-discrepancies").inner_text()
    assert money(tid("total-value-at-risk").inner_text()) == 0.0
    assert count(tid("findings-count").inner_text()) == 0 == count(tid("error-findings").inner_text())
    assert money(tid("oversell-value").inner_text()) == 0.0 == money(tid("lost-sales-value").inner_text())
    assert page.locator('[data-testid="type-row"]').count() == 0
    assert page.locator('[data-testid="risk-row"]').count() == 0
    assert page.locator('[data-testid="chart-point"]').count() == 28
    assert money(tid("chart-today-value").text_content()) == 0.0
    _save_screenshot(page, tmp_path, "finance_summary_clean.png")
    page.close()
