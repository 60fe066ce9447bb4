"""Daily reconciliation for finance. `reconciliation_definitions()` is merged into the entry point."""

import dagster as dg


def reconciliation_definitions() -> dg.Definitions:
    return dg.Definitions()
