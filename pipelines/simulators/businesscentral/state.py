"""In-memory state of a fake Business Central (API v2.0) environment: companies and their entity sets.

Entities are plain dicts keyed by the API page field names (see PROVENANCE.md). Each stored entity carries a
private ``_version`` that feeds its ``@odata.etag``; a write bumps it. The world API (`ship_order`,
`invoice_order`) plays the ERP user posting a shipment/invoice, which clients only read.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Entity sets served per company (EntitySetName of the API v2.0 pages).
ENTITY_SETS = ("items", "itemVariants", "customers", "salesOrders", "salesOrderLines", "salesShipments",
               "salesShipmentLines", "salesInvoices")


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
    return clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    tax_codes: tuple[str, ...] = ("STANDARD", "REDUCED", "ZERO")
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

    def get(self, company_id: str, entity_set: str, entity_id: str) -> dict[str, Any]:
        entity = self.company(company_id).sets[entity_set].get(entity_id)
        if entity is None:
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
        with self.lock:
            company = self.company(company_id)
            cust = self._customer_for(company, body)
            currency = body.get("currencyCode", "")
            if currency not in self.currencies:
                raise BcError(400, "BadRequest", 'The "currencyCode" does not match to a Currency.')
            today = self.clock().date().isoformat()
            order = {"number": company.next_number("S-ORD"), "externalDocumentNumber": body.get(
                "externalDocumentNumber", ""), "orderDate": body.get("orderDate", today),
                "postingDate": body.get("postingDate", today), "customerId": cust["id"],
                "customerNumber": cust["number"], "customerName": cust["displayName"], "currencyCode": currency,
                "pricesIncludeTax": bool(body.get("pricesIncludeTax", False)), "status": "Open",
                "fullyShipped": False, "discountAmount": 0.0, "totalAmountExcludingTax": 0.0,
                "totalTaxAmount": 0.0, "totalAmountIncludingTax": 0.0}
            for key in SHIP_TO_FIELDS:
                order[key] = body.get(key, "")
            order = self._store(company, "salesOrders", order)
            for line in body.get("salesOrderLines") or []:  # deep insert
                self.create_sales_order_line(company_id, order["id"], line)
            return order

    def create_sales_order_line(self, company_id: str, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(company_id)
            order = self.get(company_id, "salesOrders", order_id)
            items = company.sets["items"]
            line_type = body.get("lineType", "Item")
            item = None
            if body.get("itemId"):
                item = items.get(body["itemId"])
                if item is None:
                    raise BcError(400, "BadRequest", "Item does not exist.")
            elif line_type == "Item" and body.get("lineObjectNumber"):
                item = next((i for i in items.values() if i["number"] == body["lineObjectNumber"]), None)
                if item is None:
                    raise BcError(400, "BadRequest", "Item does not exist.")
            tax_code = body.get("taxCode", "")
            if tax_code and tax_code not in self.tax_codes:
                raise BcError(400, "BadRequest", f"The VAT Product Posting Group does not exist. Code='{tax_code}'")
            siblings = [ln for ln in company.sets["salesOrderLines"].values() if ln["documentId"] == order_id]
            qty = float(body.get("quantity", 0))
            unit_price = float(body.get("unitPrice", item["unitPrice"] if item else 0.0))
            discount = float(body.get("discountAmount", 0.0))
            excl = round(qty * unit_price - discount, 2)
            tax_percent = float(body.get("taxPercent", TAX_PERCENT.get(tax_code, 0.0)))
            tax = round(excl * tax_percent / 100, 2)
            line = {"documentId": order_id, "sequence": int(body.get("sequence") or (len(siblings) + 1) * 10000),
                    "itemId": item["id"] if item else "", "lineType": line_type,
                    "lineObjectNumber": item["number"] if item else body.get("lineObjectNumber", ""),
                    "description": body.get("description", item["displayName"] if item else ""),
                    "unitOfMeasureCode": "PCS", "quantity": qty, "unitPrice": unit_price,
                    "discountAmount": discount, "amountExcludingTax": excl, "taxCode": tax_code,
                    "taxPercent": tax_percent, "totalTaxAmount": tax, "amountIncludingTax": round(excl + tax, 2),
                    "shippedQuantity": 0.0, "invoicedQuantity": 0.0, "itemVariantId": body.get("itemVariantId", "")}
            line = self._store(company, "salesOrderLines", line)
            self._retotal(company, order)
            return line

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
                   package_tracking_number: str = "", shipping_agent_code: str = "") -> dict[str, Any]:
        """Post a shipment of `quantities` (sequence -> qty; default: everything outstanding) of an order."""
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
            shipment = self._store(company, "salesShipments", shipment)
            for ln in lines:
                qty = float(todo.get(ln["sequence"], 0.0))
                if qty <= 0:
                    continue
                if ln["shippedQuantity"] + qty > ln["quantity"]:
                    raise BcError(400, "BadRequest", "You cannot ship more than the outstanding quantity.")
                ln["shippedQuantity"] += qty
                self.touch(ln)
                self._store(company, "salesShipmentLines", {
                    "documentId": shipment["id"], "documentNo": shipment["number"], "sequence": ln["sequence"],
                    "lineType": ln["lineType"], "lineObjectNumber": ln["lineObjectNumber"],
                    "description": ln["description"], "unitOfMeasureCode": ln["unitOfMeasureCode"],
                    "unitPrice": ln["unitPrice"], "quantity": qty, "taxPercent": ln["taxPercent"]})
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


SHIP_TO_FIELDS = ("shipToName", "shipToContact", "shipToAddressLine1", "shipToAddressLine2", "shipToCity",
                  "shipToCountry", "shipToState", "shipToPostCode")
#: Pages exposing `lastModifiedDateTime` (SystemModifiedAt); the line and variant pages do not.
MODIFIED_AT_SETS = frozenset({"items", "customers", "salesOrders", "salesShipments", "salesInvoices"})
#: Documents BC creates only by posting (the pages are Editable = false / InsertAllowed = false).
READ_ONLY_SETS = frozenset({"salesShipments", "salesShipmentLines", "salesInvoices"})
#: ASSUMPTION: the VAT % per tax code (VAT Posting Setup is configuration, not API); a knob via `taxPercent`.
TAX_PERCENT = {"STANDARD": 25.0, "REDUCED": 12.0, "ZERO": 0.0}
