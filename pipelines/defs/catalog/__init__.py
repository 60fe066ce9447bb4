"""The catalog master flow: Centra's catalog to NewStore's catalog through NewStore's Import API."""

from pipelines.defs.catalog.assets import (
    CatalogExportConfig,
    catalog_export_job,
    catalog_export_schedule,
    newstore_catalog_export,
)

assets = [newstore_catalog_export]
jobs = [catalog_export_job]
schedules = [catalog_export_schedule]

__all__ = ["CatalogExportConfig", "assets", "catalog_export_job", "catalog_export_schedule", "jobs",
           "newstore_catalog_export", "schedules"]
