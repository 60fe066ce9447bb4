"""The `exceptions` table as an asset: open records by type and team, observed when they change."""

from __future__ import annotations

import dagster as dg
from sqlalchemy import text

from pipelines.defs.exceptions import exceptions, open_exceptions_sensor
from pipelines.defs.resources import StoreOfRecord
from pipelines.domain.exceptions import UNKNOWN_SKU, UNMAPPED_LOCATION, ExceptionRecord
from pipelines.store import make_engine
from pipelines.store.inbox import record_exceptions


def test_open_exceptions_are_observed_when_they_change(db_url: str) -> None:
    engine = make_engine(db_url)
    record_exceptions(engine, [ExceptionRecord.of(UNKNOWN_SKU, f"SKU-{n}", "pos_sale_lines", "unknown") for n in (1, 2)]
                      + [ExceptionRecord.of(UNMAPPED_LOCATION, "NODE-9", "pos_sale_lines", "unmapped")])
    resources = {"store": StoreOfRecord(database_url=db_url)}
    with dg.instance_for_test() as instance:
        def tick(cursor: str | None) -> dg.SensorResult:
            return open_exceptions_sensor(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                                  resources=resources))

        first = tick(None)
        (observed,) = first.asset_events
        assert isinstance(observed, dg.AssetObservation) and observed.asset_key == exceptions.key
        md = {k: v.value for k, v in observed.metadata.items()}
        assert (md["open"], md["open_errors"]) == (3, 3)
        assert md["open_by_type"] == {"unknown_sku": 2, "unmapped_location": 1}
        assert md["open_by_team"] == {"ecommerce": 2, "integration": 1}
        assert not tick(first.cursor).asset_events  # unchanged: nothing recorded
        with engine.begin() as conn:
            conn.execute(text("UPDATE exceptions SET status = 'closed' WHERE exception_type = 'unmapped_location'"))
        (closed,) = tick(first.cursor).asset_events
        assert closed.metadata["open"].value == 2
