"""The kiosk tests' stack: a small estate with the Cloudshelf simulator, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.devstack import Stack
from pipelines_tests.kiosk.kiosk_support import kiosk_stack


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    s = kiosk_stack(request, tmp_path)
    try:
        yield s
    finally:
        s.stop()
