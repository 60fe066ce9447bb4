"""`NewStoreClient`: OAuth token cache, retries, and the typed reads and writes (see the package docstring)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from pipelines.connectors.errors import AuthError
from pipelines.connectors.newstore.errors import Conflict, NewStoreAPIError, NotFound, OrderConflict
from pipelines.connectors.newstore.models import (
    Atp,
    FulfillmentItem,
    FulfillmentLocation,
    FulfillmentRequest,
    InsightEntry,
    PosStock,
    PosStore,
    ReturnItem,
    ReturnResult,
    SalesOrder,
    SalesOrderItem,
    StockInsights,
)
from pipelines.connectors.paging import paginate
from pipelines.connectors.pool import PooledClient
from pipelines.connectors.retry import raise_for_status, retrying, transient_from_transport

log = logging.getLogger("pipelines.connectors.newstore")
T = TypeVar("T")


class NewStoreClient(PooledClient):
    """Synchronous NewStore API client (thread-safe token cache; one httpx connection pool)."""

    atp_path = "/v0/stock/atp"  # NOTE: the real ATP-by-keys path was not captured; override if needed
    stocked_products_path = "/_/v0/hq/stocked_products"  # private HQ API used by partner code

    def __init__(self, base_url: str, tenant: str, client_id: str, client_secret: str, *,
                 auth_url: str | None = None, timeout: float = 30.0, max_attempts: int = 6,
                 max_wait_s: float = 120.0, backoff_base_s: float = 0.5, atp_path: str | None = None,
                 page_size: int = 500, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.client_id = client_id
        self._secret = client_secret
        self.auth_url = auth_url or f"{self.base_url}/auth/realms/{tenant}/protocol/openid-connect/token"
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self.page_size = page_size
        if atp_path:
            self.atp_path = atp_path
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Accept": "application/json"})
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expiry = 0.0

    @classmethod
    def for_tenant(cls, tenant: str, client_id: str, client_secret: str, **kwargs: Any) -> NewStoreClient:
        """Production endpoints of a NewStore tenant (``acme``, ``acme-sandbox``, ...)."""
        return cls(f"https://{tenant}.p.newstore.net", tenant, client_id, client_secret,
                   auth_url=f"https://id.p.newstore.net/auth/realms/{tenant}/protocol/openid-connect/token",
                   **kwargs)

    # -- plumbing ----------------------------------------------------------------------------------------

    def _retry(self, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        policy = retrying(max_attempts=self.max_attempts, max_wait_s=self.max_wait_s,
                          base_delay_s=self.backoff_base_s, idempotent=idempotent, sleep=self._sleep, logger=log)
        return policy(fn)

    def _access_token(self, *, force: bool = False) -> str:
        with self._lock:
            if not force and self._token and self._clock() < self._token_expiry:
                return self._token

            def fetch() -> httpx.Response:
                try:
                    resp = self._http.post(self.auth_url, data={"grant_type": "client_credentials",
                                                                "client_id": self.client_id,
                                                                "client_secret": self._secret})
                except httpx.TransportError as exc:
                    raise transient_from_transport(exc) from exc
                if resp.status_code in (400, 401, 403, 404):
                    raise AuthError(f"token request refused: HTTP {resp.status_code}", status=resp.status_code,
                                    body=resp.text[:2000])
                raise_for_status(resp)
                return resp

            data = self._retry(fetch).json()
            token = data.get("access_token")
            if not token:
                raise AuthError("token response without access_token")
            ttl = float(data.get("expires_in") or 300)
            self._token = str(token)
            self._token_expiry = self._clock() + ttl - min(60.0, ttl * 0.1)  # refresh ahead of expiry
            return self._token

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              json: Any = None, idempotent: bool = True) -> httpx.Response:
        def once() -> httpx.Response:
            resp = self._send_once(method, path, params, json, self._access_token())
            if resp.status_code in (401, 403):
                resp = self._send_once(method, path, params, json, self._access_token(force=True))
            self._check(resp)
            return resp

        return self._retry(once, idempotent=idempotent)

    def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
                   token: str) -> httpx.Response:
        try:
            return self._http.request(method, path, params=params, json=json,
                                      headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc

    @staticmethod
    def _check(resp: httpx.Response) -> None:
        status = resp.status_code
        if 400 <= status < 500 and status not in (401, 403, 408, 425, 429, 499):
            code, message = None, resp.text[:500]
            try:
                body = resp.json()
                if isinstance(body, dict):
                    code = body.get("error_code")
                    message = body.get("message") or body.get("detail") or message
            except ValueError:
                pass
            where = f"{resp.request.method} {resp.request.url.path}"
            cls: type[NewStoreAPIError] = NewStoreAPIError
            if code == "same_order_injection_with_different_data":
                cls = OrderConflict
            elif status == 409:
                cls = Conflict
            elif status == 404:
                cls = NotFound
            raise cls(f"{where}: HTTP {status} {code or ''} {message}".strip(), status=status,
                      body=resp.text[:2000], error_code=code)
        raise_for_status(resp)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._send(method, path, **kwargs)
        if not resp.content:
            return None
        return resp.json()

    # -- locations & stores -------------------------------------------------------------------------------

    def locations(self) -> list[FulfillmentLocation]:
        """``GET /v0/locations``: fulfillment nodes."""
        data = self._json("GET", "/v0/locations")
        return [FulfillmentLocation(id=str(x["id"]), type=str(x.get("type", "")), is_enabled=bool(x.get("is_enabled")),
                                    is_inventory_master=bool(x.get("is_inventory_master")))
                for x in data.get("locations", [])]

    def stores(self, *, page_size: int = 100) -> list[PosStore]:
        """``GET /stores`` following ``next_page_key`` (sent back as ``start_at``)."""
        def fetch(start_at: str | None) -> tuple[list[dict[str, Any]], str | None]:
            params: dict[str, Any] = {"limit": min(100, page_size)}
            if start_at:
                params["start_at"] = start_at
            data = self._json("GET", "/stores", params=params)
            return data.get("items", []), data.get("next_page_key") or None

        return [PosStore(id=str(x["id"]), tenant=str(x.get("tenant", "")), country_code=str(x.get("country_code", "")),
                         timezone=(x.get("config") or {}).get("timezone"), multi_cashbox=bool(x.get("multi_cashbox")))
                for x in paginate(fetch, None, what="NewStore /stores")]

    # -- stock ------------------------------------------------------------------------------------------

    def stocked_products(self, node_ids: Iterable[str] | None = None) -> list[PosStock]:
        """Every (node, product) stock row from the private HQ API (offset paging), optionally filtered."""
        wanted = set(node_ids) if node_ids is not None else None

        def fetch(offset: int) -> tuple[list[dict[str, Any]], int | None]:
            data = self._json("GET", self.stocked_products_path, params={"limit": self.page_size, "offset": offset})
            items = data.get("items", []) if isinstance(data, dict) else []
            total = (data.get("pagination") or {}).get("total") if isinstance(data, dict) else None
            end = offset + len(items)
            return items, None if total is not None and end >= int(total) else end

        out: list[PosStock] = []
        for x in paginate(fetch, 0, page_size=self.page_size, what=f"NewStore {self.stocked_products_path}"):
            node = str(x["fulfillment_node_id"])
            if wanted is not None and node not in wanted:
                continue
            product = str(x.get("product_id") or x.get("sku"))
            out.append(PosStock(fulfillment_node_id=node, sku=str(x.get("sku") or product), product_id=product,
                                on_hand=int(x.get("on_hand") or 0), atp=int(x.get("atp") or 0),
                                allocations=int(x.get("allocations") or 0),
                                safety_stock=int(x.get("safety_stock") or 0)))
        return out

    def atp(self, keys: Iterable[tuple[str, str] | Mapping[str, str]]) -> list[Atp]:
        """ATP by ``(product_id, fulfillment_node_id)`` keys, 2000 per request."""
        norm = [{"product_id": k["product_id"], "fulfillment_node_id": k["fulfillment_node_id"]}
                if isinstance(k, Mapping) else {"product_id": k[0], "fulfillment_node_id": k[1]} for k in keys]
        out: list[Atp] = []
        for i in range(0, len(norm), 2000):
            data = self._json("POST", self.atp_path, json={"atp_keys": norm[i:i + 2000]})
            out.extend(Atp(str(x["product_id"]), str(x["fulfillment_node_id"]), int(x.get("atp") or 0))
                       for x in data.get("items", []))
        return out

    def stock_insights(self, product_id: str, node_id: str) -> StockInsights:
        """``GET /v0/stock/insights``: allocations/reservations behind one ATP key."""
        data = self._json("GET", "/v0/stock/insights", params={"product_id": product_id, "fulfillment_node_id": node_id})

        def entries(key: str) -> tuple[InsightEntry, ...]:
            return tuple(InsightEntry(str(e["order_uuid"]), str(e["item_uuid"]), str(e.get("created_at", "")),
                                      e.get("expires_at")) for e in data.get(key) or [])

        return StockInsights(str(data.get("product_id", product_id)), str(data.get("fulfillment_node_id", node_id)),
                             entries("allocations"), entries("reservations"), entries("future_allocations"))

    # -- orders ----------------------------------------------------------------------------------------

    def fulfill_order(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /v0/d/fulfill_order`` (idempotent on ``external_id``: retried with the same payload).

        Raises :class:`OrderConflict` when the external id was used with different data.
        """
        return self._json("POST", "/v0/d/fulfill_order", json=payload, idempotent=True)

    def get_order(self, order_id: str, id_type: str = "internal") -> SalesOrder:
        """``GET /v0/orders/{id}?id_type=internal|external``."""
        if id_type not in ("internal", "external"):
            raise ValueError("id_type must be 'internal' or 'external'")
        data = self._json("GET", f"/v0/orders/{_seg(order_id)}", params={"id_type": id_type})
        totals = data.get("totals") or {}
        items = tuple(SalesOrderItem(
            id=str(i["id"]), origin_id=i.get("origin_id"), product_id=i.get("product_id"), status=str(i.get("status")),
            gross=float((i.get("price") or {}).get("gross") or 0), net=float((i.get("price") or {}).get("net") or 0),
            tax=float((i.get("price") or {}).get("tax") or 0), discount=float((i.get("price") or {}).get("discount") or 0),
            fulfillment_group_type=i.get("fulfillment_group_type"),
        ) for i in data.get("items", []))
        return SalesOrder(
            id=str(data["id"]), origin=str(data.get("origin")), origin_id=str(data.get("origin_id")),
            channel_type=str(data.get("channel_type")), status=str(data.get("status")),
            fulfillment_type=str(data.get("fulfillment_type")), store_id=data.get("store_id"),
            currency=str(data.get("currency")), placed_at=str(data.get("placed_at")), items=items,
            total=float(totals.get("total") or 0), tax=float(totals.get("tax") or 0), raw=data,
        )

    def cancel_order(self, order_id: str, reason: str, note: str | None = None, *, id_type: str = "internal") -> None:
        """``POST /v0/orders/{id}/cancel``."""
        body: dict[str, Any] = {"reason": reason}
        if note:
            body["note"] = note
        self._send("POST", f"/v0/orders/{_seg(order_id)}/cancel", params={"id_type": id_type}, json=body,
                   idempotent=False)

    def fulfillment_requests(self, order_uuid: str) -> list[FulfillmentRequest]:
        """``GET /v0/fulfillment_requests/{order_uuid}`` (empty when not routed / unknown)."""
        data = self._json("GET", f"/v0/fulfillment_requests/{_seg(order_uuid)}")
        return [FulfillmentRequest(
            fulfillment_request_id=str(fr["fulfillment_request_id"]), fulfillment_node_id=str(fr["fulfillment_node_id"]),
            service_level=str(fr.get("service_level")), status=str(fr.get("status")), created_at=fr.get("created_at"),
            items=tuple(FulfillmentItem(str(i["item_id"]), str(i.get("product_id")), str(i.get("status")),
                                        i.get("carrier"), i.get("tracking_code")) for i in fr.get("items", [])),
        ) for fr in data.get("fulfillment_requests", [])]

    def set_items_states(self, ffr_uuid: str, line_items: Sequence[Mapping[str, str] | tuple[str, str]],
                         carrier: str | None = None, tracking_code: str | None = None,
                         associate_id: str | None = None) -> None:
        """Mark fulfillment-request items ``shipped`` or ``rejected`` (one state per call)."""
        body: dict[str, Any] = {"line_items": [
            {"item_id": li["item_id"], "state": li["state"]} if isinstance(li, Mapping)
            else {"item_id": li[0], "state": li[1]} for li in line_items]}
        for key, value in (("carrier", carrier), ("tracking_code", tracking_code), ("associate_id", associate_id)):
            if value:
                body[key] = value
        self._send("POST", f"/v0/fulfillment_request/{_seg(ffr_uuid)}/set_items_states", json=body, idempotent=False)

    # -- returns ---------------------------------------------------------------------------------------

    def create_return(self, order_id: str, items: Sequence[str | Mapping[str, Any]], returned_from: str,
                      returned_at: datetime | str | None = None) -> ReturnResult:
        """``POST /v0/d/orders/{order_id}/returns``; ``items`` are product ids or ``{product_id, ...}``."""
        body: dict[str, Any] = {
            "items": [{"product_id": i} if isinstance(i, str) else dict(i) for i in items],
            "returned_from": returned_from,
        }
        if returned_at is not None:
            body["returned_at"] = returned_at if isinstance(returned_at, str) else \
                returned_at.isoformat().replace("+00:00", "Z")
        data = self._json("POST", f"/v0/d/orders/{_seg(order_id)}/returns", json=body, idempotent=False) or {}
        return ReturnResult(
            id=str(data.get("id")), order_id=data.get("order_id"), returned_from=data.get("returned_from"),
            total_refund_amount=_opt_float(data.get("total_refund_amount")), currency=data.get("currency"),
            items=tuple(ReturnItem(str(i.get("id")), str(i.get("product_id")), _opt_float(i.get("refund_amount")),
                                   i.get("item_condition")) for i in data.get("items", [])),
            raw=data,
        )

    def get_return(self, order_id: str, return_id: str) -> dict[str, Any]:
        """``GET /v0/d/orders/{order_id}/returns/{return_id}``: the return as NewStore keeps it (raises
        :class:`NotFound` for an unknown order or return)."""
        return self._json("GET", f"/v0/d/orders/{_seg(order_id)}/returns/{_seg(return_id)}") or {}

    # -- event stream ----------------------------------------------------------------------------------

    def register_eventstream(self, integration_id: str, callback_url: str, api_key: str) -> dict[str, Any]:
        """Create (if missing) and start a permanent event-stream webhook integration."""
        params = {"callback_url": callback_url, "api_key": api_key}
        base = "/api/v1/org/integrations/eventstream"
        with contextlib.suppress(Conflict):  # 409: it exists already; (re)start it with current parameters
            self._json("POST", base, json={"id": integration_id, "integration_type": "permanent",
                                           "callback_parameters": params}, idempotent=False)
        return self._json("POST", f"{base}/{_seg(integration_id)}/_start", json={"callback_parameters": params},
                          idempotent=True)


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
