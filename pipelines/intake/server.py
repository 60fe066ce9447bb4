"""`pipelines-intake`: run the intake service on its own (see docs/intake.md).

One process serves `PIPELINES_INTAKE_WORKERS` uvicorn worker processes (default 1) on one port; each
worker has its own SQLAlchemy engine. For replicas, start the command on several hosts or ports against
the same PostgreSQL database (`PIPELINES_DATABASE_URL`) behind a load balancer: the inbox's unique
constraint stores every event once whichever replica receives it. The schema is migrated once at
start, before the workers are spawned (on PostgreSQL under an advisory lock, so replicas may start
together).

Environment (besides PIPELINES_DATABASE_URL / PIPELINES_HOME):
  NEWSTORE_EVENTSTREAM_API_KEY, CENTRA_WEBHOOK_SECRET   required secrets
  PIPELINES_INTAKE_HOST, PIPELINES_INTAKE_PORT          127.0.0.1, 8090
  PIPELINES_INTAKE_WORKERS                              uvicorn worker processes (1)
  PIPELINES_INTAKE_DB_CONCURRENCY                       requests using the database at once, per worker
                                                        (1 on SQLite, else the engine's pool capacity)
  PIPELINES_INTAKE_MAX_BODY_BYTES                       largest accepted body (5242880)
  PIPELINES_INTAKE_SIGNATURE_TOLERANCE_S                Centra signature timestamp tolerance (300)
  PIPELINES_INTAKE_MAX_HEADER_BYTES                     all request headers together, else 431 (16384)
  PIPELINES_INTAKE_QUARANTINE_MAX_BYTES                 byte budget of intake_quarantine (268435456,
                                                        at least 2 x the body limit)
  PIPELINES_INTAKE_QUARANTINE_RETENTION_DAYS            quarantined deliveries older than this are
                                                        deleted (30)
  PIPELINES_INTAKE_LIMIT_CONCURRENCY                    open requests per worker before uvicorn answers
                                                        503 (unset: no limit)
  PIPELINES_INTAKE_LOG_LEVEL                            info
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from starlette.applications import Starlette

from pipelines.intake.app import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    QUARANTINE_MAX_BYTES,
    QUARANTINE_RETENTION_DAYS,
    IntakeConfig,
    create_intake_app,
)
from pipelines.settings import settings
from pipelines.store import make_engine, migrate

log = logging.getLogger("pipelines.intake")


def _int_env(name: str, default: int | None, minimum: int = 1) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"pipelines-intake: {name} must be an integer, not {raw!r}")
    if value < minimum:
        sys.exit(f"pipelines-intake: {name} must be >= {minimum}")
    return value


def config_from_env() -> IntakeConfig:
    missing = [v for v in ("NEWSTORE_EVENTSTREAM_API_KEY", "CENTRA_WEBHOOK_SECRET") if not os.environ.get(v)]
    if missing:
        sys.exit(f"pipelines-intake: set {', '.join(missing)}")
    max_body = _int_env("PIPELINES_INTAKE_MAX_BODY_BYTES", MAX_BODY_BYTES)
    budget = _int_env("PIPELINES_INTAKE_QUARANTINE_MAX_BYTES", QUARANTINE_MAX_BYTES)
    if budget < 2 * max_body:  # else one refused delivery could trim away all the others
        sys.exit("pipelines-intake: PIPELINES_INTAKE_QUARANTINE_MAX_BYTES must be at least twice "
                 f"PIPELINES_INTAKE_MAX_BODY_BYTES ({2 * max_body})")
    return IntakeConfig(
        newstore_api_key=os.environ["NEWSTORE_EVENTSTREAM_API_KEY"],
        centra_webhook_secret=os.environ["CENTRA_WEBHOOK_SECRET"],
        signature_tolerance_s=_int_env("PIPELINES_INTAKE_SIGNATURE_TOLERANCE_S", 300),
        max_body_bytes=max_body,
        db_concurrency=_int_env("PIPELINES_INTAKE_DB_CONCURRENCY", None),
        max_header_bytes=_int_env("PIPELINES_INTAKE_MAX_HEADER_BYTES", MAX_HEADER_BYTES, minimum=1024),
        quarantine_max_bytes=budget,
        quarantine_retention_days=_int_env("PIPELINES_INTAKE_QUARANTINE_RETENTION_DAYS", QUARANTINE_RETENTION_DAYS),
    )


def _log_level() -> str:
    return os.environ.get("PIPELINES_INTAKE_LOG_LEVEL", "info").strip().lower() or "info"


def _configure_logging() -> None:
    logging.basicConfig(level=_log_level().upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def app_from_env() -> Starlette:
    """uvicorn factory (`pipelines.intake.server:app_from_env`): one engine per worker process."""
    _configure_logging()  # worker processes are spawned: configure their logging too
    return create_intake_app(make_engine(settings().database_url), config_from_env())


def main() -> None:
    level = _log_level()
    _configure_logging()
    config_from_env()  # fail fast on missing secrets or bad numbers, before binding the port
    workers = _int_env("PIPELINES_INTAKE_WORKERS", 1)
    host = os.environ.get("PIPELINES_INTAKE_HOST", "127.0.0.1")
    port = _int_env("PIPELINES_INTAKE_PORT", 8090, minimum=0)
    engine = make_engine(settings().database_url)
    migrate(engine)
    engine.dispose()
    log.info("intake on http://%s:%d with %d worker(s), store %s", host, port, workers,
             engine.url.render_as_string(hide_password=True))
    uvicorn.run("pipelines.intake.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=level, access_log=False, timeout_graceful_shutdown=10,
                limit_concurrency=_int_env("PIPELINES_INTAKE_LIMIT_CONCURRENCY", None))


if __name__ == "__main__":
    main()
