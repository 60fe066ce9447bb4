"""The order flows' pure decisions at their boundaries, with known answers worked by hand (not by the code):
which shipment lines a store return takes back, when a refund differs, which units a handover ships."""

from __future__ import annotations

import pytest

from pipelines.domain.flows.click_collect import PickupStore, handover_plan, injection_request, pickup_store
from pipelines.domain.flows.exceptions import Problem
from pipelines.domain.flows.model import (
    CommerceLine,
    CommerceOrder,
    CommerceReturn,
    CommerceReturnLine,
    CommerceShipment,
    ShipmentLine,
    StoreOrder,
    StoreOrderItem,
    StoreRefund,
    StoreReturn,
    StoreReturnItem,
)
from pipelines.domain.flows.returns import plan_return, refund_problems

# Order 7: line 1 = 3 x A at 100.00 incl. 25 % VAT, shipped 2 + 1 in shipments 10 and 11; line 2 = 1 x B at 50.00, 12 %.
ORDER = CommerceOrder(
    ref="7", status="shipped", currency="SEK",
    lines=(CommerceLine("1", "A", 3, 3, 0, 100.0, 25.0), CommerceLine("2", "B", 1, 1, 0, 50.0, 12.0)),
    shipments=(CommerceShipment("10", True, (ShipmentLine("101", "1", 2), ShipmentLine("102", "2", 1))),
               CommerceShipment("11", True, (ShipmentLine("111", "1", 1),))))


def _ret(*items: tuple[str, int, float, float | None], rid: str = "R1") -> StoreReturn:
    return StoreReturn(rid, None, "7", "SE01", "SEK", None, sum(i[2] for i in items),
                       tuple(StoreReturnItem(f"i{n}", s, q, a, t, "sellable") for n, (s, q, a, t) in enumerate(items)))


def test_a_return_spanning_two_shipments_is_two_returns_with_their_own_lines() -> None:
    plan = plan_return(_ret(("A", 3, 300.0, 60.0)), ORDER)
    assert not isinstance(plan, Problem)
    assert [(r.shipment_id, r.lines, r.external_id) for r in plan.to_create] == [
        ("10", (("101", 2),), "R1/1"), ("11", (("111", 1),), "R1/2")]
    assert (plan.expected_refund, plan.expected_tax) == (300.0, 60.0)  # 300 x 25/125


def test_units_returned_by_another_return_are_not_returnable_again() -> None:
    earlier = CommerceReturn("900", "R0", True, 200.0, 40.0, (CommerceReturnLine("101", "1", 2),))
    order = CommerceOrder(**{**ORDER.__dict__, "returns": (earlier,)})
    ok = plan_return(_ret(("A", 1, 100.0, 20.0)), order)
    assert not isinstance(ok, Problem) and ok.to_create[0].lines == (("111", 1),)
    too_many = plan_return(_ret(("A", 2, 200.0, 40.0)), order)
    assert isinstance(too_many, Problem) and too_many.evidence["unmatched"] == {"A": {"requested": 2, "returnable": 1}}


def test_a_return_already_written_is_found_by_its_external_id_and_not_written_again() -> None:
    ours = CommerceReturn("901", "R1", False, 50.0, 5.36, (CommerceReturnLine("102", "2", 1),))
    order = CommerceOrder(**{**ORDER.__dict__, "returns": (ours,)})
    plan = plan_return(_ret(("B", 1, 50.0, 5.36)), order)
    assert not isinstance(plan, Problem) and plan.to_create == () and plan.ours == (ours,)


def test_a_sku_not_on_the_order_holds_the_whole_return() -> None:
    assert isinstance(plan_return(_ret(("A", 1, 100.0, 20.0), ("Z", 1, 10.0, 2.0)), ORDER), Problem)


@pytest.mark.parametrize(("store_amount", "flagged"), [(100.01, False), (100.02, True), (99.99, False), (99.98, True)])
def test_refund_amount_tolerance_is_one_cent_per_item(store_amount: float, flagged: bool) -> None:
    online = (CommerceReturn("900", "R1", True, 100.0, 20.0),)
    problems = refund_problems(_ret(("A", 1, store_amount, None)), online, StoreRefund(), "7")
    assert [p.kind.name for p in problems] == (["refund_amount_mismatch"] if flagged else [])


def test_a_wrong_amount_is_not_also_a_wrong_tax_but_a_wrong_rate_is() -> None:
    online = (CommerceReturn("900", "R1", True, 100.0, 20.0),)
    # 90.00 refunded with 25 % VAT included: tax 18.00, what the order's rate gives on 90.00.
    short = refund_problems(_ret(("A", 1, 90.0, 18.0)), online, StoreRefund(requested=90.0, refunded=90.0), "7")
    assert [p.kind.name for p in short] == ["refund_amount_mismatch"]
    # 100.00 at 30 %: tax 23.08 instead of 20.00.
    wrong_rate = refund_problems(_ret(("A", 1, 100.0, 23.08)), online, StoreRefund(requested=100.0), "7")
    assert [p.kind.name for p in wrong_rate] == ["refund_tax_mismatch"]


def test_a_payout_that_differs_from_the_request_is_reported() -> None:
    online = (CommerceReturn("900", "R1", True, 100.0, 20.0),)
    problems = refund_problems(_ret(("A", 1, 100.0, 20.0)), online, StoreRefund(requested=100.0, refunded=80.0), "7")
    assert [p.kind.name for p in problems] == ["refund_amount_mismatch"] and "refunded 80.00" in problems[0].message


PICKUP = CommerceOrder(ref="8", status="open", currency="SEK", lines=(CommerceLine("5", "A", 2, 0, 0, 100.0, 25.0),),
                       allocated_warehouses=("3",), shipping_option="Click & Collect")


def test_injection_is_one_entry_per_unit_named_after_its_line() -> None:
    req = injection_request(PICKUP, PickupStore("SE01", "store-1"), service_level="IN_STORE_PICKUP", placed_at="t")
    assert [ln.external_item_id for ln in req.lines] == ["5:1", "5:2"] and req.paid_amount == 200.0
    assert req.lines[0].tax_rate == 0.25


def test_the_pickup_store_is_the_one_holding_the_allocation_and_only_one() -> None:
    stores = {"3": PickupStore("SE01", "s1"), "4": PickupStore("SE02", "s2")}
    assert pickup_store(PICKUP, stores) == PickupStore("SE01", "s1")
    two = CommerceOrder(**{**PICKUP.__dict__, "allocated_warehouses": ("3", "4")})
    assert isinstance(pickup_store(two, stores), Problem)
    assert isinstance(pickup_store(CommerceOrder(**{**PICKUP.__dict__, "allocated_warehouses": ("9",)}), stores),
                      Problem)


def test_a_handover_ships_only_the_units_handed_over_and_not_yet_shipped() -> None:
    store = StoreOrder("ns-1", "8", "open", (StoreOrderItem("a", "5:1", "A", "shipped"),
                                            StoreOrderItem("b", "5:2", "A", "dispatched")))
    plan = handover_plan(PICKUP, store)
    assert not isinstance(plan, Problem) and plan.ship is not None and plan.ship.lines == (("5", 1),)
    assert plan.ship.notify_customer is False
    shipped = CommerceOrder(**{**PICKUP.__dict__, "shipments": (
        CommerceShipment("20", True, (ShipmentLine("201", "5", 1),), "pickup handover ns-1 (1 unit(s) collected)"),)})
    again = handover_plan(shipped, store)
    assert not isinstance(again, Problem) and again.ship is None and again.complete == ()


def test_an_unfinished_shipment_of_ours_is_completed_not_recreated() -> None:
    store = StoreOrder("ns-1", "8", "open", (StoreOrderItem("a", "5:1", "A", "shipped"),))
    half = CommerceOrder(**{**PICKUP.__dict__, "shipments": (
        CommerceShipment("20", False, (ShipmentLine("201", "5", 1),), "pickup handover ns-1 (1 unit(s) collected)"),)})
    plan = handover_plan(half, store)
    assert not isinstance(plan, Problem) and plan.ship is None and [s.shipment_id for s in plan.complete] == ["20"]


def test_a_handed_over_item_that_is_not_an_order_line_is_a_problem() -> None:
    store = StoreOrder("ns-1", "8", "open", (StoreOrderItem("a", "9:1", "A", "shipped"),))
    assert isinstance(handover_plan(PICKUP, store), Problem)
