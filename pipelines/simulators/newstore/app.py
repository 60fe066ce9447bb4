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
* ``POST /v0/d/import``; ``GET /v0/d/import/{id}``; ``POST /v0/d/import/{id}/start`` (``imports``).

Without ``Authorization`` an API call gets 401; a wrong, expired or non-Bearer token gets 403.

Layout: ``controls`` (knobs), ``framework`` (the pipeline around every handler), ``auth`` (token
endpoints) and ``rest`` (the API handlers); the route table and :func:`create_app` are here.
"""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .auth import AuthHandlers
from .controls import DEFAULT_ENDPOINT_RATES, Exchange, FaultRule, SimulatorControls, TokenBucket
from .customers import CustomerHandlers
from .framework import TITLES, Handler, problem_body
from .imports import ImportHandlers
from .rest import RestHandlers
from .state import NewStoreState

__all__ = ["DEFAULT_ENDPOINT_RATES", "Exchange", "FaultRule", "Handler", "SimulatorControls", "TokenBucket",
           "create_app"]


class _App(AuthHandlers, RestHandlers, ImportHandlers, CustomerHandlers):
    """The handlers and their route table."""

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
            *self.import_routes(),
            *self.customer_routes(),
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
        body = problem_body(status, code, TITLES.get(status, "Error"), instance=request.url.path,
                            request_id=uuid.uuid4().hex)
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    app = Starlette(routes=impl.routes(), exception_handlers={404: http_error, 405: http_error})
    app.state.controls = controls
    app.state.newstore = state
    app.state.imports = impl.imports  # the Import API's jobs, catalog and knobs (imports.py)
    app.state.customers = impl.customers  # customer profiles and their knobs (customers.py)
    return app
