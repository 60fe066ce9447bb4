"""Settings: `pipelines.settings` is the one reader of the environment, and the resources the definitions
configure from it take what the environment sets, their own defaults otherwise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines import settings
from pipelines.definitions import default_resources
from pipelines.defs.resources import ReconciliationSettings, SyncSettings
from pipelines.sync import SyncConfig

PKG = Path(__file__).resolve().parents[1] / "pipelines"
RECON = ("PIPELINES_RECON_MONEY_TOLERANCE", "PIPELINES_RECON_UNIT_TOLERANCE", "PIPELINES_RECON_BLOCKING_VALUE_BASE",
         "PIPELINES_RECON_DRIFT_WARN_VALUE_BASE", "PIPELINES_RECON_REPORT_DEADLINE_HOUR")


def test_only_settings_reads_the_environment() -> None:
    """No module of pipelines/ but settings.py touches os.environ or os.getenv (devstack.py, the launcher, builds
    the environment of the processes it starts)."""
    readers = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if str(rel) in ("settings.py", "devstack.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{rel}:{node.lineno}")
    assert readers == []


def test_the_resources_take_their_defaults_when_the_environment_sets_nothing(monkeypatch) -> None:
    for name in RECON:
        monkeypatch.delenv(name, raising=False)
    resources = default_resources()
    assert resources["reconciliation_settings"] == ReconciliationSettings()
    recon = ReconciliationSettings()
    assert (recon.money_tolerance, recon.unit_tolerance, recon.blocking_value_base, recon.report_deadline_hour) == (
        0.01, 0, 0.0, 7)
    assert SyncSettings().config() == SyncConfig()  # the resource's defaults are the sync engine's


def test_the_resources_take_what_the_environment_sets(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINES_RECON_BLOCKING_VALUE_BASE", "12.5")
    monkeypatch.setenv("PIPELINES_RECON_UNIT_TOLERANCE", "2")
    monkeypatch.setenv("PIPELINES_RECON_REPORT_DEADLINE_HOUR", "9")
    monkeypatch.setenv("PIPELINES_SYNC_RUN_WINDOW_S", "600")
    monkeypatch.setenv("PIPELINES_SYNC_LOCATION_KINDS", "store, outlet")
    monkeypatch.setenv("PIPELINES_SYNC_BATCH_DELAY_S", "0")
    monkeypatch.setenv("PIPELINES_SYNC_MAX_IN_FLIGHT", "3")
    monkeypatch.setenv("PIPELINES_SYNC_HANDOVER_LEAD_S", "45")
    monkeypatch.setenv("PIPELINES_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("CENTRA_API_URL", "https://example.centra.com")
    resources = default_resources()
    recon = resources["reconciliation_settings"]
    assert (recon.blocking_value_base, recon.unit_tolerance, recon.report_deadline_hour) == (12.5, 2, 9)
    assert recon.money_tolerance == 0.01  # not set: the default
    sync = resources["sync_settings"]
    assert (sync.run_window_s, sync.location_kinds, sync.batch_delay_s, sync.max_in_flight, sync.handover_lead_s) == (
        600.0, ["store", "outlet"], None, 3, 45.0)
    assert sync.config() == SyncConfig.from_env()  # the devstack's sync and Dagster's agree
    assert resources["finance_reports"].reports_dir == str(tmp_path / "reports")
    assert resources["centra"].base_url == "https://example.centra.com"


def test_a_bad_value_names_its_variable(monkeypatch) -> None:
    monkeypatch.setenv("PIPELINES_SYNC_MAX_LINES", "many")
    with pytest.raises(settings.SettingError, match="PIPELINES_SYNC_MAX_LINES must be an integer, not 'many'"):
        settings.sync()
    monkeypatch.setenv("PIPELINES_RECON_REPORT_DEADLINE_HOUR", "-1")
    with pytest.raises(settings.SettingError, match="PIPELINES_RECON_REPORT_DEADLINE_HOUR must be >= 0"):
        settings.reconciliation()


def test_definition_time_values(monkeypatch) -> None:
    """Cron strings and the sensor interval are read when the definitions load (their defaults here)."""
    for name in ("PIPELINES_RECON_HOUR", "PIPELINES_SYNC_RESYNC_CRON", "PIPELINES_SYNC_SENSOR_INTERVAL_S"):
        monkeypatch.delenv(name, raising=False)
    assert settings.schedules() == settings.Schedules(recon_hour=6, resync_cron="30 5 * * *", sync_sensor_interval_s=5)
    monkeypatch.setenv("PIPELINES_SYNC_SENSOR_INTERVAL_S", "2.5")
    monkeypatch.setenv("PIPELINES_RECON_HOUR", "5")
    assert (settings.schedules().sync_sensor_interval_s, settings.schedules().recon_hour) == (2, 5)


def test_the_intake_secrets_are_required(monkeypatch) -> None:
    monkeypatch.delenv("CENTRA_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("NEWSTORE_EVENTSTREAM_API_KEY", "k")
    with pytest.raises(settings.SettingError, match="^set CENTRA_WEBHOOK_SECRET$"):
        settings.intake_secrets()
    monkeypatch.setenv("CENTRA_WEBHOOK_SECRET", " s ")
    assert settings.intake_secrets() == ("k", " s ")  # a secret is taken as set
