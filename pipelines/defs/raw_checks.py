"""The checks on the raw datasets: schemas (pandera) plus mapping checks."""


import dagster as dg

from pipelines.dagster_lib import schemas
from pipelines.dagster_lib.checks import rows_check, schema_check

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN

raw_checks = [
    schema_check("pos_sale_lines", schemas.PosSaleLines, severity=ERROR),
    schema_check("pos_stock_movements", schemas.PosStockMovements, severity=ERROR),
    schema_check("pos_stock_snapshot", schemas.PosStock, severity=WARN),
    schema_check("pos_pickups", schemas.PosPickups, severity=ERROR),
    schema_check("pos_catalog", schemas.PosCatalog, severity=WARN),
    schema_check("centra_orders", schemas.CentraOrders, severity=ERROR),
    schema_check("centra_order_lines", schemas.CentraOrderLines, severity=ERROR),
    schema_check("centra_returns", schemas.CentraReturns, severity=ERROR),
    schema_check("centra_return_lines", schemas.CentraReturnLines, severity=ERROR),
    schema_check("centra_stock_snapshot", schemas.CentraStock, severity=WARN),
    schema_check("centra_stock_changes", schemas.CentraStockChanges, severity=WARN),
    schema_check("centra_catalog", schemas.CentraCatalog, severity=WARN),
    rows_check(
        "pos_sale_lines", "pos_sale_lines_mapped",
        "Every POS line maps to a known SKU and a known store (WARN: the rest become exception records).",
        "not sku_known or location_id.isnull()", severity=WARN,
        columns=["transaction_id", "fulfillment_node_id", "location_id", "sku", "quantity"],
        explain=lambda n: f"{n} line(s) with an unknown SKU or unmapped store" if n else "all lines mapped",
    ),
]
