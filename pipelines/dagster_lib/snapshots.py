"""The stock snapshot both platforms' snapshot assets land: the platform's stock as read now, labelled with
the business day it was taken for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from pipelines.dagster_lib.metadata import materialize_days
from pipelines.defs.resources import StoreOfRecord
from pipelines.domain.timeutil import utc_text
from pipelines.store.partitions import replace_partitions


def land_snapshot(context: dg.AssetExecutionContext, store: StoreOfRecord, key: str,
                  read: Callable[[], pd.DataFrame], node_column: str,
                  location_of: Callable[[Any], str | None],
                  metadata: Callable[[pd.DataFrame, str], dict[str, Any]]) -> dg.MaterializeResult:
    """Read the stock (`read()`, with the platform's `node_column` first), stamp it `snapshot_at` (the time
    just before the read) and map each node onto its estate location (`location_id`, after the node), then
    replace the run's partition of `key` with it. The materialisation carries `snapshot_at` and
    `metadata(df, taken)`."""
    taken = utc_text(datetime.now(UTC))
    df = read()
    df.insert(0, "snapshot_at", taken)
    df.insert(2, "location_id", df[node_column].map(location_of))
    replace_partitions(store.engine(), context.partition_key, {key: df})
    (result,) = materialize_days(context, lambda _day: {key: (df, {"snapshot_at": taken,
                                                                   **metadata(df, taken)})})
    return result
