"""Process-wide settings read from the environment (every variable is listed in the README).

Secrets are not read here: Dagster resources take them through `EnvVar`, and the intake service
reads its own two secrets at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEZONE = "Europe/Stockholm"
DEFAULT_PARTITION_START = "2026-09-01"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    estate_file: Path
    business_timezone: str
    partition_start: str
    reports_dir: Path

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("PIPELINES_HOME", str(Path.cwd() / "data"))).resolve()
        return cls(
            home=home,
            database_url=_env("PIPELINES_DATABASE_URL", f"sqlite:///{home / 'pipelines.sqlite'}"),
            estate_file=Path(_env("PIPELINES_ESTATE_FILE", str(home / "estate.json"))),
            business_timezone=_env("PIPELINES_BUSINESS_TIMEZONE", DEFAULT_TIMEZONE),
            partition_start=_env("PIPELINES_PARTITION_START", DEFAULT_PARTITION_START),
            reports_dir=Path(_env("PIPELINES_REPORTS_DIR", str(home / "reports"))),
        )


def settings() -> Settings:
    return Settings.from_env()
