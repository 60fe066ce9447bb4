"""The ERP datasets' shaping (pipelines/defs/erp/datasets.py), known answers computed by hand: the shipped units' value,
whether the commerce platform shows an ERP shipment, the ERP's stock per commerce SKU, the day's orders."""

from __future__ import annotations

from pipelines.defs.erp.datasets import (
    has_marker,
    items_frame,
    orders_frame,
    shipment_value,
    shipments_frame,
    shown_in_commerce,
    stock_frame,
)
from pipelines.domain.erp.mapping import mapping_from_dict
from pipelines.domain.erp.model import (
    ACCOUNT,
    ITEM,
    ErpItem,
    ErpOrder,
    ErpOrderLine,
    ErpShipment,
    ErpShipmentLine,
    ErpStockLevel,
)
from pipelines.domain.flows.model import CommerceLine, CommerceOrder, CommerceShipment, ShipmentLine

DAY = "2026-12-01"
MAPPING = mapping_from_dict({
    "currencies": {"SEK": ""},
    "items": {"V1": {"item": "IT", "variant": "RED"}, "V2": {"item": "IT", "variant": "BLUE"},
              "S1X": {"item": "S1", "variant": "BIG"}},
    "bundles": {"BUN": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]},
}, bundle_skus=frozenset({"BUN", "BUN2"}))


def erp_line(seq: int, number: str, qty: float, incl: float, shipped: float = 0.0, kind: str = ITEM) -> ErpOrderLine:
    return ErpOrderLine(sequence=seq, line_type=kind, number=number, variant_code=None, quantity=qty,
                        unit_price=0.0, discount_amount=0.0, tax_code="STANDARD", amount_including_tax=incl,
                        tax_amount=0.0, shipped_quantity=shipped)


def erp_order(number: str, ref: str, lines: tuple[ErpOrderLine, ...], day: str = DAY) -> ErpOrder:
    return ErpOrder(order_id=f"id-{number}", number=number, external_ref=ref, currency="EUR", customer_number="WEB-DE",
                    order_date=day, status="Open", total_including_tax=sum(ln.amount_including_tax for ln in lines),
                    total_tax=1.5, discount_amount=0.0, fully_shipped=False, lines=lines)


def shipment(number: str, order_number: str, ref: str, lines: list[tuple[int, float]], day: str = DAY) -> ErpShipment:
    return ErpShipment(shipment_id=f"id-{number}", number=number, order_number=order_number, external_ref=ref,
                       posting_date=day, tracking_number=f"TRK-{number}", carrier="DHL", modified_at=None,
                       lines=tuple(ErpShipmentLine(seq, "X", None, q) for seq, q in lines))


def commerce(ref: str, lines: list[tuple[str, str, int]], shipments: list[tuple[bool, str | None, list[tuple[str, int]]]]
             ) -> CommerceOrder:
    return CommerceOrder(
        ref=ref, status="open", currency="EUR",
        lines=tuple(CommerceLine(lid, sku, qty, 0, 0, 10.0, 25.0) for lid, sku, qty in lines),
        shipments=tuple(CommerceShipment(f"s{i}", done, tuple(ShipmentLine(f"sl{i}{j}", lid, q)
                                                              for j, (lid, q) in enumerate(sl)), message=msg)
                        for i, (done, msg, sl) in enumerate(shipments)))


def test_shipment_value_is_the_shipped_units_share_of_each_order_line() -> None:
    """2 x 299.00 with 50.00 discount is 548.00 incl. tax: one unit shipped is worth 274.00, not the list 299.00;
    2 of 3 units of a 300.00 line are 200.00; the shipping account line is not shipped. Kills: the unit price before
    discount, the whole line's amount, a line matched by position instead of sequence."""
    order = erp_order("SO1", "1001", (erp_line(10000, "A", 2, 548.0), erp_line(20000, "B", 3, 300.0),
                                      erp_line(30000, "6310", 1, 49.0, kind=ACCOUNT)))
    assert shipment_value(shipment("SH1", "SO1", "1001", [(20000, 2), (10000, 1)]), order) == 474.0
    assert shipment_value(shipment("SH1", "SO1", "1001", [(10000, 1)]), None) == 0.0


def test_marker_is_matched_as_a_whole_token() -> None:
    """Kills: a substring match (erp:S-SHPT1001 is not erp:S-SHPT10010)."""
    assert has_marker("erp:S-SHPT1001", "S-SHPT1001")
    assert has_marker("shipped; erp:S-SHPT1001", "S-SHPT1001")
    assert not has_marker("erp:S-SHPT10010", "S-SHPT1001")
    assert not has_marker(None, "S-SHPT1001")


def test_shown_in_commerce_by_marker_or_by_units_covering_the_erp() -> None:
    """A completed shipment carrying the marker shows it; an uncompleted one does not; without a marker, completed
    commerce units (a bundle counting 1 x A + 2 x B = 3 ERP units) must cover the ERP's shipped item units (the
    shipping line does not count). Kills: counting uncompleted shipments, counting a bundle unit as one ERP unit,
    counting the shipping account line, and no commerce order read as shown."""
    sh = shipment("SH1", "SO1", "1001", [(10000, 1)])
    erp3 = erp_order("SO1", "1001", (erp_line(10000, "A", 1, 10.0, shipped=1), erp_line(20000, "B", 2, 20.0, shipped=2),
                                     erp_line(30000, "6310", 1, 49.0, shipped=1, kind=ACCOUNT)))
    erp4 = erp_order("SO1", "1001", (erp_line(10000, "A", 2, 10.0, shipped=2), erp_line(20000, "B", 2, 20.0, shipped=2)))
    marked = commerce("1001", [("L1", "BUN", 1)], [(True, "erp:SH1", [("L1", 1)])])
    open_marked = commerce("1001", [("L1", "BUN", 1)], [(False, "erp:SH1", [("L1", 1)])])
    bundle_done = commerce("1001", [("L1", "BUN", 1)], [(True, None, [("L1", 1)])])
    assert shown_in_commerce(sh, None, marked, MAPPING)
    assert not shown_in_commerce(sh, None, open_marked, MAPPING)
    assert shown_in_commerce(sh, erp3, bundle_done, MAPPING)  # 3 ERP units shipped, 1 bundle = 3 units
    assert not shown_in_commerce(sh, erp4, bundle_done, MAPPING)  # 4 ERP units shipped: one not shown
    assert not shown_in_commerce(sh, erp3, None, MAPPING)
    plain = commerce("1001", [("L1", "A", 1), ("L2", "B", 2)], [(True, None, [("L1", 1), ("L2", 1)])])
    assert not shown_in_commerce(sh, erp3, plain, MAPPING)  # 2 of 3 units shown


def test_shipments_frame_reads_each_order_once_and_keeps_the_day() -> None:
    """Kills: shipments of another posting day landed, a read per shipment instead of per order, the order of
    another number chosen among duplicates carrying the same reference, units summed wrong."""
    orders = {"1001": (erp_order("SO9", "1001", (erp_line(10000, "A", 4, 40.0, shipped=4),)),
                       erp_order("SO1", "1001", (erp_line(10000, "A", 4, 80.0, shipped=4),)))}
    reads: list[str] = []

    def orders_of(ref: str) -> tuple[ErpOrder, ...]:
        reads.append(ref)
        return orders.get(ref, ())

    ships = [shipment("SH1", "SO1", "1001", [(10000, 1)]), shipment("SH2", "SO1", "1001", [(10000, 3)]),
             shipment("SH0", "SO1", "1001", [(10000, 1)], day="2026-11-30"),
             shipment("SH3", "SO7", "", [(10000, 2)])]
    shown = commerce("1001", [("L1", "A", 4)], [(True, "erp:SH1", [("L1", 1)])])
    df = shipments_frame(ships, DAY, orders_of, lambda ref: shown if ref == "1001" else None, MAPPING,
                         "2026-12-02T00:30:00.000000Z")
    got = {r.shipment_number: (r.units, r.value, bool(r.in_commerce), r.external_ref, r.currency)
           for r in df.itertuples()}
    assert got == {"SH1": (1, 20.0, True, "1001", "EUR"), "SH2": (3, 60.0, False, "1001", "EUR"),
                   "SH3": (2, 0.0, False, None, None)}
    assert reads == ["1001"]
    assert set(df["carrier"]) == {"DHL"} and df.set_index("shipment_number").loc["SH2", "tracking_number"] == "TRK-SH2"


def test_stock_frame_maps_items_back_to_skus() -> None:
    """SKU A reads its own item; S1X maps to item S1 variant BIG and the ERP keeps stock per item only: it reads the
    item's level (no other SKU maps to S1); V1 and V2 share item IT: its level cannot be split (left out); bundles are
    left out (their stock is their components'); B is not in the ERP. Kills: a bundle's stock landed, a shared
    item's stock counted for each SKU (double counting), a missing item read as 0."""
    levels = [ErpStockLevel("A", None, 5), ErpStockLevel("IT", None, 9), ErpStockLevel("S1", None, 4),
              ErpStockLevel("BUN", None, 7)]
    df, left = stock_frame(levels, ["A", "B", "V1", "V2", "BUN", "BUN2", "S1X"], MAPPING, "2026-12-01T23:00:00Z")
    assert {r.sku: (r.item_number, r.variant_code, r.on_hand) for r in df.itertuples()} == \
        {"A": ("A", None, 5), "S1X": ("S1", "BIG", 4)}
    assert left == {"bundles": 2, "not_in_erp": 1, "ambiguous": 2}
    exact, _ = stock_frame([ErpStockLevel("IT", "RED", 3), ErpStockLevel("IT", None, 9)], ["V1"], MAPPING, "t")
    assert exact["on_hand"].tolist() == [3]  # a level per variant wins over the item's


def test_orders_and_items_frames() -> None:
    """Kills: an order of another order date landed, line_count not the lines', items duplicated."""
    o1 = erp_order("SO1", "1001", (erp_line(10000, "A", 1, 10.0), erp_line(20000, "6310", 1, 4.99, kind=ACCOUNT)))
    o2 = erp_order("SO2", "1002", (erp_line(10000, "A", 1, 10.0),), day="2026-12-02")
    df = orders_frame([o1, o2], DAY)
    assert df[["order_number", "external_ref", "currency", "total_including_tax", "line_count"]].values.tolist() == \
        [["SO1", "1001", "EUR", 14.99, 2]]
    items = items_frame([ErpItem("A", None), ErpItem("IT", "RED"), ErpItem("A", None), ErpItem("IT", None)])
    assert items.values.tolist() == [["A", None], ["IT", None], ["IT", "RED"]]


def test_shipment_schema_rejects_what_the_reconciliation_cannot_use() -> None:
    """The stored partition's check: SQLite's 0/1 in_commerce passes; a shipment landed twice or a negative value
    fails. Kills: a check that accepts anything (the ERROR check would never block a broken day)."""
    import dagster as dg
    import pandas as pd

    from pipelines.dagster_lib.checks import validate_frame
    from pipelines.defs.erp.datasets import ErpShipments

    row = {"shipment_id": "s1", "shipment_number": "SH1", "external_ref": "1001", "units": 2, "value": 10.0,
           "in_commerce": 1}
    ok = validate_frame(pd.DataFrame([row, {**row, "shipment_id": "s2", "in_commerce": 0}]), ErpShipments,
                        dg.AssetCheckSeverity.ERROR)
    twice = validate_frame(pd.DataFrame([row, row]), ErpShipments, dg.AssetCheckSeverity.ERROR)
    negative = validate_frame(pd.DataFrame([{**row, "value": -1.0}]), ErpShipments, dg.AssetCheckSeverity.ERROR)
    assert ok.passed and not twice.passed and not negative.passed
