"""Writing the report folders: the CSVs, the daily summary page and the month rollup, each file atomically."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipelines.domain.reconciliation.model import FINDING_COLUMNS, FINDING_DTYPES, FINDING_TYPES
from pipelines.domain.reconciliation.restatement import CHANGE_COLUMNS
from pipelines.reporting.finance_report.chart import HISTORY_DAYS
from pipelines.reporting.finance_report.details import detail_sentence
from pipelines.reporting.finance_report.fmt import money_series, round_money, round_money_series
from pipelines.reporting.finance_report.html import ALL_FINDINGS_CSV, render_daily_html
from pipelines.reporting.finance_report.kiosk import KIOSK_CSV
from pipelines.reporting.finance_report.kiosk import csv_rows as kiosk_csv_rows
from pipelines.reporting.finance_report.month import MONTH_TOTALS_CSV, SUMMARY_HTML, render_month_html
from pipelines.reporting.finance_report.summary import (
    REPORT_RANK,
    ReportSummary,
    check_findings,
    rank_findings,
    summarise,
)

if TYPE_CHECKING:
    from pipelines.estate import Estate

CSV_ENCODING = "utf-8-sig"
DETAIL_TEXT = "detail_text"
#: columns of every findings CSV: the contract's columns, the detail as a sentence, the report's rank.
CSV_COLUMNS = [*FINDING_COLUMNS, DETAIL_TEXT, REPORT_RANK]
#: columns of the ``history`` frame of :func:`write_daily_report` (one row per business day).
HISTORY_COLUMNS = ["business_date", "drift_value_base", "value_at_risk_base", "findings"]
MONTH_COLUMNS = ["business_date", "finding_type", "severity", "owner_team", "count", "value_at_risk_base"]
#: money columns in the store's currency (``currency``); value_at_risk_base is in the base currency.
_STORE_MONEY = ["amount_pos", "amount_commerce", "amount_diff", "value_at_risk"]

#: the day's latest restatement (written only for a restated day): what changed, one row a change.
RESTATEMENT_CSV = "restatement.csv"
RESTATEMENT_COLUMNS = ["restatement_no", "restated_at", "reason", *CHANGE_COLUMNS]

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


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


def csv_frame(findings: pd.DataFrame, base_currency: str | None = None) -> pd.DataFrame:
    """The rows of a findings CSV (CSV_COLUMNS) in report rank order: money rounded to its currency's minor
    unit (store currency per row, base currency for value_at_risk_base), the detail as a sentence too."""
    f = rank_findings(findings)
    ccy = f["currency"].astype("string")
    for c in _STORE_MONEY:
        col = pd.to_numeric(f[c], errors="coerce").astype("float64")
        for cur in pd.unique(ccy.dropna()).tolist() + [None]:
            mask = ccy.isna() if cur is None else (ccy == cur).fillna(False)
            col[mask.to_numpy()] = round_money_series(col[mask.to_numpy()], cur)
        f[c] = col
    f["value_at_risk_base"] = round_money_series(f["value_at_risk_base"], base_currency)
    f[DETAIL_TEXT] = [detail_sentence(r) for r in f.itertuples(index=False)]
    return f[CSV_COLUMNS]


def read_findings_csv(path: Path) -> pd.DataFrame:
    """Read a findings CSV written here back into the contract's dtypes (empty text cell -> None); the extra
    columns (detail_text, report_rank) are dropped."""
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
    for c in ("drift_value_base", "value_at_risk_base"):
        h[c] = money_series(h[c]).map(lambda v: round_money(v, summary.base_currency))
    h["findings"] = pd.to_numeric(h["findings"], errors="coerce").fillna(0).astype("int64")
    return h.sort_values("business_date").reset_index(drop=True)[cols]


def write_daily_report(out_dir: Path, business_date: str, findings: pd.DataFrame, history: pd.DataFrame | None,
                       *, totals: pd.DataFrame | None = None, base_currency: str = "EUR", estate_name: str = "",
                       generated_at: str | None = None, estate: Estate | None = None,
                       produced_under: Sequence[tuple[str, bool, str]] = (),
                       evidence_notes: Sequence[str] = (), restatement: pd.DataFrame | None = None,
                       kiosk: pd.DataFrame | None = None, posting_mode: str | None = None) -> ReportFiles:
    """Write ``<out_dir>/<business_date>/``: summary.html, findings.csv and ``<finding_type>.csv`` per type present.

    history: HISTORY_COLUMNS for up to the last 30 days including this one; rows outside the 30 days ending
    on business_date are ignored and this day's row is replaced by the figures of ``findings`` (so the
    chart and the cards always agree). A known finding type absent today gets no CSV; a stale CSV of it
    from an earlier run of the same day is removed. Each file is replaced atomically; summary.html last.
    totals: the reconciliation engine's totals of ``findings`` (the day's ``reconciliation_daily_totals``),
    which the page's totals and headline show (:func:`summarise`).
    estate: names stores and SKUs on the page ("Stockholm flagship (ST-SE01)"); without it, ids alone.
    produced_under: (check name, passed, one-line detail) of the checks the report was produced under, and
    evidence_notes: sentences on evidence the day's findings could not judge; both shown at the top.
    restatement: the rows of the day's latest restatement (`reconciliation_restatements`): the page says the
    day was restated, with its changes, and ``restatement.csv`` holds them (removed when not given).
    kiosk, posting_mode: the day's kiosk section (`pipelines.domain.kiosk.postings.day_summary`) in that posting
    mode: shown on the page and written as ``kiosk.csv`` (removed when not given).
    """
    day = _validate_date(business_date)
    f = check_findings(findings)
    summary = summarise(f, totals=totals, base_currency=base_currency)
    folder = Path(out_dir) / business_date
    folder.mkdir(parents=True, exist_ok=True)

    rows = csv_frame(f, base_currency)
    csv_by_type: dict[str, Path] = {}
    for ftype in sorted(pd.unique(rows["finding_type"].dropna()).tolist()):
        path = folder / csv_name(ftype)
        _atomic_write(path, _csv_bytes(rows[rows["finding_type"] == ftype]))
        csv_by_type[ftype] = path
    findings_csv = folder / ALL_FINDINGS_CSV
    _atomic_write(findings_csv, _csv_bytes(rows))
    restatement_csv = folder / RESTATEMENT_CSV
    if restatement is not None and len(restatement):
        _atomic_write(restatement_csv, _csv_bytes(restatement[[c for c in RESTATEMENT_COLUMNS
                                                               if c in restatement.columns]]))
    else:
        restatement_csv.unlink(missing_ok=True)
    kiosk_csv = folder / KIOSK_CSV
    if kiosk is not None and posting_mode is not None:
        _atomic_write(kiosk_csv, _csv_bytes(kiosk_csv_rows(kiosk)))
    else:
        kiosk_csv.unlink(missing_ok=True)

    page = render_daily_html(business_date, f, summary, _history_window(history, day, summary),
                             base_currency=base_currency, generated_at=generated_at or _now(),
                             estate_name=estate_name or (estate.name if estate is not None else ""),
                             csv_names={t: p.name for t, p in csv_by_type.items()}, estate=estate,
                             produced_under=produced_under, evidence_notes=evidence_notes,
                             restatement=restatement, kiosk=kiosk, posting_mode=posting_mode)
    summary_html = folder / SUMMARY_HTML
    _atomic_write(summary_html, page.encode("utf-8"))

    written = {p.name for p in csv_by_type.values()}
    for ftype in FINDING_TYPES:
        stale = folder / csv_name(ftype)
        if stale.name not in written:
            stale.unlink(missing_ok=True)
    return ReportFiles(folder, summary_html, findings_csv, csv_by_type, summary)


def _month_rows(daily_totals: pd.DataFrame, month: str, base_currency: str) -> pd.DataFrame:
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
    t["value_at_risk_base"] = money_series(t["value_at_risk_base"])
    keys = ["business_date", "finding_type", "severity", "owner_team"]
    roll = t.groupby(keys, as_index=False, sort=True, dropna=False)[["count", "value_at_risk_base"]].sum()
    roll["value_at_risk_base"] = roll["value_at_risk_base"].map(lambda v: round_money(v, base_currency))
    return roll[MONTH_COLUMNS]


def write_month_report(out_dir: Path, month: str, daily_totals: pd.DataFrame, *, base_currency: str = "EUR",
                       estate_name: str = "", generated_at: str | None = None) -> Path:
    """Write ``<out_dir>/<month>/summary.html`` and ``totals.csv``: the month rolled up by day, type and team.

    daily_totals: business_date, finding_type, owner_team, count (or ``findings``), value_at_risk_base and
    optionally severity, e.g. the totals_by_type of each day; rows outside ``month`` (YYYY-MM) are ignored.
    Returns the HTML path.
    """
    if not isinstance(month, str) or not _MONTH_RE.match(month):
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    roll = _month_rows(daily_totals, month, base_currency)
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
