"""Money rounding by currency and the text formatting shared by the pages, the CSVs and the sentences."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

#: Decimals of currencies whose minor unit is not 1/100 (ISO 4217); any other (or unknown) currency: 2.
MINOR_UNITS: dict[str, int] = {
    # zero-decimal
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # three-decimal
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}
DEFAULT_DECIMALS = 2
DASH = "\u2014"
MINUS = "\u2212"

TYPE_LABELS: dict[str, str] = {
    "stock_drift_oversell": "Stock drift: oversell",
    "stock_drift_lost_sales": "Stock drift: lost sales",
    "sync_missing_in_commerce": "Sync: missing in Centra",
    "sync_unexpected_in_commerce": "Sync: unexpected in Centra",
    "orphan_sku_pos_unknown_in_commerce": "Orphan SKU: POS SKU unknown in Centra",
    "orphan_sku_pos_inactive_in_commerce": "Orphan SKU: POS SKU inactive in Centra",
    "orphan_sku_commerce_unknown_in_pos": "Orphan SKU: Centra SKU unknown in POS",
    "store_sales_mismatch": "Store sales mismatch",
    "return_without_order_ref": "Return without order reference",
    "return_missing_in_commerce": "Return missing in Centra",
    "refund_amount_mismatch": "Refund amount mismatch",
    "refund_tax_mismatch": "Refund tax mismatch",
    "click_collect_open": "Click & collect still open",
    "line_tax_mismatch": "Sale line tax mismatch",
    "line_discount_mismatch": "Sale line discount mismatch",
    "price_off_pricelist": "Price off the price list",
    "store_transaction_missing": "Store transaction missing",
    "pos_stream_gap": "POS event stream gap",
    "kiosk_order_missing_in_commerce": "Kiosk order missing in Centra",
    "kiosk_order_total_mismatch": "Kiosk order total mismatch",
    "kiosk_sale_not_deducted": "Kiosk sale not deducted in Centra",
    "kiosk_availability_oversell": "Kiosk availability: oversell",
    "kiosk_availability_lost_sales": "Kiosk availability: lost sales",
    "erp_order_missing": "ERP: order missing",
    "erp_order_duplicated": "ERP: order duplicated",
    "erp_order_total_mismatch": "ERP: order total mismatch",
    "erp_order_tax_mismatch": "ERP: order tax mismatch",
    "erp_order_discount_mismatch": "ERP: order discount mismatch",
    "erp_order_currency_mismatch": "ERP: order currency mismatch",
    "erp_shipment_not_in_commerce": "ERP: shipment not in Centra",
    "erp_stock_drift": "ERP: DC stock drift",
    "erp_mapping_orphan": "ERP: SKU without ERP item",
}
TEAM_LABELS: dict[str, str] = {
    "finance": "Finance", "retail_operations": "Retail operations", "ecommerce": "E-commerce",
    "integration": "Integration",
}


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _isna(x: Any) -> bool:
    try:
        return x is None or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def minor_units(currency: Any) -> int:
    """Decimals of a currency's minor unit: 0 for JPY, KRW, ISK, CLP..., 3 for KWD..., else (or unknown) 2."""
    return DEFAULT_DECIMALS if _isna(currency) else MINOR_UNITS.get(str(currency).strip().upper(), DEFAULT_DECIMALS)


def round_money(x: Any, currency: Any = None) -> float:
    """Round to the currency's minor unit (2 decimals when unknown); NaN/None -> 0.0; never -0.0."""
    if _isna(x):
        return 0.0
    v = float(x)
    return 0.0 if math.isnan(v) else round(v, minor_units(currency)) + 0.0


def round_money_series(values: pd.Series, currency: Any = None) -> pd.Series:
    """A money column rounded to one currency's minor unit, NaN kept (as float64)."""
    s = pd.to_numeric(values, errors="coerce").astype("float64")
    return s.round(minor_units(currency)) + 0.0


def money_series(s: pd.Series) -> pd.Series:
    """Numbers of a money column as float64, missing -> 0."""
    return pd.to_numeric(s, errors="coerce").astype("float64").fillna(0.0)


def money_attr(v: Any, currency: Any = None) -> str:
    """A rounded amount as plain text for an attribute (``data-value``): "1234.56", "1235" for JPY."""
    return f"{round_money(v, currency):.{minor_units(currency)}f}"


def fmt_amount(v: Any, currency: Any = None) -> str:
    """The currency's decimals with a thousands separator ("1,234.50", "1,235" for JPY); missing -> em dash."""
    if _isna(v):
        return DASH
    return f"{round_money(v, currency):,.{minor_units(currency)}f}"


def fmt_signed_amount(v: Any, currency: Any = None) -> str:
    """Like :func:`fmt_amount` with a true minus sign for negative amounts."""
    if _isna(v):
        return DASH
    r = round_money(v, currency)
    return (MINUS if r < 0 else "") + fmt_amount(abs(r), currency)


def fmt_money(v: Any, currency: Any) -> str:
    """HTML of an amount with its currency code, e.g. ``1,234.50&nbsp;<span class="ccy">EUR</span>``."""
    if _isna(v):
        return DASH
    ccy = "" if _isna(currency) else str(currency)
    return f'{fmt_amount(v, ccy)}&nbsp;<span class="ccy">{_e(ccy)}</span>' if ccy else fmt_amount(v)


def money_text(v: Any, currency: Any) -> str:
    """Plain text of an amount with its currency code ("1,234.50 EUR", "\u22125.00 SEK")."""
    ccy = "" if _isna(currency) else str(currency)
    return f"{fmt_signed_amount(v, ccy)} {ccy}".strip()


def fmt_int(v: Any) -> str:
    return DASH if _isna(v) else f"{int(v):,}"


def fmt_signed(v: Any) -> str:
    if _isna(v):
        return DASH
    i = int(v)
    return f"+{i:,}" if i > 0 else f"{MINUS}{abs(i):,}" if i < 0 else "0"


def fmt_rate(rate: Any) -> str:
    """A tax rate fraction as a percentage: 0.25 -> "25%", 0.255 -> "25.5%"."""
    return "" if _isna(rate) else f"{float(rate) * 100:.2f}".rstrip("0").rstrip(".") + "%"


def type_label(ftype: Any) -> str:
    return TYPE_LABELS.get(str(ftype), str(ftype).replace("_", " ").capitalize())


def team_label(team: Any) -> str:
    return DASH if _isna(team) else TEAM_LABELS.get(str(team), str(team).replace("_", " ").capitalize())


def badge(severity: Any) -> str:
    sev = "" if _isna(severity) else str(severity)
    cls = sev if sev in ("ERROR", "WARN") else "OTHER"
    return f'<span class="badge {cls}">{_e(sev or "n/a")}</span>'
