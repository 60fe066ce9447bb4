"""Every setting the product reads from the environment, and the one place that reads it.

Each variable is listed in the README's Configuration table. No other module reads `os.environ`:
Dagster code gets these values through resources configured in `pipelines/definitions.py`, the intake
service (not Dagster) through `intake()` and `intake_secrets()` at start-up.

- `settings()`: the store of record, the estate, the business calendar, the reports folder and the
  platforms' URLs (defaults here).
- `schedules()`: what Dagster needs when it loads the definitions (cron hours, the sync sensor's
  interval; defaults here). Read once at import by `pipelines.defs`, like the partitions' start date and
  timezone from `settings()`.
- `reconciliation()`, `sync()`, `recovery()`, `stream_health()`, `intake()`: only what the environment sets, typed and keyed by the field
  names of what they configure (`ReconciliationSettings`, `SyncSettings`, `RecoverySettings`, `IntakeConfig`...), so each
  default is stated once, on the thing configured.
- `cloudshelf()`: the Cloudshelf kiosks (`CloudshelfSettings`: API URL, timeout, kiosk locations, the take-home
  option, the delivery options' shipping map, the availability refresh interval; the token only as set or not).
- `intake_secrets()`: the intake's two secrets. Dagster resources take their secrets through `EnvVar`
  instead; neither is ever logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEZONE = "Europe/Stockholm"
DEFAULT_PARTITION_START = "2026-09-01"


class SettingError(ValueError):
    """A variable is set to a value its setting cannot take (the message names the variable)."""


def _env(name: str, *, strip: bool = True) -> str | None:
    """The one read of the environment: the variable's value (stripped unless `strip` is False, as for a
    secret, taken as set); None when unset or blank."""
    value = os.environ.get(name, "")
    return (value.strip() if strip else value) or None


def _text(name: str, default: str) -> str:
    return _env(name) or default


def _number(name: str, convert: Callable[[str], Any], what: str, minimum: float | None = None) -> Any:
    """The variable as a number (None when unset); a SettingError when it is not one, or below `minimum`."""
    raw = _env(name)
    if raw is None:
        return None
    try:
        value = convert(raw)
    except ValueError:
        raise SettingError(f"{name} must be {what}, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingError(f"{name} must be >= {minimum:g}")
    return value


def _int(name: str, minimum: int | None = None) -> int | None:
    return _number(name, int, "an integer", minimum)


def _float(name: str, minimum: float | None = None) -> float | None:
    return _number(name, float, "a number", minimum)


def _each(read: Callable[[str, Any], Any], minimum: float, **variables: str) -> dict[str, Any]:
    """`read(variable, minimum)` for each field's variable: the many knobs of one type and lower bound."""
    return {field: read(variable, minimum) for field, variable in variables.items()}


def _flag(name: str) -> bool | None:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (unset: None)."""
    raw = _env(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {raw!r}")


def _choice(name: str, choices: tuple[str, ...]) -> str | None:
    """One of `choices` (unset: None); a SettingError naming them otherwise."""
    raw = _env(name)
    if raw is None or raw in choices:
        return raw
    raise SettingError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")


def _set(**values: Any) -> dict[str, Any]:
    """The values the environment sets (None: unset, the configured thing's default applies)."""
    return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    estate_file: Path
    business_timezone: str
    partition_start: str
    reports_dir: Path
    centra_api_url: str
    newstore_api_url: str
    newstore_tenant: str
    newstore_auth_url: str | None  # None: derived from the API URL and tenant by the client

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_text("PIPELINES_HOME", str(Path.cwd() / "data"))).resolve()
        return cls(
            home=home,
            database_url=_text("PIPELINES_DATABASE_URL", f"sqlite:///{home / 'pipelines.sqlite'}"),
            estate_file=Path(_text("PIPELINES_ESTATE_FILE", str(home / "estate.json"))),
            business_timezone=_text("PIPELINES_BUSINESS_TIMEZONE", DEFAULT_TIMEZONE),
            partition_start=_text("PIPELINES_PARTITION_START", DEFAULT_PARTITION_START),
            reports_dir=Path(_text("PIPELINES_REPORTS_DIR", str(home / "reports"))),
            centra_api_url=_text("CENTRA_API_URL", "http://127.0.0.1:8081"),
            newstore_api_url=_text("NEWSTORE_API_URL", "http://127.0.0.1:8082"),
            newstore_tenant=_text("NEWSTORE_TENANT", "nordlys-sandbox"),
            newstore_auth_url=_env("NEWSTORE_AUTH_URL"),
        )


def settings() -> Settings:
    return Settings.from_env()


@dataclass(frozen=True)
class Schedules:
    """Definition-time values: Dagster takes a schedule's cron string and a sensor's minimum interval when
    the definitions load, not when they run (a change takes effect at the next code-location load)."""

    recon_hour: int = 6  # the daily reconciliation of yesterday, business time
    resync_cron: str = "30 5 * * *"  # the full stock resync
    sync_sensor_interval_s: int = 5  # stock_sync_sensor's minimum interval
    restatement_window_s: float = 600.0  # restatement_sensor: a day is restated once no late event came this long
    erp_stock_cron: str = "*/15 * * * *"  # the ERP stock resync to the commerce platform's DC warehouse

    @classmethod
    def from_env(cls) -> Schedules:
        return cls(**_set(recon_hour=_int("PIPELINES_RECON_HOUR", 0),
                          resync_cron=_env("PIPELINES_SYNC_RESYNC_CRON"),
                          erp_stock_cron=_env("PIPELINES_ERP_STOCK_CRON"),
                          restatement_window_s=_float("PIPELINES_RESTATEMENT_WINDOW_S", 0),
                          sync_sensor_interval_s=_number("PIPELINES_SYNC_SENSOR_INTERVAL_S",
                                                         lambda raw: int(float(raw)), "a number of seconds", 1)))


def schedules() -> Schedules:
    return Schedules.from_env()


def reconciliation() -> dict[str, Any]:
    """`ReconciliationSettings` fields the environment sets."""
    return _set(
        money_tolerance=_float("PIPELINES_RECON_MONEY_TOLERANCE", 0),
        unit_tolerance=_int("PIPELINES_RECON_UNIT_TOLERANCE", 0),
        blocking_value_base=_float("PIPELINES_RECON_BLOCKING_VALUE_BASE"),
        drift_warn_value_base=_float("PIPELINES_RECON_DRIFT_WARN_VALUE_BASE"),
        report_deadline_hour=_int("PIPELINES_RECON_REPORT_DEADLINE_HOUR", 0),
        posting_mode=_choice("PIPELINES_FINANCE_POSTING_MODE", ("realtime", "daily_batch")),
    )


def sync() -> dict[str, Any]:
    """`SyncSettings` fields the environment sets (the `SyncConfig` knobs: the always-on run's window and
    handover, batching, concurrency; and the retention). `PIPELINES_SYNC_BATCH_DELAY_S=0` means no
    batching of non-critical movements (None)."""
    kinds = _env("PIPELINES_SYNC_LOCATION_KINDS")
    batch_delay = _float("PIPELINES_SYNC_BATCH_DELAY_S", 0)
    return _set(
        safety_stock=_int("PIPELINES_SYNC_SAFETY_STOCK"),
        location_kinds=[k.strip() for k in kinds.split(",") if k.strip()] if kinds else None,
        max_lines=_int("PIPELINES_SYNC_MAX_LINES", 1),
        max_in_flight=_int("PIPELINES_SYNC_MAX_IN_FLIGHT", 1),
        counts_as=_env("PIPELINES_SYNC_COUNTS_AS"),
        **_each(_float, 0, rate_share="PIPELINES_SYNC_RATE_SHARE", settle_s="PIPELINES_SYNC_SETTLE_S",
                run_window_s="PIPELINES_SYNC_RUN_WINDOW_S", handover_lead_s="PIPELINES_SYNC_HANDOVER_LEAD_S",
                handover_wait_s="PIPELINES_SYNC_HANDOVER_WAIT_S", poll_s="PIPELINES_SYNC_POLL_S",
                send_window_s="PIPELINES_SYNC_SEND_WINDOW_S", rank_cache_s="PIPELINES_SYNC_RANK_CACHE_S",
                clock_skew_s="PIPELINES_SYNC_CLOCK_SKEW_S",
                run_retention_hours="PIPELINES_SYNC_RUN_RETENTION_HOURS",
                failed_run_retention_days="PIPELINES_SYNC_FAILED_RUN_RETENTION_DAYS",
                store_retention_days="PIPELINES_SYNC_STORE_RETENTION_DAYS"),
    ) | ({"batch_delay_s": batch_delay or None} if batch_delay is not None else {})


def commercetools() -> dict[str, Any]:
    """`CommercetoolsResource` fields the environment sets (the estate's `commerce_platform` decides whether they are
    used). The client id and secret are secrets: `pipelines/definitions.py` reads them through `EnvVar`."""
    return _set(api_url=_env("COMMERCETOOLS_API_URL"), auth_url=_env("COMMERCETOOLS_AUTH_URL"),
                project_key=_env("COMMERCETOOLS_PROJECT_KEY"), scopes=_env("COMMERCETOOLS_SCOPES"),
                requests_per_s=_float("COMMERCETOOLS_REQUESTS_PER_S", 0.1))


def commercetools_credentials_set() -> bool:
    """Whether the commercetools client credentials are in the environment (only then are they wired)."""
    return _env("COMMERCETOOLS_CLIENT_ID") is not None and _env("COMMERCETOOLS_CLIENT_SECRET", strip=False) is not None


#: Kiosk fulfilment method (a Cloudshelf acquisition option's internal name) -> Centra shipping option name.
DEFAULT_KIOSK_SHIPPING_MAP = {"home-standard": "standard", "home-express": "express"}


@dataclass(frozen=True)
class CloudshelfSettings:
    """Cloudshelf kiosks (issue 14): enabled when `CLOUDSHELF_API_URL` is set. The API token is a secret:
    `pipelines/definitions.py` gives it to `CloudshelfResource` through `EnvVar("CLOUDSHELF_API_TOKEN")`; here
    only whether it is set."""

    api_url: str | None = None  # CLOUDSHELF_API_URL, e.g. https://ingestapi.cloudshelf.ai/graphql
    token_set: bool = False  # CLOUDSHELF_API_TOKEN
    timeout_s: float = 30.0  # CLOUDSHELF_TIMEOUT_S
    kiosk_locations: tuple[str, ...] | None = None  # PIPELINES_KIOSK_LOCATIONS (None: the estate's stores)
    take_home: str = "take-home"  # PIPELINES_KIOSK_TAKE_HOME
    shipping_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_KIOSK_SHIPPING_MAP))
    register_customer: bool = False  # PIPELINES_KIOSK_REGISTER_CUSTOMER: delivery orders for a registered customer
    refresh_s: float = 60.0  # PIPELINES_KIOSK_REFRESH_S: the availability refresh's interval (Centra-side allocations)

    @property
    def enabled(self) -> bool:
        return self.api_url is not None


def _json_map(name: str) -> dict[str, str] | None:
    raw = _env(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise SettingError(f"{name} must be a JSON object of names, not {raw!r}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                              for k, v in value.items()):
        raise SettingError(f"{name} must be a JSON object mapping names to names")
    return dict(value)


def cloudshelf() -> CloudshelfSettings:
    """The Cloudshelf kiosk settings (see `CloudshelfSettings`); unset variables take its defaults."""
    locations = _env("PIPELINES_KIOSK_LOCATIONS")
    return CloudshelfSettings(**_set(
        api_url=_env("CLOUDSHELF_API_URL"),
        token_set=_env("CLOUDSHELF_API_TOKEN", strip=False) is not None,
        timeout_s=_float("CLOUDSHELF_TIMEOUT_S", 0.1),
        kiosk_locations=tuple(x.strip() for x in locations.split(",") if x.strip()) if locations else None,
        take_home=_env("PIPELINES_KIOSK_TAKE_HOME"),
        shipping_map=_json_map("PIPELINES_KIOSK_SHIPPING_MAP"),
        refresh_s=_float("PIPELINES_KIOSK_REFRESH_S", 1),
        register_customer=_flag("PIPELINES_KIOSK_REGISTER_CUSTOMER")))


def cloudshelf_webhook_key() -> str | None:
    """The intake's Cloudshelf webhook key (unset: the intake refuses Cloudshelf deliveries)."""
    return _env("CLOUDSHELF_WEBHOOK_KEY", strip=False)


def recovery() -> dict[str, Any]:
    """`RecoverySettings` fields the environment sets (lost store transactions: how long a transaction's own
    event may still come before it is fetched from NewStore, and how often a fetch is tried)."""
    return _set(grace_s=_float("PIPELINES_RECOVERY_GRACE_S", 0),
                max_attempts=_int("PIPELINES_RECOVERY_MAX_ATTEMPTS", 1))


def order_flows() -> dict[str, Any]:
    """`OrderFlowSettings` (pipelines/defs/flows): what the environment sets; the rest keeps its default."""
    options = _env("PIPELINES_FLOW_PICKUP_OPTIONS")
    return _set(pickup_shipping_options=[o.strip() for o in options.split(",") if o.strip()] if options else None,
                pickup_service_level=_env("PIPELINES_FLOW_PICKUP_SERVICE_LEVEL"),
                uncollected_after_h=_float("PIPELINES_FLOW_UNCOLLECTED_AFTER_H", 0),
                max_attempts=_int("PIPELINES_FLOW_MAX_ATTEMPTS", 1),
                run_window_s=_float("PIPELINES_FLOW_RUN_WINDOW_S", 0),
                centra_events=_flag("PIPELINES_FLOW_CENTRA_EVENTS"),
                shipping_map=_env("PIPELINES_FLOW_SHIPPING_MAP"),
                centra_order_api_url=_env("PIPELINES_FLOW_CENTRA_ORDER_API_URL"),
                ship_from_store_service_level=_env("PIPELINES_FLOW_SFS_SERVICE_LEVEL"),
                ship_from_store_fallback=_env("PIPELINES_FLOW_SFS_FALLBACK"),
                kiosk_address_keys=_env("PIPELINES_FLOW_KIOSK_ADDRESS_KEYS"),
                kiosk_webhook_url=_env("PIPELINES_FLOW_KIOSK_WEBHOOK_URL"),
                kiosk_order_subject=_env("PIPELINES_FLOW_KIOSK_ORDER_SUBJECT"))


def stream_health() -> dict[str, Any]:
    """`StreamHealthSettings` fields the environment sets (the NewStore event stream's health checks: halt time,
    store opening hours, history days, the unprocessed-event and recovery bounds)."""
    return _set(halt_after_minutes=_float("PIPELINES_STREAM_HALT_AFTER_MINUTES", 1),
                halt_min_expected=_float("PIPELINES_STREAM_HALT_MIN_EXPECTED", 0),
                opening_hour=_int("PIPELINES_STORE_OPENING_HOUR", 0),
                closing_hour=_int("PIPELINES_STORE_CLOSING_HOUR", 0),
                history_days=_int("PIPELINES_STREAM_HISTORY_DAYS", 1),
                unprocessed_warn_minutes=_float("PIPELINES_STREAM_UNPROCESSED_WARN_MINUTES", 0),
                unprocessed_error_minutes=_float("PIPELINES_STREAM_UNPROCESSED_ERROR_MINUTES", 0),
                recovery_overdue_minutes=_float("PIPELINES_STREAM_RECOVERY_OVERDUE_MINUTES", 0))


def intake() -> dict[str, Any]:
    """What the environment sets of the intake service: `IntakeConfig` fields, and the server's `host`,
    `port`, `workers`, `limit_concurrency` and `log_level`."""
    return _set(
        host=_env("PIPELINES_INTAKE_HOST"),
        port=_int("PIPELINES_INTAKE_PORT", 0),
        log_level=(_env("PIPELINES_INTAKE_LOG_LEVEL") or "").lower() or None,
        max_header_bytes=_int("PIPELINES_INTAKE_MAX_HEADER_BYTES", 1024),
        **_each(_int, 1, workers="PIPELINES_INTAKE_WORKERS",
                limit_concurrency="PIPELINES_INTAKE_LIMIT_CONCURRENCY",
                db_concurrency="PIPELINES_INTAKE_DB_CONCURRENCY",
                max_body_bytes="PIPELINES_INTAKE_MAX_BODY_BYTES",
                signature_tolerance_s="PIPELINES_INTAKE_SIGNATURE_TOLERANCE_S",
                quarantine_max_bytes="PIPELINES_INTAKE_QUARANTINE_MAX_BYTES",
                quarantine_retention_days="PIPELINES_INTAKE_QUARANTINE_RETENTION_DAYS"),
    )


def intake_secrets() -> tuple[str, str]:
    """(NewStore event-stream api key, Centra webhook secret); a SettingError naming the missing ones."""
    api_key = _env("NEWSTORE_EVENTSTREAM_API_KEY", strip=False)
    webhook_secret = _env("CENTRA_WEBHOOK_SECRET", strip=False)
    missing = [name for name, value in (("NEWSTORE_EVENTSTREAM_API_KEY", api_key),
                                        ("CENTRA_WEBHOOK_SECRET", webhook_secret)) if value is None]
    if api_key is None or webhook_secret is None:
        raise SettingError(f"set {', '.join(missing)}")
    return api_key, webhook_secret


def businesscentral() -> dict[str, Any]:
    """`BusinessCentralResource` fields the environment sets (issue 15: the ERP behind the commerce platform).
    The ERP is used when `BUSINESSCENTRAL_API_URL` is set and the estate has an `erp` section. The client id and
    secret are secrets: `pipelines/definitions.py` reads them through `EnvVar`."""
    return _set(api_url=_env("BUSINESSCENTRAL_API_URL"), auth_url=_env("BUSINESSCENTRAL_AUTH_URL"),
                tenant=_env("BUSINESSCENTRAL_TENANT"), environment=_env("BUSINESSCENTRAL_ENVIRONMENT"),
                company_id=_env("BUSINESSCENTRAL_COMPANY_ID"), scope=_env("BUSINESSCENTRAL_SCOPE"),
                timeout_s=_float("BUSINESSCENTRAL_TIMEOUT_S", 0.1))


def businesscentral_credentials_set() -> bool:
    """Whether the Business Central client credentials are in the environment (only then are they wired)."""
    return (_env("BUSINESSCENTRAL_CLIENT_ID") is not None
            and _env("BUSINESSCENTRAL_CLIENT_SECRET", strip=False) is not None)


def erp() -> dict[str, Any]:
    """`ErpSettings` fields the environment sets: when a commerce order counts as verified for the ERP, how often
    ERP shipments are polled, and the ERP stock resync's schedule."""
    return _set(order_rule=_choice("PIPELINES_ERP_ORDER_RULE", ("confirmed_authorised", "confirmed_captured",
                                                                   "captured")),
                shipment_poll_s=_float("PIPELINES_ERP_SHIPMENT_POLL_S", 1),
                shipment_overlap_s=_float("PIPELINES_ERP_SHIPMENT_OVERLAP_S", 0),
                stock_quiet_s=_float("PIPELINES_ERP_STOCK_QUIET_S", 0))
