"""The kiosk availability hook of the always-on stock sync (`pipelines/defs/sync/jobs.py`).

The sync's op keeps its resources: Cloudshelf is read from `pipelines.settings.cloudshelf()` when the run starts
(CLOUDSHELF_API_URL, PIPELINES_KIOSK_LOCATIONS, CLOUDSHELF_TIMEOUT_S) and the API key through
`dg.EnvVar("CLOUDSHELF_API_TOKEN")`, as the definitions give it to `CloudshelfResource`. Without CLOUDSHELF_API_URL
(or the key) there is no hook and the sync runs as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy import Engine

from pipelines.connectors.cloudshelf import CloudshelfClient
from pipelines.estate import Estate
from pipelines.kiosk import KioskConfig, KioskPublisher
from pipelines.settings import cloudshelf
from pipelines.sync.target import StockTarget


@contextmanager
def kiosk_publisher(engine: Engine, estate: Estate, target: StockTarget) -> Iterator[KioskPublisher | None]:
    """A publisher for the sync's `after_commit` when Cloudshelf is configured, else None. The client makes one
    attempt per request (the sync must not wait on Cloudshelf's retries; the refresh catches up)."""
    s = cloudshelf()
    token = dg.EnvVar("CLOUDSHELF_API_TOKEN").get_value() if s.enabled else None
    if not s.api_url or not token:
        yield None
        return
    with CloudshelfClient(s.api_url, token, timeout=s.timeout_s, max_attempts=1) as client:
        yield KioskPublisher(engine, estate, target, client, KioskConfig(locations=s.kiosk_locations))
