"""Pure known-answer tests of the ERP order plan (`pipelines.domain.erp.orders`): the verified rule, bundle
explosion with its price split and residue, tax codes, currency, the shipping line, and every mapping gap
collected at once. The expected figures are worked by hand in the docstrings, not computed by the code."""

from __future__ import annotations

import pytest

from pipelines.domain.erp import exceptions as x
from pipelines.domain.erp.mapping import mapping_from_dict
from pipelines.domain.erp.model import ACCOUNT, ITEM
from pipelines.domain.erp.orders import ErpFacts, OrderPlan, explode_bundle, plan_order, verified
from pipelines.domain.erp.ports import ErpOrderLineRequest
from pipelines.domain.flows.model import CommerceAddress, CommerceLine, CommerceOrder, PaymentEntry

MAPPING = {
    "customers": {"1": "C1001"},
    "currencies": {"SEK": "", "EUR": "EUR"},
    "tax_codes": {"25": "STANDARD", "12": "REDUCED"},
    "items": {"SKU-A": {"item": "ITEM-A", "variant": "V1"}},
    "bundles": {"BUNDLE": [{"sku": "SKU-B", "quantity": 1}, {"sku": "SKU-C", "quantity": 2}],
                "TRIO": [{"sku": "SKU-B", "quantity": 1}, {"sku": "SKU-D", "quantity": 1},
                         {"sku": "SKU-E", "quantity": 1}]},
    "shipping_account": "3000",
}
PRICES = {("SKU-B", "7"): 30.0, ("SKU-C", "7"): 20.0, ("SKU-D", "7"): 30.0, ("SKU-E", "7"): 30.0}
ERP_ITEMS = frozenset({("ITEM-A", "V1"), ("SKU-B", None), ("SKU-C", None), ("SKU-D", None), ("SKU-E", None)})
AUTH = (PaymentEntry("AUTH", "SUCCESS"),)


def _facts(currencies: dict[str, str | None] | None = None) -> ErpFacts:
    known = {"C1001": ""} if currencies is None else currencies
    return ErpFacts(items=ERP_ITEMS, customer_currency=lambda n: known.get(n))


def _price(sku: str, pricelist: str | None) -> float | None:
    return PRICES.get((sku, str(pricelist)))


def _line(line_id: str, sku: str, qty: int, paid: float, listed: float, tax: float = 25.0) -> CommerceLine:
    return CommerceLine(line_id=line_id, sku=sku, quantity=qty, shipped_quantity=0, returned_quantity=0,
                        unit_price=paid, tax_percent=tax, list_price=listed)


def _order(lines, *, market="1", currency="SEK", shipping=0.0, status="open", confirmed=True,
           payments=AUTH) -> CommerceOrder:  # noqa: ANN001
    return CommerceOrder(ref="1042", status=status, currency=currency, lines=tuple(lines), market_id=market,
                         pricelist_id="7", grand_total=sum(ln.unit_price * ln.quantity for ln in lines) + shipping,
                         confirmed=confirmed, payments=payments, shipping_total=shipping, order_date="2026-12-01",
                         delivery_address=CommerceAddress("Anna", "Svensson", "Storgatan 1", None, "Lund", "22100",
                                                          "SE"))


def test_a_plain_line_a_bundle_and_shipping_to_known_figures():
    """SKU-A: 2 x list 50.00 paid 40.00 -> unit 50.00, discount 20.00 (Centra's own figures) on ITEM-A/V1.
    BUNDLE (B x1 @30, C x2 @20 -> weights 30:40) 1 x list 100.00 paid 90.00: unit split 4286/5714 cents per
    bundle -> B 42.86, C 5714/2 = 28.57; discount 10.00 split 4.29 / 5.71. Lines sum to 90.00 exactly.
    Shipping 49.00 -> an ACCOUNT line on 3000 at the first line's 25 % = STANDARD.
    Kills: a discount recomputed from a rate, a bundle posted as its own SKU, a split that loses a cent, the
    shipping line missing or on another account/tax code, the variant dropped, the customer or currency wrong."""
    plan = plan_order(_order([_line("L1", "SKU-A", 2, 40.0, 50.0), _line("L2", "BUNDLE", 1, 90.0, 100.0)],
                             shipping=49.0), mapping_from_dict(MAPPING), _facts(), _price)
    assert isinstance(plan, OrderPlan)
    req = plan.request
    assert (req.external_ref, req.customer_number, req.currency, req.order_date) == ("1042", "C1001", "", "2026-12-01")
    assert req.ship_to is not None and (req.ship_to.name, req.ship_to.city, req.ship_to.country) == (
        "Anna Svensson", "Lund", "SE")
    assert req.lines == (
        ErpOrderLineRequest(ITEM, "ITEM-A", "V1", 2, 50.0, 20.0, "STANDARD", "SKU-A"),
        ErpOrderLineRequest(ITEM, "SKU-B", None, 1, 42.86, 4.29, "STANDARD", "SKU-B (bundle BUNDLE)"),
        ErpOrderLineRequest(ITEM, "SKU-C", None, 2, 28.57, 5.71, "STANDARD", "SKU-C (bundle BUNDLE)"),
        ErpOrderLineRequest(ACCOUNT, "3000", None, 1, 49.0, 0.0, "STANDARD", "Shipping"),
    )
    assert [(o.line_id, o.per_unit) for o in plan.origins] == [("L1", 1), ("L2", 1), ("L2", 2), (None, 1)]
    bundle = [ln for ln in req.lines if "bundle" in ln.description]
    assert round(sum(ln.quantity * ln.unit_price - ln.discount_amount for ln in bundle), 2) == 90.0


def test_the_residue_cent_goes_on_the_last_component():
    """TRIO: three components at equal list prices, bundle 100.00 -> 33.33 + 33.33 + 33.34 (the residue on the
    last), 3 bundles paid 80.00 each: discount 60.00 -> 20.00 each. Kills: a split that rounds every share (99.99 or
    100.02), the residue on the wrong component."""
    plan = plan_order(_order([_line("L1", "TRIO", 3, 80.0, 100.0)]), mapping_from_dict(MAPPING), _facts(), _price)
    assert isinstance(plan, OrderPlan)
    assert [(ln.number, ln.quantity, ln.unit_price, ln.discount_amount) for ln in plan.request.lines] == [
        ("SKU-B", 3, 33.33, 20.0), ("SKU-D", 3, 33.33, 20.0), ("SKU-E", 3, 33.34, 20.0)]


def test_a_residue_the_component_quantity_cannot_carry_moves_into_its_discount():
    """Components (2 x @10.00, 3 x @7.50) -> weights 20:22.50; bundle 99.99: shares 4705/5294 cents ->
    A 4705/2 = 23.53 (rounded), B takes the rest 9999 - 4706 = 5293 over 3 units: 17.65 (rounded up: 5295), the
    2-cent excess per bundle added to B's discount. Kills: exploded lines that do not sum to what was paid, a
    negative discount."""
    lines = explode_bundle(99.99, 99.99, 1, [(2, 10.0), (3, 7.5)])
    assert lines == [(2, 23.53, 0.0), (3, 17.65, 0.02)]
    assert round(sum(q * u - d for q, u, d in lines), 2) == 99.99


def test_every_problem_is_collected_at_once():
    """One order with every gap: market 9 (no customer), DKK (no currency), a 6 % line (no tax code), an SKU the
    ERP lacks, a bundle without components, shipping with no account. Kills: stopping at the first problem, a
    gap silently dropped, guessing a tax code or currency."""
    data = {**MAPPING, "shipping_account": None}
    mapping = mapping_from_dict(data, bundle_skus=frozenset({"BOX"}))
    problems = plan_order(_order([_line("L1", "SKU-A", 1, 50.0, 50.0, tax=6.0), _line("L2", "NOPE", 1, 10.0, 10.0),
                                  _line("L3", "BOX", 1, 10.0, 10.0)], market="9", currency="DKK", shipping=10.0),
                          mapping, _facts(), _price)
    assert isinstance(problems, list)
    kinds = {p.kind.name: p for p in problems}
    assert set(kinds) == {x.ERP_CUSTOMER_UNMAPPED.name, x.ERP_CURRENCY_MISMATCH.name, x.ERP_TAX_CODE_UNMAPPED.name,
                          x.ERP_SKU_UNMAPPED.name, x.ERP_BUNDLE_UNMAPPED.name, x.ERP_SHIPPING_ACCOUNT_UNMAPPED.name}
    assert [u["sku"] for u in kinds[x.ERP_SKU_UNMAPPED.name].evidence["unmapped"]] == ["NOPE"]
    assert kinds[x.ERP_TAX_CODE_UNMAPPED.name].evidence["unmapped"][0]["tax_percent"] == "6"
    assert all(p.evidence["order"] == "1042" and p.evidence["value"] == 80.0 for p in problems)


def test_currency_must_match_the_erp_customers_currency():
    """The market's customer bills in EUR but the order is SEK (-> local ""): erp_currency_mismatch; a customer in
    the local currency ("") takes a local order; a customer the ERP does not have: erp_customer_unmapped.
    Kills: posting at the wrong currency, a missing ERP customer passing."""
    order = _order([_line("L1", "SKU-A", 1, 50.0, 50.0)])
    mapping = mapping_from_dict(MAPPING)
    (p,) = plan_order(order, mapping, _facts({"C1001": "EUR"}), _price)
    assert p.kind is x.ERP_CURRENCY_MISMATCH and p.evidence["unmapped"][0]["customer_currency"] == "EUR"
    assert isinstance(plan_order(order, mapping, _facts({"C1001": ""}), _price), OrderPlan)
    (p,) = plan_order(order, mapping, _facts({}), _price)
    assert p.kind is x.ERP_CUSTOMER_UNMAPPED


@pytest.mark.parametrize(("rule", "status", "confirmed", "payments", "expected"), [
    ("confirmed_authorised", "open", True, [("AUTH", "SUCCESS")], True),
    ("confirmed_authorised", "open", False, [("AUTH", "SUCCESS")], False),  # still PENDING
    ("confirmed_authorised", "open", True, [("AUTH", "FAILED")], False),
    ("confirmed_authorised", "open", True, [("CAPTURE", "SUCCESS")], True),
    ("confirmed_captured", "open", True, [("AUTH", "SUCCESS")], False),
    ("confirmed_captured", "open", True, [("AUTH", "SUCCESS"), ("CAPTURE", "SUCCESS")], True),
    ("captured", "open", False, [("CAPTURE", "SUCCESS")], True),
    ("captured", "open", True, [("CAPTURE", "PENDING")], False),
    ("confirmed_authorised", "cancelled", True, [("AUTH", "SUCCESS")], False),
])
def test_verified_rule(rule, status, confirmed, payments, expected):  # noqa: ANN001
    """Kills: a pending or cancelled order posted, a failed/pending payment counted, the rules confused."""
    order = _order([_line("L1", "SKU-A", 1, 50.0, 50.0)], status=status, confirmed=confirmed,
                   payments=tuple(PaymentEntry(t, s) for t, s in payments))
    assert verified(order, rule) is expected


def test_the_erp_order_date_is_the_business_day_the_order_was_placed_on() -> None:
    """Kills: the ERP order dated by the UTC date of Centra's timestamp (an order placed just after midnight in the
    business timezone would be filed a day early in the ERP, and the reconciliation would find it missing)."""
    from pipelines.connectors.centra.flows import erp_order_from_node

    node = {"number": 7, "status": "CONFIRMED", "orderDate": "2026-12-01T23:30:00Z", "lines": []}
    assert erp_order_from_node(node, "Europe/Stockholm").order_date == "2026-12-02"
    assert erp_order_from_node(node, "UTC").order_date == "2026-12-01"
    assert erp_order_from_node({**node, "orderDate": None}, "Europe/Stockholm").order_date is None
