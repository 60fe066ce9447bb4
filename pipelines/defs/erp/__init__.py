"""The ERP behind the commerce platform (issue 15): the daily store sales journal and its read-back (journal.py), the
ERP's datasets the reconciliation reads (datasets.py: sales orders, shipments, stock, items), the ERP stock resync to the DC warehouse with its job and schedule (stock.py). `erp_definitions()` is merged into the
entry point."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.erp.datasets import erp_dataset_assets, erp_dataset_checks
from pipelines.defs.erp.journal import erp_journal_checks, erp_sales_journal, erp_store_sales
from pipelines.defs.erp.stock import erp_stock_resync_job, erp_stock_resync_schedule

assets = [erp_sales_journal, erp_store_sales, *erp_dataset_assets]


def erp_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=assets,
        asset_checks=[*erp_dataset_checks, *erp_journal_checks],
        jobs=[erp_stock_resync_job],
        schedules=[erp_stock_resync_schedule],
    )


__all__ = ["assets", "erp_definitions", "erp_sales_journal", "erp_stock_resync_job", "erp_stock_resync_schedule",
           "erp_store_sales"]
