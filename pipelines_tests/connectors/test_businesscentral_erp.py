"""BusinessCentralErp (the ERP port) against the Business Central simulator over loopback HTTP.

Oracles: the simulator's stored state (ground truth) and hand-computed amounts, never the adapter itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pipelines.connectors.businesscentral import BusinessCentralClient, BusinessCentralErp
from pipelines.connectors.businesscentral.erp import JournalBusy
from pipelines.connectors.errors import TransientError
from pipelines.domain.erp.model import ACCOUNT, ITEM
from pipelines.domain.erp.ports import (
    ErpAddress,
    ErpOrderLineRequest,
    ErpOrderRequest,
    ErpRejected,
    JournalLineRequest,
    JournalRequest,
)
from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines_tests.businesscentral_support import ENV, TENANT, DateClock, FakeClock


@pytest.fixture()
def erp():
    wall = DateClock()
    state = BusinessCentralState(clock=wall)
    company = state.add_company("CRONUS")
    shirt = state.add_item(company.id, "SHIRT", "Shirt", unit_price=299.0)
    state.add_item_variant(company.id, shirt["id"], "M", "Medium")
    state.add_item(company.id, "CAP", "Cap", unit_price=99.0)
    for number in ("1100", "3100", "6100", "6200", "2610", "1910"):
        state.add_account(company.id, number, f"Account {number}")
    state.add_customer(company.id, {"displayName": "Web SE", "number": "WEB-SE", "currencyCode": ""})
    clock = FakeClock()
    with BusinessCentralSimulator(state, tenant=TENANT, environment=ENV, clock=clock, retry_after_s=3) as sim:
        client = BusinessCentralClient(sim.url, TENANT, ENV, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
                                       company_id=company.id, sleep=clock.sleep)
        with client:
            yield sim, state, company, BusinessCentralErp(client, stale_line_s=600, clock=wall), clock, wall


def _request(ref: str, *lines: ErpOrderLineRequest) -> ErpOrderRequest:
    return ErpOrderRequest(
        external_ref=ref, customer_number="WEB-SE", currency="", order_date="2026-12-01",
        ship_to=ErpAddress(name="Anna A", address1="Storgatan 1", address2=None, city="Lund", zip_code="22100",
                           state=None, country="SE"),
        lines=lines or (_shirt(2),))


def _shirt(qty: int, discount: float = 50.0) -> ErpOrderLineRequest:
    return ErpOrderLineRequest(line_type=ITEM, number="SHIRT", variant_code="M", quantity=qty, unit_price=299.0,
                               discount_amount=discount, tax_code="STANDARD", description="Shirt M")


def _orders(state, company) -> list[dict]:
    return list(state.company(company.id).sets["salesOrders"].values())


def test_create_order_prices_include_tax_known_answer(erp):
    """Kills: prices sent as tax-excluded, tax computed on top of a gross price, variant or ship-to dropped,
    the shipping account line lost, discounts not carried."""
    _sim, state, company, port, _clock, _wall = erp
    shipping = ErpOrderLineRequest(line_type=ACCOUNT, number="3100", variant_code=None, quantity=1,
                                   unit_price=49.0, discount_amount=0.0, tax_code="ZERO", description="Shipping")
    order = port.create_order(_request("C-1001", _shirt(2), shipping))
    # 2 x 299.00 - 50.00 = 548.00 incl. 25 % -> excl 438.40, tax 109.60; shipping 49.00 at 0 %
    truth = state.order_lines(company.id, order.order_id)
    assert [(ln["amountIncludingTax"], ln["amountExcludingTax"], ln["totalTaxAmount"]) for ln in truth] == [
        (548.0, 438.4, 109.6), (49.0, 49.0, 0.0)]
    variant = next(v for v in state.company(company.id).sets["itemVariants"].values() if v["code"] == "M")
    assert truth[0]["itemVariantId"] == variant["id"] and truth[1]["lineType"] == "Account"
    stored = state.get(company.id, "salesOrders", order.order_id)
    assert stored["pricesIncludeTax"] is True and stored["shipToCity"] == "Lund"
    assert stored["externalDocumentNumber"] == "C-1001" and stored["customerNumber"] == "WEB-SE"
    assert (order.total_including_tax, order.total_tax, order.discount_amount) == (597.0, 109.6, 50.0)
    assert [(ln.variant_code, ln.amount_including_tax, ln.tax_amount) for ln in order.lines] == [
        ("M", 548.0, 109.6), (None, 49.0, 0.0)]
    assert port.orders_by_external_ref("C-1001") == (order,)
    assert [o.external_ref for o in port.orders_between("2026-12-01", "2026-12-01")] == ["C-1001"]
    assert port.customer_currency("WEB-SE") == "" and port.customer_currency("NOPE") is None


def test_deep_insert_is_atomic_and_rejections_carry_evidence(erp):
    """Kills: a header stored although a line failed (half orders), a 400 retried or swallowed, an unknown
    variant posted without it."""
    _sim, state, company, port, _clock, _wall = erp
    bad = ErpOrderLineRequest(line_type=ITEM, number="NO-SUCH", variant_code=None, quantity=1, unit_price=1.0,
                              discount_amount=0.0, tax_code="STANDARD", description="x")
    with pytest.raises(ErpRejected) as exc:
        port.create_order(_request("C-2001", _shirt(1), bad))
    assert exc.value.evidence["status"] == 400 and "Item does not exist" in exc.value.evidence["message"]
    assert _orders(state, company) == [] and state.company(company.id).sets["salesOrderLines"] == {}
    bad_variant = ErpOrderLineRequest(line_type=ITEM, number="SHIRT", variant_code="XXL", quantity=1,
                                      unit_price=1.0, discount_amount=0.0, tax_code="STANDARD", description="x")
    with pytest.raises(ErpRejected):
        port.create_order(_request("C-2002", bad_variant))
    assert _orders(state, company) == []


def test_lost_answer_on_create_leaves_one_order(erp):
    """Kills: a create_order that re-POSTs after the answer to a committed POST was lost (duplicate order)."""
    sim, state, company, port, _clock, _wall = erp
    sim.settings.lose_responses, sim.settings.lose_path_contains = 1, "salesOrders"
    order = port.create_order(_request("C-3001"))
    assert sim.settings.lost == 1
    assert [o["externalDocumentNumber"] for o in _orders(state, company)] == ["C-3001"]
    assert order.order_id == _orders(state, company)[0]["id"] and len(order.lines) == 1


def test_429_storm_survived_without_duplicates(erp):
    """Kills: giving up under a 429 storm, ignoring Retry-After, duplicating the retried POST."""
    sim, state, company, port, clock, _wall = erp
    sim.settings.force_429 = 4
    port.create_order(_request("C-4001"))
    assert sim.settings.throttled == 4 and len(clock.sleeps) == 4 and min(clock.sleeps) >= 3.0
    assert [o["externalDocumentNumber"] for o in _orders(state, company)] == ["C-4001"]


def _journal(doc: str = "POS-20261201-S1") -> JournalRequest:
    return JournalRequest(document_number=doc, posting_date="2026-12-01", description="Store 1 sales",
                          balancing_account="1910", lines=(
                              JournalLineRequest("6100", -800.0, "", "revenue"),
                              JournalLineRequest("6200", 50.0, "", "discounts"),
                              JournalLineRequest("2610", -187.5, "", "VAT")))


def _entries(state, company, doc: str) -> list[dict]:
    return [e for e in state.company(company.id).sets["generalLedgerEntries"].values() if e["documentNumber"] == doc]


def test_journal_posted_once_across_a_lost_answer_and_a_crash(erp):
    """Kills: a journal posted twice when the post action's answer is lost, stale lines of a crashed attempt
    posted with the retry (double entries), entries that do not balance or sit on the wrong side."""
    sim, state, company, port, _clock, _wall = erp
    sim.settings.lose_responses, sim.settings.lose_path_contains = 1, "journalLines"
    with pytest.raises(TransientError):  # crash after the first line was added
        port.post_journal(_journal())
    assert _entries(state, company, "POS-20261201-S1") == []
    sim.settings.lose_responses, sim.settings.lose_path_contains = 1, "Microsoft.NAV.post"
    assert port.post_journal(_journal()) is True
    assert sim.settings.lost == 2
    assert port.post_journal(_journal()) is False
    entries = _entries(state, company, "POS-20261201-S1")
    assert len(entries) == 6
    by_account: dict[str, float] = {}
    for e in entries:
        by_account[e["accountNumber"]] = round(by_account.get(e["accountNumber"], 0.0) + e["debitAmount"]
                                               - e["creditAmount"], 2)
    assert by_account == {"6100": -800.0, "6200": 50.0, "2610": -187.5, "1910": 937.5}
    assert round(sum(e["debitAmount"] for e in entries), 2) == round(sum(e["creditAmount"] for e in entries), 2)
    assert state.company(company.id).sets["journalLines"] == {}
    got = port.ledger_entries("2026-12-01", "2026-12-01", document_prefix="POS-")
    assert sorted((e.account_number, e.debit, e.credit) for e in got) == sorted(
        (e["accountNumber"], e["debitAmount"], e["creditAmount"]) for e in entries)
    assert port.ledger_entries("2026-12-02", "2026-12-31") == ()


def test_journal_with_unknown_account_rejected_and_journal_left_clean(erp):
    """Kills: a refused journal reported as posted, its lines left behind to be posted with the next document."""
    _sim, state, company, port, _clock, _wall = erp
    bad = JournalRequest(document_number="POS-BAD", posting_date="2026-12-01", description="x",
                         balancing_account="1910", lines=(JournalLineRequest("9999", 10.0, "", "nope"),
                                                          JournalLineRequest("6100", -10.0, "", "ok")))
    with pytest.raises(ErpRejected):
        port.post_journal(bad)
    assert state.company(company.id).sets["generalLedgerEntries"] == {}
    assert state.company(company.id).sets["journalLines"] == {}
    assert port.post_journal(_journal("POS-OK")) is True
    assert {e["documentNumber"] for e in state.company(company.id).sets["generalLedgerEntries"].values()} == {
        "POS-OK"}


def test_journal_never_posts_another_documents_lines(erp):
    """Kills: a post that takes along a crashed attempt's partial lines of another document (that document would
    then count as posted with lines missing), or a concurrent writer's lines."""
    _sim, state, company, port, _clock, wall = erp
    journal = state.create_journal(company.id, {"code": "POS"})
    state.create_journal_line(company.id, journal["id"], {
        "accountNumber": "6100", "documentNumber": "POS-OTHER", "amount": -1.0, "balancingAccountNumber": "1910"})
    with pytest.raises(JournalBusy):  # fresh: another writer is at work
        port.post_journal(_journal("POS-A"))
    assert state.company(company.id).sets["generalLedgerEntries"] == {}
    assert [ln["documentNumber"] for ln in state.journal_lines(company.id, journal["id"])] == ["POS-OTHER"]
    wall.advance(601)  # now it is a crashed attempt's leftover
    assert port.post_journal(_journal("POS-A")) is True
    docs = {e["documentNumber"] for e in state.company(company.id).sets["generalLedgerEntries"].values()}
    assert docs == {"POS-A"} and state.journal_lines(company.id, journal["id"]) == []


def _iso_minus(iso: str, seconds: float) -> str:
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")) - timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_shipments_poll_oldest_first_and_late_publication(erp):
    """Kills: a poll not ordered by modification, tracking/variant not mapped, and a `gt <cursor>` poll without
    overlap (the late-published shipment is missed forever)."""
    _sim, state, company, port, _clock, wall = erp
    orders = [port.create_order(_request(f"C-50{i}", _shirt(1, 0.0))) for i in range(3)]
    a = state.ship_order(company.id, orders[0].order_id, package_tracking_number="1ZA", shipping_agent_code="UPS")
    wall.advance(1)
    late = state.ship_order(company.id, orders[1].order_id, package_tracking_number="1ZB", published_late_s=10)
    wall.advance(2)
    c = state.ship_order(company.id, orders[2].order_id)
    first = list(port.shipments_modified_since(None))
    assert [s.shipment_id for s in first] == [a["id"], c["id"]]  # the late one is not visible yet
    assert (first[0].tracking_number, first[0].carrier, first[0].external_ref) == ("1ZA", "UPS", "C-500")
    assert [(ln.number, ln.variant_code, ln.quantity) for ln in first[0].lines] == [("SHIRT", "M", 1.0)]
    assert first[1].tracking_number is None and first[1].carrier is None
    cursor = first[-1].modified_at
    wall.advance(10)
    no_overlap = list(port.client.sales_shipments(filter=f"lastModifiedDateTime gt {cursor}"))
    assert no_overlap == []  # the late shipment's timestamp is before the cursor
    again = list(port.shipments_modified_since(_iso_minus(cursor, 30)))
    assert [s.shipment_id for s in again] == [a["id"], late["id"], c["id"]]
    assert again[1].tracking_number == "1ZB"
    assert [s.number for s in port.shipments_between("2026-12-01", "2026-12-01")] == [
        a["number"], late["number"], c["number"]]


def test_shipments_poll_reads_no_order_in_a_company_without_variants() -> None:
    """Kills: a poll that reads each shipment's sales order for variants (one GET per shipment of the overlap window,
    which made the shipments sensor slow) when the company has no item variants to resolve."""
    state = BusinessCentralState(clock=DateClock())
    company = state.add_company("CRONUS")
    state.add_item(company.id, "CAP", "Cap", unit_price=99.0)
    state.add_customer(company.id, {"displayName": "Web SE", "number": "WEB-SE", "currencyCode": ""})
    clock = FakeClock()
    with BusinessCentralSimulator(state, tenant=TENANT, environment=ENV, clock=clock) as sim, \
            BusinessCentralClient(sim.url, TENANT, ENV, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
                                  company_id=company.id, sleep=clock.sleep) as client:
        port = BusinessCentralErp(client)
        cap = ErpOrderLineRequest(line_type=ITEM, number="CAP", variant_code=None, quantity=1, unit_price=99.0,
                                  discount_amount=0.0, tax_code="STANDARD", description="Cap")
        for i in range(5):
            state.ship_order(company.id, port.create_order(_request(f"C-70{i}", cap)).order_id)
        list(port.shipments_modified_since(None))  # the first poll asks once whether there are variants
        before = client.requests_sent
        shipments = list(port.shipments_modified_since(None))
        assert len(shipments) == 5 and client.requests_sent - before == 1  # the shipments page only
        assert [(ln.number, ln.variant_code) for ln in shipments[0].lines] == [("CAP", None)]


def test_stock_falls_when_a_shipment_is_posted(erp):
    """Kills: stock read from the wrong field, shipments that do not lower inventory, a numbers filter ignored."""
    _sim, state, company, port, _clock, _wall = erp
    state.set_inventory(company.id, "SHIRT", 10)
    state.set_inventory(company.id, "CAP", 4)
    order = port.create_order(_request("C-6001", _shirt(3, 0.0)))
    assert [(s.number, s.on_hand) for s in port.stock(["SHIRT"])] == [("SHIRT", 10)]
    state.ship_order(company.id, order.order_id)
    assert [(s.number, s.variant_code, s.on_hand) for s in port.stock(["SHIRT"])] == [("SHIRT", None, 7)]
    state.adjust_inventory(company.id, "CAP", -1)
    assert sorted((s.number, s.on_hand) for s in port.stock()) == [("CAP", 3), ("SHIRT", 7)]
    assert sorted((i.number, i.variant_code or "") for i in port.items()) == [("CAP", ""), ("SHIRT", ""),
                                                                             ("SHIRT", "M")]
