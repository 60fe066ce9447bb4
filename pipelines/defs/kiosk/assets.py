"""The Cloudshelf kiosks' assets: the catalogue and locations published to Cloudshelf (`kiosk_catalog`), the
per-store availability published there (`kiosk_stock_levels`), and the daily SKU audit (`kiosk_sku_audit`, with
its check). The logic is `pipelines.domain.kiosk` and `pipelines.kiosk.publish`; the state `pipelines.store.kiosk`.

They are always defined; a run without Cloudshelf configured (CLOUDSHELF_API_URL unset) fails at once with a message
saying so, and the refresh sensor skips (pipelines/defs/kiosk/sensors.py)."""


from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from pydantic import Field

from pipelines.connectors.cloudshelf import ids
from pipelines.dagster_lib.checks import evaluate_days
from pipelines.dagster_lib.common import ECOMMERCE
from pipelines.dagster_lib.metadata import preview, table_metadata
from pipelines.dagster_lib.partitions import daily_partitions
from pipelines.defs.commerce_platform import commerce_catalog, stock_target
from pipelines.defs.resources import (
    CentraResource,
    CloudshelfResource,
    CommercetoolsResource,
    EstateResource,
    StoreOfRecord,
)
from pipelines.domain.kiosk.audit import KioskSku, audit
from pipelines.domain.timeutil import utc_text
from pipelines.kiosk import KioskConfig, KioskPublisher
from pipelines.settings import cloudshelf as cloudshelf_settings
from pipelines.store import kiosk as state

GROUP = "kiosk"
NOT_CONFIGURED = ("Cloudshelf is not configured: set CLOUDSHELF_API_URL and CLOUDSHELF_API_TOKEN (README, "
                  "Configuration) to publish to the kiosks")


def kiosk_config() -> KioskConfig:
    """The kiosk locations (PIPELINES_KIOSK_LOCATIONS, read when the run starts; None: the estate's stores)."""
    return KioskConfig(locations=cloudshelf_settings().kiosk_locations)


@contextmanager
def publisher(store: StoreOfRecord, estate: EstateResource, centra: CentraResource,
              commercetools: CommercetoolsResource, cloudshelf: CloudshelfResource) -> Iterator[KioskPublisher]:
    """A publisher over the configured commerce platform and Cloudshelf; a dg.Failure when Cloudshelf is off."""
    if not cloudshelf.enabled:
        raise dg.Failure(NOT_CONFIGURED)
    with stock_target(estate.get(), centra, commercetools) as target, cloudshelf.client() as client:
        yield KioskPublisher(store.engine(), estate.get(), target, client, kiosk_config())


class KioskCatalogConfig(dg.Config):
    full: bool = Field(default=False, description=(
        "Send every location, product and variant, not only those changed since their last publish."))


@dg.asset(
    group_name=GROUP,
    kinds={"cloudshelf", "centra", "sql"},
    owners=ECOMMERCE,
    description="The commerce platform's catalogue on the Cloudshelf kiosks: the kiosk stores as locations, one "
                "Cloudshelf product per product and one variant per size, matched on the SKU "
                "(`gid://external/CentraVariant/<SKU>`), priced from the kiosk stores' price list, "
                "availableToPurchase when active and priced (inactive sizes stay, not purchasable). Incremental: "
                "what changed since its last publish (table kiosk_catalog); full=true sends everything. Newly "
                "published SKUs get their stock levels at once.",
)
def kiosk_catalog(context: dg.AssetExecutionContext, config: KioskCatalogConfig, store: StoreOfRecord,
                  estate: EstateResource, centra: CentraResource, commercetools: CommercetoolsResource,
                  cloudshelf: CloudshelfResource) -> dg.MaterializeResult:
    if not cloudshelf.enabled:
        raise dg.Failure(NOT_CONFIGURED)
    catalog = commerce_catalog(estate.get(), centra, commercetools)
    with publisher(store, estate, centra, commercetools, cloudshelf) as pub:
        report = pub.publish_catalog(catalog, full=config.full)
    context.log.info(f"kiosk catalogue: {report.as_dict()}")
    meta: dict[str, dg.RawMetadataValue] = {"mode": "full" if config.full else "incremental", **report.as_dict(),
                                            "errors": dg.MetadataValue.md(
                                                "\n".join(f"- {e}" for e in report.errors[:20]) or "none")}
    if report.rejected:
        raise dg.Failure(f"Cloudshelf refused {report.rejected} variant(s); they are sent again by the next run",
                         metadata=meta)
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    group_name=GROUP,
    kinds={"cloudshelf", "centra", "sql"},
    owners=ECOMMERCE,
    deps=[kiosk_catalog],
    description="What each kiosk store may sell, as published to Cloudshelf (upsertStockLevels) and kept in table "
                "kiosk_stock_levels: per (store, SKU) the commerce platform's free-to-allocate in the store's "
                "warehouse plus the other warehouses of the store market's allocation rule (what the web shop can "
                "ship). A run reads every kiosk SKU's stock and pushes only the quantities that changed; between "
                "runs the always-on stock sync pushes what its own passes change (StockSync after_commit).",
)
def kiosk_stock_levels(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                       centra: CentraResource, commercetools: CommercetoolsResource,
                       cloudshelf: CloudshelfResource) -> dg.MaterializeResult:
    with publisher(store, estate, centra, commercetools, cloudshelf) as pub:
        report = pub.refresh_availability()
    context.log.info(f"kiosk availability: {report.as_dict()}")
    levels = state.stock_levels_frame(store.engine())
    meta = {**report.as_dict(), "dagster/row_count": len(levels),
            "zero_levels": int((levels["quantity"] <= 0).sum()) if len(levels) else 0,
            "errors_detail": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors[:20]) or "none"),
            "latest_published": preview(levels.sort_values("published_at", ascending=False)) if len(levels) else "none"}
    if report.errors:
        raise dg.Failure(f"Cloudshelf refused stock levels: {report.errors[0]}", metadata=meta)
    return dg.MaterializeResult(metadata=meta)


AUDIT_DESCRIPTIONS = {
    "finding_type": "kiosk_sku_missing_on_kiosk | kiosk_sku_not_purchasable_on_kiosk | "
                    "kiosk_sku_inactive_in_commerce | kiosk_sku_unknown_in_commerce",
    "severity": "ERROR fails the check kiosk_sku_audit_clean; WARN does not",
    "sku": "the SKU (the kiosk variant id when it names no SKU)",
    "kiosk_variant_id": "the Cloudshelf variant GlobalId, when the SKU is on the kiosk",
}


def audit_frame(findings: list, audited_at: str) -> pd.DataFrame:
    cols = ["finding_type", "severity", "owner_team", "sku", "detail", "kiosk_variant_id", "playbook"]
    df = pd.DataFrame([{c: getattr(f, c) for c in cols} for f in findings], columns=cols)
    return df.assign(audited_at=audited_at)


@dg.asset(
    group_name=GROUP,
    kinds={"cloudshelf", "centra", "pandas", "sql"},
    owners=ECOMMERCE,
    partitions_def=daily_partitions,
    deps=[kiosk_catalog],
    description="The daily SKU audit between the commerce platform and the Cloudshelf kiosk catalogue (table "
                "kiosk_sku_audit, replaced per business date): SKUs active and priced in the commerce platform but "
                "missing from or not purchasable on the kiosk, and kiosk SKUs unknown or inactive in the commerce "
                "platform; each a finding for e-commerce with its playbook. The audit reads both sides as they are "
                "when it runs; the partition is the business day it ran for.",
)
def kiosk_sku_audit(context: dg.AssetExecutionContext, store: StoreOfRecord, estate: EstateResource,
                    centra: CentraResource, commercetools: CommercetoolsResource,
                    cloudshelf: CloudshelfResource) -> dg.MaterializeResult:
    if not cloudshelf.enabled:
        raise dg.Failure(NOT_CONFIGURED)
    day = context.partition_key
    catalog = commerce_catalog(estate.get(), centra, commercetools)
    prices: dict[int, dict[int, float]] = {}
    for p in catalog.prices:
        prices.setdefault(p.variant_id, {})[p.pricelist_id] = p.price
    with publisher(store, estate, centra, commercetools, cloudshelf) as pub:
        pricelist = pub.pricelist_id
        kiosk = [KioskSku(v.id, ids.sku_of(v.id) or v.sku, v.available_to_purchase)
                 for product in pub.client.products() for v in product.variants]
    findings = audit(catalog.sizes, prices, pricelist, kiosk)
    df = audit_frame(findings, utc_text(datetime.now(UTC)))
    state.write_audit(store.engine(), day, df)
    by_type = {str(k): int(v) for k, v in df["finding_type"].value_counts().items()}
    return dg.MaterializeResult(metadata=table_metadata(
        df.drop(columns=["playbook"]), AUDIT_DESCRIPTIONS, commerce_skus=len(catalog.sizes), kiosk_variants=len(kiosk),
        pricelist_id=pricelist if pricelist is not None else "none",
        errors=int((df["severity"] == "ERROR").sum()), by_type=dg.MetadataValue.json(by_type)))


@dg.asset_check(asset=kiosk_sku_audit, partitions_def=daily_partitions,
                description="ERROR when the day's SKU audit has an ERROR finding (a SKU the kiosk lacks, cannot sell, "
                            "or sells although the commerce platform retired or does not know it).")
def kiosk_sku_audit_clean(context: dg.AssetCheckExecutionContext, store: StoreOfRecord) -> dg.AssetCheckResult:
    def one_day(day: str) -> dg.AssetCheckResult:
        df = state.read_audit(store.engine(), day)
        errors = df[df["severity"] == "ERROR"] if len(df) else df
        return dg.AssetCheckResult(
            passed=len(errors) == 0, severity=dg.AssetCheckSeverity.ERROR,
            description=f"{len(errors)} ERROR finding(s) of {len(df)}",
            metadata={"failing_rows": len(errors),
                      "by_type": dg.MetadataValue.json({str(k): int(v) for k, v in
                                                        errors["finding_type"].value_counts().items()}
                                                       if len(errors) else {}),
                      "sample": dg.MetadataValue.md(errors[["finding_type", "sku", "detail"]].head(20)
                                                    .to_markdown(index=False) if len(errors) else "_none_")})

    return evaluate_days(context, one_day)
