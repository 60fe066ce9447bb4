"""Validation of ``POST /v0/d/fulfill_order`` bodies: the spec's InjectedOrderRequest plus the documented
400 rules. One validator per section of the body; each appends its messages to ``errs`` in body order,
and the first message decides the response's ``error_code`` (see ``NewStoreState.fulfill_order``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipelines.estate.model import Estate

from .common import ZERO_DECIMAL_CURRENCIES, D, parse_time

_REQUIRED_PAYMENT_KEYS = ("amount", "correlation_ref", "method", "processed_at", "processor", "type")


def validate_injection(body: dict[str, Any], estate: Estate, max_items: int) -> list[str]:
    """Every problem of an injected order, in the order the fake reports them (empty: valid)."""
    errs: list[str] = []
    _check_strings(body, errs)
    currency = _check_header(body, errs)
    _check_addresses(body, errs)
    _check_extended_attributes(body, errs)
    payments = _check_payments(body, currency, errs)
    shipments = body.get("shipments")
    if not isinstance(shipments, list) or not 1 <= len(shipments) <= 10:
        errs.append("'shipments' must be an array of 1..10 shipments")
        return errs
    tally = _Tally()
    for s in shipments:
        _check_shipment(s, body, currency, estate, tally, errs)
    if len(tally.kinds) > 1:
        errs.append("mixed_shipping_option_types: shipping_option and shipping_offer_token cannot be mixed")
    if tally.total_items > max_items:
        errs.append("maximum_allowed_number_of_items_exceeded")
    if payments and not errs:
        paid = sum((D(p["amount"]) for p in payments), Decimal(0))
        if abs(paid - tally.items_total) > Decimal("0.005"):
            errs.append(f"invalid_payments: payments total {paid} differs from the order total {tally.items_total}")
    return errs


@dataclass
class _Tally:
    """What the shipment validators add up across shipments."""

    kinds: set[str] = field(default_factory=set)  # "option" | "token"
    ext_ids: set[Any] = field(default_factory=set)
    total_items: int = 0
    items_total: Decimal = Decimal(0)  # what the payments must add up to


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _decimals_ok(value: Any, currency: str) -> bool:
    places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    d = D(value)
    return d == d.quantize(Decimal(1).scaleb(-places))


def _amount_ok(value: Any, currency: str) -> bool:
    """A non-negative number with the currency's decimals."""
    return _is_num(value) and value >= 0 and _decimals_ok(value, currency)


# -- order header -------------------------------------------------------------------------------------


_STRINGS = (("external_id", 1, 64, True), ("shop", 1, 128, True), ("shop_locale", 1, 128, True),
            ("channel_name", 1, 64, True), ("customer_email", 1, 64, False), ("customer_name", 1, 128, False),
            ("external_customer_id", 0, 64, False), ("associate_id", 0, 256, False), ("store_id", 0, 256, False))


def _check_strings(body: dict[str, Any], errs: list[str]) -> None:
    for key, lo, hi, required in _STRINGS:
        v = body.get(key)
        if v is None:
            if required:
                errs.append(f"'{key}' is a required property")
        elif not isinstance(v, str) or not lo <= len(v) <= hi:
            errs.append(f"'{key}' must be a string of length {lo}..{hi}")


def _check_header(body: dict[str, Any], errs: list[str]) -> str:
    """channel_type, currency, price_method, placed_at; returns the currency to check amounts against."""
    if body.get("channel_type") not in ("web", "mobile", "store"):
        errs.append("'channel_type' must be one of web, mobile, store")
    currency = body.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
        errs.append("'currency' must be an ISO 4217 code")
        currency = "XXX"
    if body.get("price_method") is not None and body["price_method"] not in ("tax_included", "tax_excluded"):
        errs.append("'price_method' must be tax_included or tax_excluded")
    if body.get("placed_at") is not None:
        try:
            parse_time(str(body["placed_at"]))
        except ValueError:
            errs.append("'placed_at' must be an RFC 3339 date-time")
    return currency


def _check_addresses(body: dict[str, Any], errs: list[str]) -> None:
    for key in ("shipping_address", "billing_address"):
        addr = body.get(key)
        if addr is None:
            continue
        if not isinstance(addr, dict) or not addr.get("address_line_1") or \
                not (isinstance(addr.get("country"), str) and len(addr["country"]) == 2):
            errs.append(f"'{key}' needs address_line_1 and a 2-letter country")


def _check_extended_attributes(body: dict[str, Any], errs: list[str]) -> None:
    attrs = body.get("extended_attributes")
    if attrs is not None and (not isinstance(attrs, list) or len(attrs) > 100 or any(
            not isinstance(a, dict) or not isinstance(a.get("name"), str) or not isinstance(a.get("value"), str)
            for a in attrs)):
        errs.append("'extended_attributes' must be <=100 {name, value} string pairs")


def _check_payments(body: dict[str, Any], currency: str, errs: list[str]) -> Any:
    """Returns the payments to total up later (``[]`` when the array itself is invalid)."""
    payments = body.get("payments")
    if payments is None:
        return payments
    if not isinstance(payments, list) or len(payments) > 40:
        errs.append("'payments' must be an array of at most 40 payments")
        payments = []
    for p in payments:
        missing = [k for k in _REQUIRED_PAYMENT_KEYS if not isinstance(p, dict) or p.get(k) in (None, "")]
        if missing:
            errs.append(f"payment is missing {', '.join(missing)}")
        elif not _is_num(p["amount"]) or p["amount"] <= 0 or not _decimals_ok(p["amount"], currency):
            errs.append("payment amount must be a positive amount with the currency's decimals")
        elif p["type"] not in ("authorized", "captured"):
            errs.append("payment type must be authorized or captured")
    return payments


# -- shipments ------------------------------------------------------------------------------------------


def _check_shipment(s: Any, body: dict[str, Any], currency: str, estate: Estate, tally: _Tally,
                    errs: list[str]) -> None:
    if not isinstance(s, dict) or not isinstance(s.get("items"), list) or not s["items"]:
        errs.append("each shipment needs a non-empty 'items' array")
        return
    option, token = s.get("shipping_option"), s.get("shipping_offer_token")
    if (option is None) == (token is None):
        errs.append("each shipment needs exactly one of shipping_option or shipping_offer_token")
    tally.kinds.add("option" if option is not None else "token")
    if option is not None:
        _check_shipping_option(option, body, currency, estate, tally, errs)
    local_ids = {i.get("external_item_id") for i in s["items"] if isinstance(i, dict)}
    parents_of = {i.get("external_item_id"): i.get("addon_parent_external_item_id")
                  for i in s["items"] if isinstance(i, dict)}
    for it in s["items"]:
        tally.total_items += 1
        if not isinstance(it, dict):
            errs.append("shipment items must be objects")
            continue
        _check_item(it, body, currency, estate, tally, errs, local_ids=local_ids, parents_of=parents_of)


def _check_shipping_option(option: Any, body: dict[str, Any], currency: str, estate: Estate, tally: _Tally,
                           errs: list[str]) -> None:
    if not isinstance(option, dict) or not isinstance(option.get("service_level_identifier"), str):
        errs.append("shipping_option.service_level_identifier is required")
        return
    strategy = option.get("routing_strategy")
    node = strategy.get("fulfillment_node_id") if isinstance(strategy, dict) else None
    if node is not None and node not in estate.by_node:
        errs.append(f"invalid_routing_strategy: unknown fulfillment node {node!r}")
    for k in ("price", "tax"):
        v = option.get(k, 0)
        if not _amount_ok(v, currency):
            errs.append(f"shipping_option.{k} must be a non-negative amount with the currency's decimals")
        elif k == "price" or body.get("price_method") == "tax_excluded":
            tally.items_total += D(v)


def _check_item(it: dict[str, Any], body: dict[str, Any], currency: str, estate: Estate, tally: _Tally,
                errs: list[str], *, local_ids: set[Any], parents_of: dict[Any, Any]) -> None:
    eid, pid, price = it.get("external_item_id"), it.get("product_id"), it.get("price")
    if not isinstance(eid, str) or not 1 <= len(eid) <= 64:
        errs.append("item external_item_id must be a string of length 1..64")
    elif eid in tally.ext_ids:
        code = "addon_duplicate_external_item_id" if it.get("addon_parent_external_item_id") or any(
            p == eid for p in parents_of.values()) else "duplicate_external_item_id"
        errs.append(f"{code}: external_item_id {eid!r} is not unique")
    tally.ext_ids.add(eid)
    if not isinstance(pid, str) or not pid:
        errs.append("item product_id is required")
    elif pid not in estate.by_sku:
        errs.append(f"product_not_found: product {pid!r} is not in the catalog")
    if not isinstance(price, dict) or not _is_num(price.get("item_price")):
        errs.append("item price.item_price is required")
    else:
        _check_item_price(price, body, currency, tally, errs)
    parent = it.get("addon_parent_external_item_id")
    if parent is not None and (parent == eid or parent not in local_ids or parents_of.get(parent)):
        errs.append(f"addon_invalid_parent_item: item {eid!r} has an invalid add-on parent")


def _check_item_price(price: dict[str, Any], body: dict[str, Any], currency: str, tally: _Tally,
                      errs: list[str]) -> None:
    for k in ("item_price", "item_list_price"):
        if not _amount_ok(price.get(k, 0), currency):
            errs.append(f"price.{k} must be a non-negative amount with the currency's decimals")
    tally.items_total += D(price["item_price"])
    for t in price.get("item_tax_lines") or []:
        if not isinstance(t, dict) or not _is_num(t.get("amount")) or not _is_num(t.get("rate")) \
                or not 0 <= t["rate"] <= 1:
            errs.append("item_tax_lines need amount and a rate between 0 and 1")
        elif body.get("price_method") == "tax_excluded":
            tally.items_total += D(t["amount"])
