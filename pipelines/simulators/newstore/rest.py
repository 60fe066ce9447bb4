"""The REST handlers of the NewStore fake by area (orders and fulfilment, returns, inventory, event
stream): each checks its request parameters and hands over to :class:`~.state.NewStoreState`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .common import SimError
from .framework import ApiBase


class RestHandlers(ApiBase):
    # -- orders and fulfilment --------------------------------------------------------------------------------------

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
