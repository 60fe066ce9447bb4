"""`pipelines-intake`: run the intake service on its own (see docs/intake.md).

One process serves `PIPELINES_INTAKE_WORKERS` uvicorn worker processes (default 1) on one port; each
worker has its own SQLAlchemy engine. For replicas, start the command on several hosts or ports against
the same PostgreSQL database (`PIPELINES_DATABASE_URL`) behind a load balancer: the inbox's unique
constraint stores every event once whichever replica receives it. The schema is migrated once at
start, before the workers are spawned (on PostgreSQL under an advisory lock, so replicas may start
together).

Configuration: the two secrets (NEWSTORE_EVENTSTREAM_API_KEY, CENTRA_WEBHOOK_SECRET, required, never
logged) and PIPELINES_INTAKE_* (README, "Configuration"), read at start-up by `pipelines.settings`; what
they leave unset takes the defaults of `IntakeConfig` and of this module.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn
from starlette.applications import Starlette

from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.settings import SettingError, cloudshelf_webhook_key, intake, intake_secrets, settings
from pipelines.store import make_engine, migrate

log = logging.getLogger("pipelines.intake")

HOST, PORT, WORKERS, LOG_LEVEL = "127.0.0.1", 8090, 1, "info"
SERVER_FIELDS = ("host", "port", "workers", "limit_concurrency", "log_level")


def _intake() -> dict[str, Any]:
    """What the environment sets (`pipelines.settings.intake`); a bad value ends the process with its reason."""
    try:
        return intake()
    except SettingError as exc:
        sys.exit(f"pipelines-intake: {exc}")


def config_from_env() -> IntakeConfig:
    """The intake's config: its two secrets and what the environment sets, IntakeConfig's defaults for the rest."""
    try:
        api_key, webhook_secret = intake_secrets()
    except SettingError as exc:
        sys.exit(f"pipelines-intake: {exc}")
    values = {k: v for k, v in _intake().items() if k not in SERVER_FIELDS}
    config = IntakeConfig(newstore_api_key=api_key, centra_webhook_secret=webhook_secret,
                          cloudshelf_webhook_key=cloudshelf_webhook_key(), **values)
    if config.quarantine_max_bytes < 2 * config.max_body_bytes:  # else one refused delivery could trim the rest
        sys.exit("pipelines-intake: PIPELINES_INTAKE_QUARANTINE_MAX_BYTES must be at least twice "
                 f"PIPELINES_INTAKE_MAX_BODY_BYTES ({2 * config.max_body_bytes})")
    return config


def _log_level() -> str:
    return _intake().get("log_level", LOG_LEVEL)


def _configure_logging() -> None:
    logging.basicConfig(level=_log_level().upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def app_from_env() -> Starlette:
    """uvicorn factory (`pipelines.intake.server:app_from_env`): one engine per worker process."""
    _configure_logging()  # worker processes are spawned: configure their logging too
    return create_intake_app(make_engine(settings().database_url), config_from_env())


def main() -> None:
    _configure_logging()
    config_from_env()  # fail fast on missing secrets or bad numbers, before binding the port
    server = _intake()
    host, port, workers = server.get("host", HOST), server.get("port", PORT), server.get("workers", WORKERS)
    engine = make_engine(settings().database_url)
    migrate(engine)
    engine.dispose()
    log.info("intake on http://%s:%d with %d worker(s), store %s", host, port, workers,
             engine.url.render_as_string(hide_password=True))
    uvicorn.run("pipelines.intake.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=server.get("log_level", LOG_LEVEL), access_log=False, timeout_graceful_shutdown=10,
                limit_concurrency=server.get("limit_concurrency"))


if __name__ == "__main__":
    main()
