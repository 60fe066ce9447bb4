"""Centra's catalog as NewStore import entities (no Dagster, no I/O).

Centra is the product master; NewStore's POS takes its catalog through NewStore's Import API (a zip of
JSON files: a product file and one price book per currency/market). Here:

* :func:`plan_export` turns Centra's sizes (one sellable SKU each), their variants' prices per price list and
  the price lists the stores sell from into one :class:`SkuExport` per active SKU: the NewStore product item
  (``product_id`` = SKU, ``variant_group_id``, ``title``, ``variation_color_value``,
  ``variation_size_value``, ``external_identifiers`` ``sku``/``ean13``) and its price in each store price
  book. A SKU NewStore could not take is held back as a :class:`HeldSku` (no EAN while EANs are required;
  no price in a price list a store sells from: NewStore only offers a product with a price in its shop).
* Incremental: a SKU is sent when its content fingerprint differs from the one recorded at its last send
  (or it was never sent); ``full`` sends every sendable SKU.
* :func:`import_files` / :func:`zip_files` build the import file; :func:`rejections` groups NewStore's
  per-entity errors by SKU; :func:`exception_records` makes one ``catalog_sku_rejected`` record per SKU.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from pipelines.domain.exceptions import ExceptionRecord, ExceptionType

CATALOG_SKU_REJECTED = ExceptionType(
    "catalog_sku_rejected", "ERROR", "ecommerce",
    "A commerce-platform SKU (a Centra size, a commercetools variant) did not reach NewStore's catalog, so stores "
    "cannot sell or count it under its commerce data (and the orphan-SKU findings will list it). The message says "
    "why: held back before sending (not in the product master, the estate's catalog; no EAN; or no price in a "
    "price list a store sells from) or refused by NewStore's import (the error code and message of the entity). "
    "Fix the SKU in the commerce platform (EAN, price in the store market's price list, title) or add it to the "
    "product master first; the next catalog export sends the SKU again because its content changed. If NewStore "
    "refused data that is right in the commerce platform (e.g. a currency not configured in NewStore), fix "
    "NewStore's configuration "
    "and run the export with full=true. Close the exception once NewStore shows the SKU.",
)

PRODUCTS_FILE = "products.json"
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "PYG", "UGX", "RWF"})


class SizeLike(Protocol):
    sku: str
    ean: str | None
    product_number: str
    product_name: str
    product_status: str
    variant_id: int
    variant_number: str
    variant_name: str
    size_name: str | None
    is_active: bool


@dataclass(frozen=True)
class StorePricelist:
    """A price list stores sell from, and the NewStore price book it becomes."""

    pricelist_id: int
    currency: str
    store_ids: tuple[str, ...] = ()

    @property
    def pricebook(self) -> str:
        return pricebook_name(self.pricelist_id)


def pricebook_name(pricelist_id: int) -> str:
    return f"centra-{pricelist_id}"


@dataclass(frozen=True)
class SkuExport:
    sku: str
    product: dict[str, Any]
    prices: dict[str, str]  # price book -> amount as sent (currency decimals)
    fingerprint: str


@dataclass(frozen=True)
class HeldSku:
    sku: str
    reasons: tuple[str, ...]  # codes: missing_ean, missing_price
    message: str
    fingerprint: str


@dataclass
class ExportPlan:
    to_send: list[SkuExport] = field(default_factory=list)
    held: list[HeldSku] = field(default_factory=list)
    unchanged: int = 0
    inactive: int = 0
    full: bool = False

    @property
    def products(self) -> int:
        return len(self.to_send)

    @property
    def prices(self) -> int:
        return sum(len(s.prices) for s in self.to_send)


def amount(value: float | Decimal | str, currency: str) -> Decimal:
    """A price at its currency's decimals (NewStore refuses more decimals than the currency has)."""
    exponent = Decimal(1) if currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    return Decimal(str(value)).quantize(exponent, ROUND_HALF_UP)


def fingerprint(product: Mapping[str, Any], prices: Mapping[str, str]) -> str:
    canonical = json.dumps({"product": product, "prices": dict(prices)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def product_item(size: SizeLike) -> dict[str, Any]:
    identifiers = [{"type": "sku", "value": size.sku}]
    if size.ean:
        identifiers.append({"type": "ean13", "value": size.ean})
    item: dict[str, Any] = {
        "product_id": size.sku,
        "variant_group_id": size.product_number,
        "title": f"{size.product_name} {size.variant_name}".strip(),
        "variation_color_value": size.variant_name,
        "external_identifiers": identifiers,
    }
    if size.size_name:
        item["variation_size_value"] = size.size_name
    return item


def plan_export(sizes: Iterable[SizeLike], variant_prices: Mapping[int, Mapping[int, float]],
                store_pricelists: Sequence[StorePricelist], previous: Mapping[str, str], *, full: bool = False,
                require_ean: bool = True, master_skus: Container[str] | None = None) -> ExportPlan:
    """What to send. ``variant_prices``: variant id -> price list id -> price (tax included, as the commerce
    platform keeps it); ``previous``: SKU -> fingerprint recorded at its last send (or hold); ``master_skus``: the
    product master's SKUs (the estate's catalog): a SKU the commerce platform has but the master does not is held
    back (`not_in_master`), so the POS never sells what the rest of the estate cannot map."""
    plan = ExportPlan(full=full)
    for size in sorted(sizes, key=lambda s: s.sku):
        if not size.is_active or size.product_status.upper() != "ACTIVE":
            plan.inactive += 1
            continue
        product = product_item(size)
        prices: dict[str, str] = {}
        missing: list[StorePricelist] = []
        own = variant_prices.get(size.variant_id, {})
        for pl in store_pricelists:
            if pl.pricelist_id in own:
                prices[pl.pricebook] = str(amount(own[pl.pricelist_id], pl.currency))
            else:
                missing.append(pl)
        fp = fingerprint(product, prices)
        reasons, notes = [], []
        if master_skus is not None and size.sku not in master_skus:
            reasons.append("not_in_master")
            notes.append("not in the product master (the estate's catalog)")
        if require_ean and not size.ean:
            reasons.append("missing_ean")
            notes.append("no EAN in the commerce platform")
        if missing:
            reasons.append("missing_price")
            notes.append("no price in the commerce platform's price list(s) " + ", ".join(
                f"{pl.pricelist_id} ({pl.currency}; stores {', '.join(pl.store_ids) or '-'})" for pl in missing))
        if reasons:
            plan.held.append(HeldSku(size.sku, tuple(reasons), f"SKU {size.sku} held back: " + "; ".join(notes), fp))
            continue
        if not full and previous.get(size.sku) == fp:
            plan.unchanged += 1
            continue
        plan.to_send.append(SkuExport(size.sku, product, prices, fp))
    return plan


def import_files(plan: ExportPlan, store_pricelists: Sequence[StorePricelist], *, catalog: str,
                 locale: str) -> dict[str, dict[str, Any]]:
    """The import's JSON files: the products and one price book per store price list (only books with prices)."""
    files: dict[str, dict[str, Any]] = {
        PRODUCTS_FILE: {"head": {"catalog": catalog, "locale": locale}, "items": [s.product for s in plan.to_send]},
    }
    for pl in store_pricelists:
        items = [{"product_id": s.sku, "value": float(s.prices[pl.pricebook])}
                 for s in plan.to_send if pl.pricebook in s.prices]
        if items:
            files[f"prices_{pl.pricebook}.json"] = {
                "head": {"catalog": catalog, "locale": locale, "pricebook": pl.pricebook, "currency": pl.currency},
                "items": items,
            }
    return files


def zip_files(files: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The files as one zip (deterministic: sorted names, fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(files[name], sort_keys=True))
    return buf.getvalue()


@dataclass(frozen=True)
class Rejection:
    entity: str
    error_code: str
    message: str
    pricebook: str | None = None


def rejections(errors: Iterable[Any], sent: Iterable[str]) -> dict[str, list[Rejection]]:
    """NewStore's per-entity errors (``entity, product_id, error_code, message, pricebook``) by sent SKU; an
    error naming no sent SKU is kept under the empty key (it cannot be pinned to a SKU)."""
    wanted = set(sent)
    out: dict[str, list[Rejection]] = {}
    for e in errors:
        sku = e.product_id if e.product_id in wanted else ""
        out.setdefault(sku, []).append(Rejection(e.entity, e.error_code, e.message, e.pricebook))
    return out


def exception_records(held: Iterable[HeldSku], refused: Mapping[str, Sequence[Rejection]], *, source: str,
                      job_id: str | None = None) -> list[ExceptionRecord]:
    """One ``catalog_sku_rejected`` record per SKU (the key is the SKU: a re-detection bumps its count)."""
    out = [ExceptionRecord.of(CATALOG_SKU_REJECTED, h.sku, source, h.message, sku=h.sku,
                              payload={"stage": "before_send", "reasons": list(h.reasons)}) for h in held]
    for sku, rs in sorted(refused.items()):
        if not sku:
            continue
        detail = "; ".join(f"{r.entity}{' ' + r.pricebook if r.pricebook else ''}: {r.error_code} {r.message}"
                           for r in rs)
        out.append(ExceptionRecord.of(
            CATALOG_SKU_REJECTED, sku, source, f"NewStore refused SKU {sku} (import job {job_id}): {detail}", sku=sku,
            payload={"stage": "newstore_import", "import_id": job_id,
                     "errors": [{"entity": r.entity, "error_code": r.error_code, "message": r.message,
                                 "pricebook": r.pricebook} for r in rs]}))
    return out
