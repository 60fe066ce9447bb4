"""Starlette app serving the simulated Centra Integration API at `POST /graphql`.

Request pipeline: simulated round trip (`response_delay_s`, default 0) -> auth (Bearer header or
`graphql-access` cookie; 403) -> forced failures (test knob) -> JSON body / GraphQL parse / validation / variable coercion (400 + standard `errors`) ->
rate limits (429 + `Retry-After`) -> execution under the state lock (200; resolver errors in
`errors[]`) -> `extensions{complexity, permissionsUsed, appVersion}`.

Complexity is deterministic: every selected field costs 1 (stock quantity fields other than
freeToAllocateQuantity cost 5, FTA costs 0, introspection fields 0), and a field's sub-selection
cost is multiplied by its `limit`/`first`/`last` argument (defaults included) when it has one.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio.to_thread
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute_sync,
    get_named_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pipelines.simulators.centra.order_api import OrderApi
from pipelines.simulators.centra.ratelimit import (
    MUTATION_COUNT,
    QUERY_COMPLEXITY,
    REQUEST_COUNT,
    retry_after_value,
)
from pipelines.simulators.centra.resolvers import build_schema
from pipelines.simulators.centra.resolvers.scalars import tenant_time
from pipelines.simulators.centra.state import CentraState

Tokens = Iterable[str] | Mapping[str, Iterable[str] | None]

_STOCK_WEIGHTS = {
    "freeToAllocateQuantity": 0, "physicalQuantity": 5, "allocatedQuantity": 5, "demandQuantity": 5,
    "unshippedQuantity": 5, "availableNowQuantity": 5, "availableQuantity": 5, "incomingQuantity": 5,
    "linkedIncomingQuantity": 5, "unlinkedIncomingQuantity": 5, "onDeliveryQuantity": 5,
}
_WEIGHTS = {("Stock", k): v for k, v in _STOCK_WEIGHTS.items()} | {("StockTotals", k): v
                                                                    for k, v in _STOCK_WEIGHTS.items()}


def _error_body(message: str, **extensions: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message}
    if extensions:
        err["extensions"] = extensions
    return {"errors": [err]}


class Complexity:
    """Deterministic complexity of one operation (see module docstring)."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any]) -> None:
        self.schema, self.fragments, self.variables = schema, fragments, variables

    def selection(self, parent: Any, selection_set: SelectionSetNode | None, depth: int = 0) -> int:
        if selection_set is None or depth > 30:
            return 0
        total = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += self.field(parent, sel, depth)
            elif isinstance(sel, InlineFragmentNode):
                target = self.schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                total += self.selection(target or parent, sel.selection_set, depth + 1)
            elif isinstance(sel, FragmentSpreadNode):
                frag = self.fragments.get(sel.name.value)
                if frag is not None:
                    target = self.schema.get_type(frag.type_condition.name.value) or parent
                    total += self.selection(target, frag.selection_set, depth + 1)
        return total

    def field(self, parent: Any, node: FieldNode, depth: int) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        fdef = parent.fields.get(name)
        if fdef is None:
            return 0
        weight = _WEIGHTS.get((parent.name, name), 1)
        if node.selection_set is None:
            return weight
        try:
            args = get_argument_values(fdef, node, self.variables)
        except GraphQLError:
            args = {}
        multiplier = next((int(args[k]) for k in ("limit", "first", "last") if args.get(k) is not None), 1)
        return weight + max(1, multiplier) * self.selection(get_named_type(fdef.type), node.selection_set, depth + 1)


def _mutation_fields(op: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]) -> list[str]:
    """Names of the top-level mutation fields (one MUTATION_COUNT token each)."""
    def names(sel_set: SelectionSetNode) -> list[str]:
        out: list[str] = []
        for sel in sel_set.selections:
            if isinstance(sel, FieldNode):
                out += [] if sel.name.value.startswith("__") else [sel.name.value]
            elif isinstance(sel, InlineFragmentNode):
                out += names(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                out += names(fragments[sel.name.value].selection_set)
        return out
    return names(op.selection_set)


class CentraGraphQL:
    """The request handler; one per app.

    `response_delay_s` (sim knob, may be changed while serving): every response is delayed this long,
    awaited with `sleep` (default `asyncio.sleep`), so concurrent requests overlap like real round trips.
    `mutations_charged` (sim-only accounting, not a Centra feature): top-level mutation field name ->
    MUTATION_COUNT tokens charged by the rate limiter, i.e. what counted against the quota.
    """

    def __init__(self, state: CentraState, tokens: Tokens, *, response_delay_s: float = 0.0,
                 sleep: Callable[[float], Awaitable[object]] | None = None) -> None:
        if response_delay_s < 0:
            raise ValueError("response_delay_s must not be negative")
        self.state = state
        self.response_delay_s = response_delay_s
        self._sleep = sleep or asyncio.sleep
        self.mutations_charged: Counter[str] = Counter()
        self._charged_lock = threading.Lock()
        self.schema = build_schema()
        if isinstance(tokens, Mapping):
            self.tokens: dict[str, frozenset[str] | None] = {
                t: None if perms is None else frozenset(perms) for t, perms in tokens.items()}
        else:
            self.tokens = dict.fromkeys(tokens)
        if not self.tokens:
            raise ValueError("configure at least one API token")

    # -- HTTP

    async def __call__(self, request: Request) -> Response:
        # The simulated round trip comes first, before auth, rate limiting and execution: a real request
        # reaches Centra's limiter and stock ledger only after travelling there. So the ledger's createdAt
        # (what the latency bench reads) includes the trip and latency is never understated (overstated
        # by at most the return half), and the buckets are charged at arrival, as on the server. For the
        # client both placements look alike: the answer comes `response_delay_s` later.
        # The body is read before the delay: a client that gives up during it (a sync run stopped
        # mid-request) then costs nothing but an unread answer, not a ClientDisconnect traceback.
        body = await request.body()
        if self.response_delay_s > 0:
            await self._sleep(self.response_delay_s)
        token = self._token(request)
        if token is None or token not in self.tokens:
            return JSONResponse(_error_body("Access denied: invalid or expired API token",
                                            category="authentication"), status_code=403)
        return await anyio.to_thread.run_sync(self._process, body, token)

    @staticmethod
    def _token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return request.cookies.get("graphql-access") or None

    def _retry_after(self, seconds: float) -> str:
        return retry_after_value(seconds, self.state.retry_after_style)

    def _too_many(self, seconds: float, limited_by: tuple[str, str] | None) -> Response:
        kind, interval = limited_by or ("REQUEST_COUNT", "TEN_SECONDS")
        return JSONResponse(
            _error_body(f"Rate limit exceeded ({kind}, {interval}); retry after {max(0, math.ceil(seconds))} s",
                        category="rateLimit", type=kind, interval=interval),
            status_code=429, headers={"Retry-After": self._retry_after(seconds)})

    def _forced(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            return self._too_many(float(retry_after or 0), None)
        return JSONResponse(_error_body(f"Simulated failure (HTTP {status})", category="internal"),
                            status_code=status)

    # -- GraphQL

    def _process(self, body: bytes, token: str) -> Response:
        forced = self.state.take_forced_failure()
        if forced is not None and not forced.after_execute:
            return self._forced(forced.status, forced.retry_after)
        prepared = self._prepare(body)
        if isinstance(prepared, Response):
            decision = self.state.rate_limiter.acquire({REQUEST_COUNT: 1})
            return prepared if decision.allowed else self._too_many(decision.retry_after_s, decision.limited_by)
        document, operation, raw_vars, op_name, coerced = prepared
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        root = self.schema.get_root_type(operation.operation)
        complexity = Complexity(self.schema, fragments, coerced).selection(root, operation.selection_set)
        mutations = _mutation_fields(operation, fragments) if operation.operation == OperationType.MUTATION else []
        decision = self.state.rate_limiter.acquire({REQUEST_COUNT: 1, QUERY_COMPLEXITY: complexity,
                                                    MUTATION_COUNT: len(mutations)})
        if not decision.allowed:
            return self._too_many(decision.retry_after_s, decision.limited_by)
        if mutations:
            with self._charged_lock:
                self.mutations_charged.update(mutations)
        context = {"state": self.state, "permissions": self.tokens[token], "used": set(), "token": token}
        with self.state.lock, tenant_time(self.state.now, self.state.tzinfo):
            result = execute_sync(self.schema, document, context_value=context, variable_values=raw_vars,
                                  operation_name=op_name)
        if forced is not None:
            return self._forced(forced.status, forced.retry_after)
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        payload["extensions"] = {"complexity": complexity, "permissionsUsed": sorted(context["used"]),
                                 "appVersion": self.state.app_version}
        return JSONResponse(payload)

    def _prepare(self, body: bytes) -> Response | tuple[DocumentNode, OperationDefinitionNode, dict[str, Any],
                                                        str | None, dict[str, Any]]:
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(_error_body("Request body is not valid JSON"), status_code=400)
        if not isinstance(data, dict) or not isinstance(data.get("query"), str) or not data["query"].strip():
            return JSONResponse(_error_body("The request must be a JSON object with a non-empty 'query'"),
                                status_code=400)
        variables = data.get("variables") or {}
        op_name = data.get("operationName") or None
        if not isinstance(variables, dict):
            return JSONResponse(_error_body("'variables' must be an object"), status_code=400)
        try:
            document = parse(data["query"])
        except GraphQLError as exc:
            return JSONResponse({"errors": [exc.formatted]}, status_code=400)
        errors = validate(self.schema, document)
        if errors:
            return JSONResponse({"errors": [e.formatted for e in errors]}, status_code=400)
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if op_name is not None:
            ops = [d for d in ops if d.name is not None and d.name.value == op_name]
            if not ops:
                return JSONResponse(_error_body(f"Unknown operation named '{op_name}'."), status_code=400)
        if len(ops) != 1:
            return JSONResponse(_error_body("Must provide operation name if query contains multiple operations."),
                                status_code=400)
        operation = ops[0]
        if operation.operation == OperationType.SUBSCRIPTION:
            return JSONResponse(_error_body("Subscriptions are not supported"), status_code=400)
        coerced = get_variable_values(self.schema, operation.variable_definitions or [], variables)
        if isinstance(coerced, list):
            return JSONResponse({"errors": [e.formatted for e in coerced]}, status_code=400)
        return document, operation, variables, op_name, coerced


def create_app(state: CentraState, *, tokens: Tokens, response_delay_s: float = 0.0,
               sleep: Callable[[float], Awaitable[object]] | None = None) -> Starlette:
    """The ASGI app. `tokens`: accepted tokens (all permissions), or token -> permission list (None = all).
    `response_delay_s`: simulated round trip added to every `/graphql` response (`sleep`: how it is
    awaited, default `asyncio.sleep`; a test hook)."""
    handler = CentraGraphQL(state, tokens, response_delay_s=response_delay_s, sleep=sleep)

    async def graphql_endpoint(request: Request) -> Response:
        return await handler(request)

    async def not_allowed(request: Request) -> Response:
        return PlainTextResponse("Use POST /graphql", status_code=405)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "appVersion": state.app_version})

    order_api = OrderApi(state)  # the REST Order API plugin (order_api.py); knobs on app.state.order_api
    app = Starlette(routes=[
        Route("/graphql", graphql_endpoint, methods=["POST"]),
        Route("/graphql", not_allowed, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        *order_api.routes(),
    ])
    app.state.centra = state
    app.state.graphql = handler
    app.state.order_api = order_api
    return app
