"""What the intake service lands (table inbox_events): written continuously by `pipelines-intake`, not by
Dagster, so declared as external assets for lineage."""

from __future__ import annotations

import dagster as dg

from pipelines.dagster_lib.common import INTEGRATION

newstore_event_inbox = dg.AssetSpec(
    "newstore_event_inbox",
    group_name="intake",
    description="NewStore's event stream as landed by the intake service (table inbox_events, source "
                "'newstore'): every delivery verified and stored once. Written continuously, not by Dagster.",
    owners=INTEGRATION,
    kinds={"newstore", "sql"},
)

centra_webhook_inbox = dg.AssetSpec(
    "centra_webhook_inbox",
    group_name="intake",
    description="Centra's webhooks as landed by the intake service (table inbox_events, source 'centra'): "
                "every signed delivery verified and stored once, one row per event. Written continuously, not "
                "by Dagster; the order flows read them (each event names an order: its current state is read by id).",
    owners=INTEGRATION,
    kinds={"centra", "sql"},
)

intake_assets = [newstore_event_inbox, centra_webhook_inbox]
