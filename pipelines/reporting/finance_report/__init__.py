"""The finance reports of the daily reconciliation: one CSV per finding type and a self-contained HTML summary.

Pure rendering and file writing: pandas and the standard library only (no Dagster, no database, no network).
Modules: :mod:`.summary` (figures and ranking), :mod:`.details` (detail sentences, store and SKU names),
:mod:`.files` (the folders and files), :mod:`.html` / :mod:`.month` / :mod:`.chart` / :mod:`.style` (pages),
:mod:`.fmt` (money by currency, labels).

Reports folder (``PIPELINES_REPORTS_DIR``, default ``$PIPELINES_HOME/reports``)::

    <reports>/
      2026-01-15/                  one folder per business day (write_daily_report)
        summary.html               the page finance opens in a browser (inline CSS and SVG, no script,
                                   no external resource: it can be mailed or archived as one file)
        findings.csv               every finding of the day (always written, header only on a clean day)
        restatement.csv            a restated day only: what its latest restatement changed, one row a change
        kiosk.csv                  with Cloudshelf kiosks only: the kiosk section per store and currency
                                   (:mod:`.kiosk`, figures from pipelines.domain.kiosk.postings)
        stock_drift_oversell.csv   one CSV per finding type PRESENT that day, named <finding_type>.csv;
        store_sales_mismatch.csv   a type with no finding that day has NO file (a stale one left by an
        ...                        earlier run of the same day is deleted), so "no file" = "no finding"
      2026-01/                     one folder per month (write_month_report)
        summary.html               rollup by day, finding type (with owner team and playbook) and team,
                                   linking to the daily pages
        totals.csv                 business_date, finding_type, severity, owner_team, count, value_at_risk_base

Every findings CSV has the columns of :data:`FINDING_COLUMNS` in that order, then ``detail_text`` (the raw
``detail`` as the sentence the page shows) and ``report_rank`` (the page's rank, 1..n, unique); rows in
report_rank order; UTF-8 with a byte-order mark (so Excel reads accents right; pandas and
:func:`read_findings_csv` strip it), no index column, empty cell = no value.

Every file is written to a temporary file in the same folder and renamed over the target (``os.replace``),
so a reader never sees a half-written file; ``summary.html`` is written after the CSVs it links to.

Money: ``value_at_risk`` and the amounts are in the store's currency (shown with its code),
``value_at_risk_base`` in the estate's base currency. Every amount in an output (pages, CSVs, the headline of
:meth:`ReportSummary.headline`) is rounded to its currency's minor unit: 2 decimals, 0 for JPY, KRW, ISK,
CLP... and 3 for KWD, BHD... (:data:`MINOR_UNITS`). Totals sum ``value_at_risk_base`` (a missing value counts
as 0). The page shows a thousands separator and the currency code. The drift value of a store is its
oversell plus its lost-sales value (both >= 0).

Ranks: the report ranks every finding 1..n without ties: the engine's risk_rank (1 = highest commercial
risk), then value at risk in the base currency (desc), finding type, location, SKU, order ref, transaction.

Figures a test or a scraper reads carry ``data-testid`` attributes: headline cards ``total-value-at-risk``,
``findings-count``, ``error-findings``, ``oversell-value``, ``lost-sales-value``; rows ``type-row``
(``data-type``; on the month page with a ``type-playbook`` cell), ``team-row`` (``data-team``), ``store-row`` (``data-location``), ``risk-row``
(``data-rank``, the report_rank), with cells ``*-count`` / ``*-value`` / ``risk-detail`` / ``risk-location``
/ ``risk-item`` etc.; chart points ``chart-point`` (``data-date``, ``data-value``, and a ``<title>`` tooltip
with the value); ``no-discrepancies`` on a clean day; ``produced-under`` (``data-state`` passed / failed /
incomplete) with ``produced-check`` items (``data-check``, ``data-passed``) and ``evidence-note`` paragraphs;
``restated`` on a restated day (``data-restatement-no``) with ``restatement-change`` items (``data-change``
total / added / resolved / changed / sales, ``data-type``, ``data-value-before``, ``data-value-after``).
"""

from pipelines.domain.reconciliation.model import FINDING_COLUMNS
from pipelines.reporting.finance_report.chart import HISTORY_DAYS, drift_chart_svg
from pipelines.reporting.finance_report.details import detail_sentence, location_name, parse_detail, sku_name
from pipelines.reporting.finance_report.files import (
    CSV_COLUMNS,
    CSV_ENCODING,
    DETAIL_TEXT,
    HISTORY_COLUMNS,
    MONTH_COLUMNS,
    ReportFiles,
    csv_frame,
    csv_name,
    read_findings_csv,
    write_daily_report,
    write_month_report,
)
from pipelines.reporting.finance_report.fmt import (
    MINOR_UNITS,
    TEAM_LABELS,
    TYPE_LABELS,
    fmt_amount,
    fmt_int,
    fmt_money,
    fmt_signed,
    minor_units,
    round_money,
    team_label,
    type_label,
)
from pipelines.reporting.finance_report.html import ALL_FINDINGS_CSV, render_daily_html
from pipelines.reporting.finance_report.month import MONTH_TOTALS_CSV, SUMMARY_HTML, render_month_html
from pipelines.reporting.finance_report.summary import (
    LOST_SALES,
    OVERSELL,
    REPORT_RANK,
    STORE_COLUMNS,
    TEAM_COLUMNS,
    TOP_RISKS,
    TYPE_COLUMNS,
    ReportSummary,
    rank_findings,
    summarise,
    top_risks,
)

__all__ = [
    "ALL_FINDINGS_CSV", "CSV_COLUMNS", "CSV_ENCODING", "DETAIL_TEXT", "FINDING_COLUMNS", "HISTORY_COLUMNS",
    "HISTORY_DAYS", "LOST_SALES", "MINOR_UNITS", "MONTH_COLUMNS", "MONTH_TOTALS_CSV", "OVERSELL", "REPORT_RANK",
    "STORE_COLUMNS", "SUMMARY_HTML", "TEAM_COLUMNS", "TEAM_LABELS", "TOP_RISKS", "TYPE_COLUMNS", "TYPE_LABELS",
    "ReportFiles", "ReportSummary", "csv_frame", "csv_name", "detail_sentence", "drift_chart_svg", "fmt_amount",
    "fmt_int", "fmt_money", "fmt_signed", "location_name", "minor_units", "parse_detail", "rank_findings",
    "read_findings_csv", "render_daily_html", "render_month_html", "round_money", "sku_name", "summarise",
    "team_label", "top_risks", "type_label", "write_daily_report", "write_month_report",
]
