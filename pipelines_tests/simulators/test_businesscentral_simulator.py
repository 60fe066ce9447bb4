"""The Business Central simulator over loopback HTTP, spoken to with raw httpx (no connector code)."""

from __future__ import annotations

import httpx
import pytest

from pipelines.simulators.businesscentral import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    BusinessCentralSimulator,
    BusinessCentralState,
)
from pipelines_tests.businesscentral_support import ENV, TENANT, FakeClock


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
