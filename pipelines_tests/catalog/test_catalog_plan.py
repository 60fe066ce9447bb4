"""The pure planning of the catalog export (`pipelines.domain.catalog_export`) on hand-made sizes, with the
expected answers written out by hand."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, replace

from pipelines.domain.catalog_export import (
    CATALOG_SKU_REJECTED,
    StorePricelist,
    exception_records,
    import_files,
    plan_export,
    rejections,
    zip_files,
)


@dataclass(frozen=True)
class Size:
    sku: str
    ean: str | None
    product_number: str = "P1"
    product_name: str = "Crew"
    product_status: str = "ACTIVE"
    variant_id: int = 1
    variant_number: str = "P1-BLK"
    variant_name: str = "Black"
    size_name: str | None = "M"
    is_active: bool = True


@dataclass(frozen=True)
class Err:
    entity: str
    product_id: str | None
    error_code: str
    message: str
    pricebook: str | None = None


BOOKS = [StorePricelist(10, "SEK", ("ST-SE01",)), StorePricelist(20, "JPY", ("ST-JP01",))]
PRICES = {1: {10: 499.0, 20: 1999.4}, 2: {10: 99.999}}


def test_a_sku_becomes_a_product_with_one_price_per_store_book() -> None:
    """Kills: EAN or SKU missing from the identifiers; price not at the currency's decimals; a book missed."""
    plan = plan_export([Size("S-1", "7350000000011")], PRICES, BOOKS, {})
    (sku,) = plan.to_send
    assert sku.product == {"product_id": "S-1", "variant_group_id": "P1", "title": "Crew Black",
                           "variation_color_value": "Black", "variation_size_value": "M",
                           "external_identifiers": [{"type": "sku", "value": "S-1"},
                                                    {"type": "ean13", "value": "7350000000011"}]}
    assert sku.prices == {"centra-10": "499.00", "centra-20": "1999"}


def test_missing_ean_and_missing_market_price_are_held_with_reasons() -> None:
    """Kills: a SKU sent without a store market's price or without an EAN; inactive sizes sent."""
    sizes = [Size("S-1", None), Size("S-2", "7350000000028", variant_id=2),
             Size("S-3", "7350000000035", is_active=False), Size("S-4", "7350000000042", product_status="INACTIVE")]
    plan = plan_export(sizes, PRICES, BOOKS, {})
    assert plan.to_send == [] and plan.inactive == 2
    held = {h.sku: h.reasons for h in plan.held}
    assert held == {"S-1": ("missing_ean",), "S-2": ("missing_price",)}
    assert "20 (JPY; stores ST-JP01)" in next(h.message for h in plan.held if h.sku == "S-2")
    assert plan_export([Size("S-1", None)], PRICES, BOOKS, {}, require_ean=False).products == 1


def test_incremental_sends_what_changed_and_full_sends_everything() -> None:
    """Kills: unchanged SKUs resent; a price change not detected; full honouring the fingerprints."""
    sizes = [Size("S-1", "7350000000011"), Size("S-2", "7350000000028")]
    first = plan_export(sizes, PRICES, BOOKS, {})
    previous = {s.sku: s.fingerprint for s in first.to_send}
    assert plan_export(sizes, PRICES, BOOKS, previous).to_send == []
    changed = {1: {10: 505.0, 20: 1999.4}}
    assert [s.sku for s in plan_export(sizes, changed, BOOKS, previous).to_send] == ["S-1", "S-2"]
    renamed = [replace(sizes[0], variant_name="Navy"), sizes[1]]
    assert [s.sku for s in plan_export(renamed, PRICES, BOOKS, previous).to_send] == ["S-1"]
    assert plan_export(sizes, PRICES, BOOKS, previous, full=True).products == 2


def test_import_files_and_zip() -> None:
    """Kills: a price book file without pricebook/currency in its head, or prices of SKUs not sent."""
    plan = plan_export([Size("S-1", "7350000000011")], PRICES, BOOKS, {})
    files = import_files(plan, BOOKS, catalog="shop-se", locale="sv-SE")
    assert set(files) == {"products.json", "prices_centra-10.json", "prices_centra-20.json"}
    assert files["prices_centra-20.json"]["head"] == {"catalog": "shop-se", "locale": "sv-SE",
                                                      "pricebook": "centra-20", "currency": "JPY"}
    assert files["prices_centra-10.json"]["items"] == [{"product_id": "S-1", "value": 499.0}]
    data = zip_files(files)
    assert data == zip_files(files)  # deterministic
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert json.loads(z.read("products.json"))["items"][0]["product_id"] == "S-1"


def test_one_exception_per_sku_whatever_the_number_of_entity_errors() -> None:
    """Kills: one exception per refused entity (a SKU's product and its prices) instead of per SKU."""
    errors = [Err("products", "S-1", "invalid_ean", "bad"), Err("prices", "S-1", "unknown_product", "x", "centra-10"),
              Err("prices", "S-9", "unknown_product", "x", "centra-10")]
    refused = rejections(errors, ["S-1", "S-2"])
    assert set(refused) == {"S-1", ""} and len(refused["S-1"]) == 2
    records = exception_records([], refused, source="t", job_id="J")
    assert [(r.key, r.type, r.owner_team, r.sku) for r in records] == [
        ("catalog_sku_rejected:S-1", "catalog_sku_rejected", "ecommerce", "S-1")]
    assert "invalid_ean" in records[0].message and records[0].playbook == CATALOG_SKU_REJECTED.playbook


def test_a_sku_outside_the_product_master_is_held_back_and_the_master_ones_go() -> None:
    """Kills: the master check dropped (the foreign SKU sent), inverted (the master SKU held), or applied when no
    master is given (every SKU held)."""
    sizes = [Size("S-1", "7350000000011"), Size("X-9", "7350000000028")]
    plan = plan_export(sizes, PRICES, BOOKS[:1], {}, master_skus={"S-1"})
    assert [s.sku for s in plan.to_send] == ["S-1"]
    (held,) = plan.held
    assert held.sku == "X-9" and held.reasons == ("not_in_master",)
    assert [s.sku for s in plan_export(sizes, PRICES, BOOKS[:1], {}).to_send] == ["S-1", "X-9"]
