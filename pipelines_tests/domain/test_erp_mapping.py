"""The estate's `erp` section read into an `ErpMapping` (pipelines/domain/erp/mapping.py)."""

from __future__ import annotations

from pipelines.domain.erp.mapping import ErpItemRef, mapping_from_dict, rate_key

SECTION = {
    "customers": {"1": "WEB-SE", "2": "WEB-EU"},
    "currencies": {"SEK": "", "EUR": "EUR"},
    "tax_codes": {"25": "STANDARD", "12.0": "REDUCED", "0": "ZERO"},
    "items": {"SKU-1": {"item": "1000", "variant": "RED-M"}},
    "bundles": {"GIFT-1": [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2"}]},
    "shipping_account": "6100",
    "sales_journal": {"revenue_account": "3000", "discount_account": "3090", "vat_account": "2610",
                      "default_balancing_account": "1910", "balancing_accounts": {"store-1": "1911"}},
}


def test_no_section_means_no_erp() -> None:
    """Kills: an estate without an ERP treated as one with an empty mapping (every order an exception)."""
    assert mapping_from_dict(None) is None
    assert mapping_from_dict({}) is None


def test_lookups_by_the_documented_keys() -> None:
    """Kills: tax percents keyed as floats ("25.0" never matching "25"), the SKU default lost, market ids as ints."""
    m = mapping_from_dict(SECTION, frozenset({"GIFT-2"}))
    assert m is not None
    assert m.tax_code(25.0) == "STANDARD" and m.tax_code(12) == "REDUCED" and m.tax_code(0.0) == "ZERO"
    assert m.tax_code(21.0) is None
    assert m.currency("SEK") == "" and m.currency("EUR") == "EUR" and m.currency("USD") is None
    assert m.customer(1) == "WEB-SE" and m.customer("2") == "WEB-EU" and m.customer(None) is None
    assert m.item_of("SKU-1") == ErpItemRef("1000", "RED-M")
    assert m.item_of("SKU-9") == ErpItemRef("SKU-9")
    assert [(c.sku, c.quantity) for c in m.bundles["GIFT-1"]] == [("SKU-1", 2), ("SKU-2", 1)]
    assert m.is_bundle("GIFT-1") and m.is_bundle("GIFT-2") and not m.is_bundle("SKU-1")
    assert m.sales_journal is not None
    assert m.sales_journal.balancing_account("store-1") == "1911"
    assert m.sales_journal.balancing_account("store-2") == "1910"
    assert rate_key(12.5) == "12.5" and rate_key(25.0) == "25"


def test_fingerprint_changes_with_the_mapping_only() -> None:
    """Kills: a fingerprint that never changes (blocked orders never replayed) or changes with key order."""
    a = mapping_from_dict(SECTION)
    b = mapping_from_dict(dict(reversed(list(SECTION.items()))))
    c = mapping_from_dict({**SECTION, "tax_codes": {**SECTION["tax_codes"], "21": "STANDARD-NL"}})
    assert a is not None and b is not None and c is not None
    assert a.fingerprint == b.fingerprint != c.fingerprint
