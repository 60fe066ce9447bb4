"""Finance reports of the daily reconciliation: CSV files and a self-contained HTML summary.

Pure rendering and file writing (pandas + the standard library): no Dagster, no database, no network.
See :mod:`pipelines.reporting.finance_report` for the layout of the reports folder.
"""

from pipelines.reporting.finance_report import (
    ALL_FINDINGS_CSV,
    HISTORY_COLUMNS,
    SUMMARY_HTML,
    TOP_RISKS,
    ReportFiles,
    ReportSummary,
    read_findings_csv,
    summarise,
    top_risks,
    write_daily_report,
    write_month_report,
)

__all__ = [
    "ALL_FINDINGS_CSV",
    "HISTORY_COLUMNS",
    "SUMMARY_HTML",
    "TOP_RISKS",
    "ReportFiles",
    "ReportSummary",
    "read_findings_csv",
    "summarise",
    "top_risks",
    "write_daily_report",
    "write_month_report",
]
