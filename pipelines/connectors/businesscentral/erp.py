"""`ErpSystem` (pipelines.domain.erp.ports) over the Business Central API v2.0 client.

* Sales orders: one deep-insert POST (header + ``salesOrderLines``, ``pricesIncludeTax: true`` so the commerce
  platform's tax-included prices and discounts go in as they are; BC derives the amounts excluding tax). A 400
  -> `ErpRejected` with BC's error as evidence, nothing written. POST is not idempotent: after a transport error
  (the answer lost, the order maybe committed) `create_order` looks the order up by ``externalDocumentNumber``
  (= `external_ref`) and only POSTs again when it is not there.
* Item variants are addressed by id on order lines: the id is looked up by item number + variant code, cached.
* Shipments: ``lastModifiedDateTime ge since`` (inclusive, oldest first: the caller dedupes and keeps an
  overlap, since a long posting transaction can publish a shipment after its timestamp). Only Item lines are
  returned; a shipment line's variant comes from the order line of the same ``sequence`` (the API v2.0
  shipment-line page has no variant field). Tracking number and shipping agent are ``packageTrackingNumber`` /
  ``shippingAgentCode``: NOT on the standard API page (a custom API page is needed in a real tenant; see the
  simulator's PROVENANCE.md).
* Stock: an item's ``inventory`` (item level; the API v2.0 pages expose no per-variant inventory, so
  `ErpStockLevel.variant_code` is always None).
* Journals: `post_journal` is idempotent on the document number (G/L entries with it mean posted). It finds or
  creates the journal (batch ``journal_code``), deletes the lines of the same document an earlier crashed attempt
  left, adds its lines (the balancing account on each, so every line balances itself), and calls the bound action
  ``Microsoft.NAV.post``, which posts EVERY line of the batch. So lines of other documents must not be there: lines
  older than ``stale_line_s`` are a crashed attempt's (deleted; that document has no G/L entries, so its own retry
  redoes it whole), fresher ones a concurrent writer's (`JournalBusy`, retryable, nothing posted; checked again
  just before posting). A lost answer to the post action is resolved by looking for the G/L entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from pipelines.connectors.businesscentral.client import BusinessCentralClient, odata_str
from pipelines.connectors.businesscentral.errors import BcRequestError
from pipelines.connectors.errors import RateLimited, TransientError
from pipelines.domain.erp.model import (
    ACCOUNT,
    ITEM,
    ErpItem,
    ErpOrder,
    ErpOrderLine,
    ErpShipment,
    ErpShipmentLine,
    ErpStockLevel,
    LedgerEntry,
)
from pipelines.domain.erp.ports import ErpOrderRequest, ErpRejected, JournalRequest

log = logging.getLogger(__name__)

#: Sales Header field lengths (BC table 36) the ship-to values are cut to, so a long address is not refused.
_SHIP_TO_LENGTHS = {"shipToName": 100, "shipToAddressLine1": 100, "shipToAddressLine2": 50, "shipToCity": 30,
                    "shipToPostCode": 20, "shipToState": 30, "shipToCountry": 10}
_DESCRIPTION_LENGTH = 100
#: How many times `create_order` sends the POST when its answers are lost and the order is still not there.
_CREATE_ATTEMPTS = 3
_LINE_TYPES = {ITEM: "Item", ACCOUNT: "Account"}


class JournalBusy(TransientError):
    """The journal holds another document's fresh lines (a concurrent writer): nothing was posted; try later."""

    def __init__(self, message: str) -> None:
        super().__init__(message, request_sent=False)


def _evidence(exc: BcRequestError) -> dict[str, Any]:
    return {"status": exc.status, "code": exc.code, "message": str(exc), "body": exc.body}


def _float(value: Any) -> float:
    return float(value or 0.0)


class BusinessCentralErp:
    """The ERP port on Business Central. `client` must have its `company_id` set."""

    def __init__(self, client: BusinessCentralClient, *, journal_code: str = "POS", stale_line_s: float = 900.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.journal_code = journal_code
        self.stale_line_s = stale_line_s
        self._clock = clock
        self._variant_ids: dict[tuple[str, str], str] = {}
        self._variant_codes: dict[str, str] = {}
        self._journal_id: str | None = None
        self._has_variants: bool | None = None

    # -- sales orders ------------------------------------------------------------------------------------------
    def orders_by_external_ref(self, external_ref: str) -> tuple[ErpOrder, ...]:
        return tuple(self._order(o) for o in self.client.sales_orders_by_external_number(external_ref))

    def create_order(self, request: ErpOrderRequest) -> ErpOrder:
        body = self._order_body(request)
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                return self._order(self.client.create("salesOrders", body, expand="salesOrderLines"))
            except BcRequestError as exc:
                raise ErpRejected(f"Business Central refused sales order {request.external_ref}: {exc}",
                                  evidence=_evidence(exc)) from exc
            except TransientError as exc:
                if isinstance(exc, RateLimited) or exc.request_sent is False:
                    raise  # never reached BC (the client already retried what it could)
                found = self.orders_by_external_ref(request.external_ref)
                if found:
                    log.info("sales order %s was created by a request whose answer was lost", request.external_ref)
                    return found[0]
                if attempt == _CREATE_ATTEMPTS:
                    raise
                log.warning("sales order %s: answer lost and no order found; sending again", request.external_ref)
        raise AssertionError("unreachable")  # pragma: no cover

    def _order_body(self, request: ErpOrderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"externalDocumentNumber": request.external_ref,
                                "customerNumber": request.customer_number, "currencyCode": request.currency,
                                "orderDate": request.order_date, "pricesIncludeTax": True}
        if request.ship_to is not None:
            a = request.ship_to
            for key, value in (("shipToName", a.name), ("shipToAddressLine1", a.address1),
                               ("shipToAddressLine2", a.address2), ("shipToCity", a.city),
                               ("shipToPostCode", a.zip_code), ("shipToState", a.state),
                               ("shipToCountry", a.country)):
                if value:
                    body[key] = str(value)[:_SHIP_TO_LENGTHS[key]]
        lines = []
        for ln in request.lines:
            if ln.line_type not in _LINE_TYPES:
                raise ErpRejected(f"unsupported line type {ln.line_type!r}", evidence={"line": ln.number})
            line: dict[str, Any] = {"lineType": _LINE_TYPES[ln.line_type], "lineObjectNumber": ln.number,
                                    "quantity": ln.quantity, "unitPrice": round(ln.unit_price, 2),
                                    "discountAmount": round(ln.discount_amount, 2),
                                    "description": (ln.description or "")[:_DESCRIPTION_LENGTH]}
            if ln.tax_code:
                line["taxCode"] = ln.tax_code
            if ln.variant_code and ln.line_type == ITEM:
                line["itemVariantId"] = self._variant_id(ln.number, ln.variant_code)
            lines.append(line)
        body["salesOrderLines"] = lines
        return body

    def _variant_id(self, item_number: str, code: str) -> str:
        key = (item_number, code)
        if key not in self._variant_ids:
            found = list(self.client.item_variants(
                filter=f"itemNumber eq {odata_str(item_number)} and code eq {odata_str(code)}"))
            if not found:
                raise ErpRejected(f"Business Central has no variant {code!r} of item {item_number!r}",
                                  evidence={"itemNumber": item_number, "variantCode": code})
            self._variant_ids[key] = found[0]["id"]
            self._variant_codes[found[0]["id"]] = code
        return self._variant_ids[key]

    def _variant_code(self, variant_id: str | None) -> str | None:
        if not variant_id or variant_id.strip("0-") == "":
            return None
        if variant_id not in self._variant_codes:
            for v in self.client.item_variants():
                self._variant_codes[v["id"]] = v["code"]
                self._variant_ids[(v["itemNumber"], v["code"])] = v["id"]
        return self._variant_codes.get(variant_id)

    def _order(self, o: dict[str, Any]) -> ErpOrder:
        raw_lines = o.get("salesOrderLines")
        if raw_lines is None:
            raw_lines = self.client.sales_order_lines(o["id"])
        lines = tuple(ErpOrderLine(
            sequence=int(ln["sequence"]), line_type=ln["lineType"], number=ln["lineObjectNumber"],
            variant_code=self._variant_code(ln.get("itemVariantId")), quantity=_float(ln["quantity"]),
            unit_price=_float(ln["unitPrice"]), discount_amount=_float(ln["discountAmount"]),
            tax_code=ln.get("taxCode") or "", amount_including_tax=_float(ln["amountIncludingTax"]),
            tax_amount=_float(ln["totalTaxAmount"]), shipped_quantity=_float(ln.get("shippedQuantity")),
            description=ln.get("description") or "") for ln in raw_lines)
        return ErpOrder(
            order_id=o["id"], number=o["number"], external_ref=o.get("externalDocumentNumber") or "",
            currency=o.get("currencyCode") or "", customer_number=o.get("customerNumber") or "",
            order_date=o.get("orderDate") or "", status=o.get("status") or "",
            total_including_tax=_float(o.get("totalAmountIncludingTax")), total_tax=_float(o.get("totalTaxAmount")),
            # header `discountAmount` is the invoice discount; the line discounts are the commerce discounts
            discount_amount=round(_float(o.get("discountAmount")) + sum(ln.discount_amount for ln in lines), 2),
            fully_shipped=bool(o.get("fullyShipped")), lines=lines)

    def orders_between(self, start_date: str, end_date: str) -> Iterator[ErpOrder]:
        for o in self.client.sales_orders(filter=f"orderDate ge {start_date} and orderDate le {end_date}",
                                          with_lines=True, orderby="orderDate asc"):
            yield self._order(o)

    def customer_currency(self, customer_number: str) -> str | None:
        found = list(self.client.customers(filter=f"number eq {odata_str(customer_number)}"))
        return (found[0].get("currencyCode") or "") if found else None

    # -- shipments ---------------------------------------------------------------------------------------------
    def shipments_modified_since(self, since: str | None) -> Iterator[ErpShipment]:
        flt = f"lastModifiedDateTime ge {since}" if since else None
        orders: dict[str, dict[int, str | None]] = {}
        for s in self.client.sales_shipments(filter=flt, with_lines=True, orderby="lastModifiedDateTime asc"):
            yield self._shipment(s, orders)

    def shipments_between(self, start_date: str, end_date: str) -> Iterator[ErpShipment]:
        orders: dict[str, dict[int, str | None]] = {}
        for s in self.client.sales_shipments(filter=f"postingDate ge {start_date} and postingDate le {end_date}",
                                             with_lines=True, orderby="postingDate asc"):
            yield self._shipment(s, orders)

    def _order_variants(self, order_number: str, cache: dict[str, dict[int, str | None]]) -> dict[int, str | None]:
        """sequence -> variant code of the order's lines (empty when the order is gone, e.g. fully invoiced).

        The shipment-line page has no variant, so it is read from the order: one GET per order, which a shipments
        poll would pay for every shipment of its overlap window. A company without item variants (one item per SKU)
        has nothing to read: that is asked once per adapter (`itemVariants?$top=1`)."""
        if self._has_variants is None:
            self._has_variants = next(iter(self.client.item_variants(top=1)), None) is not None
        if not self._has_variants:
            return {}
        if order_number not in cache:
            variants: dict[int, str | None] = {}
            if order_number:
                for o in self.client.sales_orders(filter=f"number eq {odata_str(order_number)}", with_lines=True):
                    for ln in o.get("salesOrderLines") or []:
                        variants[int(ln["sequence"])] = self._variant_code(ln.get("itemVariantId"))
            cache[order_number] = variants
        return cache[order_number]

    def _shipment(self, s: dict[str, Any], cache: dict[str, dict[int, str | None]]) -> ErpShipment:
        raw_lines = s.get("salesShipmentLines")
        if raw_lines is None:
            raw_lines = self.client.sales_shipment_lines(s["id"])
        variants = self._order_variants(s.get("orderNumber") or "", cache)
        lines = tuple(ErpShipmentLine(sequence=int(ln["sequence"]), number=ln["lineObjectNumber"],
                                      variant_code=variants.get(int(ln["sequence"])), quantity=_float(ln["quantity"]))
                      for ln in raw_lines if ln.get("lineType") == "Item")
        return ErpShipment(
            shipment_id=s["id"], number=s["number"], order_number=s.get("orderNumber") or "",
            external_ref=s.get("externalDocumentNumber") or "", posting_date=s.get("postingDate") or "",
            tracking_number=s.get("packageTrackingNumber") or None, carrier=s.get("shippingAgentCode") or None,
            modified_at=s.get("lastModifiedDateTime"), lines=lines)

    # -- items and stock ---------------------------------------------------------------------------------------
    def items(self) -> tuple[ErpItem, ...]:
        out = [ErpItem(i["number"], None) for i in self.client.items()]
        for v in self.client.item_variants():
            self._variant_codes[v["id"]] = v["code"]
            self._variant_ids[(v["itemNumber"], v["code"])] = v["id"]
            out.append(ErpItem(v["itemNumber"], v["code"]))
        return tuple(out)

    def stock(self, numbers: Iterable[str] | None = None) -> tuple[ErpStockLevel, ...]:
        wanted = None if numbers is None else set(numbers)
        if wanted is not None and len(wanted) <= 10:
            rows = [i for n in sorted(wanted) for i in self.client.items(filter=f"number eq {odata_str(n)}")]
        else:
            rows = [i for i in self.client.items() if wanted is None or i["number"] in wanted]
        return tuple(ErpStockLevel(i["number"], None, int(round(_float(i.get("inventory"))))) for i in rows)

    # -- general journal ---------------------------------------------------------------------------------------
    def _posted(self, document_number: str) -> bool:
        return bool(list(self.client.general_ledger_entries(document_number=document_number, top=1)))

    def _journal(self) -> str:
        if self._journal_id is None:
            journal = self.client.journal_by_code(self.journal_code)
            if journal is None:
                try:
                    journal = self.client.create_journal({"code": self.journal_code,
                                                          "displayName": f"{self.journal_code} sales"})
                except BcRequestError:  # created meanwhile by another process
                    journal = self.client.journal_by_code(self.journal_code)
                    if journal is None:
                        raise
            self._journal_id = journal["id"]
        return self._journal_id

    def _stale(self, line: dict[str, Any], now: datetime) -> bool:
        stamp = line.get("lastModifiedDateTime")
        if not stamp:
            return True
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        return (now - when).total_seconds() >= self.stale_line_s

    def _delete_lines(self, journal_id: str, lines: Iterable[dict[str, Any]]) -> None:
        for line in lines:
            try:
                self.client.delete_journal_line(journal_id, line)
            except BcRequestError as exc:
                if exc.status != 404:  # already gone (its writer cleaned up): fine
                    raise

    def _foreign_lines(self, journal_id: str, document_number: str, *, clean: bool) -> list[str]:
        """Other documents' lines in the journal (stale ones deleted first when `clean`); deletes our own leftovers."""
        now = self._clock()
        ours, stale, fresh = [], [], []
        for line in self.client.journal_lines(journal_id):
            if line.get("documentNumber") == document_number:
                ours.append(line)
            elif clean and self._stale(line, now):
                stale.append(line)
            else:
                fresh.append(line)
        if clean:
            if stale:
                log.warning("journal %s: deleting %d stale line(s) of %s left by crashed attempts", self.journal_code,
                            len(stale), sorted({ln.get("documentNumber") for ln in stale}))
            self._delete_lines(journal_id, ours + stale)
        return sorted({str(ln.get("documentNumber")) for ln in fresh})

    def post_journal(self, request: JournalRequest) -> bool:
        if self._posted(request.document_number):
            return False
        lines = [ln for ln in request.lines if round(ln.amount, 2) != 0]
        if not lines:
            raise ErpRejected(f"journal {request.document_number}: nothing to post (no line with an amount)",
                              evidence={"document_number": request.document_number})
        journal_id = self._journal()
        busy = self._foreign_lines(journal_id, request.document_number, clean=True)
        if busy:
            raise JournalBusy(f"journal {self.journal_code} holds lines of {busy} (another writer): try again later")
        try:
            for ln in lines:
                body: dict[str, Any] = {
                    "accountType": "G/L Account", "accountNumber": ln.account_number,
                    "postingDate": request.posting_date, "documentNumber": request.document_number,
                    "amount": round(ln.amount, 2),
                    "description": (ln.description or request.description)[:_DESCRIPTION_LENGTH],
                    "balanceAccountType": "G/L Account", "balancingAccountNumber": request.balancing_account}
                if ln.tax_code:
                    body["taxCode"] = ln.tax_code
                self.client.create_journal_line(journal_id, body)
            busy = self._foreign_lines(journal_id, request.document_number, clean=False)
            if busy:  # a writer came in meanwhile: posting now would post its lines too
                self._delete_lines(journal_id, [ln for ln in self.client.journal_lines(journal_id)
                                                if ln.get("documentNumber") == request.document_number])
                raise JournalBusy(f"journal {self.journal_code} got lines of {busy} while posting: try again later")
            self.client.post_journal(journal_id)
        except BcRequestError as exc:
            if self._posted(request.document_number):
                return True  # a concurrent post of the batch took our lines along
            self._delete_lines(journal_id, [ln for ln in self.client.journal_lines(journal_id)
                                            if ln.get("documentNumber") == request.document_number])
            raise ErpRejected(f"Business Central refused journal {request.document_number}: {exc}",
                              evidence=_evidence(exc)) from exc
        except JournalBusy:
            raise
        except TransientError as exc:
            if exc.request_sent is not False and not isinstance(exc, RateLimited) and self._posted(
                    request.document_number):
                return True  # posted; only the answer was lost
            raise
        return True

    def ledger_entries(self, start_date: str, end_date: str,
                       document_prefix: str | None = None) -> tuple[LedgerEntry, ...]:
        return tuple(
            LedgerEntry(document_number=e["documentNumber"], posting_date=e["postingDate"],
                        account_number=e["accountNumber"], debit=_float(e["debitAmount"]),
                        credit=_float(e["creditAmount"]), description=e.get("description") or "")
            for e in self.client.general_ledger_entries(start_date=start_date, end_date=end_date)
            if document_prefix is None or str(e["documentNumber"]).startswith(document_prefix))
