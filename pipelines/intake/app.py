"""ASGI intake: NewStore's event stream and Centra's webhooks land here.

Each delivery is verified, stored once in `inbox_events` (unique on source + dedup key, so several
replicas on PostgreSQL cannot both store it) and answered; refused deliveries get a 4xx with a reason
and their raw body is kept in `intake_quarantine`. Work on the events happens later, in Dagster runs.

Answers (the sender retries anything but 2xx and 4xx):

* 200: stored, or a duplicate of an event already stored (acknowledged, not stored twice). Only sent
  after the transaction holding every event of the delivery has committed.
* 4xx with `{"error": reason}`: refused (401/403 credentials or signature, 400 unparsable, 413 too
  large, 415 wrong content type, 422 wrong shape); the raw body is in `intake_quarantine`.
* 503 with `Retry-After`: the store of record is unreachable (or a refused body could not be
  quarantined, which is then logged in full): nothing was acknowledged, the sender must retry.
* 500: an unexpected error while storing; the body is quarantined (or logged) and the sender retries.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import Engine, text
from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.intake.verify import (
    InboundEvent,
    Rejected,
    check_bearer,
    check_centra_signature,
    parse_centra_webhook,
    parse_newstore_event,
)
from pipelines.store.inbox import quarantine, store_events

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024

# Errors meaning "the database cannot take the write now": answer 503 so the sender retries.
# (OperationalError covers refused connections, a dropped database, SQLite's "database is locked",
# deadlocks and serialisation failures; TimeoutError is the connection pool's.)
DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError,
    sa_exc.NoSuchTableError,
)

_PARSE_INLINE_BYTES = 64 * 1024
_JSON_TYPES = ("application/json",)
_FORM_TYPES = ("application/x-www-form-urlencoded",)


@dataclass(frozen=True)
class IntakeConfig:
    newstore_api_key: str
    centra_webhook_secret: str
    signature_tolerance_s: int = 300
    max_body_bytes: int = MAX_BODY_BYTES
    # How many requests may use the database at once (threads); None: 1 on SQLite (one writer at a
    # time, queued here instead of in SQLite's sleeping busy handler), else 4 (at most the engine's
    # pool capacity): more threads only contend for the GIL (see docs/intake.md).
    db_concurrency: int | None = None
    retry_after_s: int = 5


class _TooLarge(Exception):
    def __init__(self, prefix: bytes, declared: str | None):
        super().__init__("body too large")
        self.prefix = prefix
        self.declared = declared


def default_db_concurrency(engine: Engine) -> int:
    if engine.dialect.name == "sqlite":
        return 1
    size = getattr(engine.pool, "size", None)
    if callable(size):  # QueuePool: never more threads than connections (they would wait for the pool)
        return max(1, min(4, size() + max(0, getattr(engine.pool, "_max_overflow", 0))))
    return 4


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _loggable_body(body: bytes) -> str:
    try:
        return "utf-8 " + json.dumps(body.decode("utf-8"))
    except UnicodeDecodeError:
        return "base64 " + base64.b64encode(body).decode("ascii")


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (without buffering it all) anything over `limit` bytes."""
    declared = request.headers.get("content-length")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _TooLarge(b"".join(chunks)[:limit], declared)
    return b"".join(chunks)


def create_intake_app(engine: Engine, config: IntakeConfig) -> Starlette:
    concurrency = config.db_concurrency or default_db_concurrency(engine)
    limiter: anyio.CapacityLimiter | None = None

    async def in_db_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        nonlocal limiter
        if limiter is None:  # created on the server's event loop
            limiter = anyio.CapacityLimiter(concurrency)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter)

    async def keep(source: str, request: Request, body: bytes, reason: str, status: int) -> bool:
        """Quarantine the raw body; if even that fails, log it in full (never lost silently)."""
        try:
            await in_db_thread(quarantine, engine, source=source, reason=reason, status_code=status,
                               headers=dict(request.headers), body=body)
            return True
        except Exception:  # noqa: BLE001 - whatever happened, the body goes to the log instead
            log.exception("could not quarantine a %s delivery (reason: %s, status %d); raw body (%d bytes) "
                          "follows: %s", source, reason, status, len(body), _loggable_body(body))
            return False

    def unavailable(reason: str) -> JSONResponse:
        return JSONResponse({"error": reason}, status_code=503, headers={"Retry-After": str(config.retry_after_s)})

    async def refuse(source: str, request: Request, body: bytes, exc: Rejected) -> JSONResponse:
        log.warning("refused %s delivery: %s", source, exc.reason)
        if not await keep(source, request, body, exc.reason, exc.status):
            # Not kept: ask for the delivery again rather than dropping it with a 4xx.
            return unavailable(f"{exc.reason} (and the delivery could not be quarantined: retry later)")
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    async def intake(source: str, request: Request,
                     parse: Callable[[Request, bytes], list[InboundEvent]],
                     ) -> tuple[Response | None, list[InboundEvent], list[bool]]:
        """Read, verify, parse and store one delivery; a Response when it was not (all) stored."""
        try:
            body = await _read_body(request, config.max_body_bytes)
        except _TooLarge as big:
            size = f"{big.declared} bytes" if big.declared else "unknown size"
            reason = (f"body larger than {config.max_body_bytes} bytes ({size}); "
                      f"only its first {len(big.prefix)} bytes are quarantined")
            return await refuse(source, request, big.prefix, Rejected(413, reason)), [], []
        except ClientDisconnect:
            log.info("%s sender disconnected before the body was complete; nothing stored", source)
            return Response(status_code=400), [], []
        try:
            if len(body) > _PARSE_INLINE_BYTES:  # a big body is parsed off the event loop
                events = await anyio.to_thread.run_sync(parse, request, body)
            else:
                events = parse(request, body)
        except Rejected as exc:
            return await refuse(source, request, body, exc), [], []
        try:
            return None, events, await in_db_thread(store_events, engine, events)
        except DB_UNAVAILABLE as exc:
            log.warning("store of record unavailable, %s delivery not acknowledged: %s", source,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return unavailable("store of record unavailable, retry later"), [], []
        except Exception as exc:  # noqa: BLE001 - never acknowledge what was not stored
            log.exception("storing a %s delivery failed", source)
            await keep(source, request, body, f"store failed: {type(exc).__name__}", 500)
            return JSONResponse({"error": "the delivery could not be stored, retry later"}, status_code=500), [], []

    def parse_newstore(request: Request, body: bytes) -> list[InboundEvent]:
        check_bearer(request.headers.get("authorization"), config.newstore_api_key)
        media = _media_type(request)
        if media and media not in _JSON_TYPES and not media.endswith("+json"):
            raise Rejected(415, f"content type {media!r} is not application/json")
        return [parse_newstore_event(body)]

    def parse_centra(request: Request, body: bytes) -> list[InboundEvent]:
        check_centra_signature(request.headers.get("x-centra-signature"), body,
                               config.centra_webhook_secret, time.time(), config.signature_tolerance_s)
        media = _media_type(request)
        if media in _JSON_TYPES:
            return parse_centra_webhook(body, form=False)
        if media and media not in _FORM_TYPES:
            raise Rejected(415, f"content type {media!r} is not application/x-www-form-urlencoded")
        return parse_centra_webhook(body)

    async def newstore_events(request: Request) -> Response:
        response, events, stored = await intake("newstore", request, parse_newstore)
        if response is not None:
            return response
        return JSONResponse({"status": "stored" if stored[0] else "duplicate", "dedup_key": events[0].dedup_key})

    async def centra_webhooks(request: Request) -> Response:
        response, _, stored = await intake("centra", request, parse_centra)
        if response is not None:
            return response
        return JSONResponse({"stored": sum(stored), "duplicates": len(stored) - sum(stored)})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def _ping() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM inbox_events WHERE 1 = 0"))

    async def ready(_: Request) -> JSONResponse:
        """Readiness: the store of record answers and has the inbox table."""
        try:
            await in_db_thread(_ping)
        except Exception as exc:  # noqa: BLE001
            log.warning("readiness check failed: %s", type(exc).__name__)
            return unavailable("store of record unavailable")
        return JSONResponse({"status": "ready"})

    @asynccontextmanager
    async def lifespan(_: Starlette):
        log.info("intake ready (%s, %d database thread(s), body limit %d bytes)", engine.dialect.name,
                 concurrency, config.max_body_bytes)
        yield

    return Starlette(routes=[
        Route("/newstore/events", newstore_events, methods=["POST"]),
        Route("/centra/webhooks", centra_webhooks, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
    ], lifespan=lifespan)
