"""The stock sync's marker on a commercetools inventory entry: one format, written by the sync
(`pipelines.sync.commercetools_io`) and read back by the reconciliation's ledger (`reads.CommercetoolsReads`).

The custom field `MARKER_FIELD` (of the custom Type `MARKER_TYPE`) holds `<entry version the write makes>:<batch
description>`, so the marker names both the batch and the `InventoryEntryQuantitySet` message (`resourceVersion`)
of the same write.
"""

from __future__ import annotations

MARKER_TYPE = "pipelines-stock-sync"
MARKER_FIELD = "lastSyncBatch"


def marker_value(version: int, description: str) -> str:
    """The marker a write that makes entry version `version` carries."""
    return f"{version}:{description}"


def parse_marker(value: object) -> tuple[int | None, str] | None:
    """(version, batch description) of a marker; version None for a bare description; None for no marker."""
    if not isinstance(value, str) or not value:
        return None
    version, sep, description = value.partition(":")
    return (int(version), description) if sep and version.isdigit() else (None, value)
