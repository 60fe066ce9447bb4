"""Starlette app of the NewStore fake: auth, rate limits, fault injection and the REST surface.

Routes (all JSON; errors are Problem JSON ``type,title,status,detail,instance,error_code,message,request_id``):

* ``POST /auth/realms/{tenant}/protocol/openid-connect/token`` (form or HTTP Basic client credentials),
  legacy ``POST /v0/token`` (``grant_type=password`` with client id/secret as username/password, or
  ``client_credentials``). Not rate limited.
* ``POST /v0/d/fulfill_order``; ``GET /v0/orders/{id}?id_type=``; ``GET|POST /v0/orders/{id}/cancel?id_type=``;
  ``GET /v0/fulfillment_requests/{order_uuid}``; ``POST /v0/fulfillment_request/{ffr_uuid}/set_items_states``.
* ``GET /v0/stock/insights``; ``POST /v0/stock/atp`` (path is an assumption, see package docs);
  ``GET /v0/locations``; ``GET /v0/stock_locations``; ``GET /stores``; ``GET /stores/{storeId}``;
  ``GET /_/v0/hq/stocked_products?limit&offset``.
* ``GET|POST /v0/d/orders/{order_id}/returns``; ``GET /v0/d/orders/{order_id}/returns/{return_id}``.
* ``GET|POST /api/v1/org/integrations/eventstream``; ``GET .../{id}``; ``POST .../{id}/_start|_stop``.

Without ``Authorization`` an API call gets 401; a wrong, expired or non-Bearer token gets 403.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import NewStoreState, SimError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT_RATES: dict[str, float] = {
    "fulfill_order": 20.0,
    "get_order": 100.0,
    "fulfillment_requests": 70.0,
    "stock_insights": 90.0,
}
"""Per-endpoint limits (requests/second) from the spec; the tenant bucket (default 200/s) applies on top."""

_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}
_FAULT_CODES = {429: "too_many_requests", 500: "internal_server_error", 502: "bad_gateway",
                503: "service_unavailable", 504: "gateway_timeout"}


class TokenBucket:
    """Classic token bucket; ``take()`` returns 0 when allowed, else seconds until a token is free."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


@dataclass
class FaultRule:
    remaining: int
    status: int
    path: str | None = None  # prefix match on the request path
    method: str | None = None
    after_processing: bool = False  # run the handler (state changes happen), then answer with the fault
    retry_after: float | None = None


@dataclass
class Exchange:
    """One request/response pair seen by the fake (for spec validation and assertions)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int
    response: Any
    headers: dict[str, str] = field(default_factory=dict)


class SimulatorControls:
    """Test/generator knobs: forced failures, rate limits, token expiry, request log."""

    def __init__(self, *, tenant_rate: float | None = 200.0, endpoint_rates: dict[str, float] | None = None,
                 token_ttl: int = 3600, log_size: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.token_ttl = token_ttl
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry epoch seconds)
        self.faults: list[FaultRule] = []
        self.requests: deque[Exchange] = deque(maxlen=log_size)
        self.set_rate_limits(tenant_rate, endpoint_rates)

    def set_rate_limits(self, tenant_rate: float | None = 200.0, endpoint_rates: dict[str, float] | None = None,
                        *, burst: float | None = None) -> None:
        """Tenant rate (None = unlimited) and per-endpoint rates (defaults from the spec)."""
        with self._lock:
            self.tenant_bucket = TokenBucket(tenant_rate, burst) if tenant_rate else None
            rates = DEFAULT_ENDPOINT_RATES if endpoint_rates is None else endpoint_rates
            self.endpoint_buckets = {k: TokenBucket(v, burst if burst is not None else None) for k, v in rates.items()}

    def fail_next(self, n: int = 1, status: int = 500, *, path: str | None = None, method: str | None = None,
                  after_processing: bool = False, retry_after: float | None = 1) -> None:
        """Answer the next ``n`` matching API requests with ``status`` (429 carries ``Retry-After``)."""
        with self._lock:
            self.faults.append(FaultRule(n, status, path, method.upper() if method else None, after_processing,
                                         retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def expire_tokens(self) -> None:
        """Invalidate every issued token (clients then get 403 until they fetch a new one)."""
        with self._lock:
            self.tokens.clear()

    def issue_token(self, client_id: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = (client_id, time.time() + self.token_ttl)
        return token, self.token_ttl

    def token_valid(self, token: str) -> bool:
        with self._lock:
            entry = self.tokens.get(token)
            return entry is not None and entry[1] > time.time()

    def take_fault(self, method: str, path: str, *, is_api: bool) -> FaultRule | None:
        with self._lock:
            for rule in self.faults:
                if rule.remaining <= 0:
                    continue
                if rule.path is None and not is_api:
                    continue
                if rule.path is not None and not path.startswith(rule.path):
                    continue
                if rule.method is not None and rule.method != method:
                    continue
                rule.remaining -= 1
                self.faults = [r for r in self.faults if r.remaining > 0]
                return rule
            return None

    def throttle(self, key: str | None) -> float:
        """Seconds to wait, or 0 if the request may pass (tenant bucket, then the endpoint bucket)."""
        with self._lock:
            tenant, endpoint = self.tenant_bucket, self.endpoint_buckets.get(key or "")
        if tenant is not None:
            wait = tenant.take()
            if wait:
                return wait
        return endpoint.take() if endpoint is not None else 0.0

    def log(self, exchange: Exchange) -> None:
        with self._lock:
            self.requests.append(exchange)

    def exchanges(self) -> list[Exchange]:
        """Every request/response seen so far (bounded), oldest first."""
        with self._lock:
            return list(self.requests)

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()


def _problem(status: int, error_code: str, message: str, *, instance: str = "", request_id: str = "",
             messages: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": f"/problems/{error_code}", "title": _TITLES.get(status, "Error"),
                            "status": status, "detail": message, "instance": instance, "error_code": error_code,
                            "message": message, "request_id": request_id}
    if messages:
        body["messages"] = messages
    return body


def _retry_after(seconds: float) -> str:
    return str(max(0, math.ceil(seconds)))


Handler = Callable[[Request, Any], Awaitable[Any]]


class _App:
    def __init__(self, state: NewStoreState, clients: dict[str, str], controls: SimulatorControls) -> None:
        self.state = state
        self.clients = clients
        self.controls = controls

    # -- framework -----------------------------------------------------------------------------------

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
                out = _problem(exc.status, exc.error_code, exc.message, instance=request.url.path, request_id=rid,
                               messages=exc.messages)
            except Exception as exc:  # a bug in the fake must still look like a NewStore 500
                log.exception("newstore simulator failed on %s %s", request.method, request.url.path)
                status, problem = 500, True
                out = _problem(500, "internal_server_error", f"{type(exc).__name__}: {exc}",
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
                return 429, _problem(429, "too_many_requests", "Rate limit exceeded.", instance=path,
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
        return fault.status, _problem(fault.status, code, "Injected failure.", instance=path, request_id=rid), \
            headers, True

    # -- auth ----------------------------------------------------------------------------------------

    def _client_from(self, request: Request, form: dict[str, str], user_key: str, secret_key: str) -> str | None:
        cid, secret = form.get(user_key), form.get(secret_key)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
                user, _, pw = decoded.partition(":")
                cid, secret = unquote(user), unquote(pw)
            except ValueError:
                return None
        if cid and secret is not None and self.clients.get(cid) == secret:
            return cid
        return None

    async def token(self, request: Request, body: Any) -> Any:
        if request.path_params["tenant"] != self.state.tenant:
            return 404, {"error": "Realm does not exist"}
        form = body if isinstance(body, dict) else {}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
        cid = self._client_from(request, form, "client_id", "client_secret")
        if cid is None:
            return 401, {"error": "unauthorized_client",
                         "error_description": "Invalid client or Invalid client credentials"}
        token, ttl = self.controls.issue_token(cid)
        return {"access_token": token, "expires_in": ttl, "refresh_expires_in": 0, "token_type": "Bearer",
                "not-before-policy": 0, "scope": form.get("scope") or "profile email"}

    async def legacy_token(self, request: Request, body: Any) -> Any:
        form = body if isinstance(body, dict) else {}
        grant = form.get("grant_type")
        if grant == "password":
            cid = self._client_from(request, form, "username", "password")
        elif grant == "client_credentials":
            cid = self._client_from(request, form, "client_id", "client_secret")
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
        if cid is None:
            return 401, {"error": "invalid_grant", "error_description": "Invalid credentials"}
        token, ttl = self.controls.issue_token(cid)
        return {"access_token": token, "refresh_token": secrets.token_urlsafe(16), "expires_in": ttl,
                "scope": "", "token_type": "Bearer"}

    # -- orders ----------------------------------------------------------------------------------------

    async def fulfill_order(self, request: Request, body: Any) -> Any:
        return self.state.fulfill_order(body)

    @staticmethod
    def _id_type(request: Request) -> str:
        id_type = request.query_params.get("id_type")
        if not id_type:
            raise SimError(400, "bad_request", "'id_type' is a required parameter.")
        return id_type

    async def get_order(self, request: Request, body: Any) -> Any:
        return self.state.get_order(request.path_params["id"], self._id_type(request))

    async def cancel_status(self, request: Request, body: Any) -> Any:
        return self.state.cancellation_status(request.path_params["id"], self._id_type(request))

    async def cancel(self, request: Request, body: Any) -> Any:
        id_type = self._id_type(request)
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason:
            raise SimError(400, "bad_request",
                           "Validation of cancel order request failed with error: 'reason' is a required property.")
        self.state.cancel_order(request.path_params["id"], id_type, reason, body.get("note"))
        return Response(status_code=200)

    async def fulfillment_requests(self, request: Request, body: Any) -> Any:
        return self.state.fulfillment_requests(request.path_params["order_uuid"])

    async def set_items_states(self, request: Request, body: Any) -> Any:
        self.state.set_items_states(request.path_params["ffr_uuid"], body)
        return Response(status_code=204)

    # -- returns ---------------------------------------------------------------------------------------

    async def create_return(self, request: Request, body: Any) -> Any:
        return 201, self.state.create_return(request.path_params["order_id"], body)

    async def list_returns(self, request: Request, body: Any) -> Any:
        return self.state.list_returns(request.path_params["order_id"])

    async def get_return(self, request: Request, body: Any) -> Any:
        return self.state.get_return(request.path_params["order_id"], request.path_params["return_id"])

    # -- inventory -------------------------------------------------------------------------------------

    async def stock_insights(self, request: Request, body: Any) -> Any:
        for p in ("product_id", "fulfillment_node_id"):
            if not request.query_params.get(p):
                raise SimError(400, "bad_request", f"'{p}' is a required parameter.")
        q = request.query_params
        return self.state.stock_insights(q["product_id"], q["fulfillment_node_id"])

    async def atp(self, request: Request, body: Any) -> Any:
        keys = body.get("atp_keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not keys or len(keys) > 2000 or not all(
                isinstance(k, dict) and k.get("product_id") and k.get("fulfillment_node_id") for k in keys):
            raise SimError(400, "bad_request",
                           "'atp_keys' must be 1..2000 objects with product_id and fulfillment_node_id")
        return self.state.atp_by_keys(keys)

    async def locations(self, request: Request, body: Any) -> Any:
        return self.state.locations()

    async def stock_locations(self, request: Request, body: Any) -> Any:
        return [{"name": "main", "salable": True}, {"name": "damaged", "salable": False}]

    @staticmethod
    def _int(request: Request, name: str, default: int | None, lo: int, hi: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            if default is None:
                raise SimError(400, "bad_request", f"'{name}' is a required parameter.")
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SimError(400, "bad_request", f"'{name}' must be an integer.") from None
        if not lo <= value <= hi:
            raise SimError(400, "bad_request", f"'{name}' must be between {lo} and {hi}.")
        return value

    async def stores(self, request: Request, body: Any) -> Any:
        limit = self._int(request, "limit", None, 1, 100)
        return self.state.stores(limit, request.query_params.get("start_at"))

    async def store(self, request: Request, body: Any) -> Any:
        return self.state.store(request.path_params["storeId"])

    async def stocked_products(self, request: Request, body: Any) -> Any:
        limit = self._int(request, "limit", 100, 1, 1000)
        offset = self._int(request, "offset", 0, 0, 10**9)
        return self.state.stocked_products(limit, offset)

    # -- event stream ----------------------------------------------------------------------------------

    async def integrations(self, request: Request, body: Any) -> Any:
        return {"integrations": self.state.list_integrations()}

    async def create_integration(self, request: Request, body: Any) -> Any:
        return 201, self.state.create_integration(body)

    async def integration(self, request: Request, body: Any) -> Any:
        return self.state.get_integration(request.path_params["id"])

    async def start_integration(self, request: Request, body: Any) -> Any:
        return self.state.start_integration(request.path_params["id"], body)

    async def stop_integration(self, request: Request, body: Any) -> Any:
        return self.state.stop_integration(request.path_params["id"])

    # -- assembly ----------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        a = self.api
        es = "/api/v1/org/integrations/eventstream"
        return [
            Route("/auth/realms/{tenant}/protocol/openid-connect/token", a(self.token, auth=False), methods=["POST"]),
            Route("/v0/token", a(self.legacy_token, auth=False), methods=["POST"]),
            Route("/v0/d/fulfill_order", a(self.fulfill_order, "fulfill_order"), methods=["POST"]),
            Route("/v0/orders/{id}", a(self.get_order, "get_order"), methods=["GET"]),
            Route("/v0/orders/{id}/cancel", a(self.cancel_status), methods=["GET"]),
            Route("/v0/orders/{id}/cancel", a(self.cancel), methods=["POST"]),
            Route("/v0/fulfillment_requests/{order_uuid}", a(self.fulfillment_requests, "fulfillment_requests"),
                  methods=["GET"]),
            Route("/v0/fulfillment_request/{ffr_uuid}/set_items_states", a(self.set_items_states),
                  methods=["POST"]),
            Route("/v0/d/orders/{order_id}/returns", a(self.create_return), methods=["POST"]),
            Route("/v0/d/orders/{order_id}/returns", a(self.list_returns), methods=["GET"]),
            Route("/v0/d/orders/{order_id}/returns/{return_id}", a(self.get_return), methods=["GET"]),
            Route("/v0/stock/insights", a(self.stock_insights, "stock_insights"), methods=["GET"]),
            Route("/v0/stock/atp", a(self.atp, "atp"), methods=["POST"]),
            Route("/v0/locations", a(self.locations), methods=["GET"]),
            Route("/v0/stock_locations", a(self.stock_locations), methods=["GET"]),
            Route("/stores", a(self.stores), methods=["GET"]),
            Route("/stores/{storeId}", a(self.store), methods=["GET"]),
            Route("/_/v0/hq/stocked_products", a(self.stocked_products, "stocked_products"), methods=["GET"]),
            Route(es, a(self.integrations), methods=["GET"]),
            Route(es, a(self.create_integration), methods=["POST"]),
            Route(es + "/{id}", a(self.integration), methods=["GET"]),
            Route(es + "/{id}/_start", a(self.start_integration), methods=["POST"]),
            Route(es + "/{id}/_stop", a(self.stop_integration), methods=["POST"]),
        ]


def create_app(state: NewStoreState, *, clients: dict[str, str], controls: SimulatorControls | None = None,
               tenant_rate: float | None = 200.0, endpoint_rates: dict[str, float] | None = None,
               token_ttl: int = 3600) -> Starlette:
    """The NewStore fake as an ASGI app; knobs live on ``app.state.controls`` (:class:`SimulatorControls`)."""
    controls = controls or SimulatorControls(tenant_rate=tenant_rate, endpoint_rates=endpoint_rates,
                                             token_ttl=token_ttl)
    impl = _App(state, dict(clients), controls)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
        body = _problem(status, code, _TITLES.get(status, "Error"), instance=request.url.path,
                        request_id=uuid.uuid4().hex)
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    app = Starlette(routes=impl.routes(), exception_handlers={404: http_error, 405: http_error})
    app.state.controls = controls
    app.state.newstore = state
    return app
