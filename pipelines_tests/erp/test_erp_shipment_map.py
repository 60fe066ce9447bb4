"""Pure known-answer tests of how ERP shipments map back to commerce lines (`pipelines.domain.erp.shipments`):
partial shipments, bundles shipped whole across shipments, the shipping line, unmapped lines."""

from __future__ import annotations

from pipelines.domain.erp.model import ErpShipment, ErpShipmentLine
from pipelines.domain.erp.shipments import MappedLine, map_shipment

# L1: an ordinary line (2 units); L2: a bundle of component X (1 per bundle, seq 20000) and Y (2 per bundle, seq
# 30000), 2 bundles; 40000: the shipping line.
LINE_MAP = {10000: MappedLine("L1", 1), 20000: MappedLine("L2", 1), 30000: MappedLine("L2", 2), 40000: None}


def _shipment(sid: str, number: str, lines: dict[int, float], date: str = "2026-12-01") -> ErpShipment:
    return ErpShipment(shipment_id=sid, number=number, order_number="S-ORD1001", external_ref="1042",
                       posting_date=date, tracking_number=f"T-{number}", carrier="DHL", modified_at=None,
                       lines=tuple(ErpShipmentLine(seq, "I", None, q) for seq, q in lines.items()))


def test_partial_shipments_and_a_bundle_completed_by_the_second():
    """First: L1 x1, X x1, Y x1 -> L1 1 (the bundle lacks a Y). Second: L1 x1, X x1, Y x3 -> totals X 2, Y 4 = 2
    complete bundles, none before -> L1 1, L2 2. Third (nothing more): the shipping line only -> nothing.
    Kills: a bundle shipped from a component, components counted per shipment instead of across the order's
    shipments, the first shipment's units shipped twice, the shipping line taken as unmapped."""
    first = _shipment("a", "S-SHPT1001", {10000: 1, 20000: 1, 30000: 1})
    second = _shipment("b", "S-SHPT1002", {10000: 1, 20000: 1, 30000: 3})
    third = _shipment("c", "S-SHPT1003", {40000: 1})
    known = [first, second, third]
    assert map_shipment(first, known, LINE_MAP).lines == (("L1", 1),)
    assert map_shipment(second, known, LINE_MAP).lines == (("L1", 1), ("L2", 2))
    got = map_shipment(third, known, LINE_MAP)
    assert got.lines == () and got.unmapped == ()
    # the order of shipments is (posting date, number), not the order they are listed in
    assert map_shipment(second, [second, first], LINE_MAP).lines == (("L1", 1), ("L2", 2))
    # S-SHPT999 < S-SHPT1000 by number, not by text
    early = _shipment("d", "S-SHPT999", {20000: 2, 30000: 4})
    late = _shipment("e", "S-SHPT1000", {10000: 2})
    assert map_shipment(early, [late, early], LINE_MAP).lines == (("L2", 2),)


def test_a_line_of_no_commerce_line_is_unmapped():
    """Kills: an ERP line added by hand in the ERP silently ignored (its units would never reach the customer's
    order)."""
    got = map_shipment(_shipment("a", "S-SHPT1001", {10000: 1, 50000: 2}), [], LINE_MAP)
    assert got.unmapped == (50000,) and got.lines == (("L1", 1),)
