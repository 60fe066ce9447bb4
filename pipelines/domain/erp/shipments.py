"""An ERP shipment as the commerce shipment it becomes (pure).

The posting record (`erp_order_postings.line_map`) maps each ERP line sequence to its commerce line and how many
ERP units one commerce unit is (a bundle's component quantity; 1 otherwise). A commerce line has shipped
floor(min over its ERP lines (shipped ERP units / units per commerce unit)) units: an ordinary line as many as
the ERP shipped, a bundle only as many complete bundles as all the ERP's shipments of the order together hold.
An ERP shipment ships, of each commerce line, what the order's shipments up to and including it complete minus
what those before it completed; so partial shipments each become their own commerce shipment of their units,
and a bundle ships with the shipment that completes it. Shipments are ordered by (posting date, number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipelines.domain.erp.model import ErpShipment


@dataclass(frozen=True)
class MappedLine:
    line_id: str  # the commerce order line
    per_unit: int  # ERP units per commerce unit


@dataclass(frozen=True)
class ShipmentMapping:
    lines: tuple[tuple[str, int], ...]  # (commerce line id, units) this shipment ships, sorted by line id
    unmapped: tuple[int, ...]  # sequences of this shipment's lines that map to no commerce line


def shipment_order(shipment: ErpShipment) -> tuple[str, int, str]:
    """The order in which an order's shipments count: posting date, then the number's digits, then the number."""
    digits = re.findall(r"\d+", shipment.number)
    return (shipment.posting_date, int(digits[-1]) if digits else 0, shipment.number)


def _completed(per_line: Mapping[str, Mapping[int, int]], shipped: Mapping[int, float]) -> dict[str, int]:
    out = {}
    for line_id, components in per_line.items():
        out[line_id] = min(int(shipped.get(seq, 0.0) // k) for seq, k in components.items())
    return out


def _shipped(shipments: Iterable[ErpShipment]) -> dict[int, float]:
    total: dict[int, float] = {}
    for s in shipments:
        for ln in s.lines:
            total[ln.sequence] = total.get(ln.sequence, 0.0) + ln.quantity
    return total


def map_shipment(shipment: ErpShipment, order_shipments: Iterable[ErpShipment],
                 line_map: Mapping[int, MappedLine | None]) -> ShipmentMapping:
    """What `shipment` ships of the commerce order, given all the ERP's shipments of that order known
    (`order_shipments`, with or without `shipment` itself) and the posting's line map (None: an ERP line of no
    commerce line, the shipping charge)."""
    others = {s.shipment_id: s for s in order_shipments if s.shipment_id != shipment.shipment_id}
    key = shipment_order(shipment)
    before = [s for s in others.values() if shipment_order(s) < key]
    per_line: dict[str, dict[int, int]] = {}
    for seq, mapped in line_map.items():
        if mapped is None:
            continue
        per_line.setdefault(mapped.line_id, {})[seq] = max(1, mapped.per_unit)
    touched = {mapped.line_id for ln in shipment.lines if (mapped := line_map.get(ln.sequence)) is not None}
    relevant = {lid: comps for lid, comps in per_line.items() if lid in touched}
    until = _completed(relevant, _shipped([*before, shipment]))
    prior = _completed(relevant, _shipped(before))
    lines = tuple(sorted((lid, until[lid] - prior[lid]) for lid in relevant if until[lid] - prior[lid] > 0))
    unmapped = tuple(sorted(ln.sequence for ln in shipment.lines if ln.sequence not in line_map and ln.quantity > 0))
    return ShipmentMapping(lines=lines, unmapped=unmapped)
