"""Resources: the store of record, the estate, the platform API clients, the settings of the reconciliation
and the stock sync, and the finance report's files.

`pipelines/definitions.py` configures them from `pipelines.settings` (secrets through `EnvVar`), so the
Dagster UI shows every value in use; tests construct them directly. Pointing at real tenants is
configuration only (README, "Going live").
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import fields
from datetime import date
from functools import cached_property
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field
from sqlalchemy import Engine

from pipelines.connectors.businesscentral import BusinessCentralClient
from pipelines.connectors.centra import CentraClient
from pipelines.connectors.cloudshelf import CloudshelfClient
from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.newstore import NewStoreClient
from pipelines.domain.reconciliation import Tolerance
from pipelines.estate import Estate, load_estate
from pipelines.reporting.finance_report import ReportFiles, write_daily_report, write_month_report
from pipelines.store.db import shared_engine
from pipelines.sync import SyncConfig

REPORT_DEADLINE_HOUR = 7  # default of ReconciliationSettings.report_deadline_hour


class StoreOfRecord(dg.ConfigurableResource):
    """SQLAlchemy engine over PIPELINES_DATABASE_URL (SQLite file by default, PostgreSQL in production).

    Dagster builds a resource per run and per sensor tick; the engine is the process's one engine for the
    URL (built and migrated once per process, `pipelines.store.db.shared_engine`), not one per instance.
    """

    database_url: str

    def engine(self) -> Engine:
        return shared_engine(self.database_url)


class EstateResource(dg.ConfigurableResource):
    """The estate file: locations, markets, price lists, catalog and the mappings between platforms."""

    path: str

    @cached_property
    def _estate(self) -> Estate:
        return load_estate(self.path)

    def get(self) -> Estate:
        return self._estate


class CentraResource(dg.ConfigurableResource):
    """Centra GraphQL Integration API (or the simulator)."""

    base_url: str
    token: str
    timeout_s: float = 30.0

    def client(self) -> CentraClient:
        return CentraClient(self.base_url, self.token, timeout=self.timeout_s)


class CommercetoolsResource(dg.ConfigurableResource):
    """commercetools Composable Commerce HTTP API (or the simulator), OAuth client credentials. Used when the
    estate's `commerce_platform` is "commercetools"; unused (and may stay unconfigured) otherwise."""

    api_url: str = Field(default="http://127.0.0.1:8083", description=(
        "API host, e.g. https://api.europe-west1.gcp.commercetools.com (COMMERCETOOLS_API_URL)."))
    auth_url: str | None = Field(default=None, description=(
        "Auth host, e.g. https://auth.europe-west1.gcp.commercetools.com; default: the API host "
        "(COMMERCETOOLS_AUTH_URL)."))
    project_key: str | None = Field(default=None, description=(
        "Project key; default: the estate's `commercetools.project_key` (COMMERCETOOLS_PROJECT_KEY)."))
    client_id: str | None = Field(default=None, description="API client id: dg.EnvVar(\"COMMERCETOOLS_CLIENT_ID\").")
    client_secret: str | None = Field(default=None, description=(
        "API client secret: dg.EnvVar(\"COMMERCETOOLS_CLIENT_SECRET\")."))
    scopes: str = Field(default="", description=(
        "Space-separated scopes to ask for (COMMERCETOOLS_SCOPES); empty: the API client's own."))
    requests_per_s: float = Field(default=20.0, description=(
        "The request budget the stock sync keeps to (COMMERCETOOLS_REQUESTS_PER_S): commercetools publishes no "
        "global limit and asks integrations to ramp up gradually."))
    timeout_s: float = 30.0

    def client(self, estate: Estate, *, max_attempts: int = 4) -> CommercetoolsClient:
        if not self.client_id or not self.client_secret:
            raise ValueError("commercetools is the commerce platform but COMMERCETOOLS_CLIENT_ID / "
                             "COMMERCETOOLS_CLIENT_SECRET are not set")
        project = self.project_key or (estate.commercetools.project_key if estate.commercetools else None)
        if not project:
            raise ValueError("no commercetools project key (COMMERCETOOLS_PROJECT_KEY or the estate's)")
        return CommercetoolsClient(self.api_url, self.auth_url or self.api_url, project, self.client_id,
                                   self.client_secret, tuple(self.scopes.split()), timeout=self.timeout_s,
                                   max_attempts=max_attempts)


class CloudshelfResource(dg.ConfigurableResource):
    """Cloudshelf ingest GraphQL API (or the simulator): the in-store kiosks (issue 14). Enabled when `base_url`
    (CLOUDSHELF_API_URL) and the token are set; unconfigured, the kiosk assets and sensors do nothing."""

    base_url: str | None = Field(default=None, description=(
        "The GraphQL endpoint, e.g. https://ingestapi.cloudshelf.ai/graphql (CLOUDSHELF_API_URL); a URL without a "
        "path gets /graphql. Unset: Cloudshelf is not used."))
    token: str | None = Field(default=None, description="API key: dg.EnvVar(\"CLOUDSHELF_API_TOKEN\").")
    timeout_s: float = Field(default=30.0, description="Per-request timeout (CLOUDSHELF_TIMEOUT_S).")

    @property
    def enabled(self) -> bool:
        return bool(self.base_url) and bool(self.token)

    def client(self, **kwargs: object) -> CloudshelfClient:
        if not self.base_url or not self.token:
            raise ValueError("Cloudshelf is not configured (CLOUDSHELF_API_URL / CLOUDSHELF_API_TOKEN)")
        return CloudshelfClient(self.base_url, self.token, timeout=self.timeout_s, **kwargs)  # type: ignore[arg-type]


class BusinessCentralResource(dg.ConfigurableResource):
    """Microsoft Dynamics 365 Business Central API v2.0 (or the simulator), Entra ID client credentials: the ERP
    behind the commerce platform (issue 15). Enabled when `api_url` (BUSINESSCENTRAL_API_URL) and the credentials
    are set and the estate has an `erp` section; unconfigured, the ERP assets, flows and sensors do nothing."""

    api_url: str | None = Field(default=None, description=(
        "API host, e.g. https://api.businesscentral.dynamics.com (BUSINESSCENTRAL_API_URL). Unset: no ERP."))
    auth_url: str | None = Field(default=None, description=(
        "Token host, e.g. https://login.microsoftonline.com; default: the API host (BUSINESSCENTRAL_AUTH_URL)."))
    tenant: str = Field(default="contoso.onmicrosoft.com", description="Entra ID tenant (BUSINESSCENTRAL_TENANT).")
    environment: str = Field(default="production", description="BC environment name (BUSINESSCENTRAL_ENVIRONMENT).")
    company_id: str | None = Field(default=None, description=(
        "The company's id (BUSINESSCENTRAL_COMPANY_ID); unset: the environment's only company."))
    scope: str = Field(default="https://api.businesscentral.dynamics.com/.default", description=(
        "OAuth scope (BUSINESSCENTRAL_SCOPE)."))
    client_id: str | None = Field(default=None, description="App registration id: dg.EnvVar(\"BUSINESSCENTRAL_CLIENT_ID\").")
    client_secret: str | None = Field(default=None, description=(
        "App registration secret: dg.EnvVar(\"BUSINESSCENTRAL_CLIENT_SECRET\")."))
    timeout_s: float = Field(default=30.0, description="Per-request timeout (BUSINESSCENTRAL_TIMEOUT_S).")

    @property
    def enabled(self) -> bool:
        return bool(self.api_url) and bool(self.client_id) and bool(self.client_secret)

    def client(self, **kwargs: object) -> BusinessCentralClient:
        if not self.api_url or not self.client_id or not self.client_secret:
            raise ValueError("Business Central is not configured (BUSINESSCENTRAL_API_URL, BUSINESSCENTRAL_CLIENT_ID, "
                             "BUSINESSCENTRAL_CLIENT_SECRET)")
        client = BusinessCentralClient(self.api_url, self.tenant, self.environment, self.client_id,
                                       self.client_secret, company_id=self.company_id, auth_url=self.auth_url,
                                       scope=self.scope, timeout_s=self.timeout_s, **kwargs)  # type: ignore[arg-type]
        if not client.company_id:
            companies = client.companies()
            if len(companies) != 1:
                client.close()
                raise ValueError(f"set BUSINESSCENTRAL_COMPANY_ID: the environment has {len(companies)} companies")
            client.company_id = companies[0]["id"]
        return client


class ErpSettings(dg.ConfigurableResource):
    """How the order-to-cash flows treat the ERP (issue 15)."""

    order_rule: str = Field(default="confirmed_authorised", description=(
        "When a commerce order is verified and goes to the ERP (PIPELINES_ERP_ORDER_RULE): confirmed_authorised "
        "(confirmed and its payment authorised or captured), confirmed_captured, or captured."))
    shipment_poll_s: float = Field(default=5.0, description=(
        "How often ERP shipments are polled, by the sensor between flows runs and by a flows run itself "
        "(PIPELINES_ERP_SHIPMENT_POLL_S); one request per poll in a company without item variants."))
    shipment_overlap_s: float = Field(default=300.0, description=(
        "Each poll reads shipments changed since the last one minus this (PIPELINES_ERP_SHIPMENT_OVERLAP_S): the "
        "ERP can publish a change with a timestamp older than the poll that follows it."))
    stock_quiet_s: float = Field(default=300.0, description=(
        "The ERP stock resync leaves alone keys with movements or ERP shipments this recent "
        "(PIPELINES_ERP_STOCK_QUIET_S)."))


class NewStoreResource(dg.ConfigurableResource):
    """NewStore Omnichannel APIs (or the simulator), OAuth client credentials."""

    base_url: str
    tenant: str
    client_id: str
    client_secret: str
    auth_url: str | None = None
    timeout_s: float = 30.0

    def client(self) -> NewStoreClient:
        return NewStoreClient(self.base_url, self.tenant, self.client_id, self.client_secret,
                              auth_url=self.auth_url, timeout=self.timeout_s)


class ReconciliationSettings(dg.ConfigurableResource):
    """What the daily reconciliation counts as a difference, the limits its checks and the finance report
    are judged by, and the report's deadline (`PIPELINES_RECON_*`)."""

    money_tolerance: float = Field(default=Tolerance.money, description=(
        "Per-finding money tolerance, store currency (PIPELINES_RECON_MONEY_TOLERANCE)."))
    unit_tolerance: int = Field(default=Tolerance.units, description=(
        "Per-finding stock tolerance, units (PIPELINES_RECON_UNIT_TOLERANCE)."))
    blocking_value_base: float = Field(default=0.0, description=(
        "Money mismatches above this (base currency, per day) block the finance report "
        "(PIPELINES_RECON_BLOCKING_VALUE_BASE)."))
    drift_warn_value_base: float = Field(default=0.0, description=(
        "Stock drift above this (base currency, per day) warns (PIPELINES_RECON_DRIFT_WARN_VALUE_BASE)."))
    report_deadline_hour: int = Field(default=REPORT_DEADLINE_HOUR, description=(
        "Yesterday's finance report must exist by this hour, business time "
        "(PIPELINES_RECON_REPORT_DEADLINE_HOUR)."))
    posting_mode: str = Field(default="daily_batch", description=(
        "How finance posts the kiosk transactions, shown in the finance report's kiosk section "
        "(PIPELINES_FINANCE_POSTING_MODE): `realtime` (each transaction when it happens: intra-day figures are "
        "complete) or `daily_batch` (one posting per store, day and currency after the cut-off: simpler to "
        "reconcile, nothing of the day posted before the cut-off)."))

    def tolerance(self) -> Tolerance:
        return Tolerance(money=self.money_tolerance, units=self.unit_tolerance)


class RecoverySettings(dg.ConfigurableResource):
    """Recovery of store transactions the event stream lost (`pipelines.store.recoveries`)."""

    grace_s: float = Field(default=120.0, description=(
        "Seconds after a transaction's first sibling event landed before its own missing event is fetched "
        "from NewStore: deliveries are unordered and normally seconds apart (_GRACE_S)."))
    max_attempts: int = Field(default=5, description=(
        "Fetches tried (one per recovery run) before a transaction NewStore fails to return is reported "
        "missing; a 404 reports it at once (_MAX_ATTEMPTS)."))


class OrderFlowSettings(dg.ConfigurableResource):
    """The order flows' knobs (`PIPELINES_FLOW_*`; pipelines/defs/flows)."""

    pickup_shipping_options: list[str] = Field(default=["Click & Collect"], description=(
        "Centra shipping options (by name) that make an order click-and-collect: it is handed to the store "
        "that holds its allocation, and shipped online when the store hands it over."))
    pickup_service_level: str = Field(default="IN_STORE_PICKUP", description=(
        "NewStore's service level for an in-store pickup (the injected order's shipping option, and the "
        "handovers the flows act on); NewStore leaves the value to the tenant's configuration."))
    uncollected_after_h: float = Field(default=72.0, description=(
        "Hours a click-and-collect order may wait in the store before `pickup_uncollected` is raised."))
    max_attempts: int = Field(default=5, description=(
        "Tries of a flow that fails transiently (5xx, 429 after the client's own retries, timeouts) before "
        "it becomes an exception; each retry waits retry_base_s x 2^attempt."))
    retry_base_s: float = Field(default=15.0, description="First retry delay of a transient flow failure.")
    centra_events: bool = Field(default=False, description=(
        "Poll Centra's events queue once a minute (`centra_events_sensor`), for tenants that offer it (the "
        "events system is enabled per tenant on request); the webhook plugin needs no setting."))
    run_window_s: float = Field(default=300.0, description=(
        "Seconds an order flows run stays alive, looking for new work every poll_s (0: one pass and done). "
        "A live run answers an event within about a second instead of a sensor tick plus a run's start."))
    poll_s: float = Field(default=1.0, description="How often a live order flows run looks for new work.")
    shipping_map: str = Field(default="STANDARD=standard,EXPRESS=express", description=(
        "Endless aisle: NewStore delivery service level -> Centra shipping option URI, `SERVICE=uri,...` "
        "(PIPELINES_FLOW_SHIPPING_MAP). An order whose service level is not here is `shipping_option_unmapped`: "
        "the shipping method is never guessed. Both names are the tenants' own configuration."))
    centra_order_api_url: str | None = Field(default=None, description=(
        "Endless aisle: the `<base>` of Centra's Order API plugin (REST; the plugin needs \"Allow Order Create\"), "
        "where orders from outside are created (PIPELINES_FLOW_CENTRA_ORDER_API_URL). Unset: not created."))
    centra_order_api_key: str | None = Field(default=None, description=(
        "The Order API plugin's shared secret (`API-Authorization`); configure it through "
        "dg.EnvVar(\"CENTRA_ORDER_API_KEY\")."))
    ship_from_store_service_level: str = Field(default="STANDARD", description=(
        "Ship-from-store: NewStore's shipping service level of the delivery order injected into the store "
        "(PIPELINES_FLOW_SFS_SERVICE_LEVEL); the value is the tenant's own configuration."))
    ship_from_store_fallback: str = Field(default="", description=(
        "Ship-from-store: where an order goes when its store fails the final stock check or rejects it, per "
        "store: `STORE=LOC,LOC;STORE=...` with the estate's location ids, the DC included "
        "(PIPELINES_FLOW_SFS_FALLBACK). A store not listed falls back to the other stores of its country in the "
        "estate's order, then the DC."))
    kiosk_take_home: str = Field(default="take-home", description=(
        "Kiosk orders: the Cloudshelf fulfilment method (the acquisition option's internal name) of a kiosk sale the "
        "customer takes home (PIPELINES_KIOSK_TAKE_HOME, `settings.cloudshelf().take_home`): it deducts the store's "
        "stock in Centra through the stock sync; any other method is a delivery (endless aisle)."))
    kiosk_shipping_map: str = Field(default='{"home-standard": "standard", "home-express": "express"}', description=(
        "Kiosk orders: delivery fulfilment method -> Centra shipping option, a JSON object "
        "(PIPELINES_KIOSK_SHIPPING_MAP, `settings.cloudshelf().shipping_map`). A method not here is "
        "`shipping_option_unmapped`: never guessed; the order is created once the map names it."))
    kiosk_register_customer: bool = Field(default=False, description=(
        "Kiosk delivery orders: create them for a registered Centra customer of the shopper's e-mail (created first "
        "when none exists: Centra's `customerRegister`) instead of a guest, for tenants that require one "
        "(PIPELINES_KIOSK_REGISTER_CUSTOMER). Either way an order without an e-mail is `endless_aisle_incomplete`."))
    kiosk_address_keys: str = Field(default="", description=(
        "Kiosk orders: our address field -> the kiosk form's attribute key, JSON (PIPELINES_FLOW_KIOSK_ADDRESS_KEYS; "
        "fields first_name, last_name, address1, address2, city, zip_code, state, country). Empty: "
        "`pipelines.domain.flows.kiosk.DEFAULT_ADDRESS_KEYS`. The form is the retailer's own."))
    kiosk_webhook_url: str | None = Field(default=None, description=(
        "Kiosk orders: the intake's public `/cloudshelf/webhooks` URL, registered with Cloudshelf once "
        "(`registerWebhook`) at the start of a flows run (PIPELINES_FLOW_KIOSK_WEBHOOK_URL). Unset: not registered "
        "(the poll still finds the orders, without the customer's details)."))
    kiosk_webhook_key: str | None = Field(default=None, description=(
        "The shared secret the registered URL carries as `?key=` (the intake's CLOUDSHELF_WEBHOOK_KEY); configure "
        "it through dg.EnvVar(\"CLOUDSHELF_WEBHOOK_KEY\")."))
    kiosk_api_url: str | None = Field(default=None, description=(
        "Kiosk orders: the Cloudshelf GraphQL endpoint the flows read orders from and send statuses to "
        "(CLOUDSHELF_API_URL, as the `cloudshelf` resource). Unset: kiosk orders are not handled (they wait)."))
    kiosk_api_token: str | None = Field(default=None, description=(
        "Cloudshelf's API key: dg.EnvVar(\"CLOUDSHELF_API_TOKEN\")."))
    kiosk_timeout_s: float = Field(default=30.0, description="Cloudshelf per-request timeout (CLOUDSHELF_TIMEOUT_S).")
    kiosk_order_subject: str = Field(default="OrderPaid", description=(
        "Kiosk orders: the webhook subject registered for orders (PIPELINES_FLOW_KIOSK_ORDER_SUBJECT). Cloudshelf "
        "documents only ProductUpsert: an ASSUMPTION to confirm with Cloudshelf."))


class SyncSettings(dg.ConfigurableResource):
    """The stock sync's knobs (`PIPELINES_SYNC_*`, see docs/stock-sync.md): the `SyncConfig` of its runs (how
    long an always-on run lives and hands over, batching, concurrency) and how long its history is kept. The
    sensor interval and the resync cron are not here: Dagster takes them when the definitions load
    (`pipelines.settings.schedules`)."""

    safety_stock: int = Field(default=SyncConfig.safety_stock, description=(
        "Lines leaving free-to-allocate at or below this are critical (_SAFETY_STOCK)."))
    rate_share: float = Field(default=SyncConfig.rate_share, description=(
        "Share of Centra's rate limits the sync may use (_RATE_SHARE)."))
    location_kinds: list[str] = Field(default=list(SyncConfig.location_kinds), description=(
        "Estate location kinds whose movements are synced (_LOCATION_KINDS)."))
    max_lines: int = Field(default=SyncConfig.max_lines, description="Lines per mutation (_MAX_LINES).")
    settle_s: float = Field(default=SyncConfig.settle_s, description=(
        "Inbox events younger than this are re-read (_SETTLE_S)."))
    run_window_s: float = Field(default=SyncConfig.run_window_s, description=(
        "How long an always-on sync run lives before it hands over to its successor (_RUN_WINDOW_S); a run's own "
        "config may override it."))
    handover_lead_s: float = Field(default=SyncConfig.handover_lead_s, description=(
        "The sensor launches the successor this long before the running sync's window ends (_HANDOVER_LEAD_S)."))
    handover_wait_s: float = Field(default=SyncConfig.handover_wait_s, description=(
        "A successor waits this long for the running sync to hand over (_HANDOVER_WAIT_S)."))
    max_in_flight: int = Field(default=SyncConfig.max_in_flight, description=(
        "Concurrent sends, never two for one warehouse (_MAX_IN_FLIGHT)."))
    poll_s: float = Field(default=SyncConfig.poll_s, description="Pause between passes while idle (_POLL_S).")
    send_window_s: float = Field(default=SyncConfig.send_window_s, description=(
        "A pass keeps sending as the budget refills this long (_SEND_WINDOW_S)."))
    rank_cache_s: float = Field(default=SyncConfig.rank_cache_s, description=(
        "Centra stock read for ranking is reused this long (_RANK_CACHE_S)."))
    batch_delay_s: float | None = Field(default=SyncConfig.batch_delay_s, description=(
        "Non-critical movements wait this long to be batched; critical ones go at once (_BATCH_DELAY_S; "
        "empty: no batching)."))
    clock_skew_s: float = Field(default=SyncConfig.clock_skew_s, description=(
        "An event stamped further ahead of its receipt is applied at its receive time (_CLOCK_SKEW_S)."))
    counts_as: str = Field(default=SyncConfig.counts_as, description=(
        "Stock counts go out as 'delta' (changeStock) or 'set' (setStock) (_COUNTS_AS)."))
    run_retention_hours: float = Field(default=168.0, description=(
        "Successful sync runs and their event logs are kept this long (_RUN_RETENTION_HOURS)."))
    failed_run_retention_days: float = Field(default=7.0, description=(
        "Failed or cancelled sync runs are kept this long (_FAILED_RUN_RETENTION_DAYS)."))
    store_retention_days: float = Field(default=90.0, description=(
        "Settled movements, batches and ledger rows are kept this long (_STORE_RETENTION_DAYS)."))

    def config(self) -> SyncConfig:
        """The `SyncConfig` these settings describe (its other fields keep their defaults)."""
        values = {f.name: getattr(self, f.name) for f in fields(SyncConfig) if f.name in type(self).model_fields}
        return SyncConfig(**values | {"location_kinds": tuple(self.location_kinds)})


class FinanceReportFiles(dg.ConfigurableResource):
    """The finance report's folders under `reports_dir` (PIPELINES_REPORTS_DIR): a day's `<date>/` and a
    month's `<YYYY-MM>/` (layout: `pipelines.reporting.finance_report`)."""

    reports_dir: str

    @property
    def root(self) -> Path:
        return Path(self.reports_dir)

    def write_day(self, day: str, findings: pd.DataFrame, totals: pd.DataFrame, history: pd.DataFrame, *,
                  estate: Estate, produced_under: Sequence[tuple[str, bool, str]],
                  evidence_notes: Sequence[str], restatement: pd.DataFrame | None = None,
                  kiosk: pd.DataFrame | None = None, posting_mode: str | None = None) -> ReportFiles:
        """The day's report; `restatement`: the day's latest restatement's changes (the page says "restated");
        `kiosk`: the kiosk section in `posting_mode` (`pipelines.domain.kiosk.postings.day_summary`)."""
        return write_daily_report(self.root, day, findings, history, totals=totals, base_currency=estate.base_currency,
                                  estate_name=estate.name, estate=estate, produced_under=produced_under,
                                  evidence_notes=evidence_notes, restatement=restatement, kiosk=kiosk,
                                  posting_mode=posting_mode)

    def write_month(self, month: str, totals: pd.DataFrame, *, estate: Estate) -> Path:
        return write_month_report(self.root, month, totals, base_currency=estate.base_currency,
                                  estate_name=estate.name)

    def remove_day(self, day: str) -> bool:
        """Delete a day's report folder (one written while the day was green); True if there was one."""
        folder = self.root / date.fromisoformat(day).isoformat()
        if not folder.is_dir():
            return False
        shutil.rmtree(folder)
        return True
