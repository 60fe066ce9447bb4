"""Every pandera schema behind an asset check catches a corrupted row.

For each schema a valid three-row frame (shaped like the stored partition) passes `validate_frame`; then one
row (index 1) is corrupted in a way the schema's author meant to forbid, and the check must fail with that
row among the failing rows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import pytest

from pipelines.dagster_lib import schemas
from pipelines.dagster_lib.checks import validate_frame
from pipelines.dagster_lib.schemas import Findings
from pipelines.domain.reconciliation.model import FINDING_TYPES

BAD = 1  # the corrupted row's index
T = "2026-11-19T10:15:00.000000Z"


def _rows(n: int, make: Callable[[int], dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([make(i) for i in range(n)])


def _finding(i: int) -> dict[str, Any]:
    t = FINDING_TYPES["refund_amount_mismatch"]
    return {"business_date": "2026-11-19", "finding_type": t.name, "severity": t.severity,
            "owner_team": t.owner_team, "location_id": "ST-SE01", "sku": f"P100{i}BLKS", "order_ref": str(100 + i),
            "quantity_diff": None, "amount_diff": -10.0, "currency": "SEK", "value_at_risk": 10.0 * (i + 1),
            "value_at_risk_base": 0.87 * (i + 1), "risk_rank": i + 1, "playbook": t.playbook}


VALID: dict[type[pa.DataFrameModel], Callable[[], pd.DataFrame]] = {
    schemas.PosSaleLines: lambda: _rows(3, lambda i: {
        "transaction_id": f"T{i}", "line_no": 1, "kind": "sale", "fulfillment_node_id": "SE01",
        "location_id": "ST-SE01", "sku": f"P100{i}BLKS", "sku_known": True, "quantity": 2, "unit_price": 100.0,
        "discount": 10.0, "tax": 38.0, "net_amount": 152.0, "currency": "SEK", "event_time": T}),
    schemas.PosStockMovements: lambda: _rows(3, lambda i: {
        "movement_key": f"m{i}", "event_name": "order.opened", "event_time": T, "fulfillment_node_id": "SE01",
        "sku": f"P100{i}BLKS", "movement_type": ["sale", "receipt", "count"][i], "quantity": [-1, 4, 7][i]}),
    schemas.PosStock: lambda: _rows(3, lambda i: {
        "snapshot_at": T, "fulfillment_node_id": "SE01", "location_id": "ST-SE01", "sku": f"P100{i}BLKS",
        "on_hand": 5, "atp": 4, "allocations": 1, "safety_stock": 0}),
    schemas.PosPickups: lambda: _rows(3, lambda i: {
        "fulfillment_request_id": f"fr{i}", "order_id": f"o{i}", "order_number": str(2000 + i),
        "fulfillment_node_id": "SE01", "location_id": "ST-SE01", "items": 1, "completed_at": T}),
    schemas.PosCatalog: lambda: _rows(3, lambda i: {
        "sku": f"P100{i}BLKS", "product_id": f"P100{i}BLKS", "locations": 2, "on_hand_total": 9}),
    schemas.CentraOrders: lambda: _rows(3, lambda i: {
        "order_id": f"o{i}", "order_number": 2000 + i, "status": "CONFIRMED", "currency": "EUR",
        "grand_total": 119.0, "tax_total": 19.0}),
    schemas.CentraOrderLines: lambda: _rows(3, lambda i: {
        "order_number": 2000 + i, "line_id": "1", "sku": f"P100{i}BLKS", "quantity": 1, "unit_price": 119.0,
        "tax_percent": 19.0, "line_value": 119.0}),
    schemas.CentraReturns: lambda: _rows(3, lambda i: {
        "return_id": f"r{i}", "order_number": 2000 + i, "grand_total": 119.0, "refund_amount": 119.0}),
    schemas.CentraReturnLines: lambda: _rows(3, lambda i: {
        "return_id": f"r{i}", "line_id": "1", "sku": f"P100{i}BLKS", "quantity": 1, "line_value": 119.0}),
    schemas.CentraStock: lambda: _rows(3, lambda i: {
        "warehouse_id": 2, "size_id": i + 1, "sku": f"P100{i}BLKS", "physical": 5, "allocated": 2,
        "free_to_allocate": 3}),
    schemas.CentraStockChanges: lambda: _rows(3, lambda i: {
        "change_id": f"c{i}", "warehouse_id": 2, "sku": f"P100{i}BLKS", "quantity": -1,
        "description": "pos-sync batch 7"}),
    schemas.CentraCatalog: lambda: _rows(3, lambda i: {
        "size_id": i + 1, "sku": f"P100{i}BLKS", "product_number": "P1000", "is_active": True}),
    Findings: lambda: _rows(3, _finding),
    schemas.DailyTotals: lambda: _rows(3, lambda i: {
        "finding_type": sorted(FINDING_TYPES)[i], "severity": "ERROR", "owner_team": "finance", "findings": i + 1,
        "value_at_risk_base": 12.5 * i}),
    schemas.DriftByStore: lambda: _rows(3, lambda i: {
        "location_id": f"ST-SE0{i}", "currency": "SEK", "oversell_skus": i, "oversell_units": 2 * i,
        "oversell_value": 99.0 * i, "oversell_value_base": 8.6 * i, "lost_sales_skus": 1, "lost_sales_units": 1,
        "lost_sales_value": 49.0, "lost_sales_value_base": 4.3, "value_at_risk_base": 8.6 * i + 4.3}),
    schemas.EvidenceNotes: lambda: _rows(3, lambda i: {"note_no": i + 1, "note": f"return {i} was not judged"}),
    schemas.SalesTotals: lambda: _rows(3, lambda i: {"kind": ("sale", "return")[i % 2], "currency": "SEK",
                                                     "lines": 10 * i, "units": 12 * i, "net_amount": 99.5 * i}),
    schemas.Restatements: lambda: _rows(3, lambda i: {
        "restatement_no": 1, "change": ("total", "added", "sales")[i], "count_before": i, "count_after": i + 1,
        "value_before": 10.0 * i, "value_after": -5.0 if i == 2 else 12.0 * i}),
}


def _set(column: str, value: Any) -> Callable[[pd.DataFrame], None]:
    def corrupt(df: pd.DataFrame) -> None:
        if isinstance(value, str) and df[column].dtype != object:
            df[column] = df[column].astype(object)
        df.loc[BAD, column] = value
    return corrupt


def _copy_of_row0(*columns: str) -> Callable[[pd.DataFrame], None]:
    """Duplicate row 0's key in the corrupted row (a uniqueness the schema demands)."""
    def corrupt(df: pd.DataFrame) -> None:
        for c in columns:
            df.loc[BAD, c] = df.loc[0, c]
    return corrupt


def _also(*steps: Callable[[pd.DataFrame], None]) -> Callable[[pd.DataFrame], None]:
    def corrupt(df: pd.DataFrame) -> None:
        for step in steps:
            step(df)
    return corrupt


CORRUPTIONS: list[tuple[type[pa.DataFrameModel], str, Callable[[pd.DataFrame], None]]] = [
    (schemas.PosSaleLines, "negative quantity", _set("quantity", -5)),
    (schemas.PosSaleLines, "lower-case currency", _set("currency", "sek")),
    (schemas.PosSaleLines, "unknown kind", _set("kind", "exchange")),
    (schemas.PosSaleLines, "null transaction id", _set("transaction_id", None)),
    (schemas.PosSaleLines, "line number 0", _set("line_no", 0)),
    (schemas.PosSaleLines, "negative discount", _set("discount", -10.0)),
    (schemas.PosSaleLines, "amounts do not add up", _set("net_amount", 999.0)),
    (schemas.PosSaleLines, "duplicate line", _copy_of_row0("transaction_id")),
    (schemas.PosSaleLines, "event time not ISO", _set("event_time", "19/11/2026 10:15")),
    (schemas.PosSaleLines, "empty SKU", _set("sku", "")),
    (schemas.PosStockMovements, "sale as a positive delta", _also(_set("movement_type", "sale"), _set("quantity", 3))),
    (schemas.PosStockMovements, "shipment as a positive delta",
     _also(_set("movement_type", "shipment"), _set("quantity", 1))),
    (schemas.PosStockMovements, "negative count", _also(_set("movement_type", "count"), _set("quantity", -2))),
    (schemas.PosStockMovements, "unknown movement type", _set("movement_type", "theft")),
    (schemas.PosStockMovements, "duplicate movement key", _copy_of_row0("movement_key")),
    (schemas.PosStock, "negative allocations", _set("allocations", -1)),
    (schemas.PosStock, "negative safety stock", _set("safety_stock", -2)),
    (schemas.PosStock, "duplicate (node, SKU)", _copy_of_row0("sku")),
    (schemas.PosStock, "non-numeric on hand", _set("on_hand", "lots")),
    (schemas.PosPickups, "no items", _set("items", 0)),
    (schemas.PosPickups, "completion time not ISO", _set("completed_at", "yesterday")),
    (schemas.PosPickups, "empty node", _set("fulfillment_node_id", "")),
    (schemas.PosPickups, "duplicate request", _copy_of_row0("fulfillment_request_id", "order_id")),
    (schemas.PosCatalog, "duplicate SKU", _copy_of_row0("sku")),
    (schemas.PosCatalog, "negative locations", _set("locations", -1)),
    (schemas.CentraOrders, "unknown status", _set("status", "LOST")),
    (schemas.CentraOrders, "currency not ISO", _set("currency", "EURO")),
    (schemas.CentraOrders, "negative total", _set("grand_total", -119.0)),
    (schemas.CentraOrders, "order number 0", _set("order_number", 0)),
    (schemas.CentraOrders, "duplicate order id", _copy_of_row0("order_id")),
    (schemas.CentraOrderLines, "tax above 100 %", _set("tax_percent", 250.0)),
    (schemas.CentraOrderLines, "negative quantity", _set("quantity", -1)),
    (schemas.CentraOrderLines, "negative price", _set("unit_price", -1.0)),
    (schemas.CentraOrderLines, "duplicate line", _copy_of_row0("order_number")),
    (schemas.CentraReturns, "refund above the return", _set("refund_amount", 500.0)),
    (schemas.CentraReturns, "negative refund", _set("refund_amount", -5.0)),
    (schemas.CentraReturns, "duplicate return id", _copy_of_row0("return_id")),
    (schemas.CentraReturnLines, "zero quantity", _set("quantity", 0)),
    (schemas.CentraReturnLines, "negative value", _set("line_value", -119.0)),
    (schemas.CentraReturnLines, "duplicate line", _copy_of_row0("return_id")),
    (schemas.CentraStock, "physical != free + allocated", _set("physical", 9)),
    (schemas.CentraStock, "negative allocated", _also(_set("allocated", -1), _set("free_to_allocate", 6))),
    (schemas.CentraStock, "duplicate (warehouse, size)", _copy_of_row0("size_id")),
    (schemas.CentraStockChanges, "empty SKU", _set("sku", "")),
    (schemas.CentraStockChanges, "non-numeric warehouse", _set("warehouse_id", "DC")),
    (schemas.CentraCatalog, "duplicate size id", _copy_of_row0("size_id")),
    (schemas.CentraCatalog, "duplicate SKU", _copy_of_row0("sku")),
    (schemas.CentraCatalog, "empty SKU", _set("sku", "")),
    (Findings, "unknown finding type", _set("finding_type", "vibes_off")),
    (Findings, "unknown severity", _set("severity", "INFO")),
    (Findings, "unknown team", _set("owner_team", "nobody")),
    (Findings, "negative value at risk", _set("value_at_risk", -10.0)),
    (Findings, "negative base value", _set("value_at_risk_base", -0.87)),
    (Findings, "rank 0", _set("risk_rank", 0)),
    (Findings, "no playbook", _set("playbook", "call")),
    (schemas.DailyTotals, "a type twice", _copy_of_row0("finding_type")),
    (schemas.DailyTotals, "no findings", _set("findings", 0)),
    (schemas.DailyTotals, "unknown team", _set("owner_team", "nobody")),
    (schemas.DailyTotals, "negative value", _set("value_at_risk_base", -1.0)),
    (schemas.DriftByStore, "a store twice", _copy_of_row0("location_id")),
    (schemas.DriftByStore, "negative units", _set("lost_sales_units", -1)),
    (schemas.DriftByStore, "currency not ISO", _set("currency", "kr")),
    (schemas.EvidenceNotes, "note number 0", _set("note_no", 0)),
    (schemas.EvidenceNotes, "a number twice", _copy_of_row0("note_no")),
    (schemas.EvidenceNotes, "empty note", _set("note", "")),
    (schemas.SalesTotals, "unknown kind", _set("kind", "refund")),
    (schemas.SalesTotals, "negative units", _set("units", -1)),
    (schemas.Restatements, "restatement number 0", _set("restatement_no", 0)),
    (schemas.Restatements, "unknown change", _set("change", "moved")),
    (schemas.Restatements, "negative count", _set("count_after", -1)),
]


def test_every_check_schema_has_a_valid_frame_and_a_corruption() -> None:
    models = {m for _, m in inspect.getmembers(schemas, inspect.isclass)
              if issubclass(m, pa.DataFrameModel) and m is not pa.DataFrameModel} | {Findings}
    assert set(VALID) == models
    assert {schema for schema, _, _ in CORRUPTIONS} == models


@pytest.mark.parametrize("schema", list(VALID), ids=lambda s: s.__name__)
def test_valid_frame_passes(schema: type[pa.DataFrameModel]) -> None:
    result = validate_frame(VALID[schema](), schema, dg.AssetCheckSeverity.ERROR)
    assert result.passed, result.metadata
    assert result.metadata["rows"].value == 3 and result.metadata["failures"].value == 0


@pytest.mark.parametrize(("schema", "what", "corrupt"), CORRUPTIONS,
                         ids=[f"{s.__name__}-{w}" for s, w, _ in CORRUPTIONS])
def test_corrupted_row_fails_with_its_index(schema: type[pa.DataFrameModel], what: str,
                                            corrupt: Callable[[pd.DataFrame], None]) -> None:
    df = VALID[schema]()
    assert validate_frame(df, schema, dg.AssetCheckSeverity.WARN).passed
    corrupt(df)
    result = validate_frame(df, schema, dg.AssetCheckSeverity.WARN)
    assert not result.passed, what
    assert result.severity == dg.AssetCheckSeverity.WARN
    failing = result.metadata["failing_row_index"].value
    assert BAD in failing, (what, failing, result.metadata["failure_sample"].value)
    assert 2 not in failing  # the untouched last row is not blamed
    assert result.metadata["failing_rows"].value >= 1
