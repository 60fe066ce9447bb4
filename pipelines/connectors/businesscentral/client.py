"""HTTP client for the Business Central API v2.0 (companies, items, item variants, customers, sales orders and
lines, posted sales shipments and invoices, G/L accounts, general journals and their lines, the journal post
action, general ledger entries).

* Base URL ``{api_url}/v2.0/{tenant}/{environment}/api/v2.0``; company-scoped sets under ``companies({id})``.
* Reads follow ``@odata.nextLink`` until it is absent (server-driven paging; ``page_size`` asks for smaller
  pages with ``Prefer: odata.maxpagesize``). ``$filter`` values are quoted with `odata_str`; ``$orderby`` takes
  one field (``"lastModifiedDateTime asc"``).
* `create_sales_order` is one deep-insert POST (header with inline ``salesOrderLines``): BC inserts it in one
  transaction, so a bad line leaves no half order.
* Retries follow `pipelines.connectors.retry`: 429 honours ``Retry-After``; POSTs are non-idempotent (only 429
  and never-sent connection errors are retried). A 401 drops the cached token and retries once.
* `patch` sends ``If-Match`` with the entity's ``@odata.etag``; on 412 it re-reads the entity and, when given a
  `rebase` function, recomputes the change from the fresh copy and tries again (bounded), else raises
  `EntityChanged`.
* Secrets never reach logs or error messages (`TokenSource` keeps the client secret private).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from pipelines.connectors.businesscentral.auth import DEFAULT_SCOPE, TokenSource
from pipelines.connectors.businesscentral.errors import BcRequestError, EntityChanged, envelope
from pipelines.connectors.errors import AuthError
from pipelines.connectors.retry import raise_for_status, retrying, transient_from_transport

log = logging.getLogger(__name__)


def odata_str(value: str) -> str:
    """An OData string literal: single quotes, embedded quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


class BusinessCentralClient:
    def __init__(self, api_url: str, tenant: str, environment: str, client_id: str, client_secret: str, *,
                 company_id: str | None = None, auth_url: str | None = None, scope: str = DEFAULT_SCOPE,
                 http: httpx.Client | None = None, timeout_s: float = 30.0, max_attempts: int = 6,
                 max_wait_s: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self._http = http or httpx.Client(timeout=timeout_s)
        self._owns_http = http is None
        self.root = f"{api_url.rstrip('/')}/v2.0/{tenant}/{environment}/api/v2.0"
        self.tokens = TokenSource(self._http, auth_url or api_url, tenant, client_id, client_secret, scope=scope)
        self.company_id = company_id
        self._max_attempts = max_attempts
        self._max_wait_s = max_wait_s
        self._sleep = sleep
        self.requests_sent = 0
        self.rate_limited = 0

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BusinessCentralClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------------------
    def _once(self, method: str, url: str, *, params: dict[str, Any] | None, json: Any,
              headers: dict[str, str]) -> httpx.Response:
        for attempt in (1, 2):
            token = self.tokens.token()
            try:
                self.requests_sent += 1
                resp = self._http.request(method, url, params=params, json=json,
                                          headers={**headers, "Authorization": f"Bearer {token}"})
            except httpx.TransportError as exc:
                raise transient_from_transport(exc) from exc
            if resp.status_code == 401 and attempt == 1:
                self.tokens.invalidate(token)
                continue
            break
        if resp.status_code == 429:
            self.rate_limited += 1
        if resp.status_code == 412:
            code, message = envelope(resp)
            raise EntityChanged(f"{method} {url}: HTTP 412 {code} {message}", status=412)
        if resp.status_code in (401, 403):
            code, message = envelope(resp)
            raise AuthError(f"{method} {url}: HTTP {resp.status_code} {code} {message}", status=resp.status_code)
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 425, 429, 499):
            code, message = envelope(resp)
            raise BcRequestError(f"{method} {url}: HTTP {resp.status_code} {code}: {message}", code=code,
                                 status=resp.status_code, body=resp.text[:2000])
        raise_for_status(resp)
        return resp

    def request(self, method: str, path_or_url: str, *, params: dict[str, Any] | None = None, json: Any = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        url = path_or_url if path_or_url.startswith("http") else f"{self.root}/{path_or_url.lstrip('/')}"
        idempotent = method in ("GET", "PUT", "DELETE", "PATCH")  # PATCH is guarded by If-Match
        for attempt in retrying(max_attempts=self._max_attempts, max_wait_s=self._max_wait_s,
                                idempotent=idempotent, sleep=self._sleep, logger=log):
            with attempt:
                return self._once(method, url, params=params, json=json, headers=headers or {})
        raise AssertionError("unreachable")  # pragma: no cover

    def _company_path(self, rest: str) -> str:
        if not self.company_id:
            raise ValueError("company_id is not set (see companies())")
        return f"companies({self.company_id})/{rest}"

    # -- generic OData ---------------------------------------------------------------------------------------
    def iter_set(self, rest: str, *, filter: str | None = None, expand: str | None = None,
                 top: int | None = None, page_size: int | None = None, orderby: str | None = None
                 ) -> Iterator[dict[str, Any]]:
        """Every entity of a (company-scoped) set, following `@odata.nextLink`."""
        params: dict[str, Any] = {}
        if filter:
            params["$filter"] = filter
        if orderby:
            params["$orderby"] = orderby
        if expand:
            params["$expand"] = expand
        if top is not None:
            params["$top"] = top
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
        url: str | None = self._company_path(rest)
        while url is not None:
            body = self.request("GET", url, params=params or None, headers=headers).json()
            yield from body.get("value", [])
            url, params = body.get("@odata.nextLink"), None

    def get_entity(self, rest: str, entity_id: str, *, expand: str | None = None) -> dict[str, Any]:
        params = {"$expand": expand} if expand else None
        return self.request("GET", self._company_path(f"{rest}({entity_id})"), params=params).json()

    def create(self, rest: str, body: dict[str, Any], *, expand: str | None = None) -> dict[str, Any]:
        params = {"$expand": expand} if expand else None
        return self.request("POST", self._company_path(rest), params=params, json=body).json()

    def patch(self, rest: str, entity: dict[str, Any], changes: dict[str, Any], *,
              rebase: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
              max_conflicts: int = 3) -> dict[str, Any]:
        """PATCH `changes` onto `entity` with `If-Match: entity['@odata.etag']`.

        On 412 the entity is re-read; `rebase(fresh)` returns the changes to apply to it (None: nothing left to
        do, the fresh entity is returned). Without `rebase`, or after `max_conflicts` conflicts, `EntityChanged`.
        """
        current = entity
        for _ in range(max_conflicts + 1):
            path = self._company_path(f"{rest}({current['id']})")
            try:
                return self.request("PATCH", path, json=changes,
                                    headers={"If-Match": current["@odata.etag"]}).json()
            except EntityChanged:
                if rebase is None:
                    raise
                current = self.get_entity(rest, current["id"])
                rebased = rebase(current)
                if rebased is None:
                    return current
                changes = rebased
        raise EntityChanged(f"PATCH {rest}({entity['id']}): still changed after {max_conflicts} re-reads",
                            status=412)

    def delete(self, rest: str, entity: dict[str, Any]) -> None:
        """DELETE with `If-Match`; `rest` is the set path (`"customers"`, `"journals(<id>)/journalLines"`)."""
        self.request("DELETE", self._company_path(f"{rest}({entity['id']})"),
                     headers={"If-Match": entity["@odata.etag"]})

    # -- typed surface ---------------------------------------------------------------------------------------
    def companies(self) -> list[dict[str, Any]]:
        url: str | None = "companies"
        out: list[dict[str, Any]] = []
        while url is not None:
            body = self.request("GET", url).json()
            out.extend(body.get("value", []))
            url = body.get("@odata.nextLink")
        return out

    def items(self, **kw: Any) -> Iterator[dict[str, Any]]:
        return self.iter_set("items", **kw)

    def item_variants(self, **kw: Any) -> Iterator[dict[str, Any]]:
        return self.iter_set("itemVariants", **kw)

    def customers(self, **kw: Any) -> Iterator[dict[str, Any]]:
        return self.iter_set("customers", **kw)

    def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.create("customers", body)

    def create_item(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.create("items", body)

    def create_item_variant(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.create("itemVariants", body)

    def sales_orders(self, *, filter: str | None = None, with_lines: bool = False,
                     page_size: int | None = None, orderby: str | None = None) -> Iterator[dict[str, Any]]:
        return self.iter_set("salesOrders", filter=filter, expand="salesOrderLines" if with_lines else None,
                             page_size=page_size, orderby=orderby)

    def sales_orders_by_external_number(self, external_number: str, *, with_lines: bool = True
                                        ) -> list[dict[str, Any]]:
        """The sales orders holding `external_number` (the Centra order number) - the idempotency lookup."""
        return list(self.sales_orders(filter=f"externalDocumentNumber eq {odata_str(external_number)}",
                                      with_lines=with_lines))

    def sales_order(self, order_id: str, *, with_lines: bool = True) -> dict[str, Any]:
        return self.get_entity("salesOrders", order_id, expand="salesOrderLines" if with_lines else None)

    def create_sales_order(self, header: dict[str, Any], lines: list[dict[str, Any]] | None = None
                           ) -> dict[str, Any]:
        """One deep-insert POST of the header with its lines (all or nothing); returns the order with its lines.

        Not retried after the request may have reached BC (POST is not idempotent): on a `TransientError` the
        caller looks the order up by `externalDocumentNumber` before sending it again.
        """
        body = {**header, "salesOrderLines": list(lines or [])}
        return self.create("salesOrders", body, expand="salesOrderLines")

    def create_sales_order_line(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.create(f"salesOrders({order_id})/salesOrderLines", body)

    def sales_order_lines(self, order_id: str) -> list[dict[str, Any]]:
        return list(self.iter_set(f"salesOrders({order_id})/salesOrderLines"))

    def sales_shipments(self, *, filter: str | None = None, with_lines: bool = True,
                        page_size: int | None = None, orderby: str | None = None) -> Iterator[dict[str, Any]]:
        return self.iter_set("salesShipments", filter=filter, expand="salesShipmentLines" if with_lines else None,
                             page_size=page_size, orderby=orderby)

    def sales_shipment_lines(self, shipment_id: str) -> list[dict[str, Any]]:
        return list(self.iter_set(f"salesShipments({shipment_id})/salesShipmentLines"))

    def sales_invoices(self, *, filter: str | None = None, page_size: int | None = None
                       ) -> Iterator[dict[str, Any]]:
        return self.iter_set("salesInvoices", filter=filter, page_size=page_size)

    # -- items, accounts, general journals, G/L entries ------------------------------------------------------
    def item_by_number(self, number: str) -> dict[str, Any] | None:
        found = list(self.items(filter=f"number eq {odata_str(number)}"))
        return found[0] if found else None

    def accounts(self, *, filter: str | None = None) -> Iterator[dict[str, Any]]:
        return self.iter_set("accounts", filter=filter)

    def journals(self, *, filter: str | None = None) -> Iterator[dict[str, Any]]:
        return self.iter_set("journals", filter=filter)

    def journal_by_code(self, code: str) -> dict[str, Any] | None:
        found = list(self.journals(filter=f"code eq {odata_str(code)}"))
        return found[0] if found else None

    def create_journal(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.create("journals", body)

    def journal_lines(self, journal_id: str, *, filter: str | None = None) -> list[dict[str, Any]]:
        return list(self.iter_set(f"journals({journal_id})/journalLines", filter=filter))

    def create_journal_line(self, journal_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.create(f"journals({journal_id})/journalLines", body)

    def delete_journal_line(self, journal_id: str, line: dict[str, Any]) -> None:
        self.delete(f"journals({journal_id})/journalLines", line)

    def post_journal(self, journal_id: str) -> None:
        """The bound action `journals({id})/Microsoft.NAV.post`: posts every line of the journal, which empties.

        Not retried once sent (a POST): after a `TransientError` look for the G/L entries before posting again.
        """
        self.request("POST", self._company_path(f"journals({journal_id})/Microsoft.NAV.post"))

    def general_ledger_entries(self, *, start_date: str | None = None, end_date: str | None = None,
                               document_number: str | None = None, top: int | None = None,
                               page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Posted G/L entries, by `postingDate` range (inclusive) and/or `documentNumber`, by entry number."""
        terms = []
        if start_date:
            terms.append(f"postingDate ge {start_date}")
        if end_date:
            terms.append(f"postingDate le {end_date}")
        if document_number is not None:
            terms.append(f"documentNumber eq {odata_str(document_number)}")
        return self.iter_set("generalLedgerEntries", filter=" and ".join(terms) or None, top=top,
                             page_size=page_size, orderby="entryNumber asc")
