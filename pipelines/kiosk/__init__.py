"""Cloudshelf kiosks, the I/O side: publishing the catalogue, the locations and per-location availability
(`publish.KioskPublisher`). Pure logic: `pipelines.domain.kiosk`; state: `pipelines.store.kiosk`; Dagster:
`pipelines.defs.kiosk`."""

from pipelines.kiosk.publish import AvailabilityReport, CatalogReport, KioskConfig, KioskPublisher

__all__ = ["AvailabilityReport", "CatalogReport", "KioskConfig", "KioskPublisher"]
