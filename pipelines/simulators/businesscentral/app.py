"""Starlette app of the fake Business Central: Entra ID token endpoint + the API v2.0 OData surface.

Routes (one host serves both, like the commercetools simulator):

* ``POST /{tenant}/oauth2/v2.0/token`` -- client credentials (form ``grant_type``, ``client_id``,
  ``client_secret``, ``scope``) -> ``{token_type, expires_in, ext_expires_in, access_token}``.
* ``/v2.0/{tenant}/{environment}/api/v2.0/companies`` and ``.../companies({id})/{entitySet}[({id})][/{navigation}]``
  with GET/POST/PATCH/DELETE as the pages allow; ``$filter`` (eq/ne/ge/le/gt/lt joined by ``and``), ``$top``,
  ``$skip``, ``$expand`` (``salesOrderLines``, ``salesShipmentLines``), server-driven paging with
  ``@odata.nextLink`` (``$skiptoken``) at ``page_size`` or ``Prefer: odata.maxpagesize=N``.
* ``$orderby`` on one field (``asc``/``desc``); ``$filter`` compares datetimes as instants (``ge``/``gt``
  on ``lastModifiedDateTime``), dates and strings as text.
* General journals: ``journals`` (GET/POST), ``journals({id})/journalLines[({lineId})]`` (GET/POST/DELETE),
  the bound action ``POST journals({id})/Microsoft.NAV.post`` (204), read-only ``generalLedgerEntries`` and
  ``accounts``.
* Every entity carries ``@odata.etag``; PATCH/DELETE need ``If-Match`` (412 on a stale one).
* More than ``rate_limit`` requests within ``rate_window_s`` (sliding) -> 429 with ``Retry-After``.
* Fault knobs (for tests): ``force_429`` (the next N API requests answer 429), ``force_412`` (the next N
  PATCH/DELETE answer 412 without applying), ``lose_responses`` (the next N writes -- POST/PATCH/DELETE whose path
  contains ``lose_path_contains`` when set -- are committed, then the connection drops before the answer).
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
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import ENTITY_SETS, BcError, BusinessCentralState, etag_of

_PATH = re.compile(r"^companies\((?P<cid>[^)]+)\)/(?P<set>\w+)(?:\((?P<eid>[^)]+)\))?"
                   r"(?:/(?P<nav>[\w.]+)(?:\((?P<nid>[^)]+)\))?)?$")
_FILTER_TERM = re.compile(r"\s*(\w+)\s+(eq|ne|ge|le|gt|lt)\s+('(?:[^']|'')*'|[^\s)]+)\s*")
_NAV = {"salesOrders": "salesOrderLines", "salesShipments": "salesShipmentLines", "journals": "journalLines"}
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_POST_ACTION = "Microsoft.NAV.post"


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
        self.force_429 = 0
        self.force_412 = 0
        self.lose_responses = 0
        self.lose_path_contains: str | None = None
        self.lost = 0
        self.lock = threading.Lock()

    def take_lost(self, method: str, path: str) -> bool:
        """Whether this committed write's answer is to be lost (consumes one `lose_responses`)."""
        with self.lock:
            if method == "GET" or self.lose_responses <= 0:
                return False
            if self.lose_path_contains and self.lose_path_contains not in path:
                return False
            self.lose_responses -= 1
            self.lost += 1
            return True

    def take_412(self) -> bool:
        with self.lock:
            if self.force_412 <= 0:
                return False
            self.force_412 -= 1
            return True


class _LostResponse(Response):
    """Starts an answer, then drops the connection: the client sees a transport error after the commit."""

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"100000")]})
        await send({"type": "http.response.body", "body": b'{"', "more_body": True})
        # returning with the body incomplete makes the server close the connection (it logs one error line)


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


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _matches(entity: dict[str, Any], terms: list[tuple[str, str, Any]]) -> bool:
    for name, op, want in terms:
        if name not in entity:
            raise BcError(400, "BadRequest_PropertyNotFound", f"Could not find a property named '{name}'.")
        have = entity[name]
        if isinstance(want, str) and _DATETIME.match(want) and isinstance(have, str):
            if not _DATETIME.match(have):
                raise BcError(400, "BadRequest", f"Incompatible types in filter on '{name}'.")
            have, want = _instant(have), _instant(want)
        elif isinstance(want, float) and isinstance(have, int | float):
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


def _order_by(rows: list[dict[str, Any]], expr: str) -> list[dict[str, Any]]:
    """`$orderby=field [asc|desc]` (one field; the simulator's limit). Stable, so ties keep insertion order."""
    m = re.fullmatch(r"\s*(\w+)(?:\s+(asc|desc))?\s*", expr)
    if not m:
        raise BcError(400, "BadRequest", f"Invalid $orderby expression '{expr}'.")
    name, desc = m.group(1), m.group(2) == "desc"
    if rows and name not in rows[0]:
        raise BcError(400, "BadRequest_PropertyNotFound", f"Could not find a property named '{name}'.")

    def key(row: dict[str, Any]) -> Any:
        value = row.get(name)
        if isinstance(value, str) and _DATETIME.match(value):
            return (0, _instant(value).timestamp())
        return (0, value) if value is not None else (1, 0)
    return sorted(rows, key=key, reverse=desc)


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
            if len(settings.requests) >= settings.rate_limit or settings.force_429 > 0:
                settings.force_429 = max(0, settings.force_429 - 1)
                settings.throttled += 1
                return _error(429, "Application_TooManyRequests", "Too many requests reached. Actual "
                              f"({len(settings.requests)}). Maximum ({settings.rate_limit}).",
                              headers={"Retry-After": str(settings.retry_after_s)})
            settings.requests.append(now)
        return None

    def _page(request: Request, rows: list[dict[str, Any]], expand: Callable[[dict[str, Any]], dict[str, Any]]
              ) -> dict[str, Any]:
        q = request.query_params
        rows = [r for r in rows if state.visible(r)]
        if q.get("$filter"):
            terms = parse_filter(q["$filter"])
            rows = [r for r in rows if _matches(r, terms)]
        if q.get("$orderby"):
            rows = _order_by(rows, q["$orderby"])
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
        if nav == "journalLines":
            return state.journal_lines(company_id, parent_id)
        rows = state.company(company_id).sets[nav].values()
        return sorted((r for r in rows if r["documentId"] == parent_id and state.visible(r)),
                      key=lambda r: r["sequence"])

    async def api(request: Request) -> Response:
        gated = _gate(request)
        if gated is not None:
            return gated
        try:
            response = await _api(request)
        except BcError as exc:
            return _error(exc.status, exc.code, exc.message)
        if response.status_code < 400 and settings.take_lost(request.method, request.url.path):
            return _LostResponse()
        return response

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
        cid, eset, eid, nav, nid = (m.group("cid"), m.group("set"), m.group("eid"), m.group("nav"),
                                    m.group("nid"))
        state.company(cid)
        body: dict[str, Any] = {}
        if method in ("POST", "PATCH"):
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError as exc:
                raise BcError(400, "BadRequest", "The request body is not valid JSON.") from exc
            if not isinstance(body, dict):
                raise BcError(400, "BadRequest", "The request body must be a JSON object.")
        if nav == _POST_ACTION:
            if eset != "journals" or eid is None or nid is not None or method != "POST":
                raise BcError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches '{rest}'.")
            state.post_journal(cid, eid)
            return Response(status_code=204)
        if nav is not None:
            if _NAV.get(eset) != nav or eid is None:
                raise BcError(404, "BadRequest_NotFound", f"No HTTP resource was found that matches '{rest}'.")
            state.get(cid, eset, eid)
            if nid is not None:
                child = state.get(cid, nav, nid)
                if child.get("documentId", child.get("journalId")) != eid:
                    raise BcError(404, "BadRequest_NotFound", f"The {nav} '{nid}' does not exist.")
                return await _entity(request, cid, nav, nid, body)
            if method == "GET":
                return JSONResponse(_page(request, _children(cid, eset, eid), _public))
            if method == "POST" and nav == "salesOrderLines":
                return JSONResponse(_public(state.create_sales_order_line(cid, eid, body)), status_code=201)
            if method == "POST" and nav == "journalLines":
                return JSONResponse(_public(state.create_journal_line(cid, eid, body)), status_code=201)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{method}' requests for '{nav}' are not allowed.")
        if eid is None:
            if method == "GET":
                if eset == "journalLines" and "journalId" not in request.query_params.get("$filter", ""):
                    raise BcError(400, "BadRequest", "You must specify a journal batch ID or a journal ID to get a "
                                  "journal line.")
                if eset in _NAV.values() and eset != "journalLines" and not request.query_params.get(
                        "$filter", "").count("documentId"):
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
                elif eset == "journals":
                    created = state.create_journal(cid, body)
                elif eset == "journalLines" and body.get("journalId"):
                    created = state.create_journal_line(cid, body["journalId"], body)
                else:
                    raise BcError(405, "BadRequest_MethodNotAllowed", f"'POST' requests for '{eset}' are not "
                                  "allowed.")
                return JSONResponse(_expander(request, cid, eset)(created), status_code=201)
            raise BcError(405, "BadRequest_MethodNotAllowed", f"'{method}' requests for '{eset}' are not allowed.")
        return await _entity(request, cid, eset, eid, body)

    async def _entity(request: Request, cid: str, eset: str, eid: str, body: dict[str, Any]) -> Response:
        method = request.method
        if method == "GET":
            return JSONResponse(_expander(request, cid, eset)(state.get(cid, eset, eid)))
        if method in ("PATCH", "DELETE") and settings.take_412():
            state.get(cid, eset, eid)
            raise BcError(412, "Request_EntityChanged", "Another user has already changed the record.")
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
