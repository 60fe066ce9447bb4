"""NewStore's customer profile API over :class:`NewStoreClient`, and NewStore as the customer sync's store system
(`pipelines.domain.flows.customer_ports.StoreCustomers`).

NewStore portal spec "customer-profile" (api-evangelist/newstore `openapi/newstore-customer-profile-api-openapi.yml`;
scopes `customer:profile:read|write`, REF §1.1):

* ``GET /customer/profiles?q&sort&offset&count`` -> ``{pagination_info{count,offset,total}, profiles[]}``; ``q`` is
  a partial match on e-mail, full name and phone (exact on ``id``/``display_id``); ``count`` 1..500. Documented as
  "not suitable for exporting a comprehensive list": at most 10,000 profiles can be paged through.
* ``POST /customer/profiles`` ``{email*, first_name, last_name | full_name, phone_number, store_id, created_by,
  extended_attributes}`` is get-or-create by e-mail (201 either way): safe to repeat.
* ``GET /customer/profiles/{id}``; ``PATCH /customer/profiles/{id}`` ``{last_updated_at*, ...}``: 409 when the
  profile changed after ``last_updated_at`` (optimistic concurrency). A PATCH with ``extended_attributes``
  replaces them all, so :func:`update_profile` never sends them unless asked.
* Profile: ``id, display_id, email, first_name, last_name, full_name, phone_number, store_id, created_by,
  extended_attributes{name:{data_type,value}}, created_at, updated_at``.

Order history: NewStore adds imported orders to the customer's order history ("Past orders imported into NewStore
Omnichannel Cloud are added to the customer's order history"; "For existing customer profiles, injected orders are
attached to the profile"; developers/guides/importing-orders), through order injection ``POST /v0/d/fulfill_order``
with ``is_historical: true`` (REF §1.4), matched by ``customer_email``. :meth:`NewStoreCustomers.add_to_history`
first asks ``GET /v0/orders/{ref}?id_type=external`` so an order NewStore already holds (imported before, or
handed to a store by an order flow under the same external id) is left alone.

No changed-since filter is documented, so :meth:`NewStoreCustomers.changed_since` pages through the listing (within
the documented 10,000) and keeps the profiles whose ``updated_at`` is at or after the cursor; a tenant with more
profiles than that is reported by :attr:`NewStoreCustomers.listing_capped`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pipelines.connectors.newstore.client import NewStoreClient
from pipelines.connectors.newstore.errors import Conflict, NewStoreAPIError, NotFound
from pipelines.domain.customers import Customer, email_key
from pipelines.domain.flows.customer_ports import CustomerWriteRefused, HistoryOrder, StaleCustomer

PROFILES = "/customer/profiles"
MAX_PAGE = 500  # documented maximum of `count`
LISTING_LIMIT = 10_000  # documented: paging beyond 10,000 profiles returns errors


@dataclass(frozen=True)
class Profile:
    """A NewStore customer profile (empty strings read as absent)."""

    id: str
    email: str
    first_name: str | None
    last_name: str | None
    full_name: str | None
    phone_number: str | None
    store_id: str | None
    created_by: str | None
    display_id: str | None
    created_at: str | None
    updated_at: str | None
    extended_attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfilePage:
    profiles: tuple[Profile, ...]
    offset: int
    total: int


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def profile_from(raw: Mapping[str, Any]) -> Profile:
    return Profile(id=str(raw["id"]), email=str(raw.get("email") or ""), first_name=_opt(raw.get("first_name")),
                   last_name=_opt(raw.get("last_name")), full_name=_opt(raw.get("full_name")),
                   phone_number=_opt(raw.get("phone_number")), store_id=_opt(raw.get("store_id")),
                   created_by=_opt(raw.get("created_by")), display_id=_opt(raw.get("display_id")),
                   created_at=_opt(raw.get("created_at")), updated_at=_opt(raw.get("updated_at")),
                   extended_attributes=dict(raw.get("extended_attributes") or {}))


def list_profiles(client: NewStoreClient, *, q: str | None = None, offset: int = 0, count: int = MAX_PAGE,
                  sort: str | None = None) -> ProfilePage:
    """One page of ``GET /customer/profiles``."""
    params: dict[str, Any] = {"offset": offset, "count": max(1, min(MAX_PAGE, count))}
    if q:
        params["q"] = q
    if sort:
        params["sort"] = sort
    data = client._json("GET", PROFILES, params=params) or {}
    info = data.get("pagination_info") or {}
    return ProfilePage(tuple(profile_from(p) for p in data.get("profiles") or []), int(info.get("offset") or offset),
                       int(info.get("total") or 0))


def iter_profiles(client: NewStoreClient, *, q: str | None = None, page_size: int = MAX_PAGE,
                  limit: int = LISTING_LIMIT) -> Iterator[tuple[Profile, int]]:
    """Every profile the listing gives (offset paging, at most ``limit``), with the listing's total."""
    offset = 0
    page_size = max(1, min(MAX_PAGE, page_size))
    while offset < limit:
        page = list_profiles(client, q=q, offset=offset, count=min(page_size, limit - offset))
        for p in page.profiles:
            yield p, page.total
        offset += len(page.profiles)
        if not page.profiles or offset >= page.total:
            return


def get_profile(client: NewStoreClient, profile_id: str) -> Profile | None:
    try:
        data = client._json("GET", f"{PROFILES}/{quote(profile_id, safe='')}")
    except NotFound:
        return None
    return profile_from(data)


def create_profile(client: NewStoreClient, draft: Mapping[str, Any]) -> Profile:
    """``POST /customer/profiles``: get-or-create by e-mail (retried freely: the same e-mail finds the profile)."""
    return profile_from(client._json("POST", PROFILES, json=dict(draft), idempotent=True))


def update_profile(client: NewStoreClient, profile_id: str, last_updated_at: str,
                   changes: Mapping[str, Any]) -> Profile:
    """``PATCH /customer/profiles/{id}``; raises :class:`Conflict` (409) when the profile changed since
    ``last_updated_at``."""
    body = {"last_updated_at": last_updated_at, **dict(changes)}
    return profile_from(client._json("PATCH", f"{PROFILES}/{quote(profile_id, safe='')}", json=body,
                                     idempotent=False))


def customer_from(p: Profile) -> Customer:
    """A profile as a neutral record (version = ``updated_at``, what a PATCH sends back as ``last_updated_at``)."""
    return Customer(id=p.id, email=p.email, first_name=p.first_name, last_name=p.last_name, phone=p.phone_number,
                    home_store=p.store_id, version=p.updated_at, modified_at=p.updated_at)


_FIELDS = {"email": "email", "first_name": "first_name", "last_name": "last_name"}


class NewStoreCustomers:
    """`StoreCustomers` over a :class:`NewStoreClient`."""

    platform = "newstore"

    def __init__(self, client: NewStoreClient, *, page_size: int = MAX_PAGE, listing_limit: int = LISTING_LIMIT,
                 shop: str = "storefront", shop_locale: str = "en-GB", channel_name: str = "commercetools",
                 service_level: str = "STANDARD", payment_method: str = "credit_card") -> None:
        self.client = client
        self.shop, self.shop_locale, self.channel_name = shop, shop_locale, channel_name
        self.service_level, self.payment_method = service_level, payment_method
        self.page_size = page_size
        self.listing_limit = listing_limit
        self.listing_capped = False  # the last `changed_since` saw a total beyond the listing limit

    def changed_since(self, cursor: str | None) -> Iterator[Customer]:
        self.listing_capped = False
        for profile, total in iter_profiles(self.client, page_size=self.page_size, limit=self.listing_limit):
            self.listing_capped = total > self.listing_limit
            if cursor is None or (profile.updated_at or "") >= cursor:
                yield customer_from(profile)

    def get(self, customer_id: str) -> Customer | None:
        p = get_profile(self.client, customer_id)
        return customer_from(p) if p else None

    def find_by_email(self, email: str) -> list[Customer]:
        key = email_key(email)
        if key is None:
            return []
        return [customer_from(p) for p, _ in iter_profiles(self.client, q=email.strip(), page_size=self.page_size,
                                                           limit=self.listing_limit) if email_key(p.email) == key]

    def create(self, values: Mapping[str, str | None], *, link_id: str) -> Customer:
        draft = {_FIELDS[k]: v for k, v in values.items() if k in _FIELDS and v is not None}
        try:
            return customer_from(create_profile(self.client, draft))
        except NewStoreAPIError as exc:
            raise _refused(exc, "the profile") from exc

    def update(self, current: Customer, values: Mapping[str, str | None]) -> Customer:
        changes = {_FIELDS[k]: ("" if v is None else v) for k, v in values.items() if k in _FIELDS}
        if not changes:
            return current
        # one naming approach per request (first/last, never with full_name): send both halves together
        if "first_name" in changes or "last_name" in changes:
            changes.setdefault("first_name", current.first_name or "")
            changes.setdefault("last_name", current.last_name or "")
        try:
            return customer_from(update_profile(self.client, current.id, str(current.version or ""), changes))
        except Conflict as exc:
            raise StaleCustomer(f"NewStore profile {current.id} changed since read") from exc
        except NewStoreAPIError as exc:
            raise _refused(exc, f"an update of profile {current.id}") from exc


    def add_to_history(self, order: HistoryOrder) -> bool:
        try:
            self.client.get_order(order.order_ref, id_type="external")
            return False
        except NotFound:
            pass
        try:
            self.client.fulfill_order(historical_order_body(order, shop=self.shop, shop_locale=self.shop_locale,
                                                            channel_name=self.channel_name,
                                                            service_level=self.service_level,
                                                            payment_method=self.payment_method))
        except NewStoreAPIError as exc:
            raise _refused(exc, f"the historical order {order.order_ref}") from exc
        return True


def _units(total: float, quantity: int) -> list[float]:
    """A line's amount split into one price per unit, cents spread over the first units (sums to the total)."""
    cents = round(total * 100)
    base, extra = divmod(cents, quantity)
    return [(base + (1 if i < extra else 0)) / 100 for i in range(quantity)]


def historical_order_body(order: HistoryOrder, *, shop: str, shop_locale: str, channel_name: str,
                          service_level: str, payment_method: str) -> dict[str, Any]:
    """The order injection body of a past online order (REF §1.4 fields; one item per unit, tax included)."""
    items = []
    for ln in order.lines:
        for n, price in enumerate(_units(ln.total, ln.quantity)):
            tax = round(price * ln.tax_rate / (1 + ln.tax_rate), 2) if ln.tax_rate else 0.0
            items.append({"external_item_id": f"{ln.line_id}-{n + 1}"[:64], "product_id": ln.sku,
                          "price": {"item_price": price, "item_list_price": max(price, ln.list_unit_price),
                                    "item_tax_lines": [{"amount": tax, "rate": ln.tax_rate, "name": "VAT"}]}})
    body: dict[str, Any] = {
        "external_id": order.order_ref, "shop": shop, "shop_locale": shop_locale, "channel_type": "web",
        "channel_name": channel_name, "currency": order.currency, "price_method": "tax_included",
        "placed_at": order.placed_at, "customer_email": order.email, "is_historical": True,
        "shipments": [{"items": items, "shipping_option": {"service_level_identifier": service_level,
                                                            "price": order.shipping_price,
                                                            "tax": order.shipping_tax}}],
    }
    if order.total > 0:  # a payment must be a positive amount (REF §1.4: payments must match the totals)
        body["payments"] = [{"type": "captured", "amount": order.total, "method": payment_method,
                             "processor": channel_name, "correlation_ref": f"order-{order.order_ref}",
                             "processed_at": order.placed_at}]
    if order.customer_id:
        body["external_customer_id"] = order.customer_id[:64]
    if order.address:
        body["shipping_address"] = dict(order.address)
    return body


def _refused(exc: NewStoreAPIError, what: str) -> CustomerWriteRefused:
    return CustomerWriteRefused(f"NewStore refused {what}: {exc}",
                                {"platform": "newstore", "status": exc.status, "error_code": exc.error_code,
                                 "body": exc.body})
