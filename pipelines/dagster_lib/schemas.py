"""pandera schemas of the raw datasets and the reconciliation findings, validated by partitioned asset checks."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from pipelines.domain.reconciliation.model import FINDING_TYPES

_MONEY = {"ge": -1e9, "le": 1e9}


class PosSaleLines(pa.DataFrameModel):
    transaction_id: Series[str] = pa.Field(nullable=False)
    line_no: Series[int] = pa.Field(ge=1)
    kind: Series[str] = pa.Field(isin=["sale", "return"])
    fulfillment_node_id: Series[str] = pa.Field(str_length={"min_value": 1})
    sku: Series[str] = pa.Field(str_length={"min_value": 1})
    quantity: Series[int] = pa.Field(gt=0)
    unit_price: Series[float] = pa.Field(ge=0)
    discount: Series[float] = pa.Field(ge=0)
    tax: Series[float] = pa.Field(ge=0)
    net_amount: Series[float] = pa.Field(**_MONEY)
    currency: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")
    event_time: Series[str] = pa.Field(str_matches=r"^\d{4}-\d\d-\d\dT")

    class Config:
        coerce = True
        unique = ["kind", "transaction_id", "line_no"]

    @pa.dataframe_check(error="line amounts do not add up: unit_price*quantity - discount - tax != net_amount")
    def amounts_add_up(cls, df):  # noqa: N805
        sale = df["kind"] == "sale"
        diff = (df["unit_price"] * df["quantity"] - df["discount"] - df["tax"] - df["net_amount"]).abs()
        return ~sale | (diff <= 0.05 * df["quantity"].clip(lower=1))


class PosStock(pa.DataFrameModel):
    fulfillment_node_id: Series[str] = pa.Field(str_length={"min_value": 1})
    sku: Series[str] = pa.Field(str_length={"min_value": 1})
    on_hand: Series[int]
    atp: Series[int]
    allocations: Series[int] = pa.Field(ge=0)
    safety_stock: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True
        unique = ["fulfillment_node_id", "sku"]


class PosCatalog(pa.DataFrameModel):
    sku: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    product_id: Series[str]
    locations: Series[int] = pa.Field(ge=0)

    class Config:
        coerce = True


class CentraOrders(pa.DataFrameModel):
    order_id: Series[str] = pa.Field(unique=True)
    order_number: Series[int] = pa.Field(unique=True, ge=1)
    status: Series[str] = pa.Field(isin=["PENDING", "CONFIRMED", "PROCESSING", "SHIPPED", "ARCHIVED", "CANCELLED"])
    currency: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")
    grand_total: Series[float] = pa.Field(ge=0)
    tax_total: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True


class CentraOrderLines(pa.DataFrameModel):
    order_number: Series[int] = pa.Field(ge=1)
    line_id: Series[str]
    sku: Series[str] = pa.Field(str_length={"min_value": 1})
    quantity: Series[int] = pa.Field(ge=0)
    unit_price: Series[float] = pa.Field(ge=0)
    tax_percent: Series[float] = pa.Field(ge=0, le=100)
    line_value: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True
        unique = ["order_number", "line_id"]


class CentraReturns(pa.DataFrameModel):
    return_id: Series[str] = pa.Field(unique=True)
    order_number: Series[int] = pa.Field(ge=1)
    grand_total: Series[float] = pa.Field(ge=0)
    refund_amount: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True

    @pa.dataframe_check(error="refund exceeds the return's grand total")
    def refund_within_return(cls, df):  # noqa: N805
        return df["refund_amount"] <= df["grand_total"] + 0.01


class CentraReturnLines(pa.DataFrameModel):
    return_id: Series[str]
    line_id: Series[str]
    sku: Series[str]
    quantity: Series[int] = pa.Field(gt=0)
    line_value: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True
        unique = ["return_id", "line_id"]


class CentraStock(pa.DataFrameModel):
    warehouse_id: Series[int]
    size_id: Series[int]
    sku: Series[str]
    physical: Series[int] = pa.Field(ge=0)
    allocated: Series[int] = pa.Field(ge=0)
    free_to_allocate: Series[int]

    class Config:
        coerce = True
        unique = ["warehouse_id", "size_id"]

    @pa.dataframe_check(error="physical != free_to_allocate + allocated")
    def physical_identity(cls, df):  # noqa: N805
        return df["physical"] == df["free_to_allocate"] + df["allocated"]


class CentraCatalog(pa.DataFrameModel):
    size_id: Series[int] = pa.Field(unique=True)
    sku: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    product_number: Series[str]
    is_active: Series[bool]

    class Config:
        coerce = True


class PosStockMovements(pa.DataFrameModel):
    movement_key: Series[str] = pa.Field(unique=True)
    event_name: Series[str]
    event_time: Series[str] = pa.Field(str_matches=r"^\d{4}-\d\d-\d\dT")
    fulfillment_node_id: Series[str] = pa.Field(str_length={"min_value": 1})
    sku: Series[str] = pa.Field(str_length={"min_value": 1})
    movement_type: Series[str] = pa.Field(isin=["sale", "return", "receipt", "adjustment", "count", "shipment"])
    quantity: Series[int]

    class Config:
        coerce = True

    @pa.dataframe_check(error="sales and shipments must be negative deltas, counts non-negative")
    def signs(cls, df):  # noqa: N805
        return ~(df["movement_type"].isin(["sale", "shipment"]) & (df["quantity"] >= 0)) & \
            ~((df["movement_type"] == "count") & (df["quantity"] < 0))


class CentraStockChanges(pa.DataFrameModel):
    change_id: Series[str]
    warehouse_id: Series[int]
    sku: Series[str] = pa.Field(str_length={"min_value": 1})
    quantity: Series[int]
    description: Series[str]

    class Config:
        coerce = True


class PosPickups(pa.DataFrameModel):
    fulfillment_request_id: Series[str]
    order_id: Series[str]
    order_number: Series[str] = pa.Field(nullable=True)
    fulfillment_node_id: Series[str] = pa.Field(str_length={"min_value": 1})
    items: Series[int] = pa.Field(gt=0)
    completed_at: Series[str] = pa.Field(str_matches=r"^\d{4}-\d\d-\d\dT")

    class Config:
        coerce = True
        unique = ["fulfillment_request_id", "order_id"]


_TEAMS = ["finance", "retail_operations", "ecommerce", "integration"]


class Findings(pa.DataFrameModel):
    """The daily reconciliation's findings (`reconciliation_findings`)."""


    finding_type: Series[str] = pa.Field(isin=sorted(FINDING_TYPES))
    severity: Series[str] = pa.Field(isin=["ERROR", "WARN"])
    owner_team: Series[str] = pa.Field(isin=_TEAMS)
    value_at_risk: Series[float] = pa.Field(ge=0)
    value_at_risk_base: Series[float] = pa.Field(ge=0)
    risk_rank: Series[int] = pa.Field(ge=1)
    playbook: Series[str] = pa.Field(str_length={"min_value": 10})

    class Config:
        coerce = True


class DailyTotals(pa.DataFrameModel):
    """The engine's totals of a day (`reconciliation_daily_totals`): one row per finding type found."""

    finding_type: Series[str] = pa.Field(isin=sorted(FINDING_TYPES), unique=True)
    severity: Series[str] = pa.Field(isin=["ERROR", "WARN"])
    owner_team: Series[str] = pa.Field(isin=_TEAMS)
    findings: Series[int] = pa.Field(ge=1)
    value_at_risk_base: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True


class DriftByStore(pa.DataFrameModel):
    """Stock drift per store of a day (`reconciliation_drift_by_store`): counts and values are never negative."""

    location_id: Series[str] = pa.Field(str_length={"min_value": 1}, unique=True)
    currency: Series[str] = pa.Field(str_matches=r"^[A-Z]{3}$")
    oversell_skus: Series[int] = pa.Field(ge=0)
    oversell_units: Series[int] = pa.Field(ge=0)
    oversell_value: Series[float] = pa.Field(ge=0)
    oversell_value_base: Series[float] = pa.Field(ge=0)
    lost_sales_skus: Series[int] = pa.Field(ge=0)
    lost_sales_units: Series[int] = pa.Field(ge=0)
    lost_sales_value: Series[float] = pa.Field(ge=0)
    lost_sales_value_base: Series[float] = pa.Field(ge=0)
    value_at_risk_base: Series[float] = pa.Field(ge=0)

    class Config:
        coerce = True


class EvidenceNotes(pa.DataFrameModel):
    """What a day's reconciliation could not judge (`reconciliation_evidence`): numbered sentences."""

    note_no: Series[int] = pa.Field(ge=1, unique=True)
    note: Series[str] = pa.Field(str_length={"min_value": 1})

    class Config:
        coerce = True


class SalesTotals(pa.DataFrameModel):
    """The store sales and returns a day's reconciliation was computed from (`reconciliation_sales_totals`)."""

    kind: Series[str] = pa.Field(isin=["sale", "return"])
    lines: Series[int] = pa.Field(ge=0)
    units: Series[int] = pa.Field(ge=0)
    net_amount: Series[float] = pa.Field(nullable=False)

    class Config:
        coerce = True


class Restatements(pa.DataFrameModel):
    """What each restatement of a day changed (`reconciliation_restatements`)."""

    restatement_no: Series[int] = pa.Field(ge=1)
    change: Series[str] = pa.Field(isin=["total", "added", "resolved", "changed", "sales"])
    count_before: Series[int] = pa.Field(ge=0)
    count_after: Series[int] = pa.Field(ge=0)
    value_before: Series[float] = pa.Field(nullable=False)
    value_after: Series[float] = pa.Field(nullable=False)

    class Config:
        coerce = True
