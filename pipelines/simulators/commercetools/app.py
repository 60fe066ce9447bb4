"""Starlette app of the commercetools fake: OAuth, scopes, faults, and the HTTP API on one host.

Routes (JSON; errors are ``{statusCode, message, errors[{code, message, ...}]}``):

* ``POST /oauth/token`` (HTTP Basic client credentials, ``grant_type=client_credentials``, optional ``scope``);
  ``POST /oauth/introspect?token=`` (HTTP Basic). Neither takes faults.
* ``GET|POST /{projectKey}/{resource}`` (query / create) and ``GET|POST|DELETE /{projectKey}/{resource}/{ident}``
  (``ident`` = id, ``key=<key>``, ``order-number=<n>`` for orders) for ``inventory``, ``orders``, ``carts``,
  ``payments``, ``customers``, ``types``, ``subscriptions`` (writes) and ``channels``, ``stores``, ``products``,
  ``product-projections``, ``tax-categories``, ``product-types``, ``messages`` (reads). ``POST
  /{projectKey}/orders/import``.
* Without a valid Bearer token: 401 ``invalid_token``; a token without a scope the route needs: 403
  ``insufficient_scope`` (``view_<x>`` reads, ``manage_<x>`` writes, ``manage_project`` everything).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import TYPE_IDS, CtError, invalid_input, invalid_json, not_found
from .query import page
from .state import CommercetoolsState

log = logging.getLogger("pipelines.simulators.commercetools.app")

# resource path -> scope area (``view_<area>`` / ``manage_<area>``); reference §3.1 names products, orders,
# channels, stores, subscriptions and messages; the others follow the same pattern (ASSUMPTION).
SCOPE_AREA = {
    "inventory": "products", "products": "products", "product-projections": "products",
    "product-types": "products", "tax-categories": "tax_categories", "orders": "orders", "carts": "orders",
    "payments": "payments", "customers": "customers", "channels": "channels", "stores": "stores",
    "messages": "messages", "subscriptions": "subscriptions", "types": "types",
}
WRITABLE = {"inventory", "orders", "carts", "payments", "customers", "types", "subscriptions"}
_BY_TYPE_ID = {v: k for k, v in TYPE_IDS.items()}


@dataclass
class Token:
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime


def _wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class AuthRegistry:
    """Clients, issued tokens and the clock token expiry is measured on (the wall clock by default, not the
    state's clock: the trading world moves that one back in time while it replays history)."""

    clients: dict[str, tuple[str, tuple[str, ...]]]
    token_ttl_s: int
    tokens: dict[str, Token] = field(default_factory=dict)
    clock: Callable[[], datetime] = _wall_clock


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (no multipart)."""
    raw = (await request.body()).decode(errors="replace")
    return {k: v[-1] for k, v in parse_qs(raw).items()}


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, pw = base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        return None
    return unquote(user), unquote(pw)


class CommercetoolsApp:
    def __init__(self, state: CommercetoolsState, auth: AuthRegistry, response_delay_s: float = 0.0) -> None:
        self.state = state
        self.auth = auth
        self.response_delay_s = response_delay_s

    # -- OAuth -----------------------------------------------------------------------------------------

    def _client(self, request: Request) -> str:
        creds = _basic(request)
        if creds is None or creds[0] not in self.auth.clients or self.auth.clients[creds[0]][0] != creds[1]:
            raise CtError(401, "invalid_client",
                          "Please provide valid client credentials using HTTP Basic Authentication.")
        return creds[0]

    async def token(self, request: Request) -> Response:
        try:
            params = {**dict(request.query_params), **await _form(request)}
            cid = self._client(request)
            if params.get("grant_type") != "client_credentials":
                raise CtError(400, "unsupported_grant_type", "Invalid grant type.")
            allowed = set(self.auth.clients[cid][1])
            requested = set((params.get("scope") or "").split())
            if requested:
                projects = {a.split(":")[1] for a in allowed if a.startswith("manage_project:") and ":" in a}
                bad = [r for r in requested if r not in allowed and r.split(":")[1:2] not in ([p] for p in projects)]
                if bad:
                    raise CtError(400, "invalid_scope", f"Invalid scope: {' '.join(sorted(bad))}.")
                granted = requested
            else:
                granted = allowed
            value = secrets.token_urlsafe(24)
            with self.state.lock:
                self.auth.tokens[value] = Token(cid, frozenset(granted),
                                                self.auth.clock() + timedelta(seconds=self.auth.token_ttl_s))
            body = {"access_token": value, "token_type": "Bearer", "expires_in": self.auth.token_ttl_s,
                    "scope": " ".join(sorted(granted))}
            return JSONResponse(body)
        except CtError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    async def introspect(self, request: Request) -> Response:
        try:
            self._client(request)
            value = request.query_params.get("token") or (await _form(request)).get("token", "")
            tok = self.auth.tokens.get(value)
            if tok is None or tok.expires_at <= self.auth.clock():
                return JSONResponse({"active": False})
            # ASSUMPTION: ``exp`` in epoch milliseconds is not documented; seconds (RFC 7662) are used.
            return JSONResponse({"active": True, "scope": " ".join(sorted(tok.scopes)),
                                 "exp": int(tok.expires_at.timestamp()), "client_id": tok.client_id})
        except CtError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)

    def _authorize(self, request: Request, project: str, resource: str, write: bool) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        tok = self.auth.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if tok is None or tok.expires_at <= self.auth.clock():
            raise CtError(401, "invalid_token", "invalid_token")
        area = SCOPE_AREA.get(resource)
        if area is None:
            raise not_found(resource)
        needed = [f"manage_{area}"] if write else [f"view_{area}", f"manage_{area}"]
        if area == "messages":
            needed = ["view_messages"]
        have = {s.split(":")[0] for s in tok.scopes if s.split(":")[1:2] == [project]}
        if "manage_project" not in have and not have.intersection(needed):
            raise CtError(403, "insufficient_scope",
                          f"Insufficient scope. One of the following scopes is missing: {', '.join(needed)}.")
        return tok.client_id

    # -- the API pipeline ------------------------------------------------------------------------------

    async def api(self, request: Request) -> Response:
        project = request.path_params["project"]
        resource = request.path_params["resource"]
        ident = request.path_params.get("ident")
        method = request.method if request.method != "HEAD" else "GET"
        status, body = 200, None
        try:
            write = method in ("POST", "DELETE")
            client = self._authorize(request, project, resource, write)
            fault = self.state.take_fault()
            if fault is not None and not fault[1]:
                status, body = fault[0], _fault_body(fault[0])
            else:
                raw = await request.body()
                payload = None
                if raw:
                    try:
                        payload = json.loads(raw)
                    except ValueError:
                        raise invalid_json() from None
                params = {k: request.query_params.getlist(k) for k in request.query_params}
                with self.state.lock:
                    self.state.current_client = client
                    try:
                        status, body = self._route(method, resource, ident, params, payload)
                    finally:
                        self.state.current_client = None
                if fault is not None:
                    status, body = fault[0], _fault_body(fault[0])
        except CtError as exc:
            status, body = exc.status, exc.body()
        except Exception as exc:  # a bug in the fake still answers like the API
            log.exception("commercetools simulator failed on %s %s", request.method, request.url.path)
            status, body = 500, {"statusCode": 500, "message": f"{type(exc).__name__}: {exc}",
                                 "errors": [{"code": "General", "message": f"{type(exc).__name__}: {exc}"}]}
        self.state.record_request(method, resource, request.url.path, status)
        if self.response_delay_s > 0:
            await asyncio.sleep(self.response_delay_s)
        return JSONResponse(body, status_code=status)

    def _route(self, method: str, resource: str, ident: str | None, params: dict[str, list[str]],
               payload: Any) -> tuple[int, Any]:
        s = self.state
        if method == "GET":
            if ident is None:
                return 200, self._query(resource, params)
            if resource == "product-projections":
                staged = (params.get("staged") or ["false"])[-1] == "true"
                doc = _find_in(s.product_projections(staged), ident)
            elif resource == "messages":
                doc = _find_in(s.query_messages(), ident)
            else:
                doc = s.get(resource, ident)
            return 200, self._expand(doc, params.get("expand", []))
        if resource not in WRITABLE:
            raise CtError(405, "MethodNotAllowed", f"Method {method} is not allowed on '{resource}'.")
        if method == "DELETE":
            if ident is None or resource != "inventory":
                raise CtError(405, "MethodNotAllowed", f"DELETE is not supported on '{resource}' by the simulator.")
            version = (params.get("version") or [None])[-1]
            if version is None:
                raise invalid_input("Missing required parameter 'version'.")
            try:
                return 200, s.delete_inventory(ident, int(version))
            except ValueError:
                raise invalid_input(f"Malformed parameter: version: Invalid long value '{version}'.") from None
        if ident == "import" and resource == "orders":
            return 201, s.import_order(payload)
        if ident is None:
            create = {"inventory": s.create_inventory, "orders": s.create_order_from_cart, "carts": s.create_cart,
                      "payments": s.create_payment, "customers": s.create_customer, "types": s.create_type,
                      "subscriptions": s.create_subscription}[resource]
            if payload is None:
                raise invalid_json()
            return 201, create(payload)
        update = {"inventory": s.update_inventory, "orders": s.update_order, "payments": s.update_payment,
                  "customers": s.update_customer, "types": s.update_type}.get(resource)
        if update is None:
            raise CtError(405, "MethodNotAllowed", f"Updates of '{resource}' are not supported by the simulator.")
        return 200, update(ident, payload)

    def _query(self, resource: str, params: dict[str, list[str]]) -> dict[str, Any]:
        s = self.state
        with s.lock:
            s._settle()
            if resource == "product-projections":
                items = s.product_projections((params.get("staged") or ["false"])[-1] == "true")
            elif resource == "messages":
                items = s.visible_messages()
            elif resource == "inventory" and (skus := _skus_named(params.get("where", []))) is not None:
                # speed only: every disjunct names its SKUs, so the others cannot match (the predicate decides)
                items = [d for d in s.docs[resource].values() if d.get("sku") in skus]
            else:
                items = list(s.docs[resource].values())
            body = page(items, params, with_total_default=s.with_total_default)  # filters the live records ...
            body["results"] = [copy.deepcopy(r) for r in body["results"]]  # ... and copies only the page
        expand = params.get("expand", [])
        if expand:
            body["results"] = [self._expand(r, expand) for r in body["results"]]
        return body

    def _expand(self, doc: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """``expand=supplyChannel``, ``lineItems[*].supplyChannel``, ``paymentInfo.payments[*]``: adds ``obj``."""
        for path in paths:
            self._expand_at(doc, [p for p in path.replace("[*]", ".[*]").split(".") if p])
        return doc

    def _expand_at(self, node: Any, parts: list[str]) -> None:
        if not parts:
            if isinstance(node, dict) and node.get("typeId") in _BY_TYPE_ID and node.get("id"):
                found = self.state.docs[_BY_TYPE_ID[node["typeId"]]].get(node["id"])
                if found is not None:
                    node["obj"] = copy.deepcopy(found)
            return
        head, rest = parts[0], parts[1:]
        if head == "[*]":
            for item in node if isinstance(node, list) else []:
                self._expand_at(item, rest)
        elif isinstance(node, dict) and head in node:
            self._expand_at(node[head], rest)


_STR = r'"(?:[^"\\]|\\.)*"'
_SKUS = rf"sku in \(({_STR}(?:, {_STR})*)\)"
_DISJUNCT = re.compile(rf"\(?(?:supplyChannel\(id={_STR}\) and )?{_SKUS}\)?")


def _skus_named(where: list[str]) -> set[str] | None:
    """The SKUs a `where` restricts inventory entries to, when it has exactly the connector's shapes (`sku in (..)`,
    `(supplyChannel(id=..) and sku in (..)) or ...`); None otherwise (then every entry is evaluated)."""
    if len(where) != 1:
        return None
    skus: set[str] = set()
    for part in where[0].split(" or "):
        m = _DISJUNCT.fullmatch(part.strip())
        if m is None:
            return None
        skus |= {json.loads(x) for x in re.findall(_STR, m.group(1))}
    return skus


def _find_in(items: list[dict[str, Any]], ident: str) -> dict[str, Any]:
    for doc in items:
        if doc["id"] == ident or (ident.startswith("key=") and doc.get("key") == ident[4:]):
            return doc
    raise not_found(ident)


def _fault_body(status: int) -> dict[str, Any]:
    # ASSUMPTION: injected 502/503/504 answer with the error envelope (the gateway's real body is not captured).
    message = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(status, "Error")
    return {"statusCode": status, "message": message, "errors": [{"code": "General", "message": message}]}


def create_app(state: CommercetoolsState, auth: AuthRegistry, response_delay_s: float = 0.0) -> Starlette:
    impl = CommercetoolsApp(state, auth, response_delay_s)

    async def fallback(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        err = CtError(status, "ResourceNotFound" if status == 404 else "MethodNotAllowed",
                      f"{request.method} {request.url.path} is not an API route.")
        return JSONResponse(err.body(), status_code=status)

    routes = [
        Route("/oauth/token", impl.token, methods=["POST"]),
        Route("/oauth/introspect", impl.introspect, methods=["POST"]),
        Route("/{project}/{resource}", impl.api, methods=["GET", "POST"]),
        Route("/{project}/{resource}/{ident}", impl.api, methods=["GET", "POST", "DELETE"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: fallback, 405: fallback})
    app.state.commercetools = state
    app.state.auth = auth
    return app
