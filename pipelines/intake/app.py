"""ASGI intake: NewStore's event stream, Centra's webhooks and Cloudshelf's webhooks land here.

Each delivery is verified, stored once in `inbox_events` (unique on source + dedup key, so several
replicas on PostgreSQL cannot both store it) and answered; refused deliveries get a 4xx with a reason
and their raw body is kept in `intake_quarantine`. Work on the events happens later, in Dagster runs.

Answers (the sender retries anything but 2xx and 4xx):

* 200: stored, or a duplicate of an event already stored (acknowledged, not stored twice). Only sent
  after the transaction holding every event of the delivery has committed.
* 4xx with `{"error": reason}`: refused (401/403 credentials or signature, 400 unparsable, 413 too
  large, 415 wrong content type, 422 wrong shape, 431 headers too large); the delivery is in
  `intake_quarantine`: its whole body when the sender's credentials checked out, else only the body's
  first 4 KiB with its size and SHA-256 (and for a 431 only a bounded summary of the headers).
* 503 with `Retry-After`: the store of record is unreachable (or a refused delivery could not be
  quarantined; its size and hash are logged, never its body): nothing was acknowledged, the sender
  must retry.
* 500: an unexpected error while parsing or storing; the body is quarantined and the sender retries.

Credentials are checked from the headers before the body is read (NewStore's Bearer key; the shape and
timestamp of Centra's signature, whose HMAC then needs the body, read up to the body limit; Cloudshelf's
`key` query parameter, see `IntakeApp.cloudshelf_webhooks`). The
quarantine has a byte budget and a retention (`QuarantineBudget`, trimmed as it grows and hourly).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
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
    _load_json,
    check_bearer,
    check_centra_signature,
    parse_centra_webhook,
    parse_newstore_event,
)
from pipelines.store.inbox import QuarantineBudget, quarantine, store_events

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
# All request headers together (name + value + 4 bytes each, as on the wire); above it: 431.
MAX_HEADER_BYTES = 16 * 1024
# What is kept of the body of a sender whose credentials did not check out (plus its size and hash).
UNVERIFIED_BODY_PREFIX_BYTES = 4 * 1024
QUARANTINE_MAX_BYTES = 256 * 1024 * 1024
QUARANTINE_RETENTION_DAYS = 30
_HOUSEKEEPING_S = 3600.0  # retention trim: at start, then hourly

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
    max_header_bytes: int = MAX_HEADER_BYTES
    unverified_body_prefix_bytes: int = UNVERIFIED_BODY_PREFIX_BYTES
    # intake_quarantine: total `stored_bytes` kept (trimmed to 7/8 of it, unverified senders' rows and
    # oldest first) and age of the oldest row kept.
    quarantine_max_bytes: int = QUARANTINE_MAX_BYTES
    quarantine_retention_days: int = QUARANTINE_RETENTION_DAYS
    # Cloudshelf's webhooks: the shared secret in the registered URL's `?key=` (None: the route refuses all).
    cloudshelf_webhook_key: str | None = None


@dataclass(frozen=True)
class _Body:
    data: bytes  # the body, or its first bytes when not all of it is kept
    size: int  # bytes received (for an oversized body: until reading stopped)
    sha256: str  # hex digest of the bytes received
    complete: bool  # False: reading stopped past the limit
    declared: str | None  # Content-Length as sent


class _Unverified(Exception):
    """The body's signature did not check out (the sender is a stranger)."""

    def __init__(self, rejected: Rejected):
        super().__init__(rejected.reason)
        self.rejected = rejected


def default_db_concurrency(engine: Engine) -> int:
    if engine.dialect.name == "sqlite":
        return 1
    size = getattr(engine.pool, "size", None)
    if callable(size):  # QueuePool: never more threads than connections (they would wait for the pool)
        return max(1, min(4, size() + max(0, getattr(engine.pool, "_max_overflow", 0))))
    return 4


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _describe(exc: BaseException) -> str:
    """An exception's class (and the driver's error class and SQLSTATE), never its message: driver and
    SQLAlchemy messages can carry the statement's parameters, i.e. the body."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return f"{type(exc).__name__} ({type(orig).__name__}{f', SQLSTATE {state}' if state else ''})"


def _header_bytes(request: Request) -> int:
    return sum(len(k) + len(v) + 4 for k, v in request.scope["headers"])


_SUMMARY_HEADERS = ("host", "user-agent", "content-type", "content-length")


def _header_summary(request: Request, total: int) -> dict[str, str]:
    """What a 431 keeps of the headers: sizes, the first 32 names and a few short values (< 3 KiB)."""
    raw = request.scope["headers"]
    summary = {":header-bytes": str(total), ":header-count": str(len(raw)),
               ":header-names": ",".join(k.decode("latin-1")[:64] for k, _ in raw[:32])}
    for k, v in raw:
        name = k.decode("latin-1").lower()
        if name in _SUMMARY_HEADERS and name not in summary:
            summary[name] = v.decode("latin-1")[:128]
    return summary


async def _read_body(request: Request, limit: int, keep: int) -> _Body:
    """Stream the body, hashing it, until its end or past `limit` bytes; keep at most `keep` bytes."""
    declared = request.headers.get("content-length")
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = kept = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        if kept < keep:
            piece = chunk[:keep - kept]
            chunks.append(piece)
            kept += len(piece)
        if size > limit:
            return _Body(b"".join(chunks)[:limit], size, digest.hexdigest(), False, declared)
    return _Body(b"".join(chunks), size, digest.hexdigest(), True, declared)


def _verify_and_parse(check_body: Callable[[bytes], None] | None,
                      parse: Callable[[Request, bytes], list[InboundEvent]],
                      request: Request, data: bytes) -> list[InboundEvent]:
    """The body's signature (a refusal raised as `_Unverified`), then parsing."""
    if check_body is not None:
        try:
            check_body(data)
        except Rejected as exc:
            raise _Unverified(exc) from exc
    return parse(request, data)


def _parse_newstore(request: Request, body: bytes) -> list[InboundEvent]:
    media = _media_type(request)
    if media and media not in _JSON_TYPES and not media.endswith("+json"):
        raise Rejected(415, f"content type {media!r} is not application/json")
    return [parse_newstore_event(body)]


#: Cloudshelf's OrderStatus values (its generated types, `enum OrderStatus`): a delivery carrying one is an order's.
CLOUDSHELF_ORDER_STATUSES = frozenset({"DRAFT_BASKET", "PLACED", "PAID", "PARTIALLY_REFUNDED", "REFUNDED", "VOIDED"})
CLOUDSHELF_ORDER_EVENT = "cloudshelf.order"


def parse_cloudshelf_webhook(body: bytes) -> InboundEvent:
    """A Cloudshelf webhook delivery `{subject, id, status, emailAddress, phoneNumber, attributes}` (the payload
    is an ASSUMPTION of the simulator's PROVENANCE.md: Cloudshelf documents no order webhook payload).

    An order's delivery (its `status` is an OrderStatus) is named `cloudshelf.order` and keyed by (order id,
    status): a redelivery, or the same change seen again, is a duplicate of the inbox's unique key, while a
    new status of the order lands as a new event. Other subjects are kept as `cloudshelf.<subject>`, keyed by
    the body's hash.
    """
    doc = _load_cloudshelf(body)
    subject, ident, status = doc.get("subject"), doc.get("id"), doc.get("status")
    if not isinstance(subject, str) or not subject or len(subject) > 100:
        raise Rejected(422, "a Cloudshelf delivery needs its subject (a string)")
    if isinstance(status, str) and status in CLOUDSHELF_ORDER_STATUSES:
        if not isinstance(ident, str) or not ident:
            raise Rejected(422, "a Cloudshelf order delivery needs the order's id")
        attributes = doc.get("attributes")
        if attributes is not None and not (isinstance(attributes, list) and all(
                isinstance(a, dict) and isinstance(a.get("key"), str) for a in attributes)):
            raise Rejected(422, "attributes must be a list of {key, value}")
        key = f"{ident}:{status}"
        key = key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return InboundEvent("cloudshelf", key, CLOUDSHELF_ORDER_EVENT, None, {**doc, "via": "webhook"})
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return InboundEvent("cloudshelf", f"{subject}:{digest}", f"cloudshelf.{subject}", None, doc)


def _load_cloudshelf(body: bytes) -> dict[str, Any]:
    doc = _load_json(body, "body")  # depth and lone surrogates refused (422), as for the other senders
    if not isinstance(doc, dict):
        raise Rejected(400, "body must be a JSON object")
    return doc


def _parse_cloudshelf(request: Request, body: bytes) -> list[InboundEvent]:
    media = _media_type(request)
    if media and media not in _JSON_TYPES and not media.endswith("+json"):
        raise Rejected(415, f"content type {media!r} is not application/json")
    return [parse_cloudshelf_webhook(body)]


def _parse_centra(request: Request, body: bytes) -> list[InboundEvent]:
    media = _media_type(request)
    if media in _JSON_TYPES:
        return parse_centra_webhook(body, form=False)
    if media and media not in _FORM_TYPES:
        raise Rejected(415, f"content type {media!r} is not application/x-www-form-urlencoded")
    return parse_centra_webhook(body)


class IntakeApp:
    """The intake over one store of record: its routes, the database threads and the quarantine.

    Requests use the database from at most `concurrency` threads (a limiter created on the server's
    event loop at the first request); the quarantine's budget is shared by every request of the app.
    """

    def __init__(self, engine: Engine, config: IntakeConfig) -> None:
        self.engine = engine
        self.config = config
        self.concurrency = config.db_concurrency or default_db_concurrency(engine)
        self.limiter: anyio.CapacityLimiter | None = None
        self.budget = QuarantineBudget(config.quarantine_max_bytes, config.quarantine_retention_days)
        self.prefix = config.unverified_body_prefix_bytes

    def starlette(self) -> Starlette:
        return Starlette(routes=[
            Route("/newstore/events", self.newstore_events, methods=["POST"]),
            Route("/centra/webhooks", self.centra_webhooks, methods=["POST"]),
            Route("/cloudshelf/webhooks", self.cloudshelf_webhooks, methods=["POST"]),
            Route("/healthz", self.health, methods=["GET"]),
            Route("/readyz", self.ready, methods=["GET"]),
        ], lifespan=self.lifespan)

    async def in_db_thread(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        if self.limiter is None:  # created on the server's event loop
            self.limiter = anyio.CapacityLimiter(self.concurrency)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self.limiter)

    async def keep(self, source: str, request: Request, reason: str, status: int, body: _Body | None, *,
                   verified: bool, headers: dict[str, str] | None = None) -> bool:
        """Quarantine the delivery (all of a verified sender's body, else its first `prefix` bytes; with
        `body=None` no body). If that fails, log its size and hash: never the body itself."""
        kept: dict[str, Any] = {"body": b"", "body_read": False} if body is None else {
            "body": body.data, "body_size": body.size, "body_sha256": body.sha256,
            "keep_bytes": None if verified else self.prefix}
        try:
            await self.in_db_thread(quarantine, self.engine, source=source, reason=reason, status_code=status,
                                    headers=headers if headers is not None else dict(request.headers),
                                    verified=verified, budget=self.budget, **kept)
            return True
        except Exception as exc:  # noqa: BLE001 - whatever happened, the sender is asked to retry
            what = ("body not read" if body is None else
                    f"body {body.size} bytes{'' if body.complete else ' (reading stopped at the limit)'}, "
                    f"sha256 {body.sha256}")
            log.error("could not quarantine a %s delivery (reason: %s, status %d, %s sender; %s; the body is "
                      "not logged): %s", source, reason[:255], status, "verified" if verified else "unverified",
                      what, _describe(exc))
            return False

    def unavailable(self, reason: str) -> JSONResponse:
        return JSONResponse({"error": reason}, status_code=503,
                            headers={"Retry-After": str(self.config.retry_after_s)})

    async def refuse(self, source: str, request: Request, exc: Rejected, body: _Body | None, *, verified: bool,
                     headers: dict[str, str] | None = None) -> JSONResponse:
        log.warning("refused %s delivery: %s", source, exc.reason[:255])
        if not await self.keep(source, request, exc.reason, exc.status, body, verified=verified, headers=headers):
            # Not kept: ask for the delivery again rather than dropping it with a 4xx.
            return self.unavailable(f"{exc.reason} (and the delivery could not be quarantined: retry later)")
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    async def intake(self, source: str, request: Request, check_headers: Callable[[Request], None],
                     check_body: Callable[[bytes], None] | None,
                     parse: Callable[[Request, bytes], list[InboundEvent]],
                     ) -> tuple[Response | None, list[InboundEvent], list[bool]]:
        """Check the headers, read, verify, parse and store one delivery; a Response when not (all) stored.

        Order: header size (431), credentials from the headers (a stranger's body is only hashed and
        its start kept), the body up to the limit (413), the body's signature (`check_body`), parsing.
        """
        body = await self._receive(source, request, check_headers, check_body)
        if isinstance(body, Response):
            return body, [], []
        events = await self._verify_and_parse(source, request, body, check_body, parse)
        if isinstance(events, Response):
            return events, [], []
        stored = await self._store(source, request, body, events)
        if isinstance(stored, Response):
            return stored, [], []
        return None, events, stored

    async def _receive(self, source: str, request: Request, check_headers: Callable[[Request], None],
                       check_body: Callable[[bytes], None] | None) -> _Body | Response:
        """The headers' size and credentials, then the body up to the limit; a Response when refused."""
        config, prefix = self.config, self.prefix
        header_bytes = _header_bytes(request)
        if header_bytes > config.max_header_bytes:
            exc = Rejected(431, f"request headers total {header_bytes} bytes, more than {config.max_header_bytes}")
            return await self.refuse(source, request, exc, None, verified=False,
                                     headers=_header_summary(request, header_bytes))
        try:
            try:
                check_headers(request)
            except Rejected as exc:
                body = await _read_body(request, config.max_body_bytes, prefix)
                return await self.refuse(source, request, exc, body, verified=False)
            body = await _read_body(request, config.max_body_bytes, config.max_body_bytes)
        except ClientDisconnect:
            log.info("%s sender disconnected before the body was complete; nothing stored", source)
            return Response(status_code=400)
        if not body.complete:
            verified = check_body is None  # a signature over a body not read whole cannot be checked
            size = f"{body.declared[:20]} bytes" if body.declared else "unknown size"
            kept = len(body.data) if verified else min(prefix, len(body.data))
            reason = (f"body larger than {config.max_body_bytes} bytes ({size}); "
                      f"only its first {kept} bytes are quarantined")
            return await self.refuse(source, request, Rejected(413, reason), body, verified=verified)
        return body

    async def _verify_and_parse(self, source: str, request: Request, body: _Body,
                                check_body: Callable[[bytes], None] | None,
                                parse: Callable[[Request, bytes], list[InboundEvent]],
                                ) -> list[InboundEvent] | Response:
        """The body's signature and its events; a Response when refused or when parsing failed."""
        try:
            if body.size > _PARSE_INLINE_BYTES:  # a big body is verified and parsed off the event loop
                return await anyio.to_thread.run_sync(_verify_and_parse, check_body, parse, request, body.data)
            return _verify_and_parse(check_body, parse, request, body.data)
        except _Unverified as exc:
            return await self.refuse(source, request, exc.rejected, body, verified=False)
        except Rejected as exc:
            return await self.refuse(source, request, exc, body, verified=True)
        except Exception as exc:  # noqa: BLE001 - a parsing bug: keep the body, let the sender retry
            log.error("parsing a %s delivery failed: %s", source, _describe(exc))
            await self.keep(source, request, f"parse failed: {type(exc).__name__}", 500, body, verified=True)
            return JSONResponse({"error": "the delivery could not be parsed, retry later"}, status_code=500)

    async def _store(self, source: str, request: Request, body: _Body,
                     events: list[InboundEvent]) -> list[bool] | Response:
        """Store the events in one transaction; per event whether it was new, or a Response when not stored."""
        try:
            return await self.in_db_thread(store_events, self.engine, events)
        except DB_UNAVAILABLE as exc:
            log.warning("store of record unavailable, %s delivery not acknowledged: %s", source,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return self.unavailable("store of record unavailable, retry later")
        except Exception as exc:  # noqa: BLE001 - never acknowledge what was not stored
            log.exception("storing a %s delivery failed", source)
            await self.keep(source, request, f"store failed: {type(exc).__name__}", 500, body, verified=True)
            return JSONResponse({"error": "the delivery could not be stored, retry later"}, status_code=500)

    def newstore_credentials(self, request: Request) -> None:
        check_bearer(request.headers.get("authorization"), self.config.newstore_api_key)

    async def newstore_events(self, request: Request) -> Response:
        response, events, stored = await self.intake("newstore", request, self.newstore_credentials, None,
                                                     _parse_newstore)
        if response is not None:
            return response
        return JSONResponse({"status": "stored" if stored[0] else "duplicate", "dedup_key": events[0].dedup_key})

    async def centra_webhooks(self, request: Request) -> Response:
        now = time.time()  # the signature's age is judged at the request's arrival
        header = request.headers.get("x-centra-signature")
        secret, tolerance = self.config.centra_webhook_secret, self.config.signature_tolerance_s

        def signature_header(_: Request) -> None:
            check_centra_signature(header, None, secret, now, tolerance)

        def signature(body: bytes) -> None:
            check_centra_signature(header, body, secret, now, tolerance)

        response, _, stored = await self.intake("centra", request, signature_header, signature, _parse_centra)
        if response is not None:
            return response
        return JSONResponse({"stored": sum(stored), "duplicates": len(stored) - sum(stored)})

    def cloudshelf_credentials(self, request: Request) -> None:
        """Cloudshelf signs nothing (no signature or auth header is documented for its webhooks), so the URL we
        register carries a shared secret, `?key=<secret>` (ASSUMPTION, our convention): compared in constant
        time; the intake never logs query strings (uvicorn's access log is off)."""
        expected = self.config.cloudshelf_webhook_key
        if not expected:
            raise Rejected(403, "Cloudshelf webhooks are not configured on this intake")
        given = request.query_params.get("key")
        if not given:
            raise Rejected(401, "missing key= in the webhook URL")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Rejected(403, "webhook key does not match")

    async def cloudshelf_webhooks(self, request: Request) -> Response:
        response, events, stored = await self.intake("cloudshelf", request, self.cloudshelf_credentials, None,
                                                     _parse_cloudshelf)
        if response is not None:
            return response
        return JSONResponse({"status": "stored" if stored[0] else "duplicate", "dedup_key": events[0].dedup_key})

    async def health(self, _: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def _ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM inbox_events WHERE 1 = 0"))

    async def ready(self, _: Request) -> JSONResponse:
        """Readiness: the store of record answers and has the inbox table."""
        try:
            await self.in_db_thread(self._ping)
        except Exception as exc:  # noqa: BLE001
            log.warning("readiness check failed: %s", type(exc).__name__)
            return self.unavailable("store of record unavailable")
        return JSONResponse({"status": "ready"})

    async def housekeeping(self) -> None:
        """Quarantine retention (and budget) at start and hourly, outside the requests' thread limiter."""
        while True:
            await anyio.to_thread.run_sync(self.budget.trim, self.engine)
            await anyio.sleep(_HOUSEKEEPING_S)

    @asynccontextmanager
    async def lifespan(self, _: Starlette):
        config = self.config
        log.info("intake ready (%s, %d database thread(s), body limit %d bytes, header limit %d bytes, "
                 "quarantine budget %d bytes / %d days)", self.engine.dialect.name, self.concurrency,
                 config.max_body_bytes, config.max_header_bytes, config.quarantine_max_bytes,
                 config.quarantine_retention_days)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.housekeeping)
            yield
            tasks.cancel_scope.cancel()


def create_intake_app(engine: Engine, config: IntakeConfig) -> Starlette:
    """The intake's ASGI app (see the module docstring and `IntakeApp`)."""
    return IntakeApp(engine, config).starlette()
