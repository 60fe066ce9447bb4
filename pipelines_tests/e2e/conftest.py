"""Everything under pipelines_tests/e2e/ is a slow end-to-end run: marked `e2e`, so `-m "not e2e"` is the
fast inner loop."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
