"""The production Dagster instance config (deploy/dagster.postgres.yaml) on a real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text

from pipelines.defs.pos.assets import pos_sale_lines
from pipelines.defs.resources import EstateResource, StoreOfRecord
from pipelines.simulators.estate_gen import write_estate

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


def test_materialisation_on_dagster_postgres(pg_server_url: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines_tests.pg_server import create_database

    dagster_db = create_database(pg_server_url, "dagster_instance")
    store_db = create_database(pg_server_url, "dagster_store")
    host_port = dagster_db.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    for key, value in {"DAGSTER_PG_HOST": host, "DAGSTER_PG_PORT": port, "DAGSTER_PG_USER": "postgres",
                       "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": "dagster_instance"}.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    estate = write_estate(tmp_path / "estate.json", sizes=30, stores=2)

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize([pos_sale_lines], partition_key="2026-11-20", instance=instance,
                                resources={"store": StoreOfRecord(database_url=store_db),
                                           "estate": EstateResource(path=str(estate))})
        assert result.success
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        event = instance.get_latest_materialization_event(dg.AssetKey("pos_sale_lines"))
        assert event is not None and event.run_id == result.run_id
    finally:
        instance.dispose()
    engine = create_engine(dagster_db)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM event_logs WHERE run_id = :r"), {"r": result.run_id}).scalar()
    engine.dispose()
    assert stored > 5
