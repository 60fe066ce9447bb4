"""A commerce order as the ERP's sales order (pure): when an order is verified, and the sales order planned from it.

`plan_order` maps every line through the estate's `erp` mapping (`pipelines.domain.erp.mapping`) and collects every
gap before anything is written: the flow (`pipelines.order_flows.erp`) posts the plan or records all its problems.

- Customer: `mapping.customer(order.market_id)`; it must exist in the ERP (`ErpFacts.customer_currency` None:
  no such customer) -> else `erp_customer_unmapped`.
- Currency: `mapping.currency(order.currency)` -> else `erp_currency_mismatch`; when the ERP customer has a
  currency of its own (not "" = local) the order's ERP currency must equal it -> else `erp_currency_mismatch`.
- Lines: a bundle SKU (`mapping.is_bundle`) is exploded into its components (`mapping.bundles`, else
  `erp_bundle_unmapped`), each component quantity x the line's quantity; the bundle's price (tax included, before
  and after its discount) is split by the components' list prices in the order's price list (weight: price x
  component quantity), the cent residue on the last component, so the exploded lines sum exactly to Centra's line.
  Any other SKU is `mapping.item_of(sku)`, which must exist in the ERP (`ErpFacts.items`) -> else
  `erp_sku_unmapped`. The tax code is `mapping.tax_code(line.tax_percent)` -> else `erp_tax_code_unmapped`.
- Money is the commerce platform's own: `unit_price` = the line's price-list price (Centra `unitOriginalPrice`, tax
  included), `discount_amount` = (price-list price - price paid) x quantity; never recomputed from a rate.
- Shipping charged -> one ACCOUNT line on `mapping.shipping_account` (else `erp_shipping_account_unmapped`) at
  the tax code of the order's first line's rate.

One problem per kind, its evidence listing every value of that kind (the runner keys exception records by kind).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.domain.erp import exceptions as x
from pipelines.domain.erp.mapping import ErpMapping, rate_key
from pipelines.domain.erp.model import ACCOUNT, ITEM
from pipelines.domain.erp.ports import ErpAddress, ErpOrderLineRequest, ErpOrderRequest
from pipelines.domain.flows.exceptions import Problem
from pipelines.domain.flows.model import CommerceOrder

CONFIRMED_AUTHORISED, CONFIRMED_CAPTURED, CAPTURED = "confirmed_authorised", "confirmed_captured", "captured"
ORDER_RULES = (CONFIRMED_AUTHORISED, CONFIRMED_CAPTURED, CAPTURED)
SHIPPING_DESCRIPTION = "Shipping"


def _paid(order: CommerceOrder, kinds: tuple[str, ...]) -> bool:
    return any(p.entry_type in kinds and p.status == "SUCCESS" for p in order.payments)


def verified(order: CommerceOrder, rule: str) -> bool:
    """Whether the order goes to the ERP under `rule` (`ErpSettings.order_rule`): confirmed_authorised (no longer
    pending and a successful AUTH or CAPTURE), confirmed_captured (no longer pending and a successful CAPTURE),
    captured (a successful CAPTURE). A cancelled order never is."""
    if order.status == "cancelled":
        return False
    if rule == CONFIRMED_AUTHORISED:
        return order.confirmed and _paid(order, ("AUTH", "CAPTURE"))
    if rule == CONFIRMED_CAPTURED:
        return order.confirmed and _paid(order, ("CAPTURE",))
    if rule == CAPTURED:
        return _paid(order, ("CAPTURE",))
    raise ValueError(f"unknown ERP order rule {rule!r} (one of {', '.join(ORDER_RULES)})")


@dataclass(frozen=True)
class ErpFacts:
    """What the plan needs to know of the ERP: its items (number, variant code or None) and the currency of a
    customer (None: no such customer; "": the local currency)."""

    items: frozenset[tuple[str, str | None]]
    customer_currency: Callable[[str], str | None]


@dataclass(frozen=True)
class LineOrigin:
    """Where an ERP line comes from: the commerce line (None: the shipping line) and how many units of the ERP
    line one unit of the commerce line is (a bundle's component quantity; 1 otherwise)."""

    line_id: str | None
    per_unit: int = 1


@dataclass(frozen=True)
class OrderPlan:
    request: ErpOrderRequest
    origins: tuple[LineOrigin, ...]  # one per request line, in order


@dataclass
class _Gaps:
    by_kind: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, kind: str, **evidence: Any) -> None:
        self.by_kind.setdefault(kind, []).append(evidence)


def _cents(value: float) -> int:
    return int(round(value * 100))


def _half_up(value: float) -> int:
    return int(math.floor(value + 0.5 + 1e-9))


def _split(total_cents: int, weights: list[float], carrier: int) -> list[int]:
    """`total_cents` split by `weights`, each share rounded (half up) to the cent, the residue on `carrier`."""
    whole = sum(weights)
    shares = [_half_up(total_cents * w / whole) for w in weights]
    shares[carrier] += total_cents - sum(shares)
    return shares


def explode_bundle(unit_price: float, paid_price: float, quantity: int, components: list[tuple[int, float]]
                   ) -> list[tuple[int, float, float]]:
    """A bundle line (price-list unit price, paid unit price, quantity) as component lines (quantity, unit price,
    line discount) for components (quantity per bundle, list price).

    The bundle's unit price is split by the components' weights (list price x component quantity; equal weights
    when no component has a price), each component's unit price rounded (half up) to the cent; the residue goes to the last
    component (the last one with quantity 1 when there is one, so its unit price carries it exactly). The line
    discount is split likewise. When the residue component's quantity does not divide the residue, its unit price
    is rounded up and the excess added to its discount, so the exploded lines' amounts (quantity x unit price -
    discount) sum exactly to quantity x paid price and no discount is negative."""
    weights = [k * p for k, p in components]
    if sum(weights) <= 0:
        weights = [float(k) for k, _ in components]
    ones = [i for i, (k, _) in enumerate(components) if k == 1]
    carrier = ones[-1] if ones else len(components) - 1
    total = _cents(unit_price)
    units = [_half_up(share / k) for share, (k, _) in zip(_split(total, weights, carrier), components, strict=True)]
    rest = total - sum(k * u for i, ((k, _), u) in enumerate(zip(components, units, strict=True)) if i != carrier)
    k_carrier = components[carrier][0]
    units[carrier] = -(-rest // k_carrier)  # rounded up
    excess = units[carrier] * k_carrier - rest  # cents per bundle unit, < k_carrier
    discounts = _split(_cents((unit_price - paid_price) * quantity), weights, carrier)
    discounts[carrier] += excess * quantity
    return [(k * quantity, u / 100, d / 100) for (k, _), u, d in zip(components, units, discounts, strict=True)]


def plan_order(order: CommerceOrder, mapping: ErpMapping, facts: ErpFacts,
               list_price: Callable[[str, str | None], float | None]) -> OrderPlan | list[Problem]:
    """The sales order for `order`, or every problem that stops it (see the module docstring). `list_price(sku,
    pricelist_id)`: the SKU's price in the commerce price list (None: not priced there)."""
    gaps = _Gaps()
    customer = mapping.customer(order.market_id)
    customer_currency: str | None = None
    if customer is None:
        gaps.add(x.ERP_CUSTOMER_UNMAPPED.name, market=order.market_id)
    else:
        customer_currency = facts.customer_currency(customer)
        if customer_currency is None:
            gaps.add(x.ERP_CUSTOMER_UNMAPPED.name, market=order.market_id, customer=customer,
                     why="no such customer in the ERP")
    currency = mapping.currency(order.currency)
    if currency is None:
        gaps.add(x.ERP_CURRENCY_MISMATCH.name, currency=order.currency, why="no ERP currency for it")
    elif customer_currency and customer_currency != currency:
        gaps.add(x.ERP_CURRENCY_MISMATCH.name, currency=order.currency, erp_currency=currency, customer=customer,
                 customer_currency=customer_currency, why="the ERP customer's currency differs")
    lines: list[ErpOrderLineRequest] = []
    origins: list[LineOrigin] = []
    live = [ln for ln in order.lines if ln.quantity > 0]
    for ln in live:
        tax_code = mapping.tax_code(ln.tax_percent)
        if tax_code is None:
            gaps.add(x.ERP_TAX_CODE_UNMAPPED.name, line=ln.line_id, sku=ln.sku, tax_percent=rate_key(ln.tax_percent))
        original = ln.list_price if ln.list_price is not None else ln.unit_price
        if mapping.is_bundle(ln.sku):
            components = mapping.bundles.get(ln.sku)
            if not components:
                gaps.add(x.ERP_BUNDLE_UNMAPPED.name, line=ln.line_id, sku=ln.sku, why="no components")
                continue
            prices = [list_price(c.sku, order.pricelist_id) for c in components]
            unpriced = [c.sku for c, p in zip(components, prices, strict=True) if p is None]
            if unpriced:
                gaps.add(x.ERP_BUNDLE_UNMAPPED.name, line=ln.line_id, sku=ln.sku, pricelist=order.pricelist_id,
                         why="components without a price in the order's price list", components=unpriced)
                continue
            refs = [mapping.item_of(c.sku) for c in components]
            missing = [(c.sku, r) for c, r in zip(components, refs, strict=True)
                       if (r.number, r.variant_code) not in facts.items]
            for sku, ref in missing:
                gaps.add(x.ERP_SKU_UNMAPPED.name, line=ln.line_id, sku=sku, bundle=ln.sku, item=ref.number,
                         variant=ref.variant_code)
            if missing or tax_code is None:
                continue
            exploded = explode_bundle(original, ln.unit_price, ln.quantity,
                                      [(c.quantity, float(p or 0.0)) for c, p in zip(components, prices, strict=True)])
            for c, ref, (qty, unit, discount) in zip(components, refs, exploded, strict=True):
                lines.append(ErpOrderLineRequest(ITEM, ref.number, ref.variant_code, qty, unit, discount, tax_code,
                                                 f"{c.sku} (bundle {ln.sku})"))
                origins.append(LineOrigin(ln.line_id, c.quantity))
            continue
        ref = mapping.item_of(ln.sku)
        if (ref.number, ref.variant_code) not in facts.items:
            gaps.add(x.ERP_SKU_UNMAPPED.name, line=ln.line_id, sku=ln.sku, item=ref.number, variant=ref.variant_code)
            continue
        if tax_code is None:
            continue
        discount = round(max(0.0, original - ln.unit_price) * ln.quantity, 2)
        lines.append(ErpOrderLineRequest(ITEM, ref.number, ref.variant_code, ln.quantity, round(original, 2),
                                         discount, tax_code, ln.sku))
        origins.append(LineOrigin(ln.line_id, 1))
    if order.shipping_total > 0:
        code = mapping.tax_code(live[0].tax_percent) if live else None
        if mapping.shipping_account is None:
            gaps.add(x.ERP_SHIPPING_ACCOUNT_UNMAPPED.name, shipping=order.shipping_total)
        elif code is None and live:
            gaps.add(x.ERP_TAX_CODE_UNMAPPED.name, line="shipping", tax_percent=rate_key(live[0].tax_percent))
        elif code is not None:
            lines.append(ErpOrderLineRequest(ACCOUNT, mapping.shipping_account, None, 1,
                                             round(order.shipping_total, 2), 0.0, code, SHIPPING_DESCRIPTION))
            origins.append(LineOrigin(None, 1))
    if gaps.by_kind:
        return problems_of(order, gaps.by_kind)
    addr = order.delivery_address
    ship_to = ErpAddress(name=" ".join(p for p in (addr.first_name, addr.last_name) if p) or None,
                         address1=addr.line1, address2=addr.line2, city=addr.city, zip_code=addr.zip_code,
                         state=None, country=addr.country) if addr is not None else None
    request = ErpOrderRequest(external_ref=order.ref, customer_number=str(customer), currency=str(currency),
                              order_date=order.order_date or "", ship_to=ship_to, lines=tuple(lines))
    return OrderPlan(request, tuple(origins))


_KINDS = {t.name: t for t in x.ERP_EXCEPTION_TYPES}
_WHAT = {
    x.ERP_CUSTOMER_UNMAPPED.name: "no ERP customer for its market",
    x.ERP_CURRENCY_MISMATCH.name: "its currency does not map to the ERP customer's",
    x.ERP_TAX_CODE_UNMAPPED.name: "tax rates without an ERP tax code",
    x.ERP_BUNDLE_UNMAPPED.name: "bundles the mapping does not explode",
    x.ERP_SKU_UNMAPPED.name: "SKUs without an ERP item",
    x.ERP_SHIPPING_ACCOUNT_UNMAPPED.name: "shipping charged but no shipping account",
}


def problems_of(order: CommerceOrder, by_kind: Mapping[str, list[dict[str, Any]]]) -> list[Problem]:
    """One problem per kind: the order, its value and currency, and every unmapped thing of that kind."""
    out = []
    for kind, found in by_kind.items():
        values = sorted({str(f.get("sku") or f.get("tax_percent") or f.get("currency") or f.get("market") or "")
                         for f in found} - {""})
        out.append(Problem(_KINDS[kind], f"commerce order {order.ref}: {_WHAT[kind]}"
                           + (f" ({', '.join(values)})" if values else ""),
                           {"order": order.ref, "market": order.market_id, "currency": order.currency,
                            "value": order.grand_total, "unmapped": found}))
    return out
