"""`CentraOrderApi`: Centra's Order API (REST), the documented way to create an order from outside Centra.

`POST <base>/order` (Order API reference, "Create order": the API plugin must have "Allow Order Create"; Centra
handles no payment for such orders), authenticated by the plugin's shared secret in the `API-Authorization`
header ("Introduction to Centra APIs", "Authentication"). Success is `{"status": "ok", "orders": [<number>...]}`
(an order may be split in several); a refusal is `{"status": "no", "code": -1..-7, "msg": ...}` and raises
`OrderRejected`. The GraphQL Integration API has no create-order mutation (centra.md §4).

Creating an order is not idempotent (the API takes no idempotency key; `orderNumber` only works for numbers
Centra does not have yet), so a request that may have reached Centra (5xx, timeout) is never resent here: the
caller looks for the order it may have made before creating again (see `CentraCommerce.create_order`). 429 and
connection failures that provably never left are retried.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from pipelines.connectors.errors import ConnectorError
from pipelines.connectors.pool import PooledClient
from pipelines.connectors.retry import raise_for_status, retrying, transient_from_transport

log = logging.getLogger("pipelines.connectors.centra.order_api")

ERROR_CODES = {
    -1: "product not available (status, market or pricelist)", -2: "stock error", -3: "order is empty",
    -4: "required fields missing", -5: "order number already exists", -6: "customer registration failed",
    -7: "general error",
}


class OrderRejected(ConnectorError):
    """Centra answered `status: "no"`: the order was not created. `code` is the documented error code."""

    def __init__(self, code: int | None, msg: str, *, status: int | None = None, body: str | None = None):
        meaning = ERROR_CODES.get(code, "unknown code") if code is not None else "no code"
        super().__init__(f"Centra refused the order (code {code}: {meaning}): {msg}", status=status, body=body)
        self.code = code
        self.msg = msg


class CentraOrderApi(PooledClient):
    """Client of one Order API plugin (`base_url` = the plugin's `<base>`)."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, max_attempts: int = 4,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self._http = httpx.Client(timeout=timeout, transport=transport,
                                  headers={"API-Authorization": api_key, "Accept": "application/json"})

    def create_order(self, body: dict[str, Any]) -> list[int]:
        """Create the order; its number(s). Raises `OrderRejected`, `AuthError`, `RateLimited`/`TransientError`
        (a 5xx or a timeout may have created it: look before calling again)."""
        for attempt in retrying(max_attempts=self.max_attempts, idempotent=False, logger=log):
            with attempt:
                answer = self._post("/order", body)
        if answer.get("status") != "ok":
            raise OrderRejected(answer.get("code"), str(answer.get("msg") or ""), body=str(answer)[:2000])
        return [int(n) for n in answer.get("orders") or []]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(f"{self.base_url}{path}", json=body)
        except httpx.TransportError as exc:
            raise transient_from_transport(exc) from exc
        return self._answer(response)

    @staticmethod
    def _answer(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            try:  # a refusal may come with an error status: its body still says why
                data = response.json()
            except ValueError:
                data = None
            if isinstance(data, dict) and data.get("status") == "no" and data.get("code") is not None:
                raise OrderRejected(data.get("code"), str(data.get("msg") or ""), status=response.status_code,
                                    body=response.text[:2000])
            raise_for_status(response)
        try:
            data = response.json()
        except ValueError as exc:
            raise ConnectorError("Centra Order API answered with a body that is not JSON",
                                 status=response.status_code, body=response.text[:2000]) from exc
        if not isinstance(data, dict):
            raise ConnectorError("Centra Order API answered with a body that is not an object",
                                 status=response.status_code, body=response.text[:2000])
        return data


# -- an endless-aisle order as Centra's Order API takes it, and how it is found again ---------------------------

def marker(external_id: str) -> str:
    """Kept in the order's `internalComment` by the create request itself: finds an order whose `externalId`
    was not set yet (a crash between Centra's answer and that second write)."""
    return f"external order {external_id}"


def create_body(request: Any) -> dict[str, Any]:
    """The `POST <base>/order` body of a `CreateOrderRequest`: a guest (auto-created) customer
    (`customerRegister` false), or the registered customer of the e-mail, created first when none exists
    (`customerRegister` true, `register_customer`), the store's market and price list, the mapped shipping option (`shippingList`
    takes its URI), the charged unit prices (no `originalPrice`: Centra takes the price list's, so the order
    shows any difference), and the payment taken in store (Centra handles none for these orders).
    `orderDate` is left out: Centra reads it in the organisation's timezone, which the flow does not know."""
    a = request.address
    address = {k: v for k, v in {
        "email": a.email, "firstName": a.first_name, "lastName": a.last_name, "address": a.address1,
        "coaddress": a.address2, "city": a.city, "zipcode": a.zip_code, "state": a.state, "country": a.country,
        "cell": a.phone}.items() if v not in (None, "")}
    paid = {"status": 1, "amount": request.paid_amount, "method": "store",
            "transaction": request.payment_reference or request.external_id}
    return {
        "address": address, "customerRegister": bool(request.register_customer),
        "marketId": int(request.market_id), "pricelistId": int(request.pricelist_id),
        "shippingList": request.shipping_option,
        "products": [{"sku": ln.sku, "qty": ln.quantity, "unitPrice": ln.unit_price} for ln in request.lines],
        "internalComment": marker(request.external_id),
        "payment": {"auth": paid, "capture": paid},
    }


_EA_FIELDS = """
    number status externalId internalComment
    grandTotal(includingTax: true) { value currency { code } }
    market { id } pricelist { id }
    shippingAddress { email }
    shippingPriceGroup { shippingOption { id name uri } }
    lines(includeFullyCancelled: true) {
      id quantity shippedQuantity returnedQuantity taxPercent
      unitPrice(includingTax: true) { value }
      unitOriginalPrice(includingTax: true) { value }
      productSize { SKU }
      allocations { quantity warehouse { id } }
    }
"""
Q_ORDER_BY_EXTERNAL_ID = ("query EndlessAisleOrder($ext: String!) { orders(where: {externalId: {equals: $ext}}, "
                          f"limit: 1) {{ {_EA_FIELDS} }} }}")
Q_ORDER_BY_NUMBER = f"query EndlessAisleOrderN($n: Int!) {{ orders(where: {{number: [$n]}}, limit: 1) {{ {_EA_FIELDS} }} }}"
Q_RECENT_ORDERS = ("query EndlessAisleRecent($market: Int!, $limit: Int!) { orders(where: {marketId: [$market]}, "
                   "sort: [number_DESC], limit: $limit) { number externalId internalComment } }")
M_SET_EXTERNAL_ID = ("mutation EndlessAisleExternalId($n: Int!, $ext: String!) { updateDirectToConsumerOrder("
                     "order: {number: $n}, input: {externalId: $ext}) { userErrors { message path } } }")
#: How many of a market's newest orders are searched for the marker of an order whose `externalId` was not set:
#: the flow retries within minutes of the interrupted create, and Centra orders are numbered in creation order.
RECENT_SCAN = 200
