"""The single customer view: commercetools customers and NewStore customer profiles kept in step, field by field
by ownership (`pipelines.domain.customers.OWNERSHIP`), one incremental pass per run (`pipelines.customers.sync`)."""

import dagster as dg
from pydantic import Field

from pipelines.connectors.commercetools.customers import CommercetoolsCustomers
from pipelines.connectors.newstore.customers import NewStoreCustomers
from pipelines.customers.sync import run_pass
from pipelines.dagster_lib.common import RETAIL_OPERATIONS
from pipelines.defs.commerce_platform import uses_commercetools
from pipelines.defs.resources import CommercetoolsResource, EstateResource, NewStoreResource, StoreOfRecord
from pipelines.store import customers as links_state


class CustomerSyncConfig(dg.Config):
    overlap_s: float = Field(default=300.0, description=(
        "Each pass reads the customers changed since the previous pass's latest change minus this many seconds "
        "(clock skew between the platforms and us); re-reading is harmless, the pass is idempotent."))
    order_history: bool = Field(default=True, description=(
        "Import linked customers' commercetools orders into NewStore as past orders (is_historical), so store "
        "staff see the customer's online orders; orders NewStore already holds are left alone."))
    history_shop: str = Field(default="storefront", description="NewStore shop the past orders are imported to.")
    history_shop_locale: str = Field(default="en-GB", description="Shop locale of the past orders.")
    history_channel_name: str = Field(default="commercetools", description=(
        "NewStore channel name of the past orders (distinguishes their source)."))
    history_service_level: str = Field(default="STANDARD", description=(
        "NewStore shipping service level identifier the past orders carry (the tenant's delivery service level)."))


@dg.asset(
    group_name="customers",
    kinds={"commercetools", "newstore", "sql"},
    owners=RETAIL_OPERATIONS,
    description="The single customer view: every customer linked between commercetools (the online account) and "
                "NewStore (the profile store staff see), with what was last synced. Each run reads the customers "
                "changed on either side since the last run, creates a customer known on one side on the other, "
                "and writes differing fields from the side that owns them (e-mail and names: the online account; "
                "phone, home store, store attributes: NewStore, where they stay). An owned field edited on the "
                "other side is set back and recorded as customer_conflict; a refused write as "
                "customer_write_failed. Linked customers' online orders are imported into NewStore as past orders "
                "(store staff see the customer's online order history). Runs only when the estate's commerce "
                "platform is commercetools.",
)
def customer_links(context: dg.AssetExecutionContext, config: CustomerSyncConfig, store: StoreOfRecord,
                   estate: EstateResource, commercetools: CommercetoolsResource,
                   newstore: NewStoreResource) -> dg.MaterializeResult:
    engine = store.engine()
    the_estate = estate.get()
    if not uses_commercetools(the_estate):
        context.log.info("customer sync: the commerce platform is %s, not commercetools; nothing to do",
                         the_estate.commerce_platform)
        return dg.MaterializeResult(metadata={"created": 0, "updated": 0, "conflicts": 0, "skipped": True,
                                              "links": links_state.link_count(engine)})
    with commercetools.client(the_estate) as ct, newstore.client() as ns:
        store_side = NewStoreCustomers(ns, shop=config.history_shop, shop_locale=config.history_shop_locale,
                                       channel_name=config.history_channel_name,
                                       service_level=config.history_service_level)
        result = run_pass(engine, CommercetoolsCustomers(ct), store_side, overlap_s=config.overlap_s,
                          order_history=config.order_history)
    if result.store_listing_capped:
        context.log.warning("NewStore's profile listing holds more than the documented 10,000 profiles: changes "
                            "to profiles beyond it are not read (no changed-since filter is documented)")
    context.log.info("customer sync: %d created, %d updated, %d conflicts, %d write failures, %d orders to history",
                     result.created, result.updated, result.conflicts, result.failed, result.history_added)
    return dg.MaterializeResult(metadata={**result.metadata(), "skipped": False,
                                          "links": links_state.link_count(engine)})


customer_sync_job = dg.define_asset_job(
    "customer_sync_job",
    selection=dg.AssetSelection.assets(customer_links),
    description="One pass of the single customer view between commercetools and NewStore.",
)

customer_sync_schedule = dg.ScheduleDefinition(
    name="customer_sync_every_15_minutes",
    job=customer_sync_job,
    cron_schedule="*/15 * * * *",
    description="Keep customers in step between commercetools and NewStore (incremental, idempotent).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

assets = [customer_links]
jobs = [customer_sync_job]
schedules = [customer_sync_schedule]

__all__ = ["CustomerSyncConfig", "assets", "customer_links", "customer_sync_job", "customer_sync_schedule", "jobs",
           "schedules"]
