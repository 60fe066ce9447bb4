"""The request pipeline of the NewStore fake: body parsing, rate limits, auth, forced failures and
Problem JSON errors around every handler, and the request log."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .common import SimError
from .controls import Exchange, FaultRule, SimulatorControls
from .state import NewStoreState

log = logging.getLogger("pipelines.simulators.newstore.app")  # the name it had before the app was split

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
          503: "Service Unavailable", 504: "Gateway Timeout"}
_FAULT_CODES = {429: "too_many_requests", 500: "internal_server_error", 502: "bad_gateway",
                503: "service_unavailable", 504: "gateway_timeout"}


def problem_body(status: int, error_code: str, message: str, *, instance: str = "", request_id: str = "",
                 messages: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"/problems/{error_code}", "title": TITLES.get(status, "Error"),
                            "status": status, "detail": message, "instance": instance, "error_code": error_code,
                            "message": message, "request_id": request_id}
    if messages:
        body["messages"] = messages
    return body


def _retry_after(seconds: float) -> str:
    return str(max(0, math.ceil(seconds)))


Handler = Callable[[Request, Any], Awaitable[Any]]


class ApiBase:
    """The pipeline every route goes through; the handlers (``auth``, ``rest``) are mixins on top."""

    def __init__(self, state: NewStoreState, clients: dict[str, str], controls: SimulatorControls) -> None:
        self.state = state
        self.clients = clients
        self.controls = controls

    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None,
                 problem: bool = False) -> Response:
        if body is None:
            return Response(status_code=status, headers=headers)
        media = "application/problem+json" if problem else "application/json"
        return JSONResponse(body, status_code=status, headers=headers, media_type=media)

    def api(self, fn: Handler, key: str | None = None, *, auth: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rid = uuid.uuid4().hex
            raw = await request.body()
            body: Any = None
            status, out, headers, problem = 200, None, {}, False
            query = {k: request.query_params.getlist(k) for k in request.query_params}
            try:
                if raw and "json" in request.headers.get("content-type", "application/json"):
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise SimError(400, "invalid_json", "The request body is not valid JSON.") from None
                elif raw:
                    body = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
                status, out, headers, problem = await self._dispatch(request, fn, key, body, auth, rid)
            except SimError as exc:
                status, problem = exc.status, True
                out = problem_body(exc.status, exc.error_code, exc.message, instance=request.url.path,
                                   request_id=rid, messages=exc.messages)
            except Exception as exc:  # a bug in the fake must still look like a NewStore 500
                log.exception("newstore simulator failed on %s %s", request.method, request.url.path)
                status, problem = 500, True
                out = problem_body(500, "internal_server_error", f"{type(exc).__name__}: {exc}",
                                   instance=request.url.path, request_id=rid)
            self.controls.log(Exchange(request.method, request.url.path, query, body, status, out, headers))
            return self._respond(status, out, headers, problem)

        return endpoint

    async def _dispatch(self, request: Request, fn: Handler, key: str | None, body: Any, auth: bool,
                        rid: str) -> tuple[int, Any, dict[str, str], bool]:
        path = request.url.path
        if auth:
            wait = self.controls.throttle(key)
            if wait:
                return 429, problem_body(429, "too_many_requests", "Rate limit exceeded.", instance=path,
                                         request_id=rid), {"Retry-After": _retry_after(wait)}, True
            header = request.headers.get("authorization")
            if not header:
                raise SimError(401, "unauthorized", "Missing Authorization header.")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not self.controls.token_valid(token.strip()):
                raise SimError(403, "forbidden", "The access token is invalid or expired.")
        fault = self.controls.take_fault(request.method, path, is_api=auth)
        if fault is not None and not fault.after_processing:
            return self._fault(fault, path, rid)
        result = await fn(request, body)
        if fault is not None:
            return self._fault(fault, path, rid)
        if isinstance(result, Response):
            return result.status_code, None, {}, False
        if isinstance(result, tuple):
            return result[0], result[1], {}, False
        return 200, result, {}, False

    def _fault(self, fault: FaultRule, path: str, rid: str) -> tuple[int, Any, dict[str, str], bool]:
        headers = {}
        if fault.status == 429 and fault.retry_after is not None:
            headers["Retry-After"] = _retry_after(fault.retry_after)
        code = _FAULT_CODES.get(fault.status, "error")
        return fault.status, problem_body(fault.status, code, "Injected failure.", instance=path, request_id=rid), \
            headers, True

