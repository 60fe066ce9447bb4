"""What the assets of every domain declare alike: their owning teams, their kinds, the range-run policy."""

from __future__ import annotations

import dagster as dg

FINANCE = ["team:finance"]
RETAIL_OPERATIONS = ["team:retail-operations"]
ECOMMERCE = ["team:ecommerce"]
INTEGRATION = ["team:integration"]

NEWSTORE_KINDS = {"newstore", "pandas", "sql"}  # built from NewStore's data
CENTRA_KINDS = {"centra", "pandas", "sql"}  # read from Centra

# A backfill of a date range runs once and writes every day (each day replaced in its own transaction).
SINGLE_RUN = dg.BackfillPolicy.single_run()
