"""Typed exception records and the shared exception types (owner, severity, playbook)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExceptionType:
    name: str
    severity: str  # "ERROR" | "WARN" | "INFO"
    owner_team: str  # "retail_operations" | "ecommerce" | "finance" | "integration"
    playbook: str


UNKNOWN_SKU = ExceptionType(
    "unknown_sku", "ERROR", "ecommerce",
    "The POS reported a SKU the commerce catalog does not know. Create or map the size in Centra "
    "(or fix the POS catalog), then re-materialise the day; stock for it is not synced until then.",
)
UNMAPPED_LOCATION = ExceptionType(
    "unmapped_location", "ERROR", "integration",
    "A POS fulfillment node has no location in the estate file. Add it (with its Centra warehouse) "
    "to the estate file and re-materialise the affected days.",
)
UNDECODABLE_EVENT = ExceptionType(
    "undecodable_event", "ERROR", "integration",
    "An inbox event could not be decoded: a field is missing or malformed, or a value is out of bounds "
    "(quantities must fit 32 bits, logical timestamps 63 bits, SKUs 128 characters, location ids 64). "
    "Only this event was held back; everything else flowed on. Inspect the payload in the exception "
    "record, fix the sender (or the decoder), then replay the event and re-materialise the day.",
)
FULFILMENT_ORDER_UNKNOWN = ExceptionType(
    "fulfilment_order_unknown", "WARN", "integration",
    "A fulfilment request completed for an order whose order event has not landed, so it is not known "
    "whether the shipped units left a store's stock outside the commerce platform. If the order is a "
    "NewStore store order shipped from a store, the units show as stock drift at the next reconciliation: "
    "check NewStore's order, and replay the completion once its order event has landed.",
)
EVENT_CLOCK_SKEW = ExceptionType(
    "event_clock_skew", "WARN", "retail_operations",
    "A stock event was stamped later than it was received, beyond the clock-skew tolerance (a device "
    "clock running ahead). It was applied at its receive time instead, so it cannot supersede sales made "
    "after it. Check the clock of the device at that location.",
)

@dataclass(frozen=True)
class ExceptionRecord:
    """One problem for a person to act on. The key makes re-detection idempotent."""

    key: str
    type: str
    severity: str
    owner_team: str
    source: str
    message: str
    playbook: str
    business_date: str | None = None
    location_id: str | None = None
    sku: str | None = None
    payload: dict[str, Any] | None = None

    @classmethod
    def of(cls, kind: ExceptionType, key: str, source: str, message: str, **kw: Any) -> ExceptionRecord:
        return cls(key=f"{kind.name}:{key}", type=kind.name, severity=kind.severity, owner_team=kind.owner_team,
                   source=source, message=message, playbook=kind.playbook, **kw)
