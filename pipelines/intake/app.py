"""ASGI intake: NewStore's event stream and Centra's webhooks land here.

Each delivery is verified, stored once in `inbox_events` (unique on source + dedup key, so several
replicas on PostgreSQL cannot both store it) and answered; refused deliveries get a 4xx with a reason
and their raw body is kept in `intake_quarantine`. Work on the events happens later, in Dagster runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.intake.verify import (
    Rejected,
    check_bearer,
    check_centra_signature,
    parse_centra_webhook,
    parse_newstore_event,
)
from pipelines.store.inbox import quarantine, store_events

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class IntakeConfig:
    newstore_api_key: str
    centra_webhook_secret: str
    signature_tolerance_s: int = 300


def create_intake_app(engine: Engine, config: IntakeConfig) -> Starlette:
    async def _refuse(source: str, request: Request, body: bytes, exc: Rejected) -> JSONResponse:
        log.warning("refused %s delivery: %s", source, exc.reason)
        await run_in_threadpool(quarantine, engine, source=source, reason=exc.reason, status_code=exc.status,
                                headers=dict(request.headers), body=body)
        return JSONResponse({"error": exc.reason}, status_code=exc.status)

    async def newstore_events(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            if len(body) > MAX_BODY_BYTES:
                raise Rejected(413, "body larger than 5 MiB")
            check_bearer(request.headers.get("authorization"), config.newstore_api_key)
            event = parse_newstore_event(body)
        except Rejected as exc:
            return await _refuse("newstore", request, body, exc)
        (stored,) = await run_in_threadpool(store_events, engine, [event])
        return JSONResponse({"status": "stored" if stored else "duplicate", "dedup_key": event.dedup_key})

    async def centra_webhooks(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            if len(body) > MAX_BODY_BYTES:
                raise Rejected(413, "body larger than 5 MiB")
            check_centra_signature(request.headers.get("x-centra-signature"), body,
                                   config.centra_webhook_secret, time.time(), config.signature_tolerance_s)
            events = parse_centra_webhook(body)
        except Rejected as exc:
            return await _refuse("centra", request, body, exc)
        stored = await run_in_threadpool(store_events, engine, events)
        return JSONResponse({"stored": sum(stored), "duplicates": len(stored) - sum(stored)})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[
        Route("/newstore/events", newstore_events, methods=["POST"]),
        Route("/centra/webhooks", centra_webhooks, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ])
