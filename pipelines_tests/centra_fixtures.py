"""Helpers shared by the Centra simulator and connector tests (imported explicitly, not a conftest)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pipelines.estate.model import Estate, estate_from_dict
from pipelines.simulators.centra import CentraState, create_app
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.serving import BackgroundServer, serve

TOKEN = "test-token"
READ_ONLY_TOKEN = "stores-only-token"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

_ESTATE: dict[str, Any] = {}


def small_estate() -> Estate:
    """A small deterministic estate (60 sizes, 3 stores + DC); generated once per process."""
    if "data" not in _ESTATE:
        _ESTATE["data"] = generate_estate(sizes=60, stores=3, seed=11)
    return estate_from_dict(_ESTATE["data"])


class ManualClock:
    """A settable business clock for the simulator state."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self.now += timedelta(**delta)
            return self.now


@contextmanager
def running_centra(state: CentraState) -> Iterator[BackgroundServer]:
    """Serve the simulator with a full-permission token and a Store:read-only token."""
    app = create_app(state, tokens={TOKEN: None, READ_ONLY_TOKEN: ["Store:read"]})
    with serve(app) as server:
        yield server


def gql(server: BackgroundServer, query: str, variables: dict[str, Any] | None = None, *,
        token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{server.url}/graphql", json={"query": query, "variables": variables or {}},
                      headers=headers, timeout=10)


def data(server: BackgroundServer, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run an operation that must succeed and return its `data`."""
    response = gql(server, query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@dataclass
class Receiver:
    """Captures webhook calls; `fail_first` answers 500 that many times (or always with -1)."""

    fail_first: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = (await request.body()).decode()
            with self.lock:
                self.calls.append({"body": body, "headers": dict(request.headers)})
                failing = self.fail_first < 0 or len(self.calls) <= self.fail_first
            return PlainTextResponse("nope" if failing else "ok", status_code=500 if failing else 200)
        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])
