"""Starlette app of the fake Business Central: Entra ID token endpoint + the API v2.0 OData surface.

Routes (one host serves both, like the commercetools simulator):

* ``POST /{tenant}/oauth2/v2.0/token`` -- client credentials (form ``grant_type``, ``client_id``,
  ``client_secret``, ``scope``) -> ``{token_type, expires_in, ext_expires_in, access_token}``.
* ``/v2.0/{tenant}/{environment}/api/v2.0/companies`` and ``.../companies({id})/{entitySet}[({id})][/{navigation}]``
  with GET/POST/PATCH/DELETE as the pages allow; ``$filter`` (eq/ne/ge/le/gt/lt joined by ``and``), ``$top``,
  ``$skip``, ``$expand`` (``salesOrderLines``, ``salesShipmentLines``), server-driven paging with
  ``@odata.nextLink`` (``$skiptoken``) at ``page_size`` or ``Prefer: odata.maxpagesize=N``.
* Every entity carries ``@odata.etag``; PATCH/DELETE need ``If-Match`` (412 on a stale one).
* More than ``rate_limit`` requests within ``rate_window_s`` (sliding) -> 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import ENTITY_SETS, BcError, BusinessCentralState, etag_of

_PATH = re.compile(r"^companies\((?P<cid>[^)]+)\)/(?P<set>\w+)(?:\((?P<eid>[^)]+)\))?(?:/(?P<nav>\w+))?$")
_FILTER_TERM = re.compile(r"\s*(\w+)\s+(eq|ne|ge|le|gt|lt)\s+('(?:[^']|'')*'|[^\s)]+)\s*")
_NAV = {"salesOrders": "salesOrderLines", "salesShipments": "salesShipmentLines"}


class ApiSettings:
    """The knobs of one simulated environment (see PROVENANCE.md for the documented defaults)."""

    def __init__(self, *, tenant: str, environment: str, client_id: str, client_secret: str,
                 token_ttl_s: int = 3599, rate_limit: int = 6000, rate_window_s: float = 300.0,
                 retry_after_s: int = 1, page_size: int = 20000, clock: Callable[[], float] = time.monotonic):
        self.tenant = tenant
        self.environment = environment
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl_s = token_ttl_s
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.retry_after_s = retry_after_s
        self.page_size = page_size
        self.clock = clock
        self.tokens: dict[str, float] = {}
        self.requests: collections.deque[float] = collections.deque()
        self.throttled = 0
        self.lock = threading.Lock()


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _public(entity: dict[str, Any]) -> dict[str, Any]:
    out = {"@odata.etag": etag_of(entity)}
    out.update({k: v for k, v in entity.items() if not k.startswith("_")})
    return out


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    return text  # dates / datetimes / GUIDs compare as ISO strings


def parse_filter(expr: str) -> list[tuple[str, str, Any]]:
    """`a eq 'x' and b ge 2024-01-01` -> [(a, eq, 'x'), (b, ge, '2024-01-01')]; anything else -> BcError 400."""
    terms: list[tuple[str, str, Any]] = []
    for part in re.split(r"\s+and\s+(?=(?:[^']*'[^']*')*[^']*$)", expr.strip()):
        m = _FILTER_TERM.fullmatch(part)
        if not m:
            raise BcError(400, "BadRequest", f"Invalid filter expression '{part}'.")
        terms.append((m.group(1), m.group(2), _literal(m.group(3))))
    return terms


def _matches(entity: dict[str, Any], terms: list[tuple[str, str, Any]]) -> bool:
    for name, op, want in terms:
        if name not in entity:
            raise BcError(400, "BadRequest_PropertyNotFound", f"Could not find a property named '{name}'.")
        have = entity[name]
        if isinstance(want, float) and isinstance(have, int | float):
            have = float(have)
        elif isinstance(have, str) and isinstance(want, str) and op in ("ge", "le", "gt", "lt"):
            have, want = have[: len(want)] if len(have) > len(want) and op in ("le", "lt") else have, want
        try:
            ok = {"eq": have == want, "ne": have != want}.get(op)
            if ok is None:
                ok = {"ge": have >= want, "le": have <= want, "gt": have > want, "lt": have < want}[op]
        except TypeError as exc:
            raise BcError(400, "BadRequest", f"Incompatible types in filter on '{name}'.") from exc
        if not ok:
            return False
    return True


def create_app(state: BusinessCentralState, settings: ApiSettings) -> Starlette:
    api_root = f"/v2.0/{settings.tenant}/{settings.environment}/api/v2.0"

    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if request.path_params["tenant"] != settings.tenant:
            return JSONResponse({"error": "invalid_request", "error_description":
                                 "AADSTS90002: Tenant not found."}, status_code=400)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "error_description":
                                 "AADSTS70003: The app requested an unsupported grant type."}, status_code=400)
        if form.get("client_id") != settings.client_id or form.get("client_secret") != settings.client_secret:
            return JSONResponse({"error": "invalid_client", "error_description":
                                 "AADSTS7000215: Invalid client secret provided."}, status_code=401)
        access = secrets.token_urlsafe(32)
        with settings.lock:
            settings.tokens[access] = settings.clock() + settings.token_ttl_s
        return JSONResponse({"token_type": "Bearer", "expires_in": settings.token_ttl_s,
                             "ext_expires_in": settings.token_ttl_s, "access_token": access})

    def _gate(request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        now = settings.clock()
        with settings.lock:
            expiry = settings.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if expiry is None or expiry <= now:
                return _error(401, "Authentication_InvalidCredentials", "The server has rejected the client "
                              "credentials.")
            while settings.requests and settings.requests[0] <= now - settings.rate_window_s:
                settings.requests.popleft()
            if len(settings.requests) >= settings.rate_limit:
                settings.throttled += 1
                return _error(429, "Application_TooManyRequests", "Too many requests reached. Actual "
                              f"({len(settings.requests)}). Maximum ({settings.rate_limit}).",
                              headers={"Retry-After": str(settings.retry_after_s)})
            settings.requests.append(now)
        return None

    def _page(request: Request, rows: list[dict[str, Any]], expand: Callable[[dict[str, Any]], dict[str, Any]]
              ) -> dict[str, Any]:
        q = request.query_params
        if q.get("$filter"):
            terms = parse_filter(q["$filter"])
            rows = [r for r in rows if _matches(r, terms)]
        skip = int(q.get("$skip", 0) or 0)
        rows = rows[skip:]
        if q.get("$top"):
            rows = rows[: int(q["$top"])]
        start = 0
        if q.get("$skiptoken"):
            start = int(base64.urlsafe_b64decode(q["$skiptoken"].encode()).decode())
        size = settings.page_size
        m = re.search(r"odata\.maxpagesize=(\d+)", request.headers.get("prefer", ""))
        if m:
            size = min(size, int(m.group(1)))
        chunk = rows[start:start + size]
        body: dict[str, Any] = {"@odata.context": f"{request.url.scheme}://{request.url.netloc}{api_root}/$metadata",
                                "value": [expand(r) for r in chunk]}
        if start + size < len(rows):
            params = {k: v for k, v in q.items() if k != "$skiptoken"}
            params["$skiptoken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            body["@odata.nextLink"] = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?" + urlencode(
                params)
        return body

    def _expander(request: Request, company_id: str, entity_set: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        wanted = [e.strip() for e in request.query_params.get("$expand", "").split(",") if e.strip()]
        for nav in wanted:
            if _NAV.get(entity_set) != nav:
                raise BcError(400, "BadRequest_NotFound", f"Could not find a property named '{nav}'.")

        def expand(entity: dict[str, Any]) -> dict[str, Any]:
            out = _public(entity)
            for nav in wanted:
                out[nav] = [_public(c) for c in _children(company_id, entity_set, entity["id"])]
            return out
        return expand

    def _children(company_id: str, entity_set: str, parent_id: str) -> list[dict[str, Any]]:
        nav = _NAV[entity_set]
        rows = state.company(company_id).sets[nav].values()
        return sorted((r for r in rows if r["documentId"] == parent_id), key=lambda r: r["sequence"])

    async def api(request: Request) -> Response:
        gated = _gate(request)
        if gated is not None:
            return gated
        try:
            return await _api(request)
        except BcError as exc:
            return _error(exc.status, exc.code, exc.message)

    async def _api(request: Request) -> Response:
        rest = request.path_params["rest"]
        method = request.method
        if rest == "companies":
            if method != "GET":
                raise BcError(405, "BadRequest_MethodNotAllowed", "'POST' requests for 'companies' are not allowed.")
            rows = [{"id": c.id, "name": c.name, "displayName": c.name, "_version": 1}
                    for c in state.companies.values()]
            return JSONResponse(_page(request, rows, _public))
        m = _PATH.match(rest)
        if not m or m.group("set") not in ENTITY_SETS:
            raise BcError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches '{rest}'.")
        cid, eset, eid, nav = m.group("cid"), m.group("set"), m.group("eid"), m.group("nav")
        state.company(cid)
        body: dict[str, Any] = {}
        if method in ("POST", "PATCH"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError as exc:
                raise BcError(400, "BadRequest", "The request body is not valid JSON.") from exc
        if nav is not None:
            if _NAV.get(eset) != nav or eid is None:
                raise BcError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches '{rest}'.")
            state.get(cid, eset, eid)
            if method == "GET":
                return JSONResponse(_page(request, _children(cid, eset, eid), _public))
            if method == "POST" and nav == "salesOrderLines":
                return JSONResponse(_public(state.create_sales_order_line(cid, eid, body)), status_code=201)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{method}' requests for '{nav}' are not allowed.")
        if eid is None:
            if method == "GET":
                if eset in _NAV.values() and not request.query_params.get("$filter", "").count("documentId"):
                    raise BcError(400, "BadRequest", "You must specify an Id or a Document Id to get the lines.")
                rows = list(state.company(cid).sets[eset].values())
                return JSONResponse(_page(request, rows, _expander(request, cid, eset)))
            if method == "POST":
                if eset == "salesOrders":
                    created = state.create_sales_order(cid, body)
                elif eset == "customers":
                    created = state.add_customer(cid, body)
                elif eset == "salesOrderLines" and body.get("documentId"):
                    created = state.create_sales_order_line(cid, body["documentId"], body)
                elif eset == "items":
                    created = state.add_item(cid, body.get("number", ""), body.get("displayName", ""),
                                             float(body.get("unitPrice", 0.0)))
                elif eset == "itemVariants":
                    created = state.add_item_variant(cid, body.get("itemId", ""), body.get("code", ""),
                                                     body.get("description", ""))
                else:
                    raise BcError(405, "BadRequest_MethodNotAllowed", f"'POST' requests for '{eset}' are not "
                                  "allowed.")
                return JSONResponse(_expander(request, cid, eset)(created), status_code=201)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{method}' requests for '{eset}' are not allowed.")
        if method == "GET":
            return JSONResponse(_expander(request, cid, eset)(state.get(cid, eset, eid)))
        if method == "PATCH":
            return JSONResponse(_public(state.patch(cid, eset, eid, body, request.headers.get("if-match"))))
        if method == "DELETE":
            state.delete(cid, eset, eid, request.headers.get("if-match"))
            return Response(status_code=204)
        raise BcError(405, "BadRequest_MethodNotAllowed", f"'{method}' requests are not allowed.")

    return Starlette(routes=[
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        Route(api_root + "/{rest:path}", api, methods=["GET", "POST", "PATCH", "DELETE"]),
    ])
