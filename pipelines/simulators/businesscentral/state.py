"""In-memory state of a fake Business Central (API v2.0) environment: companies and their entity sets.

Entities are plain dicts keyed by the API page field names (see PROVENANCE.md). Each stored entity carries a
private ``_version`` that feeds its ``@odata.etag``; a write bumps it, and an optional private ``_visible_from``
(a datetime) hides it from GETs until the state clock reaches it (late publication). The world API
(`ship_order`, `invoice_order`, `add_account`, `set_inventory`, `adjust_inventory`) plays the ERP user posting a
shipment/invoice or keeping master data, which clients only read.

Sales orders with ``pricesIncludeTax: true`` take line ``unitPrice`` and ``discountAmount`` tax included:
``amountIncludingTax = quantity*unitPrice - discountAmount``, ``amountExcludingTax = round(incl / (1 + taxPercent/100),
2)``, ``totalTaxAmount = incl - excl``. A POST of an order with inline ``salesOrderLines`` (deep insert) is one
transaction: every line is validated before anything is stored. General journals (``journals``, their
``journalLines``, the bound action ``Microsoft.NAV.post``) post each line against its account and its balancing
account into ``generalLedgerEntries`` and empty the journal.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: Entity sets served per company (EntitySetName of the API v2.0 pages).
ENTITY_SETS = ("items", "itemVariants", "customers", "salesOrders", "salesOrderLines", "salesShipments",
               "salesShipmentLines", "salesInvoices", "accounts", "journals", "journalLines", "generalLedgerEntries")


class BcError(Exception):
    """An OData error answered as ``{"error": {"code", "message"}}`` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def etag_of(entity: dict[str, Any]) -> str:
    """A weak ETag in BC's shape (``W/"JzQ0Oz..."``: base64 of an opaque version string)."""
    raw = f"'{entity['id']}:{entity['_version']}'".encode()
    return 'W/"' + base64.b64encode(raw).decode() + '"'


def _now_iso(clock: Callable[[], datetime]) -> str:
    return _iso(clock())


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Company:
    id: str
    name: str
    sets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {s: {} for s in ENTITY_SETS})
    counters: dict[str, int] = field(default_factory=dict)

    def next_number(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 1000) + 1
        return f"{prefix}{self.counters[prefix]}"


@dataclass
class BusinessCentralState:
    """Companies, credentials and knobs. All mutation goes through methods holding `lock`."""

    currencies: tuple[str, ...] = ("", "EUR", "USD", "SEK", "GBP", "DKK", "NOK")
    #: Knob: default seconds a posted shipment stays invisible after its `lastModifiedDateTime` (ASSUMPTION).
    published_late_s: float = 0.0
    #: Knob: the journal template new journals belong to (`GetDefaultJournalLinesTemplateName`; ASSUMPTION value).
    journal_template: str = "GENERAL"
    tax_codes: tuple[str, ...] = ("STANDARD", "REDUCED", "ZERO")
    #: Knob: the VAT % of each tax code (VAT Posting Setup is configuration, not API; ASSUMPTION defaults).
    tax_percents: dict[str, float] = field(default_factory=lambda: dict(TAX_PERCENT))
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    companies: dict[str, Company] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_company(self, name: str, company_id: str | None = None) -> Company:
        with self.lock:
            company = Company(id=company_id or str(uuid.uuid4()), name=name)
            self.companies[company.id] = company
            return company

    def company(self, company_id: str) -> Company:
        company = self.companies.get(company_id)
        if company is None:
            raise BcError(404, "BadRequest_NotFound", f"The company '{company_id}' does not exist.")
        return company

    # -- generic store ---------------------------------------------------------------------------------------
    def _store(self, company: Company, entity_set: str, entity: dict[str, Any]) -> dict[str, Any]:
        entity.setdefault("id", str(uuid.uuid4()))
        entity["_version"] = 1
        if entity_set in MODIFIED_AT_SETS:
            entity["lastModifiedDateTime"] = _now_iso(self.clock)
        company.sets[entity_set][entity["id"]] = entity
        return entity

    def visible(self, entity: dict[str, Any]) -> bool:
        """False while a late-published entity's commit is still in flight (see `ship_order(published_late_s=)`)."""
        until = entity.get("_visible_from")
        return until is None or self.clock() >= until

    def get(self, company_id: str, entity_set: str, entity_id: str) -> dict[str, Any]:
        entity = self.company(company_id).sets[entity_set].get(entity_id)
        if entity is None or not self.visible(entity):
            raise BcError(404, "BadRequest_NotFound", f"The {entity_set} '{entity_id}' does not exist.")
        return entity

    def touch(self, entity: dict[str, Any]) -> None:
        entity["_version"] += 1
        if "lastModifiedDateTime" in entity:
            entity["lastModifiedDateTime"] = _now_iso(self.clock)

    # -- master data -----------------------------------------------------------------------------------------
    def add_item(self, company_id: str, number: str, display_name: str, unit_price: float = 0.0,
                 inventory: float = 0.0) -> dict[str, Any]:
        with self.lock:
            return self._store(self.company(company_id), "items", {
                "number": number, "displayName": display_name, "type": "Inventory",
                "baseUnitOfMeasureCode": "PCS", "unitPrice": unit_price, "inventory": inventory})

    def set_inventory(self, company_id: str, number: str, quantity: float) -> dict[str, Any]:
        """World API: the item's on-hand `inventory` becomes `quantity` (a stock count in the ERP)."""
        with self.lock:
            item = self._item_by_number(self.company(company_id), number)
            item["inventory"] = float(quantity)
            self.touch(item)
            return item

    def adjust_inventory(self, company_id: str, number: str, delta: float) -> dict[str, Any]:
        """World API: the item's `inventory` moves by `delta` (a receipt or an adjustment journal)."""
        with self.lock:
            item = self._item_by_number(self.company(company_id), number)
            item["inventory"] = float(item["inventory"]) + float(delta)
            self.touch(item)
            return item

    @staticmethod
    def _item_by_number(company: Company, number: str) -> dict[str, Any]:
        item = next((i for i in company.sets["items"].values() if i["number"] == number), None)
        if item is None:
            raise BcError(400, "BadRequest", "Item does not exist.")
        return item

    def add_account(self, company_id: str, number: str, display_name: str = "", *, category: str = "",
                    sub_category: str = "", blocked: bool = False, direct_posting: bool = True) -> dict[str, Any]:
        """World API: a G/L account in the chart of accounts (the `accounts` page is read only)."""
        with self.lock:
            company = self.company(company_id)
            if any(a["number"] == number for a in company.sets["accounts"].values()):
                raise BcError(400, "BadRequest", f"The G/L Account already exists. No.='{number}'")
            return self._store(company, "accounts", {
                "number": number, "displayName": display_name or number, "category": category,
                "subCategory": sub_category, "blocked": blocked, "accountType": "Posting",
                "directPosting": direct_posting, "netChange": 0.0})

    @staticmethod
    def _account_by_number(company: Company, number: str) -> dict[str, Any] | None:
        return next((a for a in company.sets["accounts"].values() if a["number"] == number), None)

    def add_item_variant(self, company_id: str, item_id: str, code: str, description: str = "") -> dict[str, Any]:
        with self.lock:
            item = self.get(company_id, "items", item_id)
            return self._store(self.company(company_id), "itemVariants", {
                "itemId": item_id, "itemNumber": item["number"], "code": code, "description": description})

    def add_customer(self, company_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(company_id)
            if not body.get("displayName"):
                raise BcError(400, "BadRequest", "The field displayName of table Customer must have a value.")
            entity = {"number": body.get("number") or company.next_number("C"), "displayName": body["displayName"],
                      "currencyCode": body.get("currencyCode", ""), "email": body.get("email", "")}
            return self._store(company, "customers", entity)

    # -- sales orders ----------------------------------------------------------------------------------------
    def _customer_for(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        customers = company.sets["customers"]
        if body.get("customerId"):
            cust = customers.get(body["customerId"])
        elif body.get("customerNumber"):
            cust = next((c for c in customers.values() if c["number"] == body["customerNumber"]), None)
        else:
            raise BcError(400, "BadRequest", 'A "customerNumber" or a "customerId" must be provided.')
        if cust is None:
            raise BcError(400, "BadRequest", "The sell-to customer cannot be found.")
        return cust

    def create_sales_order(self, company_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST salesOrders, with inline `salesOrderLines` (deep insert) validated whole before anything is stored."""
        with self.lock:
            company = self.company(company_id)
            cust = self._customer_for(company, body)
            currency = body.get("currencyCode", "")
            if currency not in self.currencies:
                raise BcError(400, "BadRequest", 'The "currencyCode" does not match to a Currency.')
            today = self.clock().date().isoformat()
            order = {"number": "", "externalDocumentNumber": body.get(
                "externalDocumentNumber", ""), "orderDate": body.get("orderDate", today),
                "postingDate": body.get("postingDate", today), "customerId": cust["id"],
                "customerNumber": cust["number"], "customerName": cust["displayName"], "currencyCode": currency,
                "pricesIncludeTax": bool(body.get("pricesIncludeTax", False)), "status": "Open",
                "fullyShipped": False, "discountAmount": 0.0, "totalAmountExcludingTax": 0.0,
                "totalTaxAmount": 0.0, "totalAmountIncludingTax": 0.0}
            for key in SHIP_TO_FIELDS:
                order[key] = body.get(key, "")
            order["id"] = str(uuid.uuid4())
            inline = body.get("salesOrderLines") or []
            lines = []  # deep insert is one transaction: build (and so validate) every line first
            for n, line_body in enumerate(inline, start=1):
                lines.append(self._build_line(company, order, line_body, n * 10000, [ln["sequence"] for ln in lines]))
            order["number"] = company.next_number("S-ORD")
            order = self._store(company, "salesOrders", order)
            for line in lines:
                self._store(company, "salesOrderLines", line)
            self._retotal(company, order)
            return order

    def create_sales_order_line(self, company_id: str, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(company_id)
            order = self.get(company_id, "salesOrders", order_id)
            siblings = [ln["sequence"] for ln in company.sets["salesOrderLines"].values()
                        if ln["documentId"] == order_id]
            line = self._build_line(company, order, body, (max(siblings, default=0) // 10000 + 1) * 10000, siblings)
            line = self._store(company, "salesOrderLines", line)
            self._retotal(company, order)
            return line

    def _build_line(self, company: Company, order: dict[str, Any], body: dict[str, Any], default_sequence: int,
                    taken: list[int]) -> dict[str, Any]:
        """A validated, computed, not yet stored sales order line (BcError 400 on any bad field)."""
        items = company.sets["items"]
        line_type = body.get("lineType", "Item")
        if line_type not in LINE_TYPES:
            raise BcError(400, "BadRequest", f"Invalid lineType '{line_type}'.")
        item = None
        account = None
        if body.get("itemId") == BLANK_GUID:
            body = {k: v for k, v in body.items() if k != "itemId"}
        if body.get("accountId") == BLANK_GUID:
            body = {k: v for k, v in body.items() if k != "accountId"}
        if body.get("itemId") and body.get("accountId"):
            raise BcError(400, "BadRequest", 'Both "itemId" and "accountId" are specified. Specify only one of them.')
        if body.get("itemId"):
            item = items.get(body["itemId"])
            if item is None:
                raise BcError(400, "BadRequest", "Item does not exist.")
        elif line_type == "Item" and body.get("lineObjectNumber"):
            item = next((i for i in items.values() if i["number"] == body["lineObjectNumber"]), None)
            if item is None:
                raise BcError(400, "BadRequest", "Item does not exist.")
        elif line_type == "Account":
            if body.get("accountId"):
                account = company.sets["accounts"].get(body["accountId"])
            else:
                account = self._account_by_number(company, body.get("lineObjectNumber", ""))
            if account is None:
                raise BcError(400, "BadRequest", "Account does not exist.")
        variant_id = body.get("itemVariantId") or ""
        if variant_id == BLANK_GUID:
            variant_id = ""
        if variant_id:
            variant = company.sets["itemVariants"].get(variant_id)
            if variant is None or item is None or variant["itemId"] != item["id"]:
                raise BcError(400, "BadRequest", "The item variant does not exist.")
        tax_code = body.get("taxCode", "")
        if tax_code and tax_code not in self.tax_codes:
            raise BcError(400, "BadRequest", f"The VAT Product Posting Group does not exist. Code='{tax_code}'")
        try:
            qty = float(body.get("quantity", 0))
            unit_price = float(body.get("unitPrice", item["unitPrice"] if item else 0.0))
            discount = float(body.get("discountAmount", 0.0))
        except (TypeError, ValueError) as exc:
            raise BcError(400, "BadRequest", "Cannot convert a number in the request.") from exc
        if qty < 0:
            raise BcError(400, "BadRequest", "Quantity must be positive.")
        gross = round(qty * unit_price, 2)
        if discount < 0 or discount > gross:
            raise BcError(400, "BadRequest", "Line Discount Amount must not be larger than the line amount.")
        sequence = int(body.get("sequence") or default_sequence)
        if sequence in taken:
            raise BcError(400, "BadRequest", f"The Sales Line already exists. Line No.='{sequence}'")
        tax_percent = float(self.tax_percents.get(tax_code, TAX_PERCENT.get(tax_code, 0.0)))
        if order["pricesIncludeTax"]:
            incl = round(gross - discount, 2)
            excl = round(incl / (1 + tax_percent / 100), 2)
            tax = round(incl - excl, 2)
        else:
            excl = round(gross - discount, 2)
            tax = round(excl * tax_percent / 100, 2)
            incl = round(excl + tax, 2)
        obj = item or account
        return {"id": str(uuid.uuid4()), "documentId": order["id"], "sequence": sequence,
                "itemId": item["id"] if item else BLANK_GUID, "accountId": account["id"] if account else BLANK_GUID,
                "lineType": line_type,
                "lineObjectNumber": obj["number"] if obj else body.get("lineObjectNumber", ""),
                "description": body.get("description", obj["displayName"] if obj else ""),
                "unitOfMeasureCode": "PCS" if item else "", "quantity": qty, "unitPrice": unit_price,
                "discountAmount": discount, "amountExcludingTax": excl, "taxCode": tax_code,
                "taxPercent": tax_percent, "totalTaxAmount": tax, "amountIncludingTax": incl,
                "shippedQuantity": 0.0, "invoicedQuantity": 0.0, "itemVariantId": variant_id or BLANK_GUID}

    def _retotal(self, company: Company, order: dict[str, Any]) -> None:
        lines = [ln for ln in company.sets["salesOrderLines"].values() if ln["documentId"] == order["id"]]
        order["totalAmountExcludingTax"] = round(sum(ln["amountExcludingTax"] for ln in lines), 2)
        order["totalTaxAmount"] = round(sum(ln["totalTaxAmount"] for ln in lines), 2)
        order["totalAmountIncludingTax"] = round(sum(ln["amountIncludingTax"] for ln in lines), 2)
        self.touch(order)

    def order_lines(self, company_id: str, order_id: str) -> list[dict[str, Any]]:
        lines = self.company(company_id).sets["salesOrderLines"].values()
        return sorted((ln for ln in lines if ln["documentId"] == order_id), key=lambda ln: ln["sequence"])

    def patch(self, company_id: str, entity_set: str, entity_id: str, body: dict[str, Any],
              if_match: str | None) -> dict[str, Any]:
        with self.lock:
            entity = self.get(company_id, entity_set, entity_id)
            self._check_etag(entity, if_match)
            if entity_set in READ_ONLY_SETS:
                raise BcError(405, "BadRequest_MethodNotAllowed", f"'PATCH' requests for '{entity_set}' "
                              "are not allowed.")
            for key, value in body.items():
                if key in ("id", "number", "status") or key.startswith("@") or key.startswith("_"):
                    continue
                entity[key] = value
            self.touch(entity)
            return entity

    def delete(self, company_id: str, entity_set: str, entity_id: str, if_match: str | None) -> None:
        with self.lock:
            entity = self.get(company_id, entity_set, entity_id)
            self._check_etag(entity, if_match)
            if entity_set in READ_ONLY_SETS:
                raise BcError(405, "BadRequest_MethodNotAllowed", f"'DELETE' requests for '{entity_set}' "
                              "are not allowed.")
            del self.company(company_id).sets[entity_set][entity_id]

    @staticmethod
    def _check_etag(entity: dict[str, Any], if_match: str | None) -> None:
        if not if_match:
            raise BcError(400, "Internal_RequestDataInvalid", "Could not validate the client concurrency token "
                          "required by the service. Please provide a valid token in the client request.")
        if if_match != "*" and if_match != etag_of(entity):
            raise BcError(412, "Request_EntityChanged", "Another user has already changed the record.")

    # -- world API: the ERP user posts a shipment / invoice ----------------------------------------------------
    def ship_order(self, company_id: str, order_id: str, quantities: dict[int, float] | None = None, *,
                   package_tracking_number: str = "", shipping_agent_code: str = "",
                   published_late_s: float | None = None) -> dict[str, Any]:
        """Post a shipment of `quantities` (sequence -> qty; default: everything outstanding) of an order.

        The shipped items' `inventory` falls by the shipped quantities. `published_late_s` (default: the state's
        `published_late_s` knob) stamps the shipment's `lastModifiedDateTime` now but keeps it (and its lines)
        invisible to GETs for that many seconds more: a long posting transaction commits after its timestamp
        (ASSUMPTION, see PROVENANCE.md), so a poll on `lastModifiedDateTime gt <last seen>` without an overlap
        misses it.
        """
        late = self.published_late_s if published_late_s is None else published_late_s
        with self.lock:
            company = self.company(company_id)
            order = self.get(company_id, "salesOrders", order_id)
            lines = self.order_lines(company_id, order_id)
            todo = quantities or {ln["sequence"]: ln["quantity"] - ln["shippedQuantity"] for ln in lines}
            shipment = {"number": company.next_number("S-SHPT"), "externalDocumentNumber":
                        order["externalDocumentNumber"], "postingDate": self.clock().date().isoformat(),
                        "customerId": order["customerId"], "customerNumber": order["customerNumber"],
                        "customerName": order["customerName"], "currencyCode": order["currencyCode"],
                        "orderNumber": order["number"], "packageTrackingNumber": package_tracking_number,
                        "shippingAgentCode": shipping_agent_code}
            for key in SHIP_TO_FIELDS:
                shipment[key] = order[key]
            for ln in lines:
                if ln["shippedQuantity"] + float(todo.get(ln["sequence"], 0.0)) > ln["quantity"]:
                    raise BcError(400, "BadRequest", "You cannot ship more than the outstanding quantity.")
            shipment = self._store(company, "salesShipments", shipment)
            if late:
                shipment["_visible_from"] = self.clock() + timedelta(seconds=late)
            for ln in lines:
                qty = float(todo.get(ln["sequence"], 0.0))
                if qty <= 0:
                    continue
                ln["shippedQuantity"] += qty
                self.touch(ln)
                item = company.sets["items"].get(ln["itemId"]) if ln["lineType"] == "Item" else None
                if item is not None:
                    item["inventory"] = float(item["inventory"]) - qty
                    self.touch(item)
                shipment_line = self._store(company, "salesShipmentLines", {
                    "documentId": shipment["id"], "documentNo": shipment["number"], "sequence": ln["sequence"],
                    "lineType": ln["lineType"], "lineObjectNumber": ln["lineObjectNumber"],
                    "description": ln["description"], "unitOfMeasureCode": ln["unitOfMeasureCode"],
                    "unitPrice": ln["unitPrice"], "quantity": qty, "taxPercent": ln["taxPercent"]})
                if late:
                    shipment_line["_visible_from"] = shipment["_visible_from"]
            order["fullyShipped"] = all(ln["shippedQuantity"] >= ln["quantity"] for ln in lines)
            order["status"] = "Released"
            self.touch(order)
            return shipment

    def invoice_order(self, company_id: str, order_id: str) -> dict[str, Any]:
        """Post an invoice for an order's full amounts (read back via salesInvoices)."""
        with self.lock:
            company = self.company(company_id)
            order = self.get(company_id, "salesOrders", order_id)
            invoice = {"number": company.next_number("S-INV"), "externalDocumentNumber":
                       order["externalDocumentNumber"], "invoiceDate": self.clock().date().isoformat(),
                       "postingDate": self.clock().date().isoformat(), "customerId": order["customerId"],
                       "customerNumber": order["customerNumber"], "currencyCode": order["currencyCode"],
                       "orderId": order["id"], "orderNumber": order["number"], "status": "Open",
                       "totalAmountExcludingTax": order["totalAmountExcludingTax"],
                       "totalTaxAmount": order["totalTaxAmount"],
                       "totalAmountIncludingTax": order["totalAmountIncludingTax"]}
            return self._store(company, "salesInvoices", invoice)


    # -- general journals ------------------------------------------------------------------------------------
    def create_journal(self, company_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST journals (a Gen. Journal Batch of the default template)."""
        with self.lock:
            company = self.company(company_id)
            code = str(body.get("code") or "")
            if not code:
                raise BcError(400, "BadRequest", "The field code of table Gen. Journal Batch must have a value.")
            if len(code) > 10:
                raise BcError(400, "BadRequest", f"The length of the string is {len(code)}, but it must be less "
                              "than or equal to 10 characters.")
            if any(j["code"] == code for j in company.sets["journals"].values()):
                raise BcError(400, "BadRequest", "The Gen. Journal Batch already exists. Identification fields "
                              f"and values: Journal Template Name='{self.journal_template}',Name='{code}'")
            bal_id, bal_no = self._balancing(company, body.get("balancingAccountId"), None)
            return self._store(company, "journals", {
                "code": code, "displayName": body.get("displayName", ""), "templateDisplayName": self.journal_template,
                "balancingAccountId": bal_id, "balancingAccountNumber": bal_no})

    @staticmethod
    def _balancing(company: Company, account_id: str | None, number: str | None) -> tuple[str, str]:
        if account_id and account_id != BLANK_GUID:
            account = company.sets["accounts"].get(account_id)
            if account is None:
                raise BcError(400, "BadRequest", 'The "balancingAccountId" does not match to an Account.')
            return account["id"], account["number"]
        if number:
            account = BusinessCentralState._account_by_number(company, number)
            if account is None:
                raise BcError(400, "BadRequest", 'The "balancingAccountNumber" does not match to an Account.')
            return account["id"], account["number"]
        return BLANK_GUID, ""

    def journal_lines(self, company_id: str, journal_id: str) -> list[dict[str, Any]]:
        lines = self.company(company_id).sets["journalLines"].values()
        return sorted((ln for ln in lines if ln["journalId"] == journal_id), key=lambda ln: ln["lineNumber"])

    def create_journal_line(self, company_id: str, journal_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST journals({id})/journalLines: a G/L account line (account and balancing account must exist)."""
        with self.lock:
            company = self.company(company_id)
            journal = self.get(company_id, "journals", journal_id)
            if body.get("accountType", "G/L Account") != "G/L Account" or body.get(
                    "balanceAccountType", "G/L Account") != "G/L Account":
                raise BcError(400, "BadRequest", "Only G/L Account lines are supported by this simulator.")
            account = None
            if body.get("accountId"):
                account = company.sets["accounts"].get(body["accountId"])
                if account is None:
                    raise BcError(400, "BadRequest", 'The "accountId" does not match to an Account.')
                if body.get("accountNumber") and body["accountNumber"] != account["number"]:
                    raise BcError(400, "BadRequest", "The account values do not match to a specific Account.")
            elif body.get("accountNumber"):
                account = self._account_by_number(company, body["accountNumber"])
                if account is None:
                    raise BcError(400, "BadRequest", 'The "accountNumber" does not match to an Account.')
            bal_id, bal_no = self._balancing(company, body.get("balancingAccountId"),
                                             body.get("balancingAccountNumber"))
            if not body.get("balancingAccountId") and not body.get("balancingAccountNumber"):
                bal_id, bal_no = journal["balancingAccountId"], journal["balancingAccountNumber"]
            tax_code = body.get("taxCode", "")
            if tax_code and tax_code not in self.tax_codes:
                raise BcError(400, "BadRequest", f"The VAT Product Posting Group does not exist. Code='{tax_code}'")
            try:
                amount = round(float(body.get("amount", 0.0)), 2)
            except (TypeError, ValueError) as exc:
                raise BcError(400, "BadRequest", "Cannot convert a number in the request.") from exc
            taken = [ln["lineNumber"] for ln in self.journal_lines(company_id, journal_id)]
            number = int(body.get("lineNumber") or (max(taken, default=0) // 10000 + 1) * 10000)
            if number in taken:
                raise BcError(400, "BadRequest", f"The Gen. Journal Line already exists. Line No.='{number}'")
            document = str(body.get("documentNumber", ""))
            if len(document) > 20:
                raise BcError(400, "BadRequest", f"The length of the string is {len(document)}, but it must be "
                              "less than or equal to 20 characters.")
            return self._store(company, "journalLines", {
                "journalId": journal_id, "journalDisplayName": journal["code"], "lineNumber": number,
                "accountType": "G/L Account", "accountId": account["id"] if account else BLANK_GUID,
                "accountNumber": account["number"] if account else "",
                "postingDate": body.get("postingDate") or self.clock().date().isoformat(),
                "documentNumber": document, "externalDocumentNumber": body.get("externalDocumentNumber", ""),
                "amount": amount, "description": body.get("description", ""), "comment": body.get("comment", ""),
                "taxCode": tax_code, "balanceAccountType": "G/L Account", "balancingAccountId": bal_id,
                "balancingAccountNumber": bal_no})

    def post_journal(self, company_id: str, journal_id: str) -> list[dict[str, Any]]:
        """The bound action `journals({id})/Microsoft.NAV.post`: every line to G/L entries, then the journal empties.

        All or nothing: an empty journal, a line without an account, or a document (number + posting date) whose
        lines without a balancing account do not sum to zero -> 400 and nothing posted.
        """
        with self.lock:
            company = self.company(company_id)
            self.get(company_id, "journals", journal_id)
            lines = self.journal_lines(company_id, journal_id)
            if not lines:
                raise BcError(400, "BadRequest", "There is nothing to post.")
            open_sums: dict[tuple[str, str], float] = {}
            for ln in lines:
                if not ln["accountNumber"] or self._account_by_number(company, ln["accountNumber"]) is None:
                    raise BcError(400, "BadRequest", f"Account No. must have a value in Gen. Journal Line: "
                                  f"Line No.={ln['lineNumber']}.")
                if ln["balancingAccountNumber"] and self._account_by_number(
                        company, ln["balancingAccountNumber"]) is None:
                    raise BcError(400, "BadRequest", 'The "balancingAccountNumber" does not match to an Account.')
                if not ln["documentNumber"]:
                    raise BcError(400, "BadRequest", "Document No. must have a value in Gen. Journal Line: "
                                  f"Line No.={ln['lineNumber']}.")
                if not ln["balancingAccountNumber"]:
                    key = (ln["documentNumber"], ln["postingDate"])
                    open_sums[key] = round(open_sums.get(key, 0.0) + ln["amount"], 2)
            for (document, date), rest in open_sums.items():
                if abs(rest) >= 0.005:
                    raise BcError(400, "BadRequest", f"Document No. {document} is out of balance by {rest:.2f}. "
                                  f"Please check that Posting Date ({date}), Document Type, Document No. and Amount "
                                  "are correct for each line.")
            posted: list[dict[str, Any]] = []
            for ln in lines:
                posted.append(self._gl_entry(company, ln, ln["accountNumber"], ln["amount"]))
                if ln["balancingAccountNumber"]:
                    posted.append(self._gl_entry(company, ln, ln["balancingAccountNumber"], -ln["amount"]))
                del company.sets["journalLines"][ln["id"]]
            return posted

    def _gl_entry(self, company: Company, line: dict[str, Any], account_number: str, amount: float
                  ) -> dict[str, Any]:
        account = self._account_by_number(company, account_number)
        assert account is not None
        account["netChange"] = round(float(account["netChange"]) + amount, 2)
        self.touch(account)
        company.counters["gl_entry"] = company.counters.get("gl_entry", 0) + 1
        return self._store(company, "generalLedgerEntries", {
            "entryNumber": company.counters["gl_entry"], "postingDate": line["postingDate"],
            "documentNumber": line["documentNumber"], "documentType": GL_BLANK_DOCUMENT_TYPE,
            "accountId": account["id"], "accountNumber": account["number"], "description": line["description"],
            "debitAmount": round(amount, 2) if amount > 0 else 0.0,
            "creditAmount": round(-amount, 2) if amount < 0 else 0.0})


SHIP_TO_FIELDS = ("shipToName", "shipToContact", "shipToAddressLine1", "shipToAddressLine2", "shipToCity",
                  "shipToCountry", "shipToState", "shipToPostCode")
#: Pages exposing `lastModifiedDateTime` (SystemModifiedAt); the sales line and variant pages do not.
MODIFIED_AT_SETS = frozenset({"items", "customers", "salesOrders", "salesShipments", "salesInvoices", "accounts",
                              "journals", "journalLines", "generalLedgerEntries"})
#: Documents BC creates only by posting, and the chart of accounts (the pages are Editable = false).
READ_ONLY_SETS = frozenset({"salesShipments", "salesShipmentLines", "salesInvoices", "accounts",
                            "generalLedgerEntries"})
#: Sales line types (Sales Line Type enum as the API shows it); the simulator models Item and Account lines.
LINE_TYPES = frozenset({"Comment", "Account", "Item", "Resource", "Fixed Asset", "Charge"})
BLANK_GUID = "00000000-0000-0000-0000-000000000000"
#: ASSUMPTION: how the API renders the blank "Document Type" of a plain journal line's G/L entries.
GL_BLANK_DOCUMENT_TYPE = "_x0020_"
#: ASSUMPTION: the default VAT % per tax code (VAT Posting Setup is configuration, not API); knob `state.tax_percents`.
TAX_PERCENT = {"STANDARD": 25.0, "REDUCED": 12.0, "ZERO": 0.0}
