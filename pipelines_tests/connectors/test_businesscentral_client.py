"""BusinessCentralClient against the Business Central simulator over loopback HTTP.

The oracle is the simulator's state (ground truth) or known arithmetic, never the client itself.
"""

from __future__ import annotations

import logging

import pytest

from pipelines.connectors.businesscentral import BusinessCentralClient, EntityChanged, odata_str
from pipelines.connectors.errors import AuthError, ConnectorError
from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines_tests.businesscentral_support import ENV, TENANT, FakeClock


@pytest.fixture()
def env():
    state = BusinessCentralState()
    company = state.add_company("CRONUS")
    clock = FakeClock()
    with BusinessCentralSimulator(state, tenant=TENANT, environment=ENV, clock=clock, retry_after_s=5) as sim:
        client = BusinessCentralClient(sim.url, TENANT, ENV, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
                                       company_id=company.id, sleep=clock.sleep)
        with client:
            yield sim, state, company, client, clock


def _order(state, company, client, ext: str, qty: float = 2) -> dict:
    item = state.add_item(company.id, f"I-{ext}", "Shirt", unit_price=50.0)
    cust = client.create_customer({"displayName": "Anna", "currencyCode": "SEK"})
    return client.create_sales_order(
        {"externalDocumentNumber": ext, "customerId": cust["id"], "currencyCode": "SEK", "shipToName": "Anna",
         "shipToAddressLine1": "Storgatan 1", "shipToCity": "Lund", "shipToPostCode": "22100",
         "shipToCountry": "SE"},
        [{"lineType": "Item", "itemId": item["id"], "quantity": qty, "unitPrice": 50.0, "discountAmount": 10.0,
          "taxCode": "STANDARD"},
         {"lineType": "Item", "lineObjectNumber": item["number"], "quantity": 1, "unitPrice": 50.0,
          "taxCode": "REDUCED"}])


def test_auth_refused_without_leaking_the_secret(env, caplog):
    """Kills: a wrong secret silently accepted, the secret echoed into errors or logs."""
    sim, _state, company, _client, _clock = env
    caplog.set_level(logging.DEBUG)
    bad = BusinessCentralClient(sim.url, TENANT, ENV, DEFAULT_CLIENT_ID, "s3cr3t-VALUE", company_id=company.id)
    with bad, pytest.raises(AuthError) as exc:
        bad.companies()
    assert "s3cr3t-VALUE" not in str(exc.value) and "s3cr3t-VALUE" not in repr(bad.tokens)
    assert "s3cr3t-VALUE" not in caplog.text


def test_create_order_with_lines_read_back_and_filter(env):
    """Kills: lines dropped, amounts/currency/ship-to altered, expand ignored, filter returning other orders."""
    _sim, state, company, client, _clock = env
    assert [c["id"] for c in client.companies()] == [company.id]
    order = _order(state, company, client, "C-1001")
    _order(state, company, client, "C-1002")
    _order(state, company, client, "O'Neil-7")
    truth = state.order_lines(company.id, order["id"])
    assert [ln["id"] for ln in order["salesOrderLines"]] == [ln["id"] for ln in truth]
    # known answers: 2*50-10 = 90 (+25 % = 22.50); 50 (+12 % = 6.00)
    assert [ln["amountIncludingTax"] for ln in order["salesOrderLines"]] == [112.5, 56.0]
    assert order["totalAmountIncludingTax"] == 168.5 and order["currencyCode"] == "SEK"
    assert order["shipToCity"] == "Lund" and order["externalDocumentNumber"] == "C-1001"
    found = client.sales_orders_by_external_number("C-1001")
    assert [o["id"] for o in found] == [order["id"]] and len(found[0]["salesOrderLines"]) == 2
    assert [o["externalDocumentNumber"] for o in client.sales_orders_by_external_number("O'Neil-7")] == ["O'Neil-7"]
    assert client.sales_orders_by_external_number("C-9999") == []
    assert odata_str("a'b") == "'a''b'"


def test_paging_across_pages_without_repeats(env):
    """Kills: a client that stops at the first page, or re-reads a page (repeats) when following nextLink."""
    _sim, state, company, client, _clock = env
    truth = {state.add_customer(company.id, {"displayName": f"c{i}"})["id"] for i in range(23)}
    before = client.requests_sent
    got = [c["id"] for c in client.customers(page_size=5)]
    assert len(got) == 23 and set(got) == truth
    assert client.requests_sent - before == 5  # 5+5+5+5+3


def test_stale_etag_raises_then_rebase_rereads(env):
    """Kills: a PATCH that overwrites a concurrent change, a 412 swallowed, no re-read on conflict."""
    _sim, state, company, client, _clock = env
    cust = client.create_customer({"displayName": "Bo"})
    state.patch(company.id, "customers", cust["id"], {"email": "erp-user@x"}, "*")  # concurrent ERP user
    with pytest.raises(EntityChanged):
        client.patch("customers", cust, {"displayName": "Bo B"})
    seen = []

    def rebase(fresh):
        seen.append(fresh["email"])
        return {"displayName": "Bo B"}

    out = client.patch("customers", cust, {"displayName": "Bo B"}, rebase=rebase)
    stored = state.get(company.id, "customers", cust["id"])
    assert seen == ["erp-user@x"] and stored["displayName"] == "Bo B" and stored["email"] == "erp-user@x"
    assert out["displayName"] == "Bo B"


def test_429_retry_after_is_honoured(env):
    """Kills: a client that gives up on 429, ignores Retry-After, or duplicates a POST retried after 429."""
    sim, state, company, client, clock = env
    client.companies()
    sim.settings.rate_limit = 3
    sim.settings.rate_window_s = 4
    for i in range(4):
        client.create_customer({"displayName": f"r{i}"})
    assert sim.settings.throttled >= 1 and clock.sleeps and min(clock.sleeps) >= 5.0  # Retry-After (+ jitter)
    names = sorted(c["displayName"] for c in state.company(company.id).sets["customers"].values())
    assert names == ["r0", "r1", "r2", "r3"]


def test_shipment_with_tracking_read_back(env):
    """Kills: tracking or agent lost, partial quantities misreported, posted shipments writable."""
    _sim, state, company, client, _clock = env
    order = _order(state, company, client, "C-2001", qty=3)
    first_seq = order["salesOrderLines"][0]["sequence"]
    state.ship_order(company.id, order["id"], {first_seq: 2}, package_tracking_number="1Z999",
                     shipping_agent_code="UPS")
    ships = list(client.sales_shipments(filter=f"externalDocumentNumber eq {odata_str('C-2001')}"))
    assert len(ships) == 1
    ship = ships[0]
    assert (ship["packageTrackingNumber"], ship["shippingAgentCode"]) == ("1Z999", "UPS")
    assert ship["orderNumber"] == order["number"]
    assert [(ln["sequence"], ln["quantity"]) for ln in ship["salesShipmentLines"]] == [(first_seq, 2.0)]
    assert client.sales_shipment_lines(ship["id"]) == ship["salesShipmentLines"]
    lines = client.sales_order_lines(order["id"])
    assert [ln["shippedQuantity"] for ln in lines] == [2.0, 0.0]
    assert client.sales_order(order["id"])["fullyShipped"] is False
    with pytest.raises(ConnectorError):
        client.patch("salesShipments", ship, {"packageTrackingNumber": "X"})
    state.invoice_order(company.id, order["id"])
    inv = list(client.sales_invoices(filter="externalDocumentNumber eq 'C-2001'"))
    assert [i["totalAmountIncludingTax"] for i in inv] == [order["totalAmountIncludingTax"]]


def test_forced_412s_are_rebased_and_applied_once(env):
    """Kills: a PATCH that gives up on the first 412, or re-sends the stale ETag (never succeeding), or loses the
    concurrent change it rebased on."""
    sim, state, company, client, _clock = env
    cust = client.create_customer({"displayName": "Bo"})
    state.patch(company.id, "customers", cust["id"], {"email": "erp@x"}, "*")
    sim.settings.force_412 = 2  # the next two PATCHes conflict whatever their ETag (the stale one among them)
    calls = []

    def rebase(fresh):
        calls.append(fresh["email"])
        return {"displayName": "Bo B"}

    out = client.patch("customers", cust, {"displayName": "Bo B"}, rebase=rebase)
    stored = state.get(company.id, "customers", cust["id"])
    assert len(calls) == 2 and stored["displayName"] == "Bo B" and stored["email"] == "erp@x"
    assert stored["_version"] == 3 and out["@odata.etag"] != cust["@odata.etag"]  # created, ERP user, us: once
    sim.settings.force_412 = 10
    with pytest.raises(EntityChanged):
        client.patch("customers", out, {"displayName": "Bo C"}, rebase=rebase, max_conflicts=2)


def test_orderby_and_journal_surface(env):
    """Kills: $orderby not sent, journal lines not scoped to their journal, G/L entries filter by document number
    ignored, a deep-insert create that drops its lines."""
    _sim, state, company, client, _clock = env
    for i in range(3):
        state.add_customer(company.id, {"displayName": f"z{i}"})
    names = [c["displayName"] for c in client.iter_set("customers", orderby="displayName desc", page_size=2)]
    assert names == ["z2", "z1", "z0"]
    state.add_account(company.id, "6100", "Revenue")
    state.add_account(company.id, "1910", "Cash")
    assert [a["number"] for a in client.accounts()] == ["6100", "1910"]
    assert client.journal_by_code("POS") is None
    journal = client.create_journal({"code": "POS"})
    other = client.create_journal({"code": "OTHER"})
    assert client.journal_by_code("POS")["id"] == journal["id"]
    line = client.create_journal_line(journal["id"], {"accountNumber": "6100", "documentNumber": "D9",
                                                      "amount": -5.0, "balancingAccountNumber": "1910",
                                                      "postingDate": "2026-12-01"})
    client.create_journal_line(other["id"], {"accountNumber": "6100", "documentNumber": "D8", "amount": -1.0,
                                             "balancingAccountNumber": "1910"})
    assert [ln["id"] for ln in client.journal_lines(journal["id"])] == [line["id"]]
    client.post_journal(journal["id"])
    assert [(e["accountNumber"], e["debitAmount"], e["creditAmount"])
            for e in client.general_ledger_entries(document_number="D9")] == [("6100", 0.0, 5.0), ("1910", 5.0, 0.0)]
    assert list(client.general_ledger_entries(document_number="D8")) == []
    assert len(client.journal_lines(other["id"])) == 1
    client.delete_journal_line(other["id"], client.journal_lines(other["id"])[0])
    assert client.journal_lines(other["id"]) == []
