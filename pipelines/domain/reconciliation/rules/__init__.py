"""The reconciliation rules: one function per finding family, DataFrames in, findings (FINDING_COLUMNS) out.

Inputs are frames as read from the store-of-record tables (sql/migrations/0001_core.sql); only the columns
each rule names are read (object or category dtype for strings). Every rule:

- uses rows of ``business_date`` when the frame has that column (refund matching excepted, see
  :func:`returns_and_refunds`);
- maps rows to *stores* through the reference ``locations`` frame (``location_id``, else
  ``fulfillment_node_id``; Centra stock rows by ``warehouse_id``); rows of other places (the DC, unmapped
  nodes) are ignored;
- reports a difference only when it is strictly larger than the :class:`Tolerance`.

Large frames are never copied: a :class:`KeySpace` turns SKUs and stores into integer codes and row masks
once per frame (shared by all rules of one run when the engine passes one), and the rules work on
arrays with bincount/merge; Python loops only run over the (few) finding rows.

Modules: :mod:`.keyspace` (integer codes), :mod:`.frames` (array helpers, the findings-frame builder),
:mod:`.ranking`, and one per rule family: :mod:`.stock`, :mod:`.sync`, :mod:`.catalog` (SKU sets and
orphans), :mod:`.store_sales`, :mod:`.returns`, :mod:`.click_collect`, :mod:`.lines`, :mod:`.kiosk`, and
:mod:`.erp` (the ERP behind the commerce platform: orders, shipments, DC stock and mapping orphans, which read the
DC's stock and place-less orders; its frames are the day's orders and one row per SKU, so it works in plain pandas
and a dict look-up per active SKU). The public names are re-exported here (``rules.stock_drift`` ...).
"""

from pipelines.domain.reconciliation.model import DRIFT_TYPES
from pipelines.domain.reconciliation.rules.catalog import orphan_skus, pos_known_skus
from pipelines.domain.reconciliation.rules.click_collect import click_collect
from pipelines.domain.reconciliation.rules.completeness import missing_transactions
from pipelines.domain.reconciliation.rules.erp import (
    erp_mapping_orphans,
    erp_orders_vs_commerce,
    erp_shipments_not_in_commerce,
    erp_stock_drift,
)
from pipelines.domain.reconciliation.rules.keyspace import KeySpace
from pipelines.domain.reconciliation.rules.lines import sale_line_checks
from pipelines.domain.reconciliation.rules.ranking import rank_findings, sort_findings
from pipelines.domain.reconciliation.rules.returns import returns_and_refunds
from pipelines.domain.reconciliation.rules.stock import stock_drift
from pipelines.domain.reconciliation.rules.store_sales import derive_tax_rates, store_sales
from pipelines.domain.reconciliation.rules.sync import DEFAULT_EXCLUDED_CHANGE_PREFIXES, sync_failures

__all__ = [
    "DEFAULT_EXCLUDED_CHANGE_PREFIXES",
    "DRIFT_TYPES",
    "KeySpace",
    "click_collect",
    "derive_tax_rates",
    "erp_mapping_orphans",
    "erp_orders_vs_commerce",
    "erp_shipments_not_in_commerce",
    "erp_stock_drift",
    "missing_transactions",
    "orphan_skus",
    "pos_known_skus",
    "rank_findings",
    "returns_and_refunds",
    "sale_line_checks",
    "sort_findings",
    "stock_drift",
    "store_sales",
    "sync_failures",
]
