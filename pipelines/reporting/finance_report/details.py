"""Readable words for a finding: its detail as an English sentence, and stores and SKUs by name.

The rules (``pipelines/domain/reconciliation/rules/``) write ``detail`` as ``key=value`` pairs joined by
``;`` (``on_hand=2;physical=5;unit_price=499.00``), or a fixed phrase. :func:`detail_sentence` turns each
finding type's format into a sentence, using the row's currency, quantities and amounts; a detail in a format
it does not know is shown as it is (key=value pairs of an unknown shape as "key value" phrases).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipelines.reporting.finance_report.fmt import _isna, fmt_rate, money_text

if TYPE_CHECKING:
    from pipelines.estate import Estate

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_FIXED: dict[str, str] = {
    "in the POS catalog; no store stock or activity on the day":
        "Listed in the POS catalog, but no store has stock of it and it had no activity on the day.",
    "active in Centra; no store warehouse stock":
        "Active in Centra, but no store warehouse has stock of it.",
}
_DISCOUNT_REASONS = {"negative": "is negative", "exceeds_gross": "is larger than the line's gross",
                     "rate_not_allowed": "is not one of the allowed discount rates"}


def parse_detail(detail: Any) -> dict[str, str] | None:
    """``"a=1;b=x y"`` -> ``{"a": "1", "b": "x y"}``; None when the text is not key=value pairs."""
    if _isna(detail) or not str(detail).strip():
        return None
    out: dict[str, str] = {}
    for part in str(detail).split(";"):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key) or key in out:
            return None
        out[key] = value.strip()
    return out


def _num(kv: Mapping[str, str], key: str) -> float | None:
    """A number of the detail; None when absent or not a number ("n/a")."""
    try:
        return float(kv[key].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


def _units(n: float) -> str:
    i = int(round(n))
    return f"{i:,} unit" if abs(i) == 1 else f"{i:,} units"


def _count(n: float, word: str, plural: str | None = None) -> str:
    i = int(round(n))
    if i == 0:
        return f"no {plural or word + 's'}"
    return f"{i:,} {word if i == 1 else plural or word + 's'}"


def _signed_units(n: float) -> str:
    i = int(round(n))
    return f"+{_units(i)}" if i > 0 else f"\u2212{_units(-i)}" if i < 0 else "0 units"


def _row(row: Any, name: str) -> Any:
    v = getattr(row, name, None)
    return None if _isna(v) else v


def _stock(kv: Mapping[str, str], row: Any) -> str | None:
    on_hand, physical = _num(kv, "on_hand"), _num(kv, "physical")
    if on_hand is None or physical is None:
        return None
    diff = physical - on_hand
    price = _num(kv, "unit_price")
    each = f" ({money_text(price, _row(row, 'currency'))} each)" if price is not None else " (no price-list price)"
    what = ("could be sold online although they are not in the store" if diff > 0
            else "are in the store but not offered online")
    return (f"Centra shows {_units(physical)} in the store's warehouse, the POS has {_units(on_hand)} on hand: "
            f"{_units(abs(diff))} {what}{each}.")


def _sync(kv: Mapping[str, str], row: Any) -> str | None:
    vals = [_num(kv, k) for k in ("pos_net", "commerce_net", "pos_movements", "commerce_changes")]
    if any(v is None for v in vals):
        return None
    pos, com, moves, changes = (float(v) for v in vals)  # type: ignore[arg-type]
    return (f"The POS recorded a net stock change of {_signed_units(pos)} ({_count(moves, 'movement')}); "
            f"Centra's stock-change ledger recorded {_signed_units(com)} ({_count(changes, 'change')}).")


def _orphan_pos(kv: Mapping[str, str], row: Any) -> str | None:
    sold, value = _num(kv, "units_sold"), _num(kv, "sold_value")
    if sold is None or value is None:
        return None
    ccy, price, on_hand = _row(row, "currency"), _num(kv, "unit_price"), _row(row, "quantity_pos")
    parts = [] if on_hand is None else [f"{_units(on_hand)} on hand in the store"]
    parts.append(f"{_units(sold)} sold on the day for {money_text(value, ccy)}" if sold else "none sold on the day")
    text = ", ".join(parts)
    text += f"; unit price {money_text(price, ccy)}." if price is not None else "; no known price."
    return text[0].upper() + text[1:]


def _orphan_commerce(kv: Mapping[str, str], row: Any) -> str | None:
    physical = _num(kv, "physical")
    if physical is None:
        return None
    price = _num(kv, "unit_price")
    each = f" ({money_text(price, _row(row, 'currency'))} each)" if price is not None else ""
    return f"Centra shows {_units(physical)} in the store's warehouse of a SKU the POS does not know{each}."


def _store_sales(kv: Mapping[str, str], row: Any) -> str | None:
    names = ("gross", "discount", "tax", "net")
    diffs = [(n, _num(kv, f"{n}_diff")) for n in names]
    if any(d is None for _, d in diffs):
        return None
    ccy = _row(row, "currency")
    parts = [f"{money_text(abs(d), ccy)} {'more' if d > 0 else 'less'} {n}" for n, d in diffs if d]
    text = ("Downstream has " + _join(parts) + " than the POS") if parts else "The amounts agree"
    qp, qc = _row(row, "quantity_pos"), _row(row, "quantity_commerce")
    if qp is not None and qc is not None and int(qp) != int(qc):
        text += f"; {_count(qc, 'transaction')} downstream, {_count(qp, 'transaction')} in the POS"
    rate = _row(row, "tax_rate")
    return text + (f" (tax rate {fmt_rate(rate)})." if rate is not None else ".")


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _return_without_ref(kv: Mapping[str, str], row: Any) -> str | None:
    tax = _num(kv, "refund_tax")
    if tax is None:
        return None
    ccy, amount = _row(row, "currency"), _row(row, "amount_pos")
    refund = f" of {money_text(abs(float(amount)), ccy)}" if amount is not None else ""
    return f"The store refunded{refund} (tax {money_text(abs(tax), ccy)}) without an order reference."


def _refund(kv: Mapping[str, str], row: Any) -> str | None:
    vals = [_num(kv, k) for k in ("pos_returns", "commerce_returns", "commerce_refunded", "pos_tax", "commerce_tax")]
    if any(v is None for v in vals):
        return None
    pos_n, com_n, refunded, pos_tax, com_tax = (float(v) for v in vals)  # type: ignore[arg-type]
    ccy, ftype = _row(row, "currency"), str(_row(row, "finding_type"))
    qp, qc = _row(row, "quantity_pos"), _row(row, "quantity_commerce")
    ap, ac = _row(row, "amount_pos"), _row(row, "amount_commerce")
    store = _count(pos_n, "return") + ("" if qp is None else f", {_units(abs(qp))}")
    centra = f"{_count(com_n, 'return')}, {int(round(refunded)):,} refunded" + (
        "" if qc is None else f", {_units(abs(qc))}")
    if ftype == "refund_tax_mismatch":
        return (f"Refund tax {money_text(pos_tax, ccy)} in the store ({_count(pos_n, 'return')}), "
                f"{money_text(com_tax, ccy)} in Centra ({_count(com_n, 'return')}).")
    in_store = f"Refunded {money_text(abs(ap), ccy)} in the store" if ap is not None else "Refunded in the store"
    if ftype == "return_missing_in_commerce":
        return f"{in_store} ({store}); Centra has no return of this order and SKU."
    in_centra = f"{money_text(ac, ccy)} in Centra" if ac is not None else "in Centra"
    return f"{in_store} ({store}), {in_centra} ({centra})."


def _when(text: str) -> str:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return t.strftime("%Y-%m-%d %H:%M") + (" UTC" if t.utcoffset() is not None and not t.utcoffset() else "")


def _click_collect(kv: Mapping[str, str], row: Any) -> str | None:
    status = kv.get("status")
    if not status:
        return None
    when = kv.get("completed_at", "")
    picked = f"Picked up in the store{' on ' + _when(when) if when else ''}"
    if status == "MISSING":
        return f"{picked}, but Centra has no such order."
    total = kv.get("order_total", "").split()
    amount = _num({"t": total[0]}, "t") if total else None
    of = f" (order total {money_text(amount, total[1] if len(total) > 1 else None)})" if amount is not None else ""
    return f"{picked}, but the order is still {status} in Centra{of}."


def _line(kv: Mapping[str, str], row: Any) -> str:
    line_no = kv.get("line_no", "")
    return f"Line {line_no}: " if line_no else ""


def _price_off(kv: Mapping[str, str], row: Any) -> str | None:
    unit, listed = _num(kv, "unit_price"), _num(kv, "list_price")
    if unit is None or listed is None:
        return None
    ccy = _row(row, "currency")
    return f"{_line(kv, row)}sold at {money_text(unit, ccy)} each; the price list says {money_text(listed, ccy)}."


def _line_tax(kv: Mapping[str, str], row: Any) -> str | None:
    tax, expected = _num(kv, "tax"), _num(kv, "expected")
    if tax is None or expected is None:
        return None
    ccy, rate = _row(row, "currency"), _num(kv, "rate")
    at = f" at {fmt_rate(rate)}" if rate is not None else ""
    return f"{_line(kv, row)}tax {money_text(tax, ccy)} charged, {money_text(expected, ccy)} expected{at}."


def _line_discount(kv: Mapping[str, str], row: Any) -> str | None:
    disc, gross = _num(kv, "discount"), _num(kv, "gross")
    if disc is None or gross is None:
        return None
    ccy = _row(row, "currency")
    why = _DISCOUNT_REASONS.get(kv.get("reason", ""), "is out of bounds")
    return f"{_line(kv, row)}a discount of {money_text(disc, ccy)} on a gross of {money_text(gross, ccy)} {why}."


def _missing(kv: Mapping[str, str], row: Any) -> str | None:
    kind = {"order": "A sale", "return": "A return"}.get(kv.get("kind", ""))
    if kind is None:
        return None
    seen = len([x for x in kv.get("evidence", "").strip("[]").split(",") if x.strip()])
    amount = _num(kv, "amount")
    of = f" of {money_text(amount, _row(row, 'currency'))}" if amount is not None else " (amount unknown)"
    others = f"{seen} of its other events arrived" if seen != 1 else "one of its other events arrived"
    return f"{kind}{of} happened in NewStore ({others}), but its own event never did and NewStore did not return it."


def _money_kv(kv: Mapping[str, str], key: str) -> str | None:
    """A "123.00 SEK" detail value as money text (None when absent or not a number)."""
    parts = kv.get(key, "").split()
    amount = _num({"v": parts[0]}, "v") if parts else None
    return money_text(amount, parts[1] if len(parts) > 1 else None) if amount is not None else None


def _kiosk_missing(kv: Mapping[str, str], row: Any) -> str | None:
    total, status = _money_kv(kv, "kiosk_total"), kv.get("kiosk_status")
    if total is None or not status:
        return None
    when = kv.get("created_at", "")
    number = kv.get("centra_order_number", "none")
    named = f" (the kiosk order names Centra order {number})" if number and number != "none" else ""
    return (f"Paid at the kiosk{' on ' + _when(when) if when else ''} ({total}, status {status}) for home "
            f"delivery, but Centra has no order for it{named}.")


def _kiosk_total(kv: Mapping[str, str], row: Any) -> str | None:
    kiosk, centra = _money_kv(kv, "kiosk_total"), _money_kv(kv, "centra_goods")
    if kiosk is None or centra is None:
        return None
    return f"The kiosk charged {kiosk}; the Centra order holds {centra} of goods (status {kv.get('centra_status')})."


def _kiosk_sale(kv: Mapping[str, str], row: Any) -> str | None:
    units, sync, pos = _num(kv, "kiosk_units"), _num(kv, "sync_net"), _num(kv, "pos_net")
    if units is None or sync is None or pos is None:
        return None
    orders = _num(kv, "kiosk_orders") or 0
    return (f"{_units(units)} sold at the kiosk and taken home "
            f"({_count(orders, 'order')}); the stock sync changed Centra by {_signed_units(sync)} where the store's "
            f"own movements ({_signed_units(pos)}) and the kiosk sales call for {_signed_units(pos - units)}.")


def _kiosk_availability(kv: Mapping[str, str], row: Any) -> str | None:
    shown, centra, safety = _num(kv, "kiosk_quantity"), _num(kv, "centra_available"), _num(kv, "safety_stock")
    if shown is None or centra is None:
        return None
    safety = safety or 0
    state = "in stock" if shown > safety else "out of stock"
    return (f"At the cut-off the kiosk showed {_units(shown)} ({state}); Centra had {_units(centra)} to sell "
            f"(safety stock {int(safety)}).")


# -- the ERP behind the commerce platform (`rules.erp`) -------------------------------------------------------------

#: what an order-to-ERP exception type (`pipelines.domain.erp.exceptions`) means, in words.
_ERP_BLOCKS: dict[str, str] = {
    "erp_sku_unmapped": "a SKU without an ERP item",
    "erp_bundle_unmapped": "a bundle without an ERP bundle mapping",
    "erp_tax_code_unmapped": "a tax rate without an ERP tax code",
    "erp_currency_mismatch": "a currency the ERP customer does not take",
    "erp_customer_unmapped": "a market without an ERP customer",
    "erp_order_rejected": "the ERP rejected the order",
    "erp_shipping_account_unmapped": "shipping without an ERP shipping account",
}
_ERP_AMOUNTS: dict[str, tuple[str, str]] = {
    "erp_order_total_mismatch": ("total", "total including tax (shipping included)"),
    "erp_order_tax_mismatch": ("tax", "tax"),
    "erp_order_discount_mismatch": ("discount", "discount"),
}


def _erp_block_words(types: str) -> str:
    words = [_ERP_BLOCKS.get(t.strip(), t.strip().replace("_", " ")) for t in types.split(",") if t.strip()]
    return _join(words) if words else ""


def _erp_missing(kv: Mapping[str, str], row: Any) -> str | None:
    total, status = _money_kv(kv, "grand_total"), kv.get("status")
    if total is None or not status:
        return None
    blocked = kv.get("blocked", "none")
    held = ("no order-to-ERP exception holds it" if blocked in ("", "none")
            else f"the order-to-ERP flow holds it for {_erp_block_words(blocked)}")
    return f"The Centra order is {status} ({total}), but the ERP has no sales order for it; {held}."


def _erp_duplicated(kv: Mapping[str, str], row: Any) -> str | None:
    n, extra = _num(kv, "erp_orders"), _money_kv(kv, "extra_total")
    if n is None or extra is None:
        return None
    numbers = ", ".join(x for x in kv.get("erp_numbers", "").split(",") if x)
    return (f"The ERP has {_count(n, 'sales order')} for this Centra order ({numbers}); the ones after the first "
            f"total {extra}.")


def _erp_order(kv: Mapping[str, str], article: str = "the") -> str:
    number = kv.get("erp_order", "none")
    return f"{article} ERP sales order" + (f" {number}" if number and number != "none" else "")


def _erp_amount(kv: Mapping[str, str], row: Any) -> str | None:
    key, words = _ERP_AMOUNTS.get(str(_row(row, "finding_type")), ("", ""))
    centra, erp = _money_kv(kv, f"centra_{key}"), _money_kv(kv, f"erp_{key}")
    if not key or centra is None or erp is None:
        return None
    return f"Centra's order {words} is {centra}; {_erp_order(kv)} has {erp}."


def _erp_currency_word(code: str, commerce: str) -> str:
    if code == "local":
        return "the ERP's local currency"
    if code == "unmapped":
        return f"no ERP currency for {commerce}"
    return code


def _erp_currency(kv: Mapping[str, str], row: Any) -> str | None:
    centra, expected, erp = kv.get("centra_currency"), kv.get("expected"), kv.get("erp_currency")
    if not centra or not expected or not erp:
        return None
    return (f"{_erp_order(kv, 'The')} is in {_erp_currency_word(erp, centra)}; the estate's "
            f"ERP currency mapping gives {_erp_currency_word(expected, centra)} for Centra's {centra}.")


def _erp_shipment(kv: Mapping[str, str], row: Any) -> str | None:
    units, number = _num(kv, "units"), kv.get("shipment")
    if units is None or not number:
        return None
    value = _money_kv(kv, "value")
    carrier, tracking = kv.get("carrier", "none"), kv.get("tracking", "none")
    how = (f" with {carrier}" if carrier != "none" else "") + (
        f", tracking number {tracking}" if tracking != "none" else ", no tracking number")
    of = f" worth {value}" if value is not None else ""
    return (f"The ERP posted shipment {number} of {_units(units)}{of}{how}; Centra shows no such shipment, so the "
            f"customer was not notified.")


def _erp_stock(kv: Mapping[str, str], row: Any) -> str | None:
    erp, centra = _num(kv, "erp_on_hand"), _num(kv, "centra_physical")
    if erp is None or centra is None:
        return None
    diff = centra - erp
    price = _money_kv(kv, "unit_price")
    each = f" ({price} each)" if price is not None else " (no price-list price)"
    what = ("could be sold online although the ERP does not have them" if diff > 0
            else "are in the ERP's stock but not offered online")
    return (f"Centra shows {_units(centra)} in the DC warehouse, the ERP has {_units(erp)} on hand: "
            f"{_units(abs(diff))} {what}{each}.")


def _erp_orphan(kv: Mapping[str, str], row: Any) -> str | None:
    reason = kv.get("reason")
    item, variant = kv.get("item", ""), kv.get("variant", "none")
    why = {
        "no_erp_item": f"The ERP has no item {item}" + (f" (variant {variant})" if variant != "none" else "")
                       + " for this SKU",
        "no_erp_variant": f"The ERP item {item} has no variant {variant} for this SKU",
        "bundle_unmapped": "This bundle has no ERP bundle mapping (its components are not known)",
        "bundle_component_missing": "Components of this bundle have no ERP item: "
                                    + ", ".join(x for x in kv.get("components", "").split(",") if x),
    }.get(reason or "")
    orders, units = _num(kv, "orders"), _num(kv, "units")
    if why is None or orders is None or units is None:
        return None
    if not orders:
        return f"{why}; no order of the day carries it, so nothing is lost yet."
    value = _money_kv(kv, "line_value")
    of = f" worth {value}" if value is not None else ""
    verb = "carries" if int(round(orders)) == 1 else "carry"
    return f"{why}; {_count(orders, 'order')} of the day {verb} {_units(units)} of it{of}, which cannot reach the ERP."


_SENTENCES: dict[str, Callable[[Mapping[str, str], Any], str | None]] = {
    "stock_drift_oversell": _stock, "stock_drift_lost_sales": _stock,
    "sync_missing_in_commerce": _sync, "sync_unexpected_in_commerce": _sync,
    "orphan_sku_pos_unknown_in_commerce": _orphan_pos, "orphan_sku_pos_inactive_in_commerce": _orphan_pos,
    "orphan_sku_commerce_unknown_in_pos": _orphan_commerce,
    "store_sales_mismatch": _store_sales,
    "return_without_order_ref": _return_without_ref,
    "return_missing_in_commerce": _refund, "refund_amount_mismatch": _refund, "refund_tax_mismatch": _refund,
    "click_collect_open": _click_collect,
    "price_off_pricelist": _price_off, "line_tax_mismatch": _line_tax, "line_discount_mismatch": _line_discount,
    "store_transaction_missing": _missing, "pos_stream_gap": _sync,
    "kiosk_order_missing_in_commerce": _kiosk_missing, "kiosk_order_total_mismatch": _kiosk_total,
    "kiosk_sale_not_deducted": _kiosk_sale, "kiosk_availability_oversell": _kiosk_availability,
    "kiosk_availability_lost_sales": _kiosk_availability,
    "erp_order_missing": _erp_missing, "erp_order_duplicated": _erp_duplicated,
    "erp_order_total_mismatch": _erp_amount, "erp_order_tax_mismatch": _erp_amount,
    "erp_order_discount_mismatch": _erp_amount, "erp_order_currency_mismatch": _erp_currency,
    "erp_shipment_not_in_commerce": _erp_shipment, "erp_stock_drift": _erp_stock, "erp_mapping_orphan": _erp_orphan,
}


def _generic(kv: Mapping[str, str]) -> str:
    text = "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in kv.items())
    return text[0].upper() + text[1:] + "."


def detail_sentence(row: Any) -> str:
    """The finding's detail as a sentence; ``row`` has the FINDING_COLUMNS as attributes (a namedtuple row).

    Unknown formats fall back to the text itself (key=value pairs as "key value" phrases); no detail -> "".
    """
    raw = _row(row, "detail")
    if raw is None or not str(raw).strip():
        return ""
    text = str(raw).strip()
    if text in _FIXED:
        return _FIXED[text]
    kv = parse_detail(text)
    if kv is None:
        return text
    make = _SENTENCES.get(str(_row(row, "finding_type")))
    try:
        sentence = make(kv, row) if make else None
    except (TypeError, ValueError, OverflowError):
        sentence = None
    return sentence or _generic(kv)


# ------------------------------------------------------------------------------------------- names


def location_name(estate: Estate | None, location_id: Any) -> str | None:
    """The estate's name of a store or location id (None when unknown or without an estate)."""
    if estate is None or _isna(location_id):
        return None
    loc = estate.location_of(str(location_id))
    return loc.name if loc is not None and loc.name else None


def sku_name(estate: Estate | None, sku: Any) -> str | None:
    """Product, variant and size of a SKU: "Cashmere Tee, Navy, size 28" (None when unknown)."""
    if estate is None or _isna(sku):
        return None
    ref = estate.by_sku.get(str(sku))
    if ref is None:
        return None
    parts = [ref.product.name]
    if ref.variant.name and ref.variant.name != ref.product.name:
        parts.append(ref.variant.name)
    size = str(ref.size.size or "").strip()
    if size:
        parts.append("one size" if size.upper() in ("ONE", "OS", "ONE SIZE") else f"size {size}")
    return ", ".join(p for p in parts if p)
