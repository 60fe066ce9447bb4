"""commercetools as the customer sync's commerce platform (`pipelines.domain.flows.customer_ports.CommerceCustomers`).

Customers are commercetools' `/customers` (Customer: `id, version, key, email, firstName, lastName, externalId,
createdAt, lastModifiedAt, addresses`; CustomerDraft; update actions `changeEmail`, `setFirstName`,
`setLastName`: commercetools-api-reference `api-specs/api/types/customer/`).

* Changed customers: `where=lastModifiedAt >= "<cursor>"` (the connector's `query` pages by id keyset).
* A customer created from a store profile gets `key = "ns-" + <store id>` (pattern `^[A-Za-z0-9_-]+$`, 2-256) and
  `externalId = <store id>` ("identifier for use in external systems"), and `authenticationMode: "ExternalAuth"`:
  the store captured no password, and one is never invented. Creating again after a crash finds it by key; an
  e-mail already taken (`DuplicateField`) finds that customer instead.
* Updates carry the version; a 409 `ConcurrentModification` is :class:`StaleCustomer`.
* Order history: orders changed since a cursor (`where=lastModifiedAt >= ...`) with `orderNumber` and
  `customerEmail`, as :class:`HistoryOrder` (Money `centAmount` / 10^`fractionDigits`; a line's paid amount is its
  `taxedPrice.totalGross`, else its `totalPrice` when `taxRate.includedInPrice`, else `totalPrice` plus the rate;
  shipping from `shippingInfo.price` / `shippingInfo.taxedPrice`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pipelines.connectors.commercetools.client import CommercetoolsClient
from pipelines.connectors.commercetools.errors import (
    CommercetoolsError,
    ConcurrentModification,
    DuplicateField,
)
from pipelines.connectors.commercetools.predicates import lit
from pipelines.domain.customers import Customer, email_key
from pipelines.domain.flows.customer_ports import (
    CustomerWriteRefused,
    HistoryLine,
    HistoryOrder,
    StaleCustomer,
)

FIELDS = {"email": "email", "first_name": "firstName", "last_name": "lastName"}
ACTIONS = {"email": ("changeEmail", "email"), "first_name": ("setFirstName", "firstName"),
           "last_name": ("setLastName", "lastName")}
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def customer_from(raw: Mapping[str, Any]) -> Customer:
    """A commercetools Customer as a neutral record (version = the resource version)."""
    return Customer(id=str(raw["id"]), email=str(raw.get("email") or ""), first_name=raw.get("firstName"),
                    last_name=raw.get("lastName"), version=str(raw.get("version")) if raw.get("version") is not None
                    else None, modified_at=raw.get("lastModifiedAt") or raw.get("createdAt"))


def money(value: Mapping[str, Any] | None) -> float:
    """A commercetools Money/TypedMoney as a decimal amount (0 when absent)."""
    if not value:
        return 0.0
    return round(int(value.get("centAmount") or 0) / 10 ** int(value.get("fractionDigits", 2)), 6)


def _gross(total: Mapping[str, Any] | None, taxed: Mapping[str, Any] | None, rate: Mapping[str, Any] | None) -> float:
    if taxed and taxed.get("totalGross"):
        return money(taxed["totalGross"])
    amount = money(total)
    if rate and not rate.get("includedInPrice", True):
        amount *= 1 + float(rate.get("amount") or 0)
    return round(amount, 2)


def history_order(raw: Mapping[str, Any]) -> HistoryOrder | None:
    """A commercetools Order for the store system's order history (None without order number or e-mail)."""
    number, email = raw.get("orderNumber"), raw.get("customerEmail")
    if not number or not email:
        return None
    lines = []
    for li in raw.get("lineItems") or []:
        rate = li.get("taxRate") or {}
        qty = int(li.get("quantity") or 0)
        if qty <= 0:
            continue
        unit = money((li.get("price") or {}).get("value"))
        if rate and not rate.get("includedInPrice", True):
            unit *= 1 + float(rate.get("amount") or 0)
        lines.append(HistoryLine(line_id=str(li["id"]), sku=str((li.get("variant") or {}).get("sku") or ""),
                                 quantity=qty, total=_gross(li.get("totalPrice"), li.get("taxedPrice"), rate),
                                 list_unit_price=round(unit, 2), tax_rate=float(rate.get("amount") or 0)))
    shipping = raw.get("shippingInfo") or {}
    ship_gross = _gross(shipping.get("price"), shipping.get("taxedPrice"), shipping.get("taxRate"))
    ship_tax = round(ship_gross - money((shipping.get("taxedPrice") or {}).get("totalNet")), 2) \
        if (shipping.get("taxedPrice") or {}).get("totalNet") else 0.0
    addr = raw.get("shippingAddress") or {}
    line1 = " ".join(str(x) for x in (addr.get("streetName"), addr.get("streetNumber")) if x)
    address = {k: v for k, v in (("address_line_1", line1), ("zip_code", addr.get("postalCode")),
                                 ("city", addr.get("city")), ("country", addr.get("country"))) if v} \
        if line1 and addr.get("country") else None
    currency = str((raw.get("totalPrice") or {}).get("currencyCode") or "")
    return HistoryOrder(order_ref=str(number), customer_id=raw.get("customerId"), email=str(email),
                        placed_at=str(raw.get("createdAt")), currency=currency,
                        country=raw.get("country") or addr.get("country"), lines=tuple(lines),
                        shipping_price=ship_gross, shipping_tax=ship_tax, address=address,
                        modified_at=raw.get("lastModifiedAt") or raw.get("createdAt"))


def key_for(store_id: str) -> str:
    """The commercetools key of a customer created from a store profile."""
    return ("ns-" + _KEY_CHARS.sub("_", store_id))[:256]


def _refused(exc: CommercetoolsError, what: str) -> CustomerWriteRefused:
    return CustomerWriteRefused(f"commercetools refused {what}: {exc}",
                                {"platform": "commercetools", "status": exc.status, "code": exc.code,
                                 "errors": exc.errors})


class CommercetoolsCustomers:
    """`CommerceCustomers` over a :class:`CommercetoolsClient`."""

    platform = "commercetools"

    def __init__(self, client: CommercetoolsClient) -> None:
        self.client = client

    def changed_since(self, cursor: str | None) -> Iterator[Customer]:
        where = [f"lastModifiedAt >= {lit(cursor)}"] if cursor else []
        for raw in self.client.customers(where=where):
            yield customer_from(raw)

    def orders_since(self, cursor: str | None, *, email: str | None = None) -> Iterator[HistoryOrder]:
        where = [f"lastModifiedAt >= {lit(cursor)}"] if cursor else []
        spellings = sorted({email.strip(), email_key(email) or ""} - {""}) if email else [None]
        seen: set[str] = set()
        for spelling in spellings:
            clauses = [*where, f"customerEmail = {lit(spelling)}"] if spelling else where
            for raw in self.client.orders(where=clauses):
                order = history_order(raw)
                if order is not None and order.order_ref not in seen:
                    seen.add(order.order_ref)
                    yield order

    def get(self, customer_id: str) -> Customer | None:
        raw = self.client.customer(customer_id)
        return customer_from(raw) if raw else None

    def find_by_email(self, email: str) -> list[Customer]:
        key = email_key(email)
        if key is None:
            return []
        # commercetools compares customer e-mails case-insensitively for uniqueness; the stored value keeps its case
        # (so ask for both spellings and compare normalised here)
        found: dict[str, Customer] = {}
        for spelling in sorted({email.strip(), key}):
            for raw in self.client.customers(where=[f"email = {lit(spelling)}"]):
                c = customer_from(raw)
                if email_key(c.email) == key:
                    found[c.id] = c
        return list(found.values())

    def create(self, values: Mapping[str, str | None], *, link_id: str) -> Customer:
        key = key_for(link_id)
        existing = self.client.customer_by_key(key)
        if existing:
            return customer_from(existing)
        draft: dict[str, Any] = {"key": key, "externalId": link_id, "authenticationMode": "ExternalAuth"}
        draft.update({FIELDS[k]: v for k, v in values.items() if k in FIELDS and v is not None})
        try:
            return customer_from(self.client.create_customer(draft))
        except DuplicateField as exc:
            found = self.find_by_email(str(values.get("email") or ""))
            if len(found) == 1:
                return found[0]
            raise _refused(exc, "the customer") from exc
        except CommercetoolsError as exc:
            raise _refused(exc, "the customer") from exc

    def update(self, current: Customer, values: Mapping[str, str | None]) -> Customer:
        actions = []
        for name, value in values.items():
            action, field = ACTIONS[name]
            actions.append({"action": action, field: value} if value is not None else {"action": action})
        if not actions:
            return current
        try:
            raw = self.client.update_customer(current.id, int(current.version or 0), actions)
        except ConcurrentModification as exc:
            raise StaleCustomer(f"commercetools customer {current.id} changed since read") from exc
        except CommercetoolsError as exc:
            raise _refused(exc, f"an update of customer {current.id}") from exc
        return customer_from(raw)
