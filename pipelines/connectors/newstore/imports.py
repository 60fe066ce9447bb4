"""NewStore's Import API over :class:`NewStoreClient`: create, start and poll an import job, read its results,
and hand the import file over.

NewStore imports a zip of JSON files that it fetches itself from a URL we give it (``source_uri`` on create,
``transformed_uri`` on start): "Upload files to a URI that NewStore can access" (developers/guides/
catalog-integration/importdata); NewStore's partner integrations hand over a presigned blob-storage URL
(Occtoo's NewStore formatter: an Azure SAS URL). :class:`ServedFile` serves the zip from this process at an
unguessable path for as long as the job runs (the run waits for the job), so no storage account is needed;
``public_base_url`` says how NewStore reaches this host.

Limits (REF §1.3): at most 20 open jobs (10 with products), 5 minutes between jobs; both answer 429, which
:func:`create_job` waits out (``Retry-After``) within ``wait_budget_s``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from pipelines.connectors.errors import RateLimited
from pipelines.connectors.newstore.client import NewStoreClient

FINISHED, FAILED = "finished", "failed"
TERMINAL_STATES = (FINISHED, FAILED)


@dataclass(frozen=True)
class EntityError:
    """One entity NewStore refused (``errors[]`` of the job)."""

    entity: str
    product_id: str | None
    error_code: str
    message: str
    pricebook: str | None = None


@dataclass(frozen=True)
class ImportJobStatus:
    import_id: str
    state: str
    reason: str | None
    full: bool
    received_at: str | None
    completed_at: str | None
    errors: tuple[EntityError, ...]
    raw: dict[str, Any]

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


class ImportTimeout(TimeoutError):
    """The job did not finish within the poll budget (it may still finish: poll it again later)."""


def create_job(client: NewStoreClient, *, name: str, source_uri: str, entities: Sequence[str], full: bool = False,
               provider: str = "pipelines", shop: str | None = None, locale: str | None = None,
               wait_budget_s: float = 900.0, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> str:
    """``POST /v0/d/import``; returns the job id. A 429 (open-job limit, job spacing) the client's own retries
    did not outlast is waited out here, ``Retry-After`` at a time, until ``wait_budget_s`` is spent."""
    body: dict[str, Any] = {"provider": provider, "name": name, "source_uri": source_uri,
                            "entities": list(entities), "full": full}
    if shop:
        body["shop"] = shop
    if locale:
        body["locale"] = locale
    deadline = clock() + wait_budget_s
    while True:
        try:
            data = client._json("POST", "/v0/d/import", json=body, idempotent=False)
            return str(data["id"])
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 5.0
            if clock() + wait > deadline:
                raise
            sleep(wait)


def start_job(client: NewStoreClient, import_id: str, transformed_uri: str | None = None) -> None:
    """``POST /v0/d/import/{id}/start`` (``transformed_uri``: where NewStore fetches the file, if not ``source_uri``)."""
    body = {"transformed_uri": transformed_uri} if transformed_uri else {}
    client._send("POST", f"/v0/d/import/{quote(import_id, safe='')}/start", json=body, idempotent=False)


def job_status(client: NewStoreClient, import_id: str) -> ImportJobStatus:
    """``GET /v0/d/import/{id}``."""
    data = client._json("GET", f"/v0/d/import/{quote(import_id, safe='')}") or {}
    errors = tuple(EntityError(entity=str(e.get("entity", "")), product_id=_opt_str(e.get("product_id")),
                               error_code=str(e.get("error_code", "")), message=str(e.get("message", "")),
                               pricebook=_opt_str(e.get("pricebook")))
                   for e in data.get("errors") or [] if isinstance(e, dict))
    return ImportJobStatus(import_id=str(data.get("import_id") or import_id), state=str(data.get("state", "")),
                           reason=_opt_str(data.get("reason")), full=bool(data.get("full")),
                           received_at=_opt_str(data.get("received_at")),
                           completed_at=_opt_str(data.get("completed_at")), errors=errors, raw=data)


def wait_for_job(client: NewStoreClient, import_id: str, *, timeout_s: float = 1800.0, poll_s: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> ImportJobStatus:
    """Poll until the job is ``finished`` or ``failed``; :class:`ImportTimeout` after ``timeout_s``."""
    deadline = clock() + timeout_s
    while True:
        status = job_status(client, import_id)
        if status.done:
            return status
        if clock() + poll_s > deadline:
            raise ImportTimeout(f"import job {import_id} still {status.state!r} after {timeout_s:g}s")
        sleep(poll_s)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class ServedFile:
    """One file served over HTTP at ``/<token>/<name>`` from a background thread (see the module docstring)."""

    def __init__(self, content: bytes, name: str, *, host: str = "127.0.0.1", port: int = 0,
                 public_base_url: str | None = None, content_type: str = "application/zip") -> None:
        self.content = content
        self.path = f"/{secrets.token_urlsafe(24)}/{quote(name)}"
        self.fetches = 0
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != served.path:
                    self.send_error(404)
                    return
                served.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(served.content)))
                self.end_headers()
                self.wfile.write(served.content)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (quiet)
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        base = (public_base_url or f"http://{bound_host}:{bound_port}").rstrip("/")
        self.url = base + self.path
        self._thread = threading.Thread(target=self._server.serve_forever, name="import-file", daemon=True)

    def start(self) -> ServedFile:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def served_file(content: bytes, name: str, **kwargs: Any) -> Iterator[ServedFile]:
    served = ServedFile(content, name, **kwargs).start()
    try:
        yield served
    finally:
        served.stop()
