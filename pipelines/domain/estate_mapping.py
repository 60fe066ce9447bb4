"""Mapping a POS location and SKU onto the estate, with the exception records when either is unknown (pure).

Shared by the daily POS datasets (sale lines, stock movements): an unknown SKU or an unmapped location is
kept in the dataset (flagged) and raised for the team that fixes it, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.domain.exceptions import UNKNOWN_SKU, UNMAPPED_LOCATION, ExceptionRecord
from pipelines.estate import Estate


@dataclass(frozen=True)
class Mapped:
    location_id: str | None
    node_id: str  # the NewStore node id (payloads may name the store rather than the node)
    sku_known: bool
    problems: list[ExceptionRecord]


def map_to_estate(estate: Estate, node: str, sku: str, what: str, business_date: str,
                  payload: dict[str, Any] | None = None) -> Mapped:
    """`what` says what the row is in the messages ("sale", "(receipt)"...)."""
    loc = estate.location_of(node)
    known = sku in estate.by_sku
    problems = []
    if loc is None:
        problems.append(ExceptionRecord.of(
            UNMAPPED_LOCATION, node, "newstore", f"fulfillment node {node!r} is not in the estate",
            business_date=business_date, sku=sku))
    if not known:
        problems.append(ExceptionRecord.of(
            UNKNOWN_SKU, f"{node}:{sku}", "newstore",
            f"SKU {sku!r} {what} at {node} is unknown to the commerce catalog",
            business_date=business_date, location_id=loc.id if loc else None, sku=sku, payload=payload))
    return Mapped(loc.id if loc else None, loc.newstore_node_id if loc else node, known, problems)
