"""Shared fixtures: small estates, SQLite and a real throwaway PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Definitions read settings at import: keep tests off the developer's data folder.
os.environ.setdefault("PIPELINES_HOME", str(Path(__file__).resolve().parent / ".." / ".pytest_cache" / "home"))
os.environ.setdefault("PIPELINES_PARTITION_START", "2026-01-01")

from pipelines.estate import Estate  # noqa: E402
from pipelines.estate.model import estate_from_dict  # noqa: E402
from pipelines.simulators.estate_gen import generate_estate  # noqa: E402
from pipelines.store import make_engine, migrate  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def small_estate_dict() -> dict:
    return generate_estate(sizes=60, stores=3, seed=3)


@pytest.fixture(scope="session")
def small_estate(small_estate_dict: dict) -> Estate:
    return estate_from_dict(small_estate_dict)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    from pipelines_tests.pg_server import throwaway_postgres

    with throwaway_postgres() as url:
        yield url


def pytest_configure(config: pytest.Config) -> None:
    """The Dagster warning allow-list (pipelines/dagster_warnings.py) as pytest filters: pytest resets the
    warning filters around each test, so the list installed at import would not hold inside tests. Only the
    listed notices are silenced; a new deprecation or beta/preview notice shows in the test output."""
    import re

    from pipelines import dagster_warnings

    for entry in dagster_warnings.ALLOWED:
        category = f"{entry.category.__module__}.{entry.category.__qualname__}"
        config.addinivalue_line("filterwarnings", f"ignore:{re.escape(entry.message)}:{category}")


_db_counter = iter(range(1, 10_000))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated store of record on SQLite and on PostgreSQL (each test gets its own)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    else:
        from pipelines_tests.pg_server import create_database

        base = request.getfixturevalue("pg_server_url")
        url = create_database(base, f"t{os.getpid()}_{next(_db_counter)}")
    migrate(make_engine(url))
    return url
