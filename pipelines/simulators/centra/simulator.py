"""`CentraSimulator`: state + ASGI app + optional webhook emitter, wired together."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from pipelines.estate.model import Estate, load_estate
from pipelines.simulators.centra.app import Tokens, create_app
from pipelines.simulators.centra.state import CentraState
from pipelines.simulators.centra.webhooks import WebhookEmitter
from pipelines.simulators.serving import BackgroundServer, serve


class CentraSimulator:
    """A simulated Centra tenant for one estate.

    `webhook_url`/`webhook_secret` enable the webhook emitter (extra `webhook_options` go to
    `WebhookEmitter`); `response_delay_s` is the simulated round trip of every GraphQL response
    (`create_app`); `state_options` go to `CentraState` (tier, multiplier, interval_scale...).
    """

    def __init__(self, estate: Estate, *, tokens: Tokens = ("centra-sim-token",),
                 clock: Callable[[], datetime] | None = None, webhook_url: str | None = None,
                 webhook_secret: str = "centra-webhook-secret", webhook_options: dict[str, Any] | None = None,
                 response_delay_s: float = 0.0, **state_options: Any) -> None:
        self.estate = estate
        self.state = CentraState(estate, clock=clock, **state_options)
        self.app: Starlette = create_app(self.state, tokens=tokens, response_delay_s=response_delay_s)
        self.webhooks: WebhookEmitter | None = None
        if webhook_url:
            self.webhooks = WebhookEmitter(webhook_url, webhook_secret, **(webhook_options or {})).attach(self.state)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> CentraSimulator:
        return cls(load_estate(path), **kwargs)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int | None = None) -> Iterator[BackgroundServer]:
        """Run the app on a background uvicorn (and the webhook sender, if configured)."""
        if self.webhooks is not None:
            self.webhooks.start()
        try:
            with serve(self.app, host=host, port=port) as server:
                yield server
        finally:
            if self.webhooks is not None:
                self.webhooks.stop()
