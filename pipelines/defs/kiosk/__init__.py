"""Cloudshelf kiosks: the kiosk orders of each day (raw.py), the catalogue, the per-store availability and the daily SKU audit (assets.py), their jobs,
schedules and the availability refresh sensor (sensors.py), and the always-on stock sync's hook (sync_hook.py).
`kiosk_definitions()` is merged into the entry point."""

from __future__ import annotations

import dagster as dg

from pipelines.defs.kiosk.assets import (
    kiosk_catalog,
    kiosk_sku_audit,
    kiosk_sku_audit_clean,
    kiosk_stock_levels,
)
from pipelines.defs.kiosk.raw import cloudshelf_orders, cloudshelf_orders_checks
from pipelines.defs.kiosk.sensors import (
    kiosk_availability_job,
    kiosk_availability_refresh,
    kiosk_catalog_daily_full,
    kiosk_catalog_hourly,
    kiosk_catalog_job,
    kiosk_sku_audit_daily,
    kiosk_sku_audit_job,
)

assets = [kiosk_catalog, kiosk_stock_levels, kiosk_sku_audit, cloudshelf_orders]


def kiosk_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=assets,
        asset_checks=[kiosk_sku_audit_clean, *cloudshelf_orders_checks],
        jobs=[kiosk_catalog_job, kiosk_availability_job, kiosk_sku_audit_job],
        schedules=[kiosk_catalog_hourly, kiosk_catalog_daily_full, kiosk_sku_audit_daily],
        sensors=[kiosk_availability_refresh],
    )


__all__ = ["assets", "kiosk_availability_refresh", "kiosk_catalog", "kiosk_definitions", "kiosk_sku_audit",
           "kiosk_sku_audit_clean", "kiosk_stock_levels"]
