"""Order flows written to the commerce platform: the `order_flow_work` asset (table of the same name), its job,
and the sensor that runs it when a triggering event landed or work is due. With an ERP (Business Central, issue 15)
the same runs post verified Centra orders to the ERP and apply the ERP's shipments back to Centra
(`pipelines.order_flows.erp`): the tables they keep are declared here (`erp_order_postings`,
`erp_shipments_applied`, reported by each flows run), and `erp_shipments_sensor` polls the ERP's shipments.

The work itself is `pipelines.order_flows` (registration from the inbox, the flows against the platform
interfaces); the decisions are `pipelines.domain.flows`. A run is requested at most every few seconds and
never while one is in progress, so the flows' writes are serialised.
"""


import time
from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg
import numpy as np

from pipelines.connectors.newstore.flows import NewStoreStore
from pipelines.dagster_lib.common import ECOMMERCE, FINANCE, INTEGRATION, RETAIL_OPERATIONS
from pipelines.defs.commerce_platform import flow_commerce, uses_commercetools
from pipelines.defs.intake import centra_webhook_inbox, newstore_event_inbox
from pipelines.defs.resources import (
    BusinessCentralResource,
    CentraResource,
    CloudshelfResource,
    CommercetoolsResource,
    ErpSettings,
    EstateResource,
    NewStoreResource,
    OrderFlowSettings,
    StoreOfRecord,
)
from pipelines.domain.flows.click_collect import PickupStore
from pipelines.domain.flows.ship_from_store import locations_of, parse_fallback
from pipelines.estate import Estate
from pipelines.order_flows import centra_events, cloudshelf_events, commercetools_messages, erp, kiosk, runner
from pipelines.order_flows.context import FlowContext, FlowSettings
from pipelines.order_flows.endless_aisle import endless_aisle_settings
from pipelines.order_flows.newstore_events import (
    NEWSTORE_EVENTS,
    ORDER_EVENTS,
    NewStoreEvidence,
    centra_triggers,
    newstore_triggers,
)
from pipelines.store import erp_orders
from pipelines.store import order_flows as work
from pipelines.sync.config import SyncConfig

FLOW_TAGS = {"pipelines/concurrency": "order-flows"}
FLOW_SENSOR_INTERVAL_S = 5
COMMERCETOOLS_MESSAGES_INTERVAL_S = 10
FLOW_EVENTS = (*NEWSTORE_EVENTS, *ORDER_EVENTS, *commercetools_messages.ORDER_MESSAGES,
               *cloudshelf_events.KIOSK_ORDER_EVENTS, erp_orders.SHIPMENT_EVENT)
CLOUDSHELF_POLL_INTERVAL_S = 60
ERP_SENSOR_INTERVAL_S = 5  # the sensor's tick; it polls every ErpSettings.shipment_poll_s
ERP_KINDS = {"businesscentral", "sql"}


def pickup_stores(estate: Estate, warehouse_of=lambda loc: str(loc.centra_warehouse_id)) -> dict[str, PickupStore]:
    return {warehouse_of(loc): PickupStore(location_id=loc.newstore_node_id, store_id=loc.id)
            for loc in estate.stores}


def flow_context(store: StoreOfRecord, centra: CentraResource, newstore: NewStoreResource, estate: EstateResource,
                 settings: OrderFlowSettings, commercetools: CommercetoolsResource | None = None,
                 businesscentral: BusinessCentralResource | None = None,
                 erp_settings: ErpSettings | None = None) -> FlowContext:
    engine = store.engine()
    e = estate.get()
    commerce = flow_commerce(e, centra, commercetools, settings)
    warehouse_of = commerce.warehouse_of_location
    flow_settings = FlowSettings(
        pickup_shipping_options=tuple(settings.pickup_shipping_options),
        pickup_service_level=settings.pickup_service_level, uncollected_after_h=settings.uncollected_after_h,
        max_attempts=settings.max_attempts, retry_base_s=settings.retry_base_s,
        ship_from_store_service_level=settings.ship_from_store_service_level,
        fulfilment_locations=tuple(replace(f, warehouse_id=warehouse_of(loc))
                                   for f, loc in zip(locations_of(e.locations), e.locations, strict=True)),
        ship_from_store_fallback=parse_fallback(settings.ship_from_store_fallback))
    flow_settings = replace(flow_settings, kiosk=kiosk.kiosk_settings(
        settings.kiosk_take_home, settings.kiosk_shipping_map, settings.kiosk_address_keys,
        settings.kiosk_register_customer))
    return FlowContext(
        engine=engine, commerce=commerce,
        stores=NewStoreStore(newstore.client(), country_of={loc.id: loc.country for loc in e.stores}),
        evidence=NewStoreEvidence(engine),
        settings=endless_aisle_settings(flow_settings, e, settings.shipping_map),
        pickup_stores=pickup_stores(e, warehouse_of), kiosk=kiosk_runtime(settings, e),
        erp=erp_runtime(businesscentral, erp_settings, e))


def erp_system(businesscentral: BusinessCentralResource):  # noqa: ANN201
    """The ERP port over Business Central (`BusinessCentralErp`)."""
    from pipelines.connectors.businesscentral.erp import BusinessCentralErp

    return BusinessCentralErp(businesscentral.client())


def erp_runtime(businesscentral: BusinessCentralResource | None, erp_settings: ErpSettings | None,
                estate: Estate) -> erp.ErpRuntime | None:
    """The ERP flows' runtime when Business Central is configured and the estate has an `erp` mapping (else the
    ERP flows skip)."""
    if businesscentral is None or not businesscentral.enabled or estate.erp is None:
        return None
    settings = erp_settings or ErpSettings()
    return erp.ErpRuntime(erp=erp_system(businesscentral), mapping=estate.erp,
                          list_price=erp.estate_list_price(estate), order_rule=settings.order_rule,
                          shipment_poll_s=settings.shipment_poll_s, shipment_overlap_s=settings.shipment_overlap_s,
                          business_timezone=estate.business_timezone)


def kiosk_runtime(settings: OrderFlowSettings, estate: Estate) -> kiosk.KioskRuntime | None:
    """Cloudshelf for the kiosk order flow, when `kiosk_api_url` and its token are set (else kiosk orders wait)."""
    cloudshelf = CloudshelfResource(base_url=settings.kiosk_api_url, token=settings.kiosk_api_token,
                                    timeout_s=settings.kiosk_timeout_s)
    if not cloudshelf.enabled:
        return None
    return kiosk.KioskRuntime(platform=kiosk.CloudshelfKiosk(cloudshelf.client()), estate=estate,
                              sync_config=SyncConfig(),  # the kiosks' stores are synced (location kind store)
                              webhook_url=kiosk.webhook_url(settings.kiosk_webhook_url, settings.kiosk_webhook_key),
                              order_subject=settings.kiosk_order_subject)


def run_once(ctx: FlowContext) -> runner.RunReport:
    triggers = {"newstore": newstore_triggers(ctx.engine, ctx.settings.pickup_service_level),
                "centra": cloudshelf_events.with_kiosk(
                    erp.with_erp_orders(centra_triggers) if ctx.erp is not None else centra_triggers, ctx.engine),
                commercetools_messages.SOURCE: commercetools_messages.commercetools_triggers,
                cloudshelf_events.SOURCE: cloudshelf_events.cloudshelf_triggers,
                erp_orders.SOURCE: erp.erp_shipment_triggers}
    if ctx.kiosk is not None:
        kiosk.start(ctx)  # our webhook registered once; kiosk orders blocked under other settings retried
    if ctx.erp is not None:
        erp.start(ctx)  # the ERP's items read afresh; orders blocked under another ERP mapping retried
        erp.poll_in_run(ctx)  # the ERP's shipments, every shipment_poll_s, landed for this pass to register
    return runner.run_flows(ctx, triggers, FLOW_EVENTS)


@dg.asset(
    group_name="order_flows",
    owners=[*RETAIL_OPERATIONS, *ECOMMERCE, *FINANCE],
    kinds={"centra", "newstore", "sql"},
    deps=[newstore_event_inbox, centra_webhook_inbox],
    description="The order flows' work (table order_flow_work): every in-store return of an online order written "
                "to Centra as a return and refund (checked against NewStore's refund), every click-and-collect "
                "order handed to its store in NewStore, every pickup handed over in store shipped in Centra "
                "without a customer notification, every online delivery order allocated to a store checked "
                "against the store's live availability, handed to it, re-routed (another store, then the DC) when "
                "the check fails or the store rejects it and shipped in Centra with the store's tracking, and every "
                "endless-aisle order a store takes for home delivery created in Centra (Order API) with the "
                "store's market and price list. With an ERP (Business Central) every verified Centra order is "
                "posted as an ERP sales order (table erp_order_postings) and every ERP shipment becomes a completed "
                "Centra shipment with its tracking (table erp_shipments_applied). With the estate on commercetools the same flows write to commercetools "
                "(pipelines.connectors.commercetools.flows; triggers: its Messages, commercetools_messages_sensor). "
                "One row per flow and object, with its status, outcome and "
                "latency; what a flow cannot do is an exception record for its owner team.",
)
def order_flow_work(context: dg.AssetExecutionContext, store: StoreOfRecord, centra: CentraResource,
                    newstore: NewStoreResource, estate: EstateResource, order_flow_settings: OrderFlowSettings,
                    commercetools: CommercetoolsResource, businesscentral: BusinessCentralResource,
                    erp_settings: ErpSettings) -> dg.MaterializeResult:
    ctx = flow_context(store, centra, newstore, estate, order_flow_settings, commercetools, businesscentral,
                       erp_settings)
    report = runner.RunReport()
    until = time.monotonic() + order_flow_settings.run_window_s
    while True:
        report.merge(run_once(ctx))
        if time.monotonic() >= until:
            break
        time.sleep(max(0.05, min(order_flow_settings.poll_s, until - time.monotonic())))
    for error in report.errors[:20]:
        context.log.warning("order flows: %s", error)
    context.log.info("order flows: %d registered, %d processed, %d exceptions, %d retried; %s",
                     report.registered, report.processed, report.exceptions, report.retried, report.by_outcome)
    lags = [x for v in report.latencies_s.values() for x in v]
    if ctx.erp is not None:
        for event in erp_observations(store.engine(), report):
            context.log_event(event)
    return dg.MaterializeResult(metadata={
        "registered": report.registered, "processed": report.processed, "exceptions": report.exceptions,
        "retried": report.retried, "by_outcome": dg.MetadataValue.json(report.by_outcome),
        "latency_p95_s": float(np.percentile(lags, 95)) if lags else 0.0,
        "by_status": dg.MetadataValue.json(work.status_counts(store.engine())),
    })


erp_order_postings = dg.AssetSpec(
    "erp_order_postings", group_name="erp", deps=[order_flow_work], owners=[*FINANCE, *INTEGRATION],
    kinds=ERP_KINDS,
    description="Verified Centra orders posted to the ERP (Business Central) as sales orders by the order flows' "
                "`erp_order` flow (table erp_order_postings): per Centra order the ERP order it became (found "
                "again by its external document number; erp_orders_found > 1: duplicates in the ERP), the mapping "
                "fingerprint, and the line map (ERP line -> Centra line, units per Centra unit: bundles) the "
                "shipments map back by; or blocked, with every mapping gap, until the estate's `erp` mapping "
                "changes. Written by `order_flow_work`; each flows run with an ERP reports its counts.",
)
erp_shipments_applied = dg.AssetSpec(
    "erp_shipments_applied", group_name="erp", deps=[order_flow_work, erp_order_postings],
    owners=[*ECOMMERCE, *INTEGRATION], kinds=ERP_KINDS,
    description="ERP shipments (Business Central, polled by `erp_shipments_sensor`) applied to Centra by the order "
                "flows' `erp_shipment` flow (table erp_shipments_applied): each ERP shipment once, as its own "
                "completed Centra shipment with the carrier and tracking number (the customer notified), a bundle "
                "shipped when all its components are. Written by `order_flow_work`; each flows run with an ERP "
                "reports its counts.",
)


def erp_observations(engine, report: runner.RunReport) -> list[dg.AssetObservation]:  # noqa: ANN001
    """What a flows run with an ERP reports of the ERP tables: their counts and this run's ERP outcomes."""
    counts = erp_orders.counts(engine)
    mine = lambda flow: {k: v for k, v in report.by_outcome.items() if k.startswith(f"{flow}:")}  # noqa: E731
    lag = lambda flow: float(np.percentile(report.latencies_s[flow], 95)) if report.latencies_s.get(flow) else 0.0  # noqa: E731
    return [
        dg.AssetObservation(asset_key=erp_order_postings.key, metadata={
            "posted": counts["posted"], "blocked": counts["blocked"], "duplicated": counts["duplicated"],
            "by_outcome": dg.MetadataValue.json(mine(erp.ERP_ORDER)), "latency_p95_s": lag(erp.ERP_ORDER)}),
        dg.AssetObservation(asset_key=erp_shipments_applied.key, metadata={
            "applied": counts["shipments_applied"], "by_outcome": dg.MetadataValue.json(mine(erp.ERP_SHIPMENT)),
            "latency_p95_s": lag(erp.ERP_SHIPMENT)}),
    ]


order_flows_job = dg.define_asset_job(
    "order_flows_job", selection=dg.AssetSelection.assets(order_flow_work), tags=FLOW_TAGS,
    executor_def=dg.in_process_executor,
    description="Run the order flows: register landed events as work and do the work that is due.")


def flow_work_waiting(store: StoreOfRecord, now: datetime | None = None) -> str | None:
    engine = store.engine()
    now = now or datetime.now(UTC)
    reason = runner.unregistered(engine, FLOW_EVENTS, now)
    if reason:
        return reason
    return "order flow work is due" if work.any_due(engine, now) else None


@dg.sensor(name="order_flows_sensor", job=order_flows_job, minimum_interval_seconds=FLOW_SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every few seconds: requests an order flows run when a triggering event landed (a store "
                       "return, a refund, a handover, a Centra order change) or flow work is due for a retry "
                       "(never while one is in progress).")
def order_flows_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord) -> dg.SensorResult | dg.SkipReason:
    if _flows_busy(context):
        return dg.SkipReason("an order flows run is in progress")
    reason = flow_work_waiting(store)
    if reason is None:
        return dg.SkipReason("no order flow work")
    context.log.info(reason)
    return dg.SensorResult(run_requests=[dg.RunRequest()])


@dg.sensor(name="centra_events_sensor", job=order_flows_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Once a minute (with PIPELINES_FLOW_CENTRA_EVENTS on): subscribes to Centra's events queue, "
                       "lands the oldest unconfirmed events in the inbox, confirms exactly what was stored, and "
                       "requests an order flows run when something new landed and none is in progress.")
def centra_events_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord, centra: CentraResource,
                         order_flow_settings: OrderFlowSettings) -> dg.SensorResult | dg.SkipReason:
    if not order_flow_settings.centra_events:
        return dg.SkipReason("Centra's events queue is not used (PIPELINES_FLOW_CENTRA_EVENTS)")
    with centra.client() as client:
        if context.cursor != "subscribed":
            centra_events.subscribe(client)
        polled = centra_events.poll(store.engine(), client)
    context.log.info("Centra events: %d fetched, %d new, %d confirmed, %d malformed", polled.fetched, polled.landed,
                     polled.confirmed, polled.malformed)
    requests = [dg.RunRequest()] if polled.landed and not _flows_busy(context) else []
    return dg.SensorResult(run_requests=requests, cursor="subscribed")


@dg.sensor(name="commercetools_messages_sensor", job=order_flows_job,
           minimum_interval_seconds=COMMERCETOOLS_MESSAGES_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every 10 s, when the estate runs on commercetools: pulls commercetools' Messages (GET "
                       "/messages from the stored cursor minus a lookback window, since messages publish late and "
                       "out of order), lands each once in the inbox (source commercetools, dedup by message id) and "
                       "requests an order flows run when something new landed and none is in progress.")
def commercetools_messages_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord,
                                  estate: EstateResource, commercetools: CommercetoolsResource
                                  ) -> dg.SensorResult | dg.SkipReason:
    e = estate.get()
    if not uses_commercetools(e):
        return dg.SkipReason("the estate's commerce platform is not commercetools")
    with commercetools.client(e) as client:
        pulled = commercetools_messages.pull(store.engine(), client)
    context.log.info("commercetools messages: %d fetched, %d new, cursor %s", pulled.fetched, pulled.landed,
                     pulled.cursor)
    for error in pulled.errors:
        context.log.warning("commercetools messages: %s", error)
    requests = [dg.RunRequest()] if pulled.landed and not _flows_busy(context) else []
    return dg.SensorResult(run_requests=requests, cursor=pulled.cursor)


@dg.sensor(name="cloudshelf_orders_sensor", job=order_flows_job, minimum_interval_seconds=CLOUDSHELF_POLL_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Once a minute, when Cloudshelf is configured (order_flow_settings.kiosk_api_url): a safety "
                       "net for dropped kiosk order webhooks. Reads Cloudshelf's orders updated since the cursor, lands "
                       "each (order, status) once in the inbox (source cloudshelf, `cloudshelf.order`) and requests an "
                       "order flows run when something new landed and none is in progress.")
def cloudshelf_orders_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord, estate: EstateResource,
                             order_flow_settings: OrderFlowSettings) -> dg.SensorResult | dg.SkipReason:
    rt = kiosk_runtime(order_flow_settings, estate.get())
    if rt is None:
        return dg.SkipReason("Cloudshelf is not configured (order_flow_settings.kiosk_api_url)")
    with rt.platform.client:
        if kiosk.ensure_webhook(store.engine(), rt) is not None:
            context.log.info("Cloudshelf: our order webhook registered")
        polled = cloudshelf_events.poll(store.engine(), rt.platform, context.cursor or None, datetime.now(UTC))
    context.log.info("Cloudshelf orders: %d read, %d new, cursor %s", polled.fetched, polled.landed, polled.cursor)
    requests = [dg.RunRequest()] if polled.landed and not _flows_busy(context) else []
    return dg.SensorResult(run_requests=requests, cursor=polled.cursor)


@dg.sensor(name="erp_shipments_sensor", job=order_flows_job, minimum_interval_seconds=ERP_SENSOR_INTERVAL_S,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every PIPELINES_ERP_SHIPMENT_POLL_S (5 s), when Business Central is configured and the estate "
                       "has an `erp` mapping: reads the ERP's shipments changed since the stored cursor minus "
                       "PIPELINES_ERP_SHIPMENT_OVERLAP_S, lands each version once in the inbox (source "
                       "businesscentral, `erp.shipment`) and requests an order flows run when something new landed "
                       "and none is in progress (the `erp_shipment` flow applies it to Centra; a flows run in progress "
                       "polls on its own as well).")
def erp_shipments_sensor(context: dg.SensorEvaluationContext, store: StoreOfRecord, estate: EstateResource,
                         businesscentral: BusinessCentralResource,
                         erp_settings: ErpSettings) -> dg.SensorResult | dg.SkipReason:
    if not businesscentral.enabled or estate.get().erp is None:
        return dg.SkipReason("no ERP: Business Central is not configured or the estate has no `erp` section")
    now = datetime.now(UTC)
    last = float(context.cursor) if context.cursor else None
    if last is not None and 0 <= now.timestamp() - last < erp_settings.shipment_poll_s:
        return dg.SkipReason("ERP shipments were polled less than PIPELINES_ERP_SHIPMENT_POLL_S ago")
    system = erp_system(businesscentral)
    try:
        polled = erp_orders.poll_shipments(store.engine(), system, erp_settings.shipment_overlap_s, now)
    finally:
        close = getattr(getattr(system, "client", None), "close", None)
        if close is not None:
            close()
    context.log.info("ERP shipments: %d read, %d new, cursor %s", polled.fetched, polled.landed, polled.cursor)
    requests = [dg.RunRequest()] if polled.landed and not _flows_busy(context) else []
    return dg.SensorResult(run_requests=requests, cursor=str(now.timestamp()))


def _flows_busy(context: dg.SensorEvaluationContext) -> bool:
    return bool(context.instance.get_run_records(filters=dg.RunsFilter(
        job_name=order_flows_job.name, statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                                                 dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]), limit=1))


def flow_definitions() -> dg.Definitions:
    return dg.Definitions(assets=[order_flow_work, erp_order_postings, erp_shipments_applied], jobs=[order_flows_job],
                          sensors=[order_flows_sensor, centra_events_sensor, commercetools_messages_sensor,
                                   cloudshelf_orders_sensor, erp_shipments_sensor])
