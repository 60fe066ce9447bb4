"""The `exceptions` table: every problem a person must act on, with its owner team and playbook.

Many writers add to it (the POS datasets, the reconciliation, the stock sync's runs) and people close its
records outside Dagster, so it is declared as an external asset whose deps are the assets that raise
records, and observed rather than materialised: `open_exceptions_sensor` counts the open records every
few minutes and records an observation whenever the counts change. One observer sees every writer (the
stock sync job is an op job, not an asset) and every closed record, costs no run, and adds no query to
the writers' runs.
"""

from __future__ import annotations

import hashlib
import json

import dagster as dg
import pandas as pd
from sqlalchemy import Engine, func, select

from pipelines.dagster_lib.common import ECOMMERCE, FINANCE, INTEGRATION, RETAIL_OPERATIONS
from pipelines.defs.resources import StoreOfRecord
from pipelines.store.db import table

exceptions = dg.AssetSpec(
    "exceptions",
    group_name="reconciliation",
    deps=["pos_sale_lines", "pos_stock_movements", "reconciliation_findings", "newstore_catalog_export",
          "order_flow_work", "customer_links"],
    owners=[*RETAIL_OPERATIONS, *ECOMMERCE, *FINANCE, *INTEGRATION],
    kinds={"sql"},
    description="Typed exception records (table exceptions): unknown SKUs and unmapped stores from the POS "
                "datasets, every reconciliation finding, undecodable events and rejected stock changes from "
                "the stock sync, what an order flow could not do (`order_flow_work`) and the SKUs NewStore's "
                "catalog import refused (`newstore_catalog_export`), customers the single customer view could not "
                "keep in step (`customer_links`), each with severity, owner team, playbook and status (a re-detection bumps "
                "its occurrences). Written by those assets and jobs, closed by people; observed every 5 "
                "minutes by `open_exceptions_sensor` (open records by type and team).",
)

COUNT_COLUMNS = ["exception_type", "severity", "owner_team", "open"]


def open_counts(engine: Engine) -> pd.DataFrame:
    """Open exception records per type (with its severity) and owner team, most first."""
    t = table(engine, "exceptions")
    keys = [t.c.exception_type, t.c.severity, t.c.owner_team]
    with engine.connect() as conn:
        rows = conn.execute(select(*keys, func.count()).where(t.c.status == "open").group_by(*keys)).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=COUNT_COLUMNS).astype({"open": "int64"})
    return df.sort_values(["open", "exception_type", "owner_team"], ascending=[False, True, True],
                          kind="mergesort").reset_index(drop=True)


def observation(counts: pd.DataFrame) -> dg.AssetObservation:
    by = lambda key: {str(k): int(v) for k, v in counts.groupby(key)["open"].sum().items()}  # noqa: E731
    return dg.AssetObservation(asset_key=exceptions.key, metadata={
        "open": int(counts["open"].sum()),
        "open_errors": int(counts.loc[counts["severity"] == "ERROR", "open"].sum()),
        "open_by_type": dg.MetadataValue.json(by("exception_type")),
        "open_by_team": dg.MetadataValue.json(by("owner_team")),
        "by_type_and_team": dg.MetadataValue.md(counts.to_markdown(index=False) if len(counts) else "_none open_"),
    })


@dg.sensor(name="open_exceptions_sensor", minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every 5 minutes: counts the open records of table `exceptions` by type and team, and "
                       "records an observation of the `exceptions` asset whenever the counts change.")
def open_exceptions_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord) -> dg.SensorResult:
    counts = open_counts(store.engine())
    state = hashlib.sha256(json.dumps(counts.values.tolist()).encode()).hexdigest()[:16]
    if context.cursor == state:
        return dg.SensorResult(skip_reason=f"{int(counts['open'].sum())} open, unchanged", cursor=state)
    return dg.SensorResult(asset_events=[observation(counts)], cursor=state)
