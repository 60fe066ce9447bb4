"""End to end through the real simulators: NewStore trading -> event stream (duplicates, reordering)
-> intake -> inbox -> sensor -> stock_sync_job -> Centra; Centra's store stock equals the ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.devstack import Stack
from pipelines.simulators.newstore import EmitterConfig
from pipelines.simulators.trading import TradingConfig
from pipelines.sync.queue import work_state
from pipelines_tests.traded import physical_mismatches, run_requested_sync

pytestmark = pytest.mark.slow


def test_centra_store_stock_ends_equal_to_the_ground_truth(db_url: str, tmp_path: Path) -> None:
    trading = TradingConfig(store_sales_per_hour=10, counts_per_store_per_day=3, online_orders_per_hour=6)
    if hasattr(trading, "click_collect_per_store_per_day"):
        # Pickups leave the store on both platforms independently (POS at handover, Centra at shipment),
        # so they are not the sync's business; keep this test about the movements it carries.
        trading.click_collect_per_store_per_day = 0
    stack = Stack(tmp_path / "stack", sizes=120, stores=3, seed=5, database_url=db_url, trading=trading,
                  emitter_config=EmitterConfig(duplicate_rate=0.1, shuffle_window=25, backoff_initial=0.01))
    with stack:
        now = datetime.now(UTC)
        stats = stack.simulate(now - timedelta(days=2), now)
        assert stats["store_sales"] > 100 and stats["counts"] > 5
        env = stack.env()
        resources = {"store": StoreOfRecord(database_url=stack.database_url),
                     "estate": EstateResource(path=str(stack.estate_file)),
                     "centra": CentraResource(base_url=env["CENTRA_API_URL"], token=env["CENTRA_API_TOKEN"]),
                     "commercetools": CommercetoolsResource(),
                     "sync_settings": SyncSettings()}
        runs = 0
        with dg.instance_for_test() as instance:
            # No sync run is active: the sensor requests one each time; each run drains for up to 2 s
            # (waiting for budget), until nothing is waiting (bounded: 30 runs).
            while work_state(stack.engine).has_work and runs < 30:
                run_requested_sync(instance, resources, window_s=2.0)
                runs += 1
        assert 1 <= runs < 30 and not work_state(stack.engine).has_work
        assert physical_mismatches(stack) == []
        moved = stack.truth.query("SELECT COUNT(*) FROM movements")[0][0]
        assert moved > 100
