"""The one Dagster definitions entry point (workspace.yaml loads `pipelines.definitions`), and the one place
its resources are configured: from `pipelines.settings` when the definitions load, secrets through `EnvVar`
(resolved by Dagster when a run or tick starts), so the UI shows every setting in use."""

import json

import dagster as dg

import pipelines.dagster_warnings  # noqa: F401  (first: the allow-list of beta/preview features in use)
from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE, yesterday
from pipelines.defs import catalog as catalog_defs
from pipelines.defs import customers as customer_defs
from pipelines.defs import resources as res
from pipelines.defs.automation import default_automation_condition_sensor
from pipelines.defs.commerce.assets import (
    centra_catalog,
    centra_orders,
    centra_returns,
    centra_stock_changes,
    centra_stock_snapshot,
)
from pipelines.defs.erp import erp_definitions
from pipelines.defs.erp.datasets import erp_document_assets, erp_snapshot_assets
from pipelines.defs.erp.journal import erp_sales_journal, erp_store_sales
from pipelines.defs.exceptions import exceptions, open_exceptions_sensor
from pipelines.defs.flows import flow_definitions
from pipelines.defs.intake import intake_assets
from pipelines.defs.kiosk import kiosk_definitions
from pipelines.defs.kiosk.raw import cloudshelf_orders
from pipelines.defs.pos.assets import (
    pos_catalog,
    pos_pickups,
    pos_sale_lines,
    pos_stock_movements,
    pos_stock_snapshot,
)
from pipelines.defs.pos.recovery import recovery_definitions
from pipelines.defs.pos.stream_health import StreamHealthSettings, stream_health_definitions
from pipelines.defs.raw_checks import raw_checks
from pipelines.defs.reconciliation import reconciliation_definitions
from pipelines.defs.sync import sync_definitions
from pipelines.settings import (
    businesscentral,
    businesscentral_credentials_set,
    cloudshelf,
    commercetools,
    commercetools_credentials_set,
    erp,
    order_flows,
    reconciliation,
    recovery,
    settings,
    stream_health,
    sync,
)

daily_assets = [pos_sale_lines, pos_stock_movements, pos_pickups, pos_catalog, centra_orders, centra_returns, centra_stock_changes]
snapshot_assets = [pos_stock_snapshot, centra_stock_snapshot, centra_catalog]
raw_assets = [*daily_assets, *snapshot_assets]

snapshots_job = dg.define_asset_job(
    "snapshots_job",
    selection=dg.AssetSelection.assets(*snapshot_assets, *erp_snapshot_assets),
    description="Take the stock and catalog snapshots of both platforms and of the ERP (its on-hand and items), "
                "labelled with a business date.",
)

daily_datasets_job = dg.define_asset_job(
    "daily_datasets_job",
    selection=dg.AssetSelection.assets(*daily_assets, cloudshelf_orders, *erp_document_assets, erp_sales_journal,
                                       erp_store_sales),
    description="Land one business day (or, as a backfill, a range of days in one run) of the event-based "
                "datasets: POS sales, returns and stock movements, Centra orders, returns and stock changes, "
                "the Cloudshelf kiosk orders, the ERP's sales orders and shipments, and the day's store sales posted "
                "to the ERP as journals with what its ledger holds of them.",
)


# Explicit schedules for the daily partitions: each run targets *yesterday* (the business day that just
# ended). The partitions have end_offset=1 (today's open day is materialisable for intraday views), so a
# schedule built from the partitioned job, or an on_cron automation condition, would target the last
# partition: today's, still open.
@dg.schedule(job=snapshots_job, cron_schedule="1 0 * * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def snapshots_at_cutoff_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Right after midnight in the business timezone: the snapshots of the day that just ended."""
    day = yesterday(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"snapshots-{day}", partition_key=day)


@dg.schedule(job=daily_datasets_job, cron_schedule="30 0 * * *", execution_timezone=BUSINESS_TIMEZONE,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def daily_datasets_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 00:30 business time, land yesterday (half an hour of grace for late event deliveries)."""
    day = yesterday(context.scheduled_execution_time)
    return dg.RunRequest(run_key=f"daily-{day}", partition_key=day)


def raw_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*intake_assets, *raw_assets],
        asset_checks=raw_checks,
        jobs=[snapshots_job, daily_datasets_job],
        schedules=[snapshots_at_cutoff_schedule, daily_datasets_schedule],
    )


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources from the environment (`pipelines.settings`); what it leaves unset takes the default
    stated on each resource."""
    s = settings()
    cs = cloudshelf()
    return {
        "store": res.StoreOfRecord(database_url=s.database_url),
        "estate": res.EstateResource(path=str(s.estate_file)),
        "centra": res.CentraResource(base_url=s.centra_api_url, token=dg.EnvVar("CENTRA_API_TOKEN")),
        "commercetools": res.CommercetoolsResource(**commercetools(), **(
            {"client_id": dg.EnvVar("COMMERCETOOLS_CLIENT_ID"), "client_secret": dg.EnvVar("COMMERCETOOLS_CLIENT_SECRET")}
            if commercetools_credentials_set() else {})),
        "newstore": res.NewStoreResource(base_url=s.newstore_api_url, tenant=s.newstore_tenant,
                                         client_id=dg.EnvVar("NEWSTORE_CLIENT_ID"),
                                         client_secret=dg.EnvVar("NEWSTORE_CLIENT_SECRET"),
                                         auth_url=s.newstore_auth_url),
        "reconciliation_settings": res.ReconciliationSettings(**reconciliation()),
        "sync_settings": res.SyncSettings(**sync()),
        "recovery_settings": res.RecoverySettings(**recovery()),
        "cloudshelf": res.CloudshelfResource(
            **({"base_url": cs.api_url} if cs.api_url else {}), timeout_s=cs.timeout_s,
            **({"token": dg.EnvVar("CLOUDSHELF_API_TOKEN")} if cs.token_set else {})),
        "order_flow_settings": res.OrderFlowSettings(**order_flows(), **(
            {"centra_order_api_key": dg.EnvVar("CENTRA_ORDER_API_KEY")}
            if order_flows().get("centra_order_api_url") else {}), **_kiosk_flow_settings()),
        "stream_health_settings": StreamHealthSettings(**stream_health()),
        "finance_reports": res.FinanceReportFiles(reports_dir=str(s.reports_dir)),
        "businesscentral": res.BusinessCentralResource(**businesscentral(), **(
            {"client_id": dg.EnvVar("BUSINESSCENTRAL_CLIENT_ID"),
             "client_secret": dg.EnvVar("BUSINESSCENTRAL_CLIENT_SECRET")}
            if businesscentral_credentials_set() else {})),
        "erp_settings": res.ErpSettings(**erp()),
    }


def _kiosk_flow_settings() -> dict:
    """The kiosk order flows' Cloudshelf connection and mapping (secrets through `EnvVar`)."""
    cs = cloudshelf()
    out: dict = {"kiosk_take_home": cs.take_home, "kiosk_shipping_map": json.dumps(cs.shipping_map),
                 "kiosk_register_customer": cs.register_customer, "kiosk_timeout_s": cs.timeout_s}
    if cs.enabled and cs.token_set:
        out |= {"kiosk_api_url": cs.api_url, "kiosk_api_token": dg.EnvVar("CLOUDSHELF_API_TOKEN"),
                "kiosk_webhook_key": dg.EnvVar("CLOUDSHELF_WEBHOOK_KEY")}
    return out


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """Every domain's definitions merged, with one set of resources."""
    return dg.Definitions.merge(
        raw_definitions(),
        sync_definitions(),
        recovery_definitions(),
        flow_definitions(),
        kiosk_definitions(),
        erp_definitions(),
        dg.Definitions(assets=catalog_defs.assets, jobs=catalog_defs.jobs, schedules=catalog_defs.schedules),
        dg.Definitions(assets=customer_defs.assets, jobs=customer_defs.jobs, schedules=customer_defs.schedules),
        stream_health_definitions(),
        reconciliation_definitions(),
        dg.Definitions(assets=[exceptions], sensors=[open_exceptions_sensor, default_automation_condition_sensor]),
        dg.Definitions(resources=resources or default_resources()),
    )


defs = build_definitions()

__all__ = ["build_definitions", "default_resources", "defs"]
