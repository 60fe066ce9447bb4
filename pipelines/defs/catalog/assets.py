"""`newstore_catalog_export`: the commerce platform's catalog (products, variants, sizes, EANs, per-market prices; Centra
or commercetools, `pipelines.defs.commerce_platform.commerce_catalog`) to NewStore
through NewStore's Import API, incrementally (SKUs whose content changed since their last send) or in full
(``full: true`` in the run config). The logic is `pipelines.domain.catalog_export`; the import job is
`pipelines.connectors.newstore.imports`; the state is `pipelines.store.catalog_export`."""

from collections import defaultdict

import dagster as dg
from pydantic import Field

from pipelines.connectors.newstore import imports as ns_imports
from pipelines.dagster_lib.common import ECOMMERCE
from pipelines.defs.commerce_platform import commerce_catalog
from pipelines.defs.resources import (
    CentraResource,
    CommercetoolsResource,
    EstateResource,
    NewStoreResource,
    StoreOfRecord,
)
from pipelines.domain.catalog_export import (
    StorePricelist,
    exception_records,
    import_files,
    plan_export,
    rejections,
    zip_files,
)
from pipelines.store import catalog_export as state
from pipelines.store.inbox import record_exceptions

SOURCE = "newstore_catalog_export"


class CatalogExportConfig(dg.Config):
    full: bool = Field(default=False, description="Send every sendable SKU, not only those changed since their "
                                                  "last send (the import itself stays partial: nothing is deleted).")
    catalog: str = Field(default="storefront-catalog-en", description="NewStore catalog (shop) the products go to.")
    locale: str = Field(default="en-US", description="Locale of the product file.")
    require_ean: bool = Field(default=True, description="Hold back SKUs without an EAN (the POS scans EANs).")
    file_bind_host: str = Field(default="127.0.0.1", description=(
        "Interface the import file is served on while the job runs (NewStore fetches it from there)."))
    file_bind_port: int = Field(default=0, description="Port the import file is served on (0: any free port).")
    file_public_base_url: str | None = Field(default=None, description=(
        "Base URL NewStore reaches the served file by (e.g. https://catalog-files.example.com); default: the "
        "bound address."))
    job_timeout_s: float = Field(default=1800.0, description="How long to wait for NewStore to finish the job.")
    poll_s: float = Field(default=5.0, description="Pause between job status reads.")
    wait_budget_s: float = Field(default=900.0, description=(
        "How long to wait out NewStore's 429 on creating a job (open-job limit, 5 minutes between jobs)."))


def store_pricelists(estate_stores, pricelists) -> list[StorePricelist]:  # noqa: ANN001
    """The price lists NewStore stores sell from (the estate's store -> Centra price list), with Centra's currency."""
    currency = {p.id: p.currency for p in pricelists}
    stores: dict[int, list[str]] = defaultdict(list)
    fallback: dict[int, str] = {}
    for loc in estate_stores:
        if loc.centra_pricelist_id is not None:
            stores[loc.centra_pricelist_id].append(loc.id)
            fallback[loc.centra_pricelist_id] = loc.currency
    return [StorePricelist(pl, currency.get(pl, fallback[pl]), tuple(sorted(ids))) for pl, ids in sorted(stores.items())]


@dg.asset(
    group_name="catalog",
    kinds={"centra", "newstore"},
    owners=ECOMMERCE,
    description="The commerce platform's catalog (the product master: Centra or commercetools) in NewStore's "
                "catalog: one NewStore product per active size or variant (SKU, EAN, style, colour, size) and its "
                "price in the price book of every price list a store sells from, sent as an Import API job. Incremental by default (SKUs whose content "
                "changed since their last send), full with run config full=true. SKUs the platform cannot give "
                "NewStore complete, and SKUs NewStore refuses, become catalog_sku_rejected exceptions.",
)
def newstore_catalog_export(context: dg.AssetExecutionContext, config: CatalogExportConfig, store: StoreOfRecord,
                            estate: EstateResource, centra: CentraResource, commercetools: CommercetoolsResource,
                            newstore: NewStoreResource) -> dg.MaterializeResult:
    engine = store.engine()
    mode = "full" if config.full else "incremental"
    catalog = commerce_catalog(estate.get(), centra, commercetools)
    prices: dict[int, dict[int, float]] = defaultdict(dict)
    for p in catalog.prices:
        prices[p.variant_id][p.pricelist_id] = p.price
    books = store_pricelists(estate.get().stores, catalog.pricelists)
    plan = plan_export(catalog.sizes, prices, books, state.sent_fingerprints(engine), full=config.full,
                       require_ean=config.require_ean, master_skus=estate.get().by_sku)
    state.record_held(engine, {h.sku: h.message for h in plan.held})
    records = exception_records(plan.held, {}, source=SOURCE)
    meta: dict[str, dg.RawMetadataValue] = {
        "mode": mode, "products_sent": plan.products, "prices_sent": plan.prices, "unchanged": plan.unchanged,
        "held_back": len(plan.held), "inactive_skipped": plan.inactive, "rejected": 0, "job_id": None,
    }
    if not plan.to_send:
        record_exceptions(engine, records)
        meta["rejected"] = len(plan.held)
        context.log.info("catalog export (%s): nothing to send (%d unchanged, %d held back)", mode, plan.unchanged,
                         len(plan.held))
        return dg.MaterializeResult(metadata=meta)

    payload = zip_files(import_files(plan, books, catalog=config.catalog, locale=config.locale))
    sent = {s.sku: s.fingerprint for s in plan.to_send}
    with newstore.client() as ns, ns_imports.served_file(
            payload, f"catalog-{context.run.run_id[:8]}.zip", host=config.file_bind_host, port=config.file_bind_port,
            public_base_url=config.file_public_base_url) as served:
        job_id = ns_imports.create_job(ns, name=f"commerce-catalog-{mode}-{context.run.run_id[:8]}", source_uri=served.url,
                                       entities=["products", "prices"], full=False, shop=config.catalog,
                                       locale=config.locale, wait_budget_s=config.wait_budget_s)
        state.log_job(engine, import_id=job_id, run_id=context.run.run_id, mode=mode, products_sent=plan.products,
                      prices_sent=plan.prices)
        state.record_sent(engine, job_id, sent)
        ns_imports.start_job(ns, job_id)
        context.log.info("catalog export (%s): import job %s started with %d products, %d prices", mode, job_id,
                         plan.products, plan.prices)
        status = ns_imports.wait_for_job(ns, job_id, timeout_s=config.job_timeout_s, poll_s=config.poll_s)
    meta["job_id"] = job_id
    if status.state != ns_imports.FINISHED:
        state.finish_job(engine, job_id, state=status.state, reason=status.reason, completed_at=status.completed_at,
                         skus_rejected=0)
        record_exceptions(engine, records)
        raise dg.Failure(f"NewStore import job {job_id} {status.state}: {status.reason}", metadata=meta)
    refused = rejections(status.errors, sent)
    refused_reasons = {sku: "; ".join(f"{r.error_code}: {r.message}" for r in rs) for sku, rs in refused.items() if sku}
    state.record_outcome(engine, job_id, sent, refused_reasons)
    state.finish_job(engine, job_id, state=status.state, reason=status.reason, completed_at=status.completed_at,
                     skus_rejected=len(refused_reasons))
    records += exception_records([], refused, source=SOURCE, job_id=job_id)
    record_exceptions(engine, records)
    if "" in refused:
        context.log.warning("import job %s reported %d errors naming no SKU it was sent: %s", job_id,
                            len(refused[""]), refused[""][:5])
    meta["rejected"] = len(plan.held) + len(refused_reasons)
    meta["rejected_by_newstore"] = len(refused_reasons)
    return dg.MaterializeResult(metadata=meta)


catalog_export_job = dg.define_asset_job(
    "catalog_export_job",
    selection=dg.AssetSelection.assets(newstore_catalog_export),
    description="Send the commerce platform's catalog to NewStore (incremental; run config full=true for every SKU).",
)

catalog_export_schedule = dg.ScheduleDefinition(
    name="catalog_export_hourly",
    job=catalog_export_job,
    cron_schedule="20 * * * *",
    description="Hourly incremental catalog export (SKUs whose content changed since their last send).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
