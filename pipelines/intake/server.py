"""`pipelines-intake`: run the intake service on its own (one replica; start more behind a balancer).

Environment: PIPELINES_DATABASE_URL, NEWSTORE_EVENTSTREAM_API_KEY, CENTRA_WEBHOOK_SECRET,
PIPELINES_INTAKE_HOST (default 127.0.0.1), PIPELINES_INTAKE_PORT (default 8090).
"""

from __future__ import annotations

import os
import sys

import uvicorn

from pipelines.intake.app import IntakeConfig, create_intake_app
from pipelines.settings import settings
from pipelines.store import make_engine, migrate


def config_from_env() -> IntakeConfig:
    missing = [v for v in ("NEWSTORE_EVENTSTREAM_API_KEY", "CENTRA_WEBHOOK_SECRET") if not os.environ.get(v)]
    if missing:
        sys.exit(f"pipelines-intake: set {', '.join(missing)}")
    return IntakeConfig(newstore_api_key=os.environ["NEWSTORE_EVENTSTREAM_API_KEY"],
                        centra_webhook_secret=os.environ["CENTRA_WEBHOOK_SECRET"])


def main() -> None:
    engine = make_engine(settings().database_url)
    migrate(engine)
    app = create_intake_app(engine, config_from_env())
    uvicorn.run(app, host=os.environ.get("PIPELINES_INTAKE_HOST", "127.0.0.1"),
                port=int(os.environ.get("PIPELINES_INTAKE_PORT", "8090")), log_level="info", access_log=False)


if __name__ == "__main__":
    main()
