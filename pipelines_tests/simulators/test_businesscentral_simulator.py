"""The Business Central simulator over loopback HTTP, spoken to with raw httpx (no connector code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines_tests.businesscentral_support import ENV, TENANT, DateClock, FakeClock


@pytest.fixture()
def world():
    state = BusinessCentralState()
    company = state.add_company("CRONUS")
    clock = FakeClock()
    sim = BusinessCentralSimulator(state, tenant=TENANT, environment=ENV, page_size=3, rate_limit=50,
                                   rate_window_s=60, retry_after_s=7, clock=clock)
    with sim, httpx.Client(base_url=sim.url, timeout=10) as http:
        tok = http.post(f"/{TENANT}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET, "scope": "https://api.businesscentral.dynamics.com/.default"})
        http.headers["Authorization"] = f"Bearer {tok.json()['access_token']}"
        yield sim, state, company, http, tok, clock


def api(company_id: str, rest: str) -> str:
    return f"/v2.0/{TENANT}/{ENV}/api/v2.0/companies({company_id})/{rest}"


def test_token_shape_and_refusals(world):
    """Kills: a token endpoint off the Entra ID shape, a wrong secret accepted, API calls without a token served."""
    sim, _state, company, http, tok, _ = world
    assert tok.status_code == 200
    assert tok.json()["token_type"] == "Bearer" and tok.json()["expires_in"] == 3599
    bad = httpx.post(f"{sim.url}/{TENANT}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID, "client_secret": "nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    anon = httpx.get(sim.url + api(company.id, "items"))
    assert anon.status_code == 401
    assert anon.json()["error"]["code"] == "Authentication_InvalidCredentials"


def test_order_lines_totals_expand_and_filter(world):
    """Kills: lost lines, totals not summed from lines, $expand ignored, $filter eq/ge/le not applied."""
    _sim, state, company, http, _tok, _ = world
    item = state.add_item(company.id, "1000", "Bicycle", unit_price=100.0)
    cust = http.post(api(company.id, "customers"), json={"displayName": "Anna"}).json()
    order = http.post(api(company.id, "salesOrders"), json={
        "externalDocumentNumber": "C-42", "customerNumber": cust["number"], "currencyCode": "EUR",
        "orderDate": "2026-11-30", "shipToName": "Anna", "shipToCity": "Lund", "shipToCountry": "SE"}).json()
    assert order["@odata.etag"].startswith('W/"') and order["status"] == "Open"
    r = http.post(api(company.id, f"salesOrders({order['id']})/salesOrderLines"), json={
        "lineType": "Item", "itemId": item["id"], "quantity": 2, "unitPrice": 100.0, "discountAmount": 20.0,
        "taxCode": "STANDARD"})
    assert r.status_code == 201
    line = r.json()
    assert (line["amountExcludingTax"], line["totalTaxAmount"], line["amountIncludingTax"]) == (180.0, 45.0, 225.0)
    assert line["lineObjectNumber"] == "1000"
    got = http.get(api(company.id, f"salesOrders({order['id']})"), params={"$expand": "salesOrderLines"}).json()
    assert got["totalAmountIncludingTax"] == 225.0 and got["shipToCity"] == "Lund"
    assert [ln["id"] for ln in got["salesOrderLines"]] == [line["id"]]
    http.post(api(company.id, "salesOrders"), json={"externalDocumentNumber": "C-43", "customerId": cust["id"],
                                                   "orderDate": "2026-12-01"})
    one = http.get(api(company.id, "salesOrders"), params={"$filter": "externalDocumentNumber eq 'C-42'"}).json()
    assert [o["id"] for o in one["value"]] == [order["id"]]
    dated = http.get(api(company.id, "salesOrders"), params={
        "$filter": "orderDate ge 2026-12-01 and orderDate le 2026-12-01"}).json()
    assert [o["externalDocumentNumber"] for o in dated["value"]] == ["C-43"]
    bad = http.post(api(company.id, "salesOrders"), json={"externalDocumentNumber": "x"})
    assert bad.status_code == 400 and "customerNumber" in bad.json()["error"]["message"]
    bad_tax = http.post(api(company.id, f"salesOrders({order['id']})/salesOrderLines"), json={
        "lineType": "Item", "itemId": item["id"], "quantity": 1, "taxCode": "NOPE"})
    assert bad_tax.status_code == 400


def test_paging_next_link_covers_every_entity_once(world):
    """Kills: nextLink that repeats or skips rows, a last page that still carries a nextLink."""
    _sim, state, company, http, _tok, _ = world
    ids = {state.add_customer(company.id, {"displayName": f"c{i}"})["id"] for i in range(8)}
    seen, pages, url = [], 0, api(company.id, "customers")
    while url and pages < 10:
        body = http.get(url).json()
        seen += [c["id"] for c in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3 and len(seen) == 8 and set(seen) == ids


def test_etag_if_match_412_and_read_only_documents(world):
    """Kills: PATCH without If-Match accepted, a stale ETag accepted, posted shipments editable."""
    _sim, state, company, http, _tok, _ = world
    cust = state.add_customer(company.id, {"displayName": "Bo"})
    url = api(company.id, f"customers({cust['id']})")
    first = http.get(url).json()
    assert http.patch(url, json={"email": "a@x"}).status_code == 400
    ok = http.patch(url, json={"email": "a@x"}, headers={"If-Match": first["@odata.etag"]})
    assert ok.status_code == 200 and ok.json()["@odata.etag"] != first["@odata.etag"]
    stale = http.patch(url, json={"email": "b@x"}, headers={"If-Match": first["@odata.etag"]})
    assert stale.status_code == 412 and set(stale.json()["error"]) == {"code", "message"}
    assert http.get(url).json()["email"] == "a@x"


def test_rate_limit_429_with_retry_after(world):
    """Kills: no throttling past the window's budget, 429 without Retry-After, a window that never slides."""
    sim, _state, company, http, _tok, clock = world
    sim.settings.rate_limit = 2
    codes = [http.get(api(company.id, "items")).status_code for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    r = http.get(api(company.id, "items"))
    assert r.headers["Retry-After"] == "7" and r.json()["error"]["code"]
    clock.now += 61
    assert http.get(api(company.id, "items")).status_code == 200


def test_prices_include_tax_known_answer_and_atomic_deep_insert(world):
    """Kills: tax added on top of tax-included prices, header totals not summed, a deep insert that keeps the
    header (or earlier lines) when a later line fails."""
    _sim, state, company, http, _tok, _ = world
    state.add_item(company.id, "SHIRT", "Shirt", unit_price=299.0)
    cust = state.add_customer(company.id, {"displayName": "Web"})
    body = {"externalDocumentNumber": "C-1", "customerNumber": cust["number"], "pricesIncludeTax": True,
            "salesOrderLines": [{"lineType": "Item", "lineObjectNumber": "SHIRT", "quantity": 2, "unitPrice": 299.0,
                                 "discountAmount": 50.0, "taxCode": "STANDARD"},
                                {"lineType": "Item", "lineObjectNumber": "SHIRT", "quantity": 1, "unitPrice": 100.0,
                                 "taxCode": "REDUCED"}]}
    r = http.post(api(company.id, "salesOrders"), params={"$expand": "salesOrderLines"}, json=body)
    assert r.status_code == 201
    order = r.json()
    # 2*299-50 = 548.00 incl 25 % -> 438.40 + 109.60; 100.00 incl 12 % -> 89.29 + 10.71
    assert [(ln["amountIncludingTax"], ln["amountExcludingTax"], ln["totalTaxAmount"])
            for ln in order["salesOrderLines"]] == [(548.0, 438.4, 109.6), (100.0, 89.29, 10.71)]
    assert (order["totalAmountIncludingTax"], order["totalAmountExcludingTax"], order["totalTaxAmount"]) == (
        648.0, 527.69, 120.31)
    assert order["discountAmount"] == 0.0  # the header field is the invoice discount, not the line discounts
    before = (dict(state.company(company.id).sets["salesOrders"]), dict(state.company(company.id).sets[
        "salesOrderLines"]))
    body["externalDocumentNumber"] = "C-2"
    body["salesOrderLines"].append({"lineType": "Item", "lineObjectNumber": "NOPE", "quantity": 1})
    bad = http.post(api(company.id, "salesOrders"), json=body)
    assert bad.status_code == 400 and bad.json()["error"]["message"] == "Item does not exist."
    after = (state.company(company.id).sets["salesOrders"], state.company(company.id).sets["salesOrderLines"])
    assert after == before


def test_general_journal_post_action_and_ledger_entries(world):
    """Kills: posting that forgets the balancing side, debits/credits swapped, a journal not emptied by posting,
    unbalanced or unknown-account journals posted, an empty journal 'posted'."""
    _sim, state, company, http, _tok, _ = world
    for number in ("1910", "6100", "2610"):
        state.add_account(company.id, number, f"acc {number}")
    assert http.post(api(company.id, "accounts"), json={"number": "9"}).status_code == 405
    journal = http.post(api(company.id, "journals"), json={"code": "POS", "displayName": "Store"}).json()
    assert journal["templateDisplayName"] and journal["code"] == "POS"
    lines_url = api(company.id, f"journals({journal['id']})/journalLines")
    post_url = api(company.id, f"journals({journal['id']})/Microsoft.NAV.post")
    empty = http.post(post_url)
    assert empty.status_code == 400 and empty.json()["error"]["message"] == "There is nothing to post."
    ln = http.post(lines_url, json={"accountNumber": "6100", "postingDate": "2026-12-01", "documentNumber": "D1",
                                    "amount": -125.0, "balancingAccountNumber": "1910", "description": "rev"})
    assert ln.status_code == 201 and ln.json()["lineNumber"] == 10000 and ln.json()["journalDisplayName"] == "POS"
    unknown = http.post(lines_url, json={"accountNumber": "0000", "documentNumber": "D1", "amount": 1})
    assert unknown.status_code == 400 and "accountNumber" in unknown.json()["error"]["message"]
    # two lines without balancing account that do not sum to zero: the whole post is refused
    http.post(lines_url, json={"accountNumber": "2610", "documentNumber": "D2", "amount": 10.0})
    http.post(lines_url, json={"accountNumber": "6100", "documentNumber": "D2", "amount": -9.0})
    refused = http.post(post_url)
    assert refused.status_code == 400 and "out of balance" in refused.json()["error"]["message"]
    assert state.company(company.id).sets["generalLedgerEntries"] == {}
    assert http.get(api(company.id, "journalLines")).status_code == 400  # lines need a journal
    d2 = http.get(lines_url, params={"$filter": "documentNumber eq 'D2'"}).json()["value"]
    assert len(d2) == 2
    fix = http.patch(api(company.id, f"journals({journal['id']})/journalLines({d2[1]['id']})"),
                     json={"amount": -10.0}, headers={"If-Match": d2[1]["@odata.etag"]})
    assert fix.status_code == 200
    assert http.post(post_url).status_code == 204
    assert http.get(lines_url).json()["value"] == []
    entries, url, params = [], api(company.id, "generalLedgerEntries"), {"$orderby": "entryNumber desc"}
    for _ in range(5):  # page size 3: the nextLink must keep the order
        page = http.get(url, params=params).json()
        entries += page["value"]
        url, params = page.get("@odata.nextLink"), None
        if url is None:
            break
    entries.reverse()
    assert [(e["documentNumber"], e["accountNumber"], e["debitAmount"], e["creditAmount"]) for e in entries] == [
        ("D1", "6100", 0.0, 125.0), ("D1", "1910", 125.0, 0.0), ("D2", "2610", 10.0, 0.0), ("D2", "6100", 0.0, 10.0)]
    assert [e["entryNumber"] for e in entries] == [1, 2, 3, 4]
    assert state.get(company.id, "accounts", next(
        a["id"] for a in state.company(company.id).sets["accounts"].values() if a["number"] == "6100"))[
        "netChange"] == -135.0


def test_orderby_and_datetime_filter_as_instants(world):
    """Kills: $orderby ignored, datetimes compared as text (a '...:00Z' literal vs '...:00.500Z' values)."""
    _sim, state, company, http, _tok, _ = world
    wall = DateClock(datetime(2026, 12, 1, 9, 0, 0, 500000, tzinfo=UTC))
    state.clock = wall
    ids = []
    for i in range(4):
        ids.append(state.add_customer(company.id, {"displayName": f"c{i}"})["id"])
        wall.now += timedelta(seconds=1)
    body = http.get(api(company.id, "customers"), params={"$orderby": "lastModifiedDateTime desc",
                                                          "$filter": "lastModifiedDateTime ge 2026-12-01T09:00:01Z"})
    assert [c["id"] for c in body.json()["value"]] == ids[:0:-1]  # 09:00:00.5 is before 09:00:01
    gt = http.get(api(company.id, "customers"), params={"$filter": "lastModifiedDateTime gt 2026-12-01T09:00:02.500Z"})
    assert [c["id"] for c in gt.json()["value"]] == [ids[3]]
    assert http.get(api(company.id, "customers"), params={"$orderby": "nope asc"}).status_code == 400


def test_fault_knobs_412_429_and_lost_answer(world):
    """Kills: fault knobs that do nothing (the exactly-once tests would prove nothing), a forced 412 that still
    writes, a lost answer whose write was not committed."""
    sim, state, company, http, _tok, _ = world
    cust = state.add_customer(company.id, {"displayName": "Bo"})
    url = api(company.id, f"customers({cust['id']})")
    etag = http.get(url).json()["@odata.etag"]
    sim.settings.force_412 = 1
    assert http.patch(url, json={"email": "x@y"}, headers={"If-Match": etag}).status_code == 412
    assert state.get(company.id, "customers", cust["id"])["email"] == ""
    assert http.patch(url, json={"email": "x@y"}, headers={"If-Match": etag}).status_code == 200
    sim.settings.force_429 = 2
    assert [http.get(url).status_code for _ in range(3)] == [429, 429, 200]
    sim.settings.lose_responses = 1
    with pytest.raises(httpx.TransportError):
        http.post(api(company.id, "customers"), json={"displayName": "Lost"})
    assert any(c["displayName"] == "Lost" for c in state.company(company.id).sets["customers"].values())
    assert http.post(api(company.id, "customers"), json={"displayName": "Kept"}).status_code == 201
