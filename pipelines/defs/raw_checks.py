"""The checks on the raw datasets: schemas (pandera) plus mapping checks."""


import dagster as dg

from pipelines.dagster_lib import schemas
from pipelines.dagster_lib.checks import rows_check, schema_check

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN

# Each raw dataset's pandera schema, by the severity of a failure.
SCHEMAS = {
    ERROR: {"pos_sale_lines": schemas.PosSaleLines, "pos_stock_movements": schemas.PosStockMovements,
            "pos_pickups": schemas.PosPickups, "centra_orders": schemas.CentraOrders,
            "centra_order_lines": schemas.CentraOrderLines, "centra_returns": schemas.CentraReturns,
            "centra_return_lines": schemas.CentraReturnLines},
    WARN: {"pos_stock_snapshot": schemas.PosStock, "pos_catalog": schemas.PosCatalog,
           "centra_stock_snapshot": schemas.CentraStock, "centra_stock_changes": schemas.CentraStockChanges,
           "centra_catalog": schemas.CentraCatalog},
}

raw_checks = [
    *(schema_check(asset, schema, severity=severity)
      for severity, by_asset in SCHEMAS.items() for asset, schema in by_asset.items()),
    rows_check(
        "pos_sale_lines", "pos_sale_lines_mapped",
        "Every POS line maps to a known SKU and a known store (WARN: the rest become exception records).",
        "not sku_known or location_id.isnull()", severity=WARN,
        columns=["transaction_id", "fulfillment_node_id", "location_id", "sku", "quantity"],
        explain=lambda n: f"{n} line(s) with an unknown SKU or unmapped store" if n else "all lines mapped",
    ),
]
