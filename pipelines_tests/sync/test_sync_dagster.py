"""Dagster wiring: sensor ticks, the sync job in process, replay, retention, the lag asset."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from pipelines.definitions import defs
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
    SyncSettings,
)
from pipelines.defs.sync.assets import stock_sync_lag
from pipelines.defs.sync.jobs import (
    CONCURRENCY_TAG,
    LIVE_SYNC_TAGS,
    SYNC_TAGS,
    stock_sync_job,
    stock_sync_replay_job,
    stock_sync_retention_job,
)
from pipelines.defs.sync.sensors import stock_sync_sensor
from pipelines.sync import sync_lock
from pipelines_tests.sync.conftest import T0, TOKEN, SyncWorld, land, sale

ONE_PASS = {"ops": {"sync_store_stock": {"config": {"window_s": 0.0}}}}


@pytest.fixture
def resources(world: SyncWorld, small_estate_dict: dict, tmp_path: Path) -> dict:
    estate_file = tmp_path / "estate.json"
    estate_file.write_text(json.dumps(small_estate_dict))
    return {"store": StoreOfRecord(database_url=world.engine.url.render_as_string(hide_password=False)),
            "estate": EstateResource(path=str(estate_file)),
            "centra": CentraResource(base_url=world.server.url, token=TOKEN),
            "commercetools": CommercetoolsResource(),
            "sync_settings": SyncSettings()}


def tick(instance: dg.DagsterInstance, cursor: str | None, resources: dict) -> dg.SensorResult:
    result = stock_sync_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
    return result if isinstance(result, dg.SensorResult) else dg.SensorResult(skip_reason=result)


def test_definitions_wire_the_sync() -> None:
    job = defs.resolve_job_def("stock_sync_job")
    assert job.executor_def.name == "in_process" and job.tags == LIVE_SYNC_TAGS
    for name in ("stock_sync_replay_job", "stock_resync_job"):
        assert defs.resolve_job_def(name).tags == SYNC_TAGS
    assert defs.resolve_sensor_def("stock_sync_sensor").minimum_interval_seconds <= 10
    for name in ("stock_resync_schedule", "stock_sync_retention_schedule"):
        assert defs.resolve_schedule_def(name).cron_schedule
    lag = defs.resolve_assets_def("stock_sync_lag")
    assert lag.automation_conditions_by_key[lag.key] is not None  # hourly, on cron
    sensor = defs.resolve_sensor_def("default_automation_condition_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_instance_config_lets_the_successor_start_beside_the_running_sync() -> None:
    """dagster.yaml: the live sync's tag allows two runs (running + successor); replay/resync one."""
    import yaml

    for path in ("dagster.yaml", "deploy/dagster.postgres.yaml"):
        config = yaml.safe_load((Path(__file__).resolve().parents[2] / path).read_text())
        limits = {(x["key"], x.get("value")): x["limit"]
                  for x in config["run_coordinator"]["config"]["tag_concurrency_limits"]}
        assert limits[(CONCURRENCY_TAG, LIVE_SYNC_TAGS[CONCURRENCY_TAG])] == 2, path
        assert limits[(CONCURRENCY_TAG, SYNC_TAGS[CONCURRENCY_TAG])] == 1, path


def _started(instance: dg.DagsterInstance, resources: dict) -> dg.DagsterRun:
    """A stock_sync_job run Dagster lists as started (its process is not ours)."""
    run = instance.create_run_for_job(stock_sync_job, run_config=ONE_PASS, tags=LIVE_SYNC_TAGS)
    instance.handle_run_event(run.run_id, dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name))
    return instance.get_run_by_id(run.run_id)


def test_sensor_keeps_exactly_one_sync_alive_and_restarts_a_dead_one(world: SyncWorld, resources: dict,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No run: start one. A run started just now: nothing. A run past its window less the lead: its
    successor, once (same run key on a re-evaluation). Two active: nothing (handover). A run listed as
    started that holds no sync lock past the grace: reported failed and replaced."""
    import pipelines.defs.sync.sensors as sensors

    settings = resources["sync_settings"]
    with dg.instance_for_test() as instance:
        first = tick(instance, None, resources)
        (request,) = first.run_requests
        assert request.run_key == "stock-sync:after:none" and request.tags == LIVE_SYNC_TAGS

        run = _started(instance, resources)
        started = instance.get_run_record_by_id(run.run_id).start_time
        assert started is not None
        with sync_lock(world.engine):  # the run holds the lock
            monkeypatch.setattr(sensors.time, "time", lambda: started + 5)
            quiet = tick(instance, None, resources)
            assert not quiet.run_requests and "successor is due in" in str(quiet.skip_reason)

            due = started + settings.run_window_s - settings.handover_lead_s
            monkeypatch.setattr(sensors.time, "time", lambda: due)
            (successor,) = tick(instance, None, resources).run_requests
            assert successor.run_key == f"stock-sync:successor-of:{run.run_id}"
            monkeypatch.setattr(sensors.time, "time", lambda: due - 1)  # one second earlier: not yet
            assert not tick(instance, None, resources).run_requests

            second = _started(instance, resources)
            assert not tick(instance, None, resources).run_requests  # handover in progress
            instance.delete_run(second.run_id)

        # the lock is free: past the grace the started run has died
        monkeypatch.setattr(sensors.time, "time", lambda: started + sensors.GRACE_S - 1)
        assert not tick(instance, None, resources).run_requests  # still starting up, maybe
        monkeypatch.setattr(sensors.time, "time", lambda: started + sensors.GRACE_S)
        (restart,) = tick(instance, None, resources).run_requests
        assert restart.run_key == f"stock-sync:restart:{run.run_id}"
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_one_pass_job_applies_and_tags_the_run(world: SyncWorld, resources: dict) -> None:
    node = world.store.newstore_node_id
    sku = world.skus(1, min_stock=2)[0]
    land(world.engine, sale(node, sku, T0))
    with dg.instance_for_test() as instance:
        result = stock_sync_job.execute_in_process(instance=instance, resources=resources, run_config=ONE_PASS)
        assert result.success and world.physical(sku) == world.initial(sku) - 1
        outputs = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        assert outputs[0].event_specific_data.metadata["movements_applied"].value == 1
        run_tags = instance.get_run_by_id(result.run_id).tags
        assert run_tags["stock_sync/applied"] == "1"
        assert run_tags["stock_sync/quota_share"] == "n/a"  # a one-pass run: no share over time


def test_replay_job_resends_failed_movements(world: SyncWorld, resources: dict) -> None:
    node = world.store.newstore_node_id
    empty = next(s for s in world.estate.skus() if world.initial(s) == 0)
    land(world.engine, sale(node, empty, T0))
    with dg.instance_for_test() as instance:
        stock_sync_job.execute_in_process(instance=instance, resources=resources, run_config=ONE_PASS)
        assert world.statuses() == {"failed": 1}
        world.centra.apply_stock_change("manual fix", [(world.estate.by_sku[empty].size.size_id, 2)],
                                        into=world.store.centra_warehouse_id)
        result = stock_sync_replay_job.execute_in_process(
            instance=instance, resources=resources,
            run_config={"ops": {"replay_stock_movements": {"config": {"sku": empty}}}})
    assert result.success and world.statuses() == {"done": 1}
    assert world.physical(empty) == 1


def test_retention_job_deletes_old_sync_runs_and_their_event_logs(world: SyncWorld, resources: dict) -> None:
    with dg.instance_for_test() as instance:
        runs = [stock_sync_job.execute_in_process(instance=instance, resources=resources, run_config=ONE_PASS).run_id
                for _ in range(3)]
        assert all(instance.all_logs(r) for r in runs)
        keep = {"sync_run_hours": 1.0, "failed_run_days": 7.0, "store_days": 90.0}
        stock_sync_retention_job.execute_in_process(
            instance=instance, resources=resources,
            run_config={"ops": {"prune_stock_sync_history": {"config": keep}}})
        assert len(instance.get_runs(filters=dg.RunsFilter(job_name="stock_sync_job"))) == 3  # too young
        prune = keep | {"sync_run_hours": 0.0}
        result = stock_sync_retention_job.execute_in_process(
            instance=instance, resources=resources,
            run_config={"ops": {"prune_stock_sync_history": {"config": prune}}})
        assert result.success
        assert instance.get_runs(filters=dg.RunsFilter(job_name="stock_sync_job")) == []
        assert all(not instance.all_logs(r) for r in runs)


def test_lag_asset_reports_the_day_with_the_backlog_apart(world: SyncWorld, resources: dict) -> None:
    node = world.store.newstore_node_id
    old, fresh = world.skus(2, min_stock=1)
    land(world.engine, sale(node, old, T0), sale(node, fresh, datetime.now(UTC)))
    report = world.sync().run(window_s=0)
    # The sale from days ago is a backlog caught up, not a lag of days; the fresh one is the steady state.
    assert report.as_dict()["backlog_movements"] == 1 and len(report.lags) == 1 and report.lags[0] < 60
    assert report.readable()["backlog_caught_up"].startswith("1 movement(s), oldest ")
    with dg.instance_for_test() as instance:
        result = dg.materialize([stock_sync_lag], resources=resources, instance=instance)
    meta = result.asset_materializations_for_node("stock_sync_lag")[0].metadata
    assert meta["movements_applied_today"].value == 2 and meta["pending_movements"].value == 0
    assert meta["backlog_caught_up_today"].value == 1
    assert meta["lag_p95_s"].value < 60 and meta["lag_p95"].value.endswith(" s")
    assert "hour" in meta["by_hour"].value and meta["dagster/row_count"].value == 1


def test_runs_table_keeps_one_row_per_run(world: SyncWorld) -> None:
    world.sync().run(window_s=0)
    world.sync().run(window_s=0)
    with world.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM stock_sync_runs")).scalar() == 2
