"""Reads of the ERP datasets for the daily reconciliation (issue 15): the day's ERP tables
(sql/migrations/0018_erp_datasets.sql, written by pipelines/defs/erp/datasets.py), the store sales the ERP posted
(`erp_store_sales`, 0017) and the commerce orders the order-to-ERP flow holds as exceptions (`order_flow_work`)."""

from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from pipelines.store.partitions import read_partition, read_sql

ERP_ORDER_FLOW = "erp_order"  # order_flow_work.flow of the order-to-ERP flow (work_key: the commerce order ref)

ORDER_COLUMNS = ["business_date", "order_id", "order_number", "external_ref", "currency", "customer_number",
                 "total_including_tax", "total_tax", "discount_amount", "line_count"]
SHIPMENT_COLUMNS = ["business_date", "shipment_id", "shipment_number", "external_ref", "units", "value",
                    "tracking_number", "carrier", "in_commerce"]
STOCK_COLUMNS = ["business_date", "sku", "item_number", "variant_code", "on_hand"]
ITEM_COLUMNS = ["business_date", "number", "variant_code"]
STORE_SALES_COLUMNS = ["location_id", "business_date", "tax_rate", "count", "gross", "discount", "tax", "net"]
BLOCKED_COLUMNS = ["order_ref", "exception_type"]


def _day(engine: Engine, table_name: str, day: str, columns: list[str]) -> pd.DataFrame:
    """The day's rows of `table_name` with at least `columns` (first, in that order), business_date filled."""
    df = read_partition(engine, table_name, day).assign(business_date=day)
    for col in columns:
        if col not in df.columns:
            df[col] = None
    return df[columns + [c for c in df.columns if c not in columns]]


def erp_orders(engine: Engine, day: str) -> pd.DataFrame:
    return _day(engine, "erp_sales_orders", day, ORDER_COLUMNS)


def erp_shipments(engine: Engine, day: str) -> pd.DataFrame:
    """`in_commerce` as bool on both databases (an INTEGER on SQLite)."""
    df = _day(engine, "erp_shipments", day, SHIPMENT_COLUMNS)
    df["in_commerce"] = df["in_commerce"].fillna(False).astype(int).astype(bool)
    return df


def erp_stock(engine: Engine, day: str) -> pd.DataFrame:
    return _day(engine, "erp_stock_snapshot", day, STOCK_COLUMNS)


def erp_items(engine: Engine, day: str) -> pd.DataFrame:
    return _day(engine, "erp_items", day, ITEM_COLUMNS)


def erp_store_sales(engine: Engine, day: str) -> pd.DataFrame:
    """What the ERP's ledger holds of the day's store sales (`erp_store_sales`): the reconciliation's
    `downstream_sales` frame."""
    return _day(engine, "erp_store_sales", day, STORE_SALES_COLUMNS)[STORE_SALES_COLUMNS]


def blocked_orders(engine: Engine) -> pd.DataFrame:
    """order_ref, exception_type: the commerce orders the order-to-ERP flow holds as an exception now (work rows of
    flow `erp_order` in status `exception`). The type is the exception record's (joined by exception_key); without
    one, the outcome's, else the key's prefix (`ExceptionRecord.of` keys are `<type>:<flow>:<ref>`)."""
    rows = read_sql(engine, "SELECT w.work_key AS order_ref, w.exception_key, w.outcome, e.exception_type "
                            "FROM order_flow_work w LEFT JOIN exceptions e ON e.exception_key = w.exception_key "
                            "WHERE w.flow = :flow AND w.status = 'exception' ORDER BY w.work_key",
                    flow=ERP_ORDER_FLOW)
    out = [{"order_ref": str(r.order_ref),
            "exception_type": r.exception_type or _outcome_type(r.outcome) or _key_type(r.exception_key)}
           for r in rows.itertuples()]
    return pd.DataFrame(out, columns=BLOCKED_COLUMNS)


def _outcome_type(outcome: str | None) -> str | None:
    """The exception type an outcome names: `exception_type`, or the first of `problems` (a type name or an object
    with `type`/`kind`/`exception_type`)."""
    try:
        data: Any = json.loads(outcome) if outcome else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("exception_type"), str):
        return data["exception_type"]
    problems = data.get("problems")
    if isinstance(problems, list) and problems:
        first = problems[0]
        if isinstance(first, str):
            return first
        if isinstance(first, dict):
            for key in ("exception_type", "type", "kind"):
                if isinstance(first.get(key), str):
                    return first[key]
    return None


def _key_type(exception_key: str | None) -> str | None:
    if not exception_key:
        return None
    head = exception_key.split(":", 1)[0]
    return head if re.fullmatch(r"[a-z0-9_]+", head) else None
