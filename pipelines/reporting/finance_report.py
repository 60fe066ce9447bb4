"""The finance reports of the daily reconciliation: one CSV per finding type and a self-contained HTML summary.

Pure rendering and file writing: pandas and the standard library only (no Dagster, no database, no network).

Reports folder (``PIPELINES_REPORTS_DIR``, default ``$PIPELINES_HOME/reports``)::

    <reports>/
      2026-01-15/                  one folder per business day (write_daily_report)
        summary.html               the page finance opens in a browser (inline CSS and SVG, no script,
                                   no external resource: it can be mailed or archived as one file)
        findings.csv               every finding of the day (always written, header only on a clean day)
        stock_drift_oversell.csv   one CSV per finding type PRESENT that day, named <finding_type>.csv;
        store_sales_mismatch.csv   a type with no finding that day has NO file (a stale one left by an
        ...                        earlier run of the same day is deleted), so "no file" = "no finding"
      2026-01/                     one folder per month (write_month_report)
        summary.html               rollup by day, finding type and team, linking to the daily pages
        totals.csv                 business_date, finding_type, severity, owner_team, count, value_at_risk_base

Every CSV has the columns of :data:`FINDING_COLUMNS` in that order, UTF-8 with a byte-order mark (so Excel
reads accents right; pandas and :func:`read_findings_csv` strip it), no index column, empty cell = no value.

Every file is written to a temporary file in the same folder and renamed over the target (``os.replace``),
so a reader never sees a half-written file; ``summary.html`` is written after the CSVs it links to.

Money: ``value_at_risk`` is in the store's currency (shown with its code), ``value_at_risk_base`` in the
estate's base currency. Totals sum ``value_at_risk_base`` (a missing value counts as 0) and are rounded to
cents; the page shows 2 decimals with a thousands separator and the currency code. The drift value of a
store is its oversell plus its lost-sales value (both >= 0).

Figures a test or a scraper reads carry ``data-testid`` attributes: headline cards ``total-value-at-risk``,
``findings-count``, ``error-findings``, ``oversell-value``, ``lost-sales-value``; rows ``type-row``
(``data-type``), ``team-row`` (``data-team``), ``store-row`` (``data-location``), ``risk-row``
(``data-rank``), with cells ``*-count`` / ``*-value`` etc.; chart points ``chart-point`` (``data-date``,
``data-value``, and a ``<title>`` tooltip with the value); ``no-discrepancies`` on a clean day.
"""

from __future__ import annotations

import html
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.domain.reconciliation.model import FINDING_COLUMNS, FINDING_DTYPES, FINDING_TYPES

SUMMARY_HTML = "summary.html"
ALL_FINDINGS_CSV = "findings.csv"
MONTH_TOTALS_CSV = "totals.csv"
CSV_ENCODING = "utf-8-sig"
TOP_RISKS = 20
HISTORY_DAYS = 30
#: columns of the ``history`` frame of :func:`write_daily_report` (one row per business day).
HISTORY_COLUMNS = ["business_date", "drift_value_base", "value_at_risk_base", "findings"]
MONTH_COLUMNS = ["business_date", "finding_type", "severity", "owner_team", "count", "value_at_risk_base"]

OVERSELL = "stock_drift_oversell"
LOST_SALES = "stock_drift_lost_sales"

TYPE_COLUMNS = ["finding_type", "severity", "owner_team", "count", "value_at_risk_base"]
TEAM_COLUMNS = ["owner_team", "count", "value_at_risk_base"]
STORE_COLUMNS = ["location_id", "oversell_value_base", "lost_sales_value_base", "drift_value_base", "units"]

TYPE_LABELS: dict[str, str] = {
    "stock_drift_oversell": "Stock drift: oversell",
    "stock_drift_lost_sales": "Stock drift: lost sales",
    "sync_missing_in_commerce": "Sync: missing in Centra",
    "sync_unexpected_in_commerce": "Sync: unexpected in Centra",
    "orphan_sku_pos_unknown_in_commerce": "Orphan SKU: POS SKU unknown in Centra",
    "orphan_sku_pos_inactive_in_commerce": "Orphan SKU: POS SKU inactive in Centra",
    "orphan_sku_commerce_unknown_in_pos": "Orphan SKU: Centra SKU unknown in POS",
    "store_sales_mismatch": "Store sales mismatch",
    "return_without_order_ref": "Return without order reference",
    "return_missing_in_commerce": "Return missing in Centra",
    "refund_amount_mismatch": "Refund amount mismatch",
    "refund_tax_mismatch": "Refund tax mismatch",
    "click_collect_open": "Click & collect still open",
    "line_tax_mismatch": "Sale line tax mismatch",
    "line_discount_mismatch": "Sale line discount mismatch",
    "price_off_pricelist": "Price off the price list",
}
TEAM_LABELS: dict[str, str] = {
    "finance": "Finance", "retail_operations": "Retail operations", "ecommerce": "E-commerce",
    "integration": "Integration",
}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


# ------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class ReportSummary:
    """The figures of one day's findings (money in the base currency, rounded to cents).

    totals_by_type: finding_type, severity, owner_team, count, value_at_risk_base (value desc, then type).
    totals_by_team: owner_team, count, value_at_risk_base (value desc, then team).
    drift_by_store: location_id, oversell_value_base, lost_sales_value_base, drift_value_base, units
        (abs quantity_diff of the drift findings); stores with stock drift only, drift value desc.
    """

    totals_by_type: pd.DataFrame
    totals_by_team: pd.DataFrame
    drift_by_store: pd.DataFrame
    findings: int
    value_at_risk_base: float
    error_findings: int
    oversell_value_base: float
    lost_sales_value_base: float

    @property
    def drift_value_base(self) -> float:
        return _cents(self.oversell_value_base + self.lost_sales_value_base)

    def headline(self) -> dict[str, float | int]:
        """The headline figures as plain numbers (for asset metadata and the history table)."""
        return {
            "findings": self.findings,
            "value_at_risk_base": self.value_at_risk_base,
            "error_findings": self.error_findings,
            "oversell_value_base": self.oversell_value_base,
            "lost_sales_value_base": self.lost_sales_value_base,
            "drift_value_base": self.drift_value_base,
        }


def _cents(x: Any) -> float:
    """Round to cents; NaN -> 0; never -0.0."""
    v = float(x)
    return 0.0 if math.isnan(v) else round(v, 2) + 0.0


def _money_series(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64").fillna(0.0)


def _check_findings(findings: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in FINDING_COLUMNS if c not in findings.columns]
    if missing:
        raise ValueError(f"findings frame lacks columns {missing}")
    f = findings[FINDING_COLUMNS].reset_index(drop=True)
    cats = [c for c in FINDING_COLUMNS if isinstance(f[c].dtype, pd.CategoricalDtype)]
    # categorical text (as the rules may produce) would group over unobserved categories: use plain objects
    return f.astype({c: object for c in cats}) if cats else f


def _empty_stores() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object" if c == "location_id" else "int64" if c == "units"
                                      else "float64") for c in STORE_COLUMNS})


def summarise(findings: pd.DataFrame) -> ReportSummary:
    """Totals of a findings frame (FINDING_COLUMNS) by type, by team and drift by store, and the headline."""
    f = _check_findings(findings)
    var = _money_series(f["value_at_risk_base"])
    f = f.assign(value_at_risk_base=var)
    if f.empty:
        return ReportSummary(
            pd.DataFrame({c: pd.Series(dtype="int64" if c == "count" else "float64" if c.startswith("value")
                                       else "object") for c in TYPE_COLUMNS}),
            pd.DataFrame({"owner_team": pd.Series(dtype="object"), "count": pd.Series(dtype="int64"),
                          "value_at_risk_base": pd.Series(dtype="float64")}),
            _empty_stores(), 0, 0.0, 0, 0.0, 0.0)

    by_type = f.groupby(["finding_type", "severity", "owner_team"], as_index=False, sort=True, dropna=False).agg(
        count=("finding_type", "size"), value_at_risk_base=("value_at_risk_base", "sum"))
    by_type["value_at_risk_base"] = by_type["value_at_risk_base"].map(_cents)
    by_type = by_type.sort_values(["value_at_risk_base", "finding_type"], ascending=[False, True],
                                  kind="mergesort").reset_index(drop=True)[TYPE_COLUMNS]

    by_team = f.groupby("owner_team", as_index=False, sort=True, dropna=False).agg(
        count=("owner_team", "size"), value_at_risk_base=("value_at_risk_base", "sum"))
    by_team["value_at_risk_base"] = by_team["value_at_risk_base"].map(_cents)
    by_team = by_team.sort_values(["value_at_risk_base", "owner_team"], ascending=[False, True],
                                  kind="mergesort").reset_index(drop=True)[TEAM_COLUMNS]

    ftype = f["finding_type"]
    drift = f[ftype.isin((OVERSELL, LOST_SALES))]
    if drift.empty:
        stores = _empty_stores()
    else:
        d = pd.DataFrame({
            "location_id": drift["location_id"],
            "oversell_value_base": drift["value_at_risk_base"].where(drift["finding_type"] == OVERSELL, 0.0),
            "lost_sales_value_base": drift["value_at_risk_base"].where(drift["finding_type"] == LOST_SALES, 0.0),
            "units": pd.to_numeric(drift["quantity_diff"], errors="coerce").astype("float64").abs().fillna(0.0),
        })
        stores = d.groupby("location_id", as_index=False, sort=True, dropna=False).sum()
        for c in ("oversell_value_base", "lost_sales_value_base"):
            stores[c] = stores[c].map(_cents)
        stores["drift_value_base"] = (stores["oversell_value_base"] + stores["lost_sales_value_base"]).map(_cents)
        stores["units"] = stores["units"].round().astype("int64")
        stores = stores.sort_values(["drift_value_base", "location_id"], ascending=[False, True],
                                    kind="mergesort").reset_index(drop=True)[STORE_COLUMNS]

    return ReportSummary(
        totals_by_type=by_type,
        totals_by_team=by_team,
        drift_by_store=stores,
        findings=len(f),
        value_at_risk_base=_cents(var.sum()),
        error_findings=int((f["severity"] == "ERROR").sum()),
        oversell_value_base=_cents(var[ftype == OVERSELL].sum()),
        lost_sales_value_base=_cents(var[ftype == LOST_SALES].sum()),
    )


def top_risks(findings: pd.DataFrame, n: int = TOP_RISKS) -> pd.DataFrame:
    """The n findings of highest risk: risk_rank ascending (1 = highest), ties by value at risk (base) desc."""
    f = _check_findings(findings)
    order = f.assign(_rank=pd.to_numeric(f["risk_rank"], errors="coerce").fillna(float("inf")),
                     _var=_money_series(f["value_at_risk_base"]))
    order = order.sort_values(["_rank", "_var", "finding_type", "location_id", "sku", "order_ref"],
                              ascending=[True, False, True, True, True, True], kind="mergesort",
                              na_position="last")
    return order.head(n)[FINDING_COLUMNS].reset_index(drop=True)


# ------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_daily_report` wrote: the day's folder, its files and the summary it rendered."""

    directory: Path
    summary_html: Path
    findings_csv: Path
    csv_by_type: dict[str, Path]
    summary: ReportSummary = field(repr=False)

    @property
    def paths(self) -> list[Path]:
        return [self.summary_html, self.findings_csv, *self.csv_by_type.values()]


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file in the target's folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode(CSV_ENCODING)


def csv_name(finding_type: str) -> str:
    """The file name of a finding type's CSV (anything but letters, digits, _ and - becomes _)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(finding_type)) + ".csv"


def read_findings_csv(path: Path) -> pd.DataFrame:
    """Read a findings CSV written here back into the contract's dtypes (empty text cell -> None)."""
    text_cols = [c for c, d in FINDING_DTYPES.items() if d == "object"]
    df = pd.read_csv(path, dtype={c: "string" for c in text_cols}, keep_default_na=False,
                     na_values={c: [""] for c in FINDING_COLUMNS}, encoding=CSV_ENCODING)
    out = {}
    for c in FINDING_COLUMNS:
        s = df[c]
        if FINDING_DTYPES[c] == "object":
            out[c] = s.astype(object).where(s.notna(), None)
        elif FINDING_DTYPES[c] == "Int64":
            out[c] = pd.to_numeric(s, errors="coerce").astype("Int64")
        else:
            out[c] = pd.to_numeric(s, errors="coerce").astype(FINDING_DTYPES[c])
    return pd.DataFrame(out)[FINDING_COLUMNS]


def _validate_date(business_date: str) -> date:
    if not isinstance(business_date, str) or not _DATE_RE.match(business_date):
        raise ValueError(f"business_date must be YYYY-MM-DD, got {business_date!r}")
    return date.fromisoformat(business_date)


def _history_window(history: pd.DataFrame | None, day: date, summary: ReportSummary) -> pd.DataFrame:
    """History rows of the 30 days ending on ``day`` (one per date, sorted); ``day``'s row is the summary's."""
    cols = HISTORY_COLUMNS
    if history is None or history.empty:
        h = pd.DataFrame(columns=cols)
    else:
        missing = [c for c in cols if c not in history.columns]
        if missing:
            raise ValueError(f"history frame lacks columns {missing}")
        h = history[cols].copy()
        h["business_date"] = pd.to_datetime(h["business_date"]).dt.strftime("%Y-%m-%d")
    first = (day - timedelta(days=HISTORY_DAYS - 1)).isoformat()
    today = day.isoformat()
    h = h[(h["business_date"] >= first) & (h["business_date"] < today)]
    h = h.drop_duplicates("business_date", keep="last")
    row = pd.DataFrame([{"business_date": today, "drift_value_base": summary.drift_value_base,
                         "value_at_risk_base": summary.value_at_risk_base, "findings": summary.findings}])
    h = pd.concat([h, row], ignore_index=True) if len(h) else row
    h["drift_value_base"] = _money_series(h["drift_value_base"]).map(_cents)
    h["value_at_risk_base"] = _money_series(h["value_at_risk_base"]).map(_cents)
    h["findings"] = pd.to_numeric(h["findings"], errors="coerce").fillna(0).astype("int64")
    return h.sort_values("business_date").reset_index(drop=True)[cols]


def write_daily_report(out_dir: Path, business_date: str, findings: pd.DataFrame, history: pd.DataFrame | None,
                       *, base_currency: str = "EUR", estate_name: str = "",
                       generated_at: str | None = None) -> ReportFiles:
    """Write ``<out_dir>/<business_date>/``: summary.html, findings.csv and ``<finding_type>.csv`` per type present.

    history: HISTORY_COLUMNS for up to the last 30 days including this one; rows outside the 30 days ending
    on business_date are ignored and this day's row is replaced by the figures of ``findings`` (so the
    chart and the cards always agree). A known finding type absent today gets no CSV; a stale CSV of it
    from an earlier run of the same day is removed. Each file is replaced atomically; summary.html last.
    """
    day = _validate_date(business_date)
    f = _check_findings(findings)
    summary = summarise(f)
    folder = Path(out_dir) / business_date
    folder.mkdir(parents=True, exist_ok=True)

    csv_by_type: dict[str, Path] = {}
    for ftype in sorted(pd.unique(f["finding_type"].dropna()).tolist()):
        path = folder / csv_name(ftype)
        _atomic_write(path, _csv_bytes(f[f["finding_type"] == ftype]))
        csv_by_type[ftype] = path
    findings_csv = folder / ALL_FINDINGS_CSV
    _atomic_write(findings_csv, _csv_bytes(f))

    hist = _history_window(history, day, summary)
    page = render_daily_html(business_date, f, summary, hist, base_currency=base_currency,
                             estate_name=estate_name, generated_at=generated_at or _now(),
                             csv_names={t: p.name for t, p in csv_by_type.items()})
    summary_html = folder / SUMMARY_HTML
    _atomic_write(summary_html, page.encode("utf-8"))

    written = {p.name for p in csv_by_type.values()}
    for ftype in FINDING_TYPES:
        stale = folder / csv_name(ftype)
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    return ReportFiles(folder, summary_html, findings_csv, csv_by_type, summary)


def write_month_report(out_dir: Path, month: str, daily_totals: pd.DataFrame, *, base_currency: str = "EUR",
                       estate_name: str = "", generated_at: str | None = None) -> Path:
    """Write ``<out_dir>/<month>/summary.html`` and ``totals.csv``: the month rolled up by day, type and team.

    daily_totals: business_date, finding_type, owner_team, count (or ``findings``), value_at_risk_base and
    optionally severity, e.g. the totals_by_type of each day; rows outside ``month`` (YYYY-MM) are ignored.
    Returns the HTML path.
    """
    if not isinstance(month, str) or not _MONTH_RE.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    t = daily_totals.copy()
    if "count" not in t.columns and "findings" in t.columns:
        t = t.rename(columns={"findings": "count"})
    if "severity" not in t.columns:
        t["severity"] = t["finding_type"].map(lambda x: FINDING_TYPES[x].severity if x in FINDING_TYPES else "")
    missing = [c for c in MONTH_COLUMNS if c not in t.columns]
    if missing:
        raise ValueError(f"daily_totals lacks columns {missing}")
    t = t[MONTH_COLUMNS].copy()
    t["business_date"] = pd.to_datetime(t["business_date"]).dt.strftime("%Y-%m-%d") if len(t) else t["business_date"]
    t = t[t["business_date"].astype(str).str.startswith(month + "-")]
    t["count"] = pd.to_numeric(t["count"], errors="coerce").fillna(0).astype("int64")
    t["value_at_risk_base"] = _money_series(t["value_at_risk_base"])
    keys = ["business_date", "finding_type", "severity", "owner_team"]
    roll = t.groupby(keys, as_index=False, sort=True, dropna=False)[["count", "value_at_risk_base"]].sum()
    roll["value_at_risk_base"] = roll["value_at_risk_base"].map(_cents)
    roll = roll[MONTH_COLUMNS]

    folder = Path(out_dir) / month
    csv_path, html_path = folder / MONTH_TOTALS_CSV, folder / SUMMARY_HTML
    _atomic_write(csv_path, _csv_bytes(roll))
    linked = {d for d in roll["business_date"].unique() if (Path(out_dir) / d / SUMMARY_HTML).exists()}
    page = render_month_html(month, roll, base_currency=base_currency, estate_name=estate_name,
                             generated_at=generated_at or _now(), linked_days=linked)
    _atomic_write(html_path, page.encode("utf-8"))
    return html_path


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------------------------------- formatting


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _isna(x: Any) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def fmt_amount(v: Any) -> str:
    """2 decimals with a thousands separator ("1,234.50"); missing -> an em dash."""
    if _isna(v):
        return "\u2014"
    return f"{_cents(v):,.2f}"


def fmt_money(v: Any, currency: Any) -> str:
    """HTML of an amount with its currency code, e.g. ``1,234.50&nbsp;<span class="ccy">EUR</span>``."""
    if _isna(v):
        return "\u2014"
    ccy = "" if _isna(currency) else str(currency)
    return f'{fmt_amount(v)}&nbsp;<span class="ccy">{_e(ccy)}</span>' if ccy else fmt_amount(v)


def fmt_int(v: Any) -> str:
    return "\u2014" if _isna(v) else f"{int(v):,}"


def fmt_signed(v: Any) -> str:
    if _isna(v):
        return "\u2014"
    i = int(v)
    return f"+{i:,}" if i > 0 else f"\u2212{abs(i):,}" if i < 0 else "0"


def type_label(ftype: str) -> str:
    return TYPE_LABELS.get(ftype, str(ftype).replace("_", " ").capitalize())


def team_label(team: Any) -> str:
    return "\u2014" if _isna(team) else TEAM_LABELS.get(str(team), str(team).replace("_", " ").capitalize())


def _badge(severity: Any) -> str:
    sev = "" if _isna(severity) else str(severity)
    cls = sev if sev in ("ERROR", "WARN") else "OTHER"
    return f'<span class="badge {cls}">{_e(sev or "n/a")}</span>'


# ------------------------------------------------------------------------------------------- HTML

_CSS = """
:root{--ink:#1c2430;--muted:#5b6675;--line:#dde2e8;--bg:#f4f6f8;--accent:#1f4fd1;--err:#b42318;--errbg:#fde8e6;
--warn:#a15c07;--warnbg:#fef3d6;--ok:#117a43;--okbg:#e3f5ea}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 32px 40px}
header{border-bottom:3px solid var(--ink);padding-bottom:12px;margin-bottom:20px}
.eyebrow{font-size:0.857em;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);margin:0 0 2px}
h1{font-size:1.857em;line-height:1.2;margin:0 0 6px;font-weight:700}
.sub{color:var(--muted);margin:0}
h2{font-size:1.143em;margin:0 0 10px;font-weight:650}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;margin:0 0 20px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px}
.card.primary{border-top:4px solid var(--accent)}
.card.error{border-top:4px solid var(--err)}
.card.drift{border-top:4px solid #7a4cc2}
.card .label{font-size:0.821em;letter-spacing:.05em;text-transform:uppercase;color:var(--muted)}
.card .value{font-size:1.571em;font-weight:700;margin-top:4px;white-space:nowrap;font-variant-numeric:tabular-nums}
.card .hint{font-size:0.857em;color:var(--muted)}
.ccy{font-size:.72em;font-weight:600;color:var(--muted);letter-spacing:.02em}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 20px}
.grid2{display:grid;grid-template-columns:minmax(0,1.75fr) minmax(0,1fr);gap:20px}
.grid2.even{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}
.nw{white-space:nowrap}
td.finding{min-width:140px}
thead th.num{white-space:normal}
.grid2>section{margin:0}
.tw{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:6px 7px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-size:0.821em;letter-spacing:.04em;text-transform:uppercase;color:var(--muted);font-weight:600;
border-bottom:2px solid var(--line);vertical-align:bottom}
th.num,td.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
tfoot td{font-weight:700;border-top:2px solid var(--ink);border-bottom:none}
code{font:.82em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--muted);overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:0.786em;font-weight:700;letter-spacing:.03em}
.badge.ERROR{background:var(--errbg);color:var(--err)}
.badge.WARN{background:var(--warnbg);color:var(--warn)}
.badge.OTHER{background:#eceff3;color:var(--muted)}
.detail{font-size:0.857em;color:var(--muted);margin-top:2px}
.playbook{font-size:0.857em;color:#39424e;min-width:180px}
.playbook .same{color:var(--muted);font-style:italic}
.empty{color:var(--muted);font-style:italic;margin:4px 0}
.clean{background:var(--okbg);border:1px solid #a6dcbc;color:var(--ok);border-radius:8px;padding:14px 18px;
margin:0 0 20px;font-size:1.143em;font-weight:650}
.clean span{display:block;font-size:.8125em;font-weight:400;color:#2c5b40}
.chart svg{width:100%;height:auto;display:block}
.chart .axis{font-size:0.786em;fill:var(--muted)}
.chart .grid{stroke:#e6e9ee;stroke-width:1}
.chart .line{fill:none;stroke:#7a4cc2;stroke-width:2.25;stroke-linejoin:round}
.chart .pt{fill:#fff;stroke:#7a4cc2;stroke-width:2}
.chart .pt.today{fill:#7a4cc2}
.chart .vlabel{font-size:0.857em;font-weight:700;fill:var(--ink)}
details{margin-top:8px}
summary{cursor:pointer;color:var(--accent);font-size:0.929em}
a{color:var(--accent)}
footer{color:var(--muted);font-size:0.857em;margin-top:8px}
footer p{margin:4px 0}
@media (max-width:1080px){.grid2,.grid2.even{grid-template-columns:minmax(0,1fr)}}
@media (max-width:700px){main{padding:16px}}
@page{size:A4 landscape;margin:12mm}
@media print{
body{background:#fff;font-size:10.5px}
main{max-width:none;padding:0}
section,.card,.clean{border-color:#b9c0c9;break-inside:avoid}
section.long{break-inside:auto}
tr{break-inside:avoid}
thead{display:table-header-group}
tbody tr:nth-child(even){background:none}
a{color:inherit;text-decoration:none}
.tw{overflow:visible}
details,.noprint{display:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def _page(title: str, body: str) -> str:
    # every table in a horizontal scroll box: on a phone a wide table scrolls instead of the page
    body = body.replace("<table>", '<div class="tw"><table>').replace("</table>", "</table></div>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        # Self-contained by construction: the page may load nothing and run nothing.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def _card(testid: str, label: str, value_html: str, raw: float | int, css: str = "", hint: str = "") -> str:
    hint_html = f'<div class="hint">{_e(hint)}</div>' if hint else ""
    return (f'<div class="card {css}"><div class="label">{_e(label)}</div>'
            f'<div class="value" data-testid="{testid}" data-value="{raw}">{value_html}</div>{hint_html}</div>')


def _ref_cell(row: Any) -> str:
    parts = []
    if not _isna(row.sku):
        parts.append(f"<div>SKU&nbsp;{_e(row.sku)}</div>")
    if not _isna(row.order_ref):
        parts.append(f"<div>Order&nbsp;{_e(row.order_ref)}</div>")
    if not _isna(row.transaction_id) and not parts:
        parts.append(f"<div>Txn&nbsp;{_e(row.transaction_id)}</div>")
    if not _isna(row.tax_rate) and not parts:
        parts.append(f"<div>Tax&nbsp;rate {float(row.tax_rate) * 100:g}%</div>")
    return "".join(parts) or "\u2014"


def render_daily_html(business_date: str, findings: pd.DataFrame, summary: ReportSummary, history: pd.DataFrame,
                      *, base_currency: str, estate_name: str, generated_at: str,
                      csv_names: dict[str, str] | None = None) -> str:
    """The daily summary page (see the module docstring for its data-testid contract)."""
    base = str(base_currency)
    s = summary
    csv_names = csv_names or {}
    estate = f" \u2014 {estate_name}" if estate_name else ""
    title = f"Reconciliation {business_date}{estate}"

    head = (
        '<header><p class="eyebrow">Daily finance reconciliation \u00b7 NewStore POS vs Centra</p>'
        f'<h1>Reconciliation report <span data-testid="business-date">{_e(business_date)}</span>'
        f"{_e(estate)}</h1>"
        f'<p class="sub">Business day {_e(business_date)} \u00b7 values at risk in {_e(base)} (base currency) '
        f'unless marked \u00b7 generated {_e(generated_at)}</p></header>'
    )
    drift_total = s.drift_value_base
    cards = (
        '<div class="cards">'
        + _card("total-value-at-risk", "Total value at risk", fmt_money(s.value_at_risk_base, base),
                s.value_at_risk_base, "primary")
        + _card("findings-count", "Findings", fmt_int(s.findings), s.findings)
        + _card("error-findings", "ERROR findings", fmt_int(s.error_findings), s.error_findings, "error",
                f"{s.findings - s.error_findings:,} WARN")
        + _card("oversell-value", "Oversell drift value", fmt_money(s.oversell_value_base, base),
                s.oversell_value_base, "drift", "Centra shows stock the store does not have")
        + _card("lost-sales-value", "Lost-sales drift value", fmt_money(s.lost_sales_value_base, base),
                s.lost_sales_value_base, "drift", "the web shop hides stock the store has")
        + "</div>"
    )
    clean = ""
    if s.findings == 0:
        clean = ('<div class="clean" data-testid="no-discrepancies">No discrepancies found'
                 f"<span>The POS and Centra agree on every check that ran for {_e(business_date)}: "
                 "nothing is at risk and no action is needed.</span></div>")

    # totals by type
    if s.totals_by_type.empty:
        type_table = '<p class="empty">No findings.</p>'
    else:
        rows = []
        for r in s.totals_by_type.itertuples(index=False):
            name = csv_names.get(r.finding_type)
            link = f'<a href="{_e(name)}" download>CSV</a>' if name else ""
            rows.append(
                f'<tr data-testid="type-row" data-type="{_e(r.finding_type)}">'
                f'<td>{_e(type_label(r.finding_type))}<div><code>{_e(r.finding_type)}</code></div></td>'
                f"<td>{_badge(r.severity)}</td><td>{_e(team_label(r.owner_team))}</td>"
                f'<td class="num" data-testid="type-count">{fmt_int(r.count)}</td>'
                f'<td class="num" data-testid="type-value">{fmt_money(r.value_at_risk_base, base)}</td>'
                f'<td class="num noprint">{link}</td></tr>')
        type_table = (
            "<table><thead><tr><th>Finding type</th><th>Severity</th><th>Owner team</th>"
            f'<th class="num">Findings</th><th class="num">Value at risk ({_e(base)})</th>'
            '<th class="num noprint">File</th></tr></thead><tbody>' + "".join(rows) + "</tbody>"
            f'<tfoot><tr><td colspan="3">Total</td><td class="num" data-testid="type-total-count">'
            f'{fmt_int(s.findings)}</td><td class="num" data-testid="type-total-value">'
            f'{fmt_money(s.value_at_risk_base, base)}</td><td class="noprint"></td></tr></tfoot></table>')

    # totals by team
    if s.totals_by_team.empty:
        team_table = '<p class="empty">No findings.</p>'
    else:
        rows = [
            f'<tr data-testid="team-row" data-team="{_e(r.owner_team)}"><td class="nw">{_e(team_label(r.owner_team))}'
            f'</td><td class="num" data-testid="team-count">{fmt_int(r.count)}</td>'
            f'<td class="num" data-testid="team-value">{fmt_money(r.value_at_risk_base, base)}</td></tr>'
            for r in s.totals_by_team.itertuples(index=False)]
        team_table = (
            f'<table><thead><tr><th>Owner team</th><th class="num">Findings</th><th class="num">Value at risk '
            f'({_e(base)})</th></tr></thead><tbody>' + "".join(rows) + "</tbody>"
            f'<tfoot><tr><td>Total</td><td class="num">{fmt_int(s.findings)}</td>'
            f'<td class="num">{fmt_money(s.value_at_risk_base, base)}</td></tr></tfoot></table>')

    # top risks
    top = top_risks(findings)
    if top.empty:
        risk_table = '<p class="empty">No findings.</p>'
    else:
        rows = []
        first_of_type: dict[str, int] = {}
        for i, r in enumerate(top.itertuples(index=False), start=1):
            detail = "" if _isna(r.detail) else f'<div class="detail">{_e(r.detail)}</div>'
            rank = "" if _isna(r.risk_rank) else int(r.risk_rank)
            pb = "" if _isna(r.playbook) else str(r.playbook)
            seen = first_of_type.setdefault(f"{r.finding_type}\0{pb}", i)
            # the same playbook again: point to the row above instead of repeating the paragraph
            pb_html = (_e(pb) if seen == i else
                       f'<span class="same" title="{_e(pb)}">Same as row {seen} above</span>')
            rows.append(
                f'<tr data-testid="risk-row" data-rank="{rank}" data-type="{_e(r.finding_type)}">'
                f'<td class="num">{rank}</td>'
                f'<td class="finding">{_e(type_label(r.finding_type))} {_badge(r.severity)}{detail}</td>'
                f'<td class="nw">{_e("" if _isna(r.location_id) else r.location_id) or chr(0x2014)}</td>'
                f"<td>{_ref_cell(r)}</td>"
                f'<td class="num" data-testid="risk-qty">{fmt_signed(r.quantity_diff)}</td>'
                f'<td class="num" data-testid="risk-value">{fmt_money(r.value_at_risk, r.currency)}</td>'
                f'<td class="num" data-testid="risk-value-base">{fmt_money(r.value_at_risk_base, base)}</td>'
                f"<td>{_e(team_label(r.owner_team))}</td>"
                f'<td class="playbook">{pb_html}</td></tr>')
        more = s.findings - len(top)
        note = (f'<p class="detail">{more:,} more finding{"s" if more != 1 else ""} in '
                f'<a href="{ALL_FINDINGS_CSV}" download>{ALL_FINDINGS_CSV}</a>.</p>') if more > 0 else ""
        risk_table = (
            '<table><thead><tr><th class="num">Rank</th><th>Finding</th><th>Location</th><th>SKU / order ref</th>'
            '<th class="num">Qty diff</th><th class="num">Value at risk</th>'
            f'<th class="num">Value at risk ({_e(base)})</th><th>Owner</th><th>Playbook</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>" + note)

    # drift by store
    if s.drift_by_store.empty:
        store_table = '<p class="empty">No stock drift: Centra and the POS agree on every store\'s stock.</p>'
    else:
        rows = [
            f'<tr data-testid="store-row" data-location="{_e(r.location_id)}"><td>{_e(r.location_id)}</td>'
            f'<td class="num" data-testid="store-oversell">{fmt_money(r.oversell_value_base, base)}</td>'
            f'<td class="num" data-testid="store-lost-sales">{fmt_money(r.lost_sales_value_base, base)}</td>'
            f'<td class="num" data-testid="store-drift">{fmt_money(r.drift_value_base, base)}</td>'
            f'<td class="num" data-testid="store-units">{fmt_int(r.units)}</td></tr>'
            for r in s.drift_by_store.itertuples(index=False)]
        store_table = (
            f'<table><thead><tr><th>Location</th><th class="num">Oversell ({_e(base)})</th>'
            f'<th class="num">Lost sales ({_e(base)})</th><th class="num">Drift value ({_e(base)})</th>'
            '<th class="num">Units</th></tr></thead><tbody>' + "".join(rows) + "</tbody>"
            f'<tfoot><tr><td>Total</td><td class="num">{fmt_money(s.oversell_value_base, base)}</td>'
            f'<td class="num">{fmt_money(s.lost_sales_value_base, base)}</td>'
            f'<td class="num" data-testid="store-total-drift">{fmt_money(drift_total, base)}</td>'
            f'<td class="num">{fmt_int(int(s.drift_by_store["units"].sum()))}</td></tr></tfoot></table>')

    chart = drift_chart_svg(history, date.fromisoformat(business_date), base)
    hist_rows = "".join(
        f'<tr><td>{_e(r.business_date)}</td><td class="num">{fmt_money(r.drift_value_base, base)}</td>'
        f'<td class="num">{fmt_money(r.value_at_risk_base, base)}</td><td class="num">{fmt_int(r.findings)}</td></tr>'
        for r in history.iloc[::-1].itertuples(index=False))
    history_table = (
        f"<details><summary>Values of the last {HISTORY_DAYS} days</summary><table><thead><tr><th>Business day</th>"
        f'<th class="num">Drift value ({_e(base)})</th><th class="num">Value at risk ({_e(base)})</th>'
        f'<th class="num">Findings</th></tr></thead><tbody>{hist_rows}</tbody></table></details>')

    files = ", ".join(f'<a href="{_e(n)}" download>{_e(n)}</a>' for n in sorted(csv_names.values()))
    foot = (
        "<footer>"
        f'<p>Files in this folder: <a href="{ALL_FINDINGS_CSV}" download>{ALL_FINDINGS_CSV}</a> (all findings)'
        f"{'; per finding type: ' + files if files else ''}. A finding type with no finding that day has no CSV.</p>"
        "<p>Value at risk is the money a finding puts at risk, in the store's currency and in the base currency; "
        "drift value is oversell plus lost-sales value. Rank 1 is the highest commercial risk of the day.</p>"
        "</footer>")

    body = (
        head + clean + cards
        + f'<div class="grid2"><section><h2>Totals by finding type</h2>{type_table}</section>'
        + f"<section><h2>Totals by team</h2>{team_table}</section></div>"
        + f'<section class="long" style="margin-top:20px"><h2>Top {TOP_RISKS} risks</h2>{risk_table}</section>'
        + f'<div class="grid2 even"><section><h2>Drift value by store</h2>{store_table}</section>'
        + f'<section class="chart"><h2>Drift value, last {HISTORY_DAYS} days</h2>{chart}{history_table}</section>'
        + "</div>" + foot
    )
    return _page(title, body)


def _nice_step(vmax: float, ticks: int = 4) -> float:
    if vmax <= 0:
        return 1.0
    raw = vmax / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return m * mag
    return 10 * mag


def _axis_label(v: float) -> str:
    if abs(v) >= 1_000_000:
        return f"{v / 1_000_000:,.2f}".rstrip("0").rstrip(".") + "M"
    if abs(v) >= 10_000:
        return f"{v / 1_000:,.2f}".rstrip("0").rstrip(".") + "k"
    return f"{v:,.2f}".rstrip("0").rstrip(".")


def drift_chart_svg(history: pd.DataFrame, day: date, base_currency: str) -> str:
    """Inline SVG line chart of drift_value_base over the 30 days ending on ``day`` (gaps = days with no row)."""
    w, h = 560, 260
    left, right, top, bottom = 62, 24, 18, 44
    pw, ph = w - left - right, h - top - bottom
    first = day - timedelta(days=HISTORY_DAYS - 1)
    vals = history["drift_value_base"].astype(float)
    step = _nice_step(float(vals.max()) if len(vals) else 0.0)
    nticks = max(1, math.ceil((float(vals.max()) if len(vals) else 0.0) / step))
    ymax = step * nticks

    def x(d: date) -> float:
        return left + pw * (d - first).days / (HISTORY_DAYS - 1)

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    out = [f'<svg data-testid="drift-chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="chart-title" '
           f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">Drift value ({_e(base_currency)}) per '
           f"business day, {first.isoformat()} to {day.isoformat()}</title>"]
    for i in range(nticks + 1):
        v = step * i
        yy = y(v)
        out.append(f'<line class="grid" x1="{left}" x2="{w - right}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
                   f'<text class="axis" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{_e(_axis_label(v))}</text>')
    out.append(f'<text class="axis" x="12" y="{top + ph / 2:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {top + ph / 2:.1f})">Drift value ({_e(base_currency)})</text>')
    for i in range(HISTORY_DAYS):
        d = first + timedelta(days=i)
        xx = x(d)
        out.append(f'<line stroke="#b9c0c9" x1="{xx:.1f}" x2="{xx:.1f}" y1="{top + ph}" y2="{top + ph + 4}"/>')
        if (HISTORY_DAYS - 1 - i) % 7 == 0:
            out.append(f'<text class="axis" x="{xx:.1f}" y="{top + ph + 18}" text-anchor="middle">'
                       f'{d.strftime("%d %b")}</text>')
    out.append(f'<line stroke="#8a94a1" x1="{left}" x2="{w - right}" y1="{top + ph}" y2="{top + ph}"/>'
               f'<text class="axis" x="{left + pw / 2:.1f}" y="{h - 6}" text-anchor="middle">Business day</text>')

    pts = [(date.fromisoformat(r.business_date), float(r.drift_value_base), int(r.findings))
           for r in history.itertuples(index=False)]
    segment: list[str] = []
    prev: date | None = None
    for d, v, _ in pts:
        if prev is not None and (d - prev).days != 1 and len(segment) > 1:
            out.append(f'<polyline class="line" points="{" ".join(segment)}"/>')
        if prev is not None and (d - prev).days != 1:
            segment = []
        segment.append(f"{x(d):.1f},{y(v):.1f}")
        prev = d
    if len(segment) > 1:
        out.append(f'<polyline class="line" points="{" ".join(segment)}"/>')
    for d, v, n in pts:
        today = d == day
        tip = f"{d.isoformat()}: drift value {fmt_amount(v)} {base_currency} ({n:,} findings)"
        out.append(f'<circle class="pt{" today" if today else ""}" data-testid="chart-point" '
                   f'data-date="{d.isoformat()}" data-value="{v:.2f}" cx="{x(d):.1f}" cy="{y(v):.1f}" '
                   f'r="{4.5 if today else 3.5}"><title>{_e(tip)}</title></circle>')
        if today:
            out.append(f'<text class="vlabel" data-testid="chart-today-value" x="{x(d) - 8:.1f}" '
                       f'y="{max(y(v) - 10, 12):.1f}" text-anchor="end">{_e(fmt_amount(v))} '
                       f"{_e(base_currency)}</text>")
    out.append("</svg>")
    return "".join(out)


def render_month_html(month: str, roll: pd.DataFrame, *, base_currency: str, estate_name: str, generated_at: str,
                      linked_days: set[str] | None = None) -> str:
    """The month rollup page: headline, by day (linking to the daily pages), by finding type, by team."""
    base = str(base_currency)
    linked_days = linked_days or set()
    total_value = _cents(roll["value_at_risk_base"].sum()) if len(roll) else 0.0
    total_count = int(roll["count"].sum()) if len(roll) else 0
    days = roll.groupby("business_date", as_index=False, sort=True)[["count", "value_at_risk_base"]].sum()
    types = roll.groupby(["finding_type", "severity", "owner_team"], as_index=False, dropna=False)[
        ["count", "value_at_risk_base"]].sum().sort_values(["value_at_risk_base", "finding_type"],
                                                           ascending=[False, True], kind="mergesort")
    teams = roll.groupby("owner_team", as_index=False, dropna=False)[["count", "value_at_risk_base"]].sum(
    ).sort_values(["value_at_risk_base", "owner_team"], ascending=[False, True], kind="mergesort")

    estate = f" \u2014 {estate_name}" if estate_name else ""
    head = ('<header><p class="eyebrow">Monthly finance reconciliation \u00b7 NewStore POS vs Centra</p>'
            f'<h1>Reconciliation month <span data-testid="month">{_e(month)}</span>{_e(estate)}</h1>'
            f'<p class="sub">Values at risk in {_e(base)} (base currency) \u00b7 generated {_e(generated_at)}</p>'
            "</header>")
    cards = ('<div class="cards">'
             + _card("total-value-at-risk", "Value at risk in the month", fmt_money(total_value, base), total_value,
                     "primary")
             + _card("findings-count", "Findings", fmt_int(total_count), total_count)
             + _card("days-with-findings", "Days with findings", fmt_int(int((days["count"] > 0).sum())),
                     int((days["count"] > 0).sum()))
             + "</div>")

    def day_cell(d: str) -> str:
        return f'<a href="../{_e(d)}/{SUMMARY_HTML}">{_e(d)}</a>' if d in linked_days else _e(d)

    day_rows = "".join(
        f'<tr data-testid="day-row" data-date="{_e(r.business_date)}"><td>{day_cell(r.business_date)}</td>'
        f'<td class="num" data-testid="day-count">{fmt_int(r.count)}</td>'
        f'<td class="num" data-testid="day-value">{fmt_money(r.value_at_risk_base, base)}</td></tr>'
        for r in days.itertuples(index=False))
    type_rows = "".join(
        f'<tr data-testid="type-row" data-type="{_e(r.finding_type)}"><td>{_e(type_label(r.finding_type))}'
        f"<div><code>{_e(r.finding_type)}</code></div></td><td>{_badge(r.severity)}</td>"
        f'<td>{_e(team_label(r.owner_team))}</td><td class="num" data-testid="type-count">{fmt_int(r.count)}</td>'
        f'<td class="num" data-testid="type-value">{fmt_money(r.value_at_risk_base, base)}</td></tr>'
        for r in types.itertuples(index=False))
    team_rows = "".join(
        f'<tr data-testid="team-row" data-team="{_e(r.owner_team)}"><td>{_e(team_label(r.owner_team))}</td>'
        f'<td class="num" data-testid="team-count">{fmt_int(r.count)}</td>'
        f'<td class="num" data-testid="team-value">{fmt_money(r.value_at_risk_base, base)}</td></tr>'
        for r in teams.itertuples(index=False))
    empty = '<p class="empty">No findings this month.</p>'
    vh = f'<th class="num">Value at risk ({_e(base)})</th>'
    body = (
        head + cards
        + '<div class="grid2"><section><h2>By business day</h2>'
        + (f'<table><thead><tr><th>Business day</th><th class="num">Findings</th>{vh}</tr></thead>'
           f"<tbody>{day_rows}</tbody></table>" if len(days) else empty)
        + '<p class="detail">Days without findings are not listed.</p></section>'
        + "<section><h2>By team</h2>"
        + (f'<table><thead><tr><th>Owner team</th><th class="num">Findings</th>{vh}</tr></thead>'
           f"<tbody>{team_rows}</tbody></table>" if len(teams) else empty)
        + "</section></div>"
        + '<section style="margin-top:20px"><h2>By finding type</h2>'
        + (f'<table><thead><tr><th>Finding type</th><th>Severity</th><th>Owner team</th><th class="num">Findings'
           f"</th>{vh}</tr></thead><tbody>{type_rows}</tbody></table>" if len(types) else empty)
        + "</section>"
        + f'<footer><p>Rollup by day, finding type and team: <a href="{MONTH_TOTALS_CSV}" download>'
          f"{MONTH_TOTALS_CSV}</a>.</p></footer>"
    )
    return _page(f"Reconciliation {month}{estate}", body)
