"""commercetools simulator over loopback HTTP: OAuth and scopes, inventory, paging/predicates, orders, payments,
customers, messages, subscriptions, faults and the world API. Oracles are the estate (initial stock, prices) and
the documented rules (reference §3), never the simulator's own helpers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.estate.model import Estate, estate_from_dict
from pipelines.simulators.commercetools import CommercetoolsSimulator, DeliveryKnobs
from pipelines.simulators.estate_gen import generate_estate
from pipelines.simulators.serving import BackgroundServer

PROJECT = "nordlys-sim"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module", name="estate")
def fixture_estate() -> Estate:
    return estate_from_dict(generate_estate(sizes=20, stores=2, commerce="commercetools"))


@dataclass
class Served:
    sim: CommercetoolsSimulator
    server: BackgroundServer
    http: httpx.Client
    clock: Clock

    @property
    def state(self) -> Any:
        return self.sim.state


def _token(url: str, client: str = "pipelines", secret: str = "pipelines-secret", scope: str | None = None) -> dict:
    basic = base64.b64encode(f"{client}:{secret}".encode()).decode()
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    resp = httpx.post(f"{url}/oauth/token", data=data, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(name="ct")
def fixture_ct(estate: Estate) -> Iterator[Served]:
    yield from _served(estate)


def _served(estate: Estate, **kwargs: Any) -> Iterator[Served]:
    clock = Clock()
    sim = CommercetoolsSimulator(estate, clock=clock, auth_clock=clock, **kwargs)
    with sim.serve() as srv:
        cid, (secret, _) = next(iter(sim.clients.items()))
        token = _token(srv.url, cid, secret)["access_token"]
        with httpx.Client(base_url=f"{srv.url}/{PROJECT}", headers={"Authorization": f"Bearer {token}"}) as http:
            yield Served(sim, srv, http, clock)


def _dc_entry(ct: Served, sku: str) -> dict[str, Any]:
    dc = ct.http.get("/channels/key=DC01").json()["id"]
    body = ct.http.get("/inventory", params={"where": f'sku="{sku}" and supplyChannel(id="{dc}")'}).json()
    assert body["count"] == 1, body
    return body["results"][0]


def _skus(estate: Estate) -> list[str]:
    return [s.sku for p in estate.catalog for v in p.variants for s in v.sizes]


# -- OAuth and scopes --------------------------------------------------------------------------------------


def test_token_scopes_expiry_and_introspection(estate: Estate) -> None:
    """Kills: wrong token shape/TTL, scope subset ignored, expired tokens accepted, missing 401/403 bodies."""
    clients = {"full": ("s1", (f"manage_project:{PROJECT}",)),
               "orders-only": ("s2", (f"view_orders:{PROJECT}",))}
    for ct in _served(estate, clients=clients, token_ttl_s=600):
        url = ct.server.url
        body = _token(url, "full", "s1")
        assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["scope"] == f"manage_project:{PROJECT}"
        sub = _token(url, "full", "s1", scope=f"view_products:{PROJECT}")
        assert sub["scope"] == f"view_products:{PROJECT}"
        bad = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": "Basic " + base64.b64encode(b"full:nope").decode()})
        assert bad.status_code == 401 and bad.json()["errors"][0]["code"] == "invalid_client"
        api = f"{url}/{PROJECT}"
        none = httpx.get(f"{api}/inventory")
        assert none.status_code == 401 and none.json()["errors"][0]["code"] == "invalid_token"
        assert httpx.get(f"{api}/inventory", headers={"Authorization": "Bearer junk"}).status_code == 401
        view = {"Authorization": f"Bearer {sub['access_token']}"}
        assert httpx.get(f"{api}/inventory", headers=view).status_code == 200
        write = httpx.post(f"{api}/inventory", headers=view, json={"sku": "X", "quantityOnStock": 1})
        assert write.status_code == 403 and write.json()["errors"][0]["code"] == "insufficient_scope"
        orders = {"Authorization": f"Bearer {_token(url, 'orders-only', 's2')['access_token']}"}
        assert httpx.get(f"{api}/orders", headers=orders).status_code == 200
        assert httpx.get(f"{api}/inventory", headers=orders).status_code == 403
        basic = {"Authorization": "Basic " + base64.b64encode(b"full:s1").decode()}
        intro = httpx.post(f"{url}/oauth/introspect", params={"token": body["access_token"]}, headers=basic).json()
        assert intro["active"] is True and intro["scope"] == f"manage_project:{PROJECT}"
        ct.clock.advance(601)
        expired = httpx.get(f"{api}/inventory", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert expired.status_code == 401 and expired.json()["errors"][0]["code"] == "invalid_token"
        assert httpx.post(f"{url}/oauth/introspect", params={"token": body["access_token"]},
                          headers=basic).json() == {"active": False}


def test_default_token_lives_48_hours(ct: Served) -> None:
    """Kills: a default TTL other than the documented 172800 s."""
    assert _token(ct.server.url)["expires_in"] == 172800


# -- inventory ---------------------------------------------------------------------------------------------


def test_inventory_built_from_estate_stock(ct: Served, estate: Estate) -> None:
    """Kills: entries missing per (sku, channel) or initial stock not taken from the estate."""
    sku = _skus(estate)[3]
    channels = {c["key"]: c["id"] for c in ct.http.get("/channels", params={"limit": 500}).json()["results"]}
    for loc in estate.locations:
        body = ct.http.get("/inventory", params={"where": f'sku="{sku}" and supplyChannel(id="{channels[loc.id]}")'})
        entry = body.json()["results"][0]
        expected = estate.initial_stock[loc.newstore_node_id][sku]
        assert entry["quantityOnStock"] == expected and entry["availableQuantity"] == expected
    total = ct.http.get("/inventory", params={"limit": 0}).json()["total"]
    assert total == len(_skus(estate)) * len(estate.locations)


def test_inventory_updates_versions_and_conflicts(ct: Served, estate: Estate) -> None:
    """Kills: add/remove/change arithmetic, version not bumped, stale versions accepted, 409 body shape,
    negative stock refused (removeQuantity may go below zero), messages from quantity actions missing."""
    sku = _skus(estate)[0]
    entry = _dc_entry(ct, sku)
    start = estate.initial_stock["DC01"][sku]
    r = ct.http.post(f"/inventory/{entry['id']}", json={"version": entry["version"], "actions": [
        {"action": "addQuantity", "quantity": 3}, {"action": "removeQuantity", "quantity": 1}]})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["quantityOnStock"] == start + 2 and after["version"] == entry["version"] + 1
    stale = ct.http.post(f"/inventory/{entry['id']}", json={"version": entry["version"], "actions": [
        {"action": "addQuantity", "quantity": 1}]})
    assert stale.status_code == 409
    err = stale.json()
    assert err["statusCode"] == 409 and err["errors"][0]["code"] == "ConcurrentModification"
    assert err["errors"][0]["currentVersion"] == after["version"]
    assert f"Expected: {entry['version']} - Actual: {after['version']}." in err["errors"][0]["message"]
    neg = ct.http.post(f"/inventory/{entry['id']}", json={"version": after["version"], "actions": [
        {"action": "changeQuantity", "quantity": 1}, {"action": "removeQuantity", "quantity": 5}]}).json()
    assert neg["quantityOnStock"] == -4 and neg["availableQuantity"] == -4
    qs = [m for m in ct.state.all_messages() if m["type"] == "InventoryEntryQuantitySet"]
    assert [(m["oldQuantityOnStock"], m["newQuantityOnStock"]) for m in qs] == [
        (start, start + 3), (start + 3, start + 2), (start + 2, 1), (1, -4)]
    assert [m["sequenceNumber"] for m in qs] == [1, 2, 3, 4]
    assert [m["resourceVersion"] for m in qs] == [2, 2, 3, 3]


def test_inventory_create_duplicate_key_lookup_delete(ct: Served, estate: Estate) -> None:
    """Kills: a second entry per (sku, supplyChannel) accepted, key lookups, delete without/with stale version."""
    dc = ct.http.get("/channels/key=DC01").json()["id"]
    sku = _skus(estate)[1]
    dup = ct.http.post("/inventory", json={"sku": sku, "quantityOnStock": 1,
                                           "supplyChannel": {"typeId": "channel", "id": dc}})
    assert dup.status_code == 400 and dup.json()["errors"][0]["code"] == "DuplicateField"
    made = ct.http.post("/inventory", json={"sku": sku, "key": "no-channel-1", "quantityOnStock": 7})
    assert made.status_code == 201 and "supplyChannel" not in made.json()
    by_key = ct.http.get("/inventory/key=no-channel-1").json()
    assert by_key["id"] == made.json()["id"] and by_key["availableQuantity"] == 7
    assert ct.http.get("/inventory/key=nope").status_code == 404
    assert ct.http.get("/inventory/4b8f0a8e-0000-0000-0000-000000000000").json()["errors"][0]["code"] == \
        "ResourceNotFound"
    assert ct.http.delete("/inventory/key=no-channel-1", params={"version": 9}).status_code == 409
    assert ct.http.delete("/inventory/key=no-channel-1", params={"version": 1}).status_code == 200
    assert ct.http.get("/inventory/key=no-channel-1").status_code == 404
    types = [m["type"] for m in ct.state.all_messages() if m["resource"]["id"] == by_key["id"]]
    assert types == ["InventoryEntryCreated", "InventoryEntryDeleted"]


def test_custom_type_marker_on_inventory_entry(ct: Served, estate: Estate) -> None:
    """Kills: custom fields without a Type, a Type for another resource accepted, marker not kept."""
    t = ct.http.post("/types", json={"key": "sync-marker", "name": {"en": "Sync marker"},
                                     "resourceTypeIds": ["inventory-entry", "order"],
                                     "fieldDefinitions": [{"name": "lastSync", "label": {"en": "Last sync"},
                                                           "required": False, "type": {"name": "String"},
                                                           "inputHint": "SingleLine"}]})
    assert t.status_code == 201, t.text
    assert ct.http.get("/types/key=sync-marker").json()["id"] == t.json()["id"]
    entry = _dc_entry(ct, _skus(estate)[2])
    early = ct.http.post(f"/inventory/{entry['id']}", json={"version": entry["version"], "actions": [
        {"action": "setCustomField", "name": "lastSync", "value": "x"}]})
    assert early.status_code == 400
    r = ct.http.post(f"/inventory/{entry['id']}", json={"version": entry["version"], "actions": [
        {"action": "setCustomType", "type": {"typeId": "type", "key": "sync-marker"}},
        {"action": "setCustomField", "name": "lastSync", "value": "2026-03-02T09:00:00Z"}]})
    assert r.status_code == 200, r.text
    custom = r.json()["custom"]
    assert custom["type"] == {"typeId": "type", "id": t.json()["id"]} and custom["fields"] == {
        "lastSync": "2026-03-02T09:00:00Z"}
    ct.http.post("/types", json={"key": "cust-only", "name": {"en": "c"}, "resourceTypeIds": ["customer"]})
    wrong = ct.http.post(f"/inventory/{entry['id']}", json={"version": r.json()["version"], "actions": [
        {"action": "setCustomType", "type": {"typeId": "type", "key": "cust-only"}}]})
    assert wrong.status_code == 400


# -- paging and predicates ---------------------------------------------------------------------------------


def test_paging_limits_total_sort_and_keyset(ct: Served, estate: Estate) -> None:
    """Kills: limit/offset caps, total returned when withTotal=false, sort ignored, keyset paging missing rows."""
    assert ct.http.get("/inventory", params={"limit": 501}).json()["errors"][0]["code"] == "InvalidInput"
    assert ct.http.get("/inventory", params={"offset": 10001}).status_code == 400
    default = ct.http.get("/inventory").json()
    assert default["limit"] == 20 and default["count"] == 20 and default["offset"] == 0 and "total" in default
    assert "total" not in ct.http.get("/inventory", params={"withTotal": "false"}).json()
    expected = len(_skus(estate)) * len(estate.locations)
    seen: list[str] = []
    last = None
    for _ in range(expected):  # bounded keyset loop
        params: dict[str, Any] = {"sort": "id asc", "limit": 7, "withTotal": "false"}
        if last:
            params["where"] = f'id > "{last}"'
        page = ct.http.get("/inventory", params=params).json()
        seen += [r["id"] for r in page["results"]]
        if page["count"] < 7:
            break
        last = page["results"][-1]["id"]
    assert len(seen) == expected == len(set(seen)) and seen == sorted(seen)
    desc = ct.http.get("/inventory", params=[("sort", "quantityOnStock desc"), ("sort", "id asc"),
                                             ("limit", 500)]).json()["results"]
    qty = [r["quantityOnStock"] for r in desc]
    assert qty == sorted(qty, reverse=True)


def test_where_predicates_and_variables(ct: Served, estate: Estate) -> None:
    """Kills: `in`, variables, `is defined`, `and`, comparisons and nested predicates evaluated wrongly."""
    skus = _skus(estate)[:3]
    n_loc = len(estate.locations)
    listed = '", "'.join(skus)
    r = ct.http.get("/inventory", params={"where": f'sku in ("{listed}")', "limit": 500}).json()
    assert r["total"] == 3 * n_loc
    v = ct.http.get("/inventory", params=[("where", "sku in :skus"), *[("var.skus", s) for s in skus],
                                          ("limit", 500)]).json()
    assert v["total"] == 3 * n_loc
    dc_stock = estate.initial_stock["DC01"]
    dc = ct.http.get("/channels/key=DC01").json()["id"]
    gt = ct.http.get("/inventory", params=[("where", f'supplyChannel(id="{dc}")'), ("where", "quantityOnStock >= 100"),
                                           ("limit", 500)]).json()
    assert gt["total"] == sum(1 for q in dc_stock.values() if q >= 100)
    assert ct.http.get("/inventory", params={"where": "key is defined"}).json()["total"] == 0
    assert ct.http.get("/inventory", params={"where": 'sku = "unterminated'}).status_code == 400


# -- catalog -----------------------------------------------------------------------------------------------


def test_channels_stores_products_tax(ct: Served, estate: Estate) -> None:
    """Kills: channel/store/product conventions of issue 13 (keys, roles, prices, variants) broken."""
    cfg = estate.commercetools
    assert cfg is not None
    channels = ct.http.get("/channels", params={"limit": 500}).json()["results"]
    assert {c["key"] for c in channels} == {c.key for c in cfg.channels}
    dc = ct.http.get("/channels/key=DC01").json()
    assert dc["roles"] == ["InventorySupply"]
    store = ct.http.get(f"/stores/key={cfg.stores[0].key}").json()
    assert store["supplyChannels"] == [{"typeId": "channel", "id": dc["id"]}]
    assert [c["code"] for c in store["countries"]] == list(cfg.stores[0].countries)
    product = estate.catalog[0]
    p = ct.http.get(f"/products/key={product.product_number}").json()
    current = p["masterData"]["current"]
    size0 = product.variants[0].sizes[0]
    assert current["masterVariant"]["sku"] == size0.sku == current["masterVariant"]["key"]
    attrs = {a["name"]: a["value"] for a in current["masterVariant"]["attributes"]}
    assert attrs == {"colour": product.variants[0].name, "size": size0.size, "ean": size0.ean}
    web = ct.http.get("/channels/key=web").json()["id"]
    pl = next(pl for pl in estate.centra.pricelists if pl.countries)
    price = next(pr for pr in current["masterVariant"]["prices"] if pr["country"] == pl.countries[0]
                 and pr["value"]["currencyCode"] == pl.currency)
    assert price["channel"] == {"typeId": "channel", "id": web}
    assert price["value"]["centAmount"] == round(product.variants[0].prices[pl.id] * 100)
    proj = ct.http.get("/product-projections", params={"where": f'key="{product.product_number}"'}).json()
    assert proj["results"][0]["masterVariant"]["sku"] == size0.sku
    tax = ct.http.get("/tax-categories").json()["results"][0]
    assert {(r["country"], r["amount"], r["includedInPrice"]) for r in tax["rates"]} == {
        (c, r, True) for c, r in estate.tax_rates.items()}


# -- orders ------------------------------------------------------------------------------------------------


def _cart(ct: Served, lines: list[tuple[str, int]], mode: str, channel_key: str | None = "DC01") -> dict:
    body: dict[str, Any] = {"currency": "SEK", "country": "SE", "inventoryMode": mode,
                            "store": {"typeId": "store", "key": "web-se"}, "customerEmail": "c@example.com",
                            "lineItems": [{"sku": s, "quantity": q, **({"supplyChannel": {"typeId": "channel",
                                                                                          "key": channel_key}}
                                                                       if channel_key else {})}
                                          for s, q in lines]}
    r = ct.http.post("/carts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_order_from_cart_deducts_stock_without_quantity_message(ct: Served, estate: Estate) -> None:
    """Kills: ReserveOnOrder not deducting, deductions emitting InventoryEntryQuantitySet, OrderCreated missing,
    orderNumber lookups, cart version not checked, duplicate orderNumber accepted, totals wrong."""
    sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 5)
    start = estate.initial_stock["DC01"][sku]
    cart = _cart(ct, [(sku, 2)], "ReserveOnOrder")
    stale = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": cart["id"]}, "version": 99})
    assert stale.status_code == 409
    r = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": cart["id"]}, "version": cart["version"],
                                      "orderNumber": "W-1"})
    assert r.status_code == 201, r.text
    order = r.json()
    sek = next(pl.id for pl in estate.centra.pricelists if pl.currency == "SEK")
    unit = next(v.prices[sek] for p in estate.catalog for v in p.variants for s in v.sizes if s.sku == sku)
    li = order["lineItems"][0]
    assert li["price"]["value"]["centAmount"] == round(unit * 100)
    assert li["totalPrice"]["centAmount"] == 2 * li["price"]["value"]["centAmount"] == order["totalPrice"]["centAmount"]
    gross, net = order["taxedPrice"]["totalGross"]["centAmount"], order["taxedPrice"]["totalNet"]["centAmount"]
    assert gross == order["totalPrice"]["centAmount"] and abs(net * 1.25 - gross) <= 1
    assert ct.http.get("/orders/order-number=W-1").json()["id"] == order["id"]
    entry = _dc_entry(ct, sku)
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (start - 2, start - 2)
    assert [m["type"] for m in ct.state.all_messages()] == ["OrderCreated"]
    again = _cart(ct, [(sku, 1)], "None")
    dup = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": again["id"]}, "version": again["version"],
                                        "orderNumber": "W-1"})
    assert dup.status_code == 400 and dup.json()["errors"][0]["code"] == "DuplicateField"


def test_out_of_stock_modes(ct: Served, estate: Estate) -> None:
    """Kills: OutOfStock rules per inventoryMode (ReserveOnOrder short, TrackOnly without entry, None never)."""
    sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 1)
    start = estate.initial_stock["DC01"][sku]
    short = _cart(ct, [(sku, start + 1)], "ReserveOnOrder")
    r = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": short["id"]}, "version": short["version"]})
    err = r.json()["errors"][0]
    assert r.status_code == 400 and err["code"] == "OutOfStock" and err["skus"] == [sku]
    assert err["lineItems"] == [short["lineItems"][0]["id"]]
    assert _dc_entry(ct, sku)["quantityOnStock"] == start
    no_entry = _cart(ct, [(sku, 1)], "TrackOnly", channel_key=None)
    r = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": no_entry["id"]},
                                      "version": no_entry["version"]})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "OutOfStock"
    track = _cart(ct, [(sku, start + 3)], "TrackOnly")
    assert ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": track["id"]},
                                         "version": track["version"]}).status_code == 201
    assert _dc_entry(ct, sku)["quantityOnStock"] == -3
    free = _cart(ct, [(sku, 50)], "None")
    assert ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": free["id"]},
                                         "version": free["version"]}).status_code == 201
    assert _dc_entry(ct, sku)["quantityOnStock"] == -3


def test_order_deduction_lag_knob(estate: Estate) -> None:
    """Kills: the eventual-consistency knob ignored (entry must settle only after the lag, reservation check at once)."""
    for ct in _served(estate, inventory_lag_s=5.0):
        sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 2)
        start = estate.initial_stock["DC01"][sku]
        ct.state.place_order("web-se", [(sku, start)], "a@example.com")
        assert _dc_entry(ct, sku)["availableQuantity"] == start
        cart = _cart(ct, [(sku, 1)], "ReserveOnOrder")
        r = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": cart["id"]}, "version": cart["version"]})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "OutOfStock"
        ct.clock.advance(5)
        assert ct.state.stock("DC01", sku) == (0, 0)


def test_order_import_and_update_actions(ct: Served, estate: Estate) -> None:
    """Kills: import emitting OrderCreated or touching stock in mode None, state-change messages with old values,
    delivery/parcel ids, sync info, return rules (Returned -> BackInStock|Unusable only)."""
    sku = _skus(estate)[4]
    start = estate.initial_stock["DC01"][sku]
    dc = ct.http.get("/channels/key=DC01").json()["id"]
    draft = {"orderNumber": "IMP-1", "totalPrice": {"currencyCode": "SEK", "centAmount": 10000},
             "lineItems": [{"name": {"en": "X"}, "variant": {"sku": sku}, "quantity": 2,
                            "price": {"value": {"currencyCode": "SEK", "centAmount": 5000}},
                            "supplyChannel": {"typeId": "channel", "id": dc}}]}
    r = ct.http.post("/orders/import", json=draft)
    assert r.status_code == 201, r.text
    order = r.json()
    assert _dc_entry(ct, sku)["quantityOnStock"] == start
    assert [m["type"] for m in ct.state.all_messages()] == ["OrderImported"]
    line = order["lineItems"][0]["id"]
    v = order["version"]

    def act(*actions: dict) -> httpx.Response:
        nonlocal v
        resp = ct.http.post(f"/orders/{order['id']}", json={"version": v, "actions": list(actions)})
        if resp.status_code == 200:
            v = resp.json()["version"]
        return resp

    assert act({"action": "changeOrderState", "orderState": "Confirmed"}).status_code == 200
    assert act({"action": "changeShipmentState", "shipmentState": "Ready"},
               {"action": "changePaymentState", "paymentState": "Paid"}).status_code == 200
    d = act({"action": "addDelivery", "items": [{"id": line, "quantity": 2}],
             "parcels": [{"trackingData": {"trackingId": "T1", "carrier": "DHL"}}]}).json()
    delivery = d["shippingInfo"]["deliveries"][0]
    parcel = delivery["parcels"][0]
    assert act({"action": "setParcelTrackingData", "parcelId": parcel["id"],
                "trackingData": {"trackingId": "T2"}}).status_code == 200
    synced = act({"action": "updateSyncInfo", "channel": {"typeId": "channel", "key": "ST-SE01"},
                  "externalId": "POS-9"}).json()
    assert synced["syncInfo"][0]["channel"]["typeId"] == "channel" and synced["syncInfo"][0]["externalId"] == "POS-9"
    ret = act({"action": "addReturnInfo", "items": [{"quantity": 1, "lineItemId": line, "shipmentState": "Returned"},
                                                    {"quantity": 1, "lineItemId": line, "shipmentState": "Advised"}],
               "returnTrackingId": "R1"}).json()
    items = ret["returnInfo"][0]["items"]
    assert [(i["shipmentState"], i["paymentState"]) for i in items] == [("Returned", "Initial"),
                                                                        ("Advised", "NonRefundable")]
    assert act({"action": "setReturnShipmentState", "returnItemId": items[1]["id"],
                "shipmentState": "BackInStock"}).json()["errors"][0]["code"] == "InvalidOperation"
    assert act({"action": "setReturnShipmentState", "returnItemId": items[0]["id"],
                "shipmentState": "BackInStock"}).status_code == 200
    assert act({"action": "setReturnShipmentState", "returnItemId": items[0]["id"],
                "shipmentState": "Unusable"}).status_code == 400
    assert act({"action": "setReturnPaymentState", "returnItemId": items[0]["id"],
                "paymentState": "Refunded"}).status_code == 200
    msgs = [m for m in ct.state.all_messages() if m["resource"]["id"] == order["id"]]
    assert [m["type"] for m in msgs] == [
        "OrderImported", "OrderStateChanged", "OrderShipmentStateChanged", "OrderPaymentStateChanged",
        "DeliveryAdded", "ParcelTrackingDataUpdated", "ReturnInfoAdded", "OrderReturnShipmentStateChanged"]
    assert [m["sequenceNumber"] for m in msgs] == list(range(1, len(msgs) + 1))
    assert msgs[1]["orderState"] == "Confirmed" and msgs[1]["oldOrderState"] == "Open"
    assert msgs[5]["deliveryId"] == delivery["id"] and msgs[5]["trackingData"] == {"trackingId": "T2"}
    assert msgs[-1]["returnItemId"] == items[0]["id"] and msgs[-1]["returnShipmentState"] == "BackInStock"
    assert all(m["resourceUserProvidedIdentifiers"] == {"orderNumber": "IMP-1"} for m in msgs)
    assert act({"action": "changeOrderState", "orderState": "Weird"}).status_code == 400


def test_payments_and_customers(ct: Served) -> None:
    """Kills: transactions not kept, transaction state changes lost, customer email uniqueness, `{customer}` wrap,
    customer update actions and their messages."""
    p = ct.http.post("/payments", json={"amountPlanned": {"currencyCode": "SEK", "centAmount": 1000},
                                        "key": "pay-1"})
    assert p.status_code == 201, p.text
    pay = p.json()
    assert pay["amountPlanned"]["centAmount"] == 1000 and pay["transactions"] == []
    r = ct.http.post(f"/payments/{pay['id']}", json={"version": pay["version"], "actions": [
        {"action": "addTransaction", "transaction": {"type": "Charge", "state": "Pending", "interactionId": "psp-1",
                                                     "amount": {"currencyCode": "SEK", "centAmount": 1000}}}]}).json()
    tx = r["transactions"][0]
    assert (tx["type"], tx["state"], tx["interactionId"]) == ("Charge", "Pending", "psp-1")
    r = ct.http.post("/payments/key=pay-1", json={"version": r["version"], "actions": [
        {"action": "changeTransactionState", "transactionId": tx["id"], "state": "Success"}]}).json()
    assert r["transactions"][0]["state"] == "Success"
    c = ct.http.post("/customers", json={"email": "Ann@Example.com", "password": "pw", "firstName": "Ann",
                                         "key": "cust-1", "addresses": [{"country": "SE", "city": "Lund"}],
                                         "defaultShippingAddress": 0})
    assert c.status_code == 201 and set(c.json()) == {"customer"}
    cust = c.json()["customer"]
    assert cust["defaultShippingAddressId"] == cust["addresses"][0]["id"]
    dup = ct.http.post("/customers", json={"email": "ann@example.com", "password": "x"})
    assert dup.status_code == 400 and dup.json()["errors"][0]["field"] == "email"
    u = ct.http.post("/customers/key=cust-1", json={"version": cust["version"], "actions": [
        {"action": "setLastName", "lastName": "Berg"}, {"action": "changeEmail", "email": "ann@berg.se"},
        {"action": "setCustomerNumber", "customerNumber": "C-1"}, {"action": "setExternalId", "externalId": "E1"},
        {"action": "addAddress", "address": {"country": "SE", "city": "Malmo"}}]}).json()
    assert (u["lastName"], u["email"], u["customerNumber"], len(u["addresses"])) == ("Berg", "ann@berg.se", "C-1", 2)
    q = ct.http.get("/customers", params={"where": 'email="ann@berg.se"'}).json()
    assert q["results"][0]["id"] == cust["id"]
    types = [m["type"] for m in ct.state.all_messages() if m["resource"]["typeId"] in ("customer", "payment")]
    assert types == ["PaymentCreated", "PaymentTransactionAdded", "PaymentTransactionStateChanged", "CustomerCreated",
                     "CustomerLastNameSet", "CustomerEmailChanged", "CustomerExternalIdSet", "CustomerAddressAdded"]
    changed = next(m for m in ct.state.all_messages() if m["type"] == "CustomerEmailChanged")
    assert (changed["email"], changed["oldEmail"]) == ("ann@berg.se", "Ann@Example.com")


# -- messages and subscriptions ----------------------------------------------------------------------------


def test_messages_query_publication_lag_and_retention(estate: Estate) -> None:
    """Kills: messages visible before publication, pulls by createdAt missing late-published ones, retention."""
    for ct in _served(estate, publication_lag_s=30.0, seed=3, token_ttl_s=10**8):
        skus = _skus(estate)[:6]
        for i, sku in enumerate(skus):
            ct.clock.advance(1)
            ct.state.set_stock("DC01", sku, 100 + i)
        assert ct.http.get("/messages", params={"withTotal": "true"}).json()["total"] < len(skus)
        ct.clock.advance(31)
        body = ct.http.get("/messages", params=[("where", 'type="InventoryEntryQuantitySet"'),
                                                ("sort", "createdAt asc"), ("sort", "id asc"), ("limit", 500)]).json()
        assert [m["newQuantityOnStock"] for m in body["results"]] == [100 + i for i in range(len(skus))]
        since = body["results"][2]["createdAt"]
        later = ct.http.get("/messages", params={"where": f'createdAt >= "{since}"'}).json()
        assert later["total"] == len(skus) - 2
        ct.clock.advance(16 * 86400)
        assert ct.http.get("/messages").json()["total"] == 0


def test_subscription_queue_delivery_knobs(estate: Estate) -> None:
    """Kills: no test message, messages of other types delivered, duplicates/shuffle knobs not applied."""
    for ct in _served(estate, delivery=DeliveryKnobs(duplicate_rate=1.0, shuffle_window=4), seed=1):
        r = ct.http.post("/subscriptions", json={"key": "orders-q", "destination": {"type": "SQS", "queueUrl": "q"},
                                                 "messages": [{"resourceTypeId": "order",
                                                               "types": ["OrderCreated"]}]})
        assert r.status_code == 201 and r.json()["status"] == "Healthy"
        assert [p["notificationType"] for p in ct.state.subscription_queue("orders-q")] == ["ResourceCreated"]
        sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 5)
        orders = [ct.state.place_order("web-se", [(sku, 1)], f"{i}@example.com") for i in range(3)]
        got = ct.state.subscription_queue("orders-q")
        assert all(p["notificationType"] == "Message" and p["type"] == "OrderCreated" and
                   p["projectKey"] == PROJECT for p in got)
        assert sorted(p["resource"]["id"] for p in got) == sorted(o["id"] for o in orders for _ in range(2))
        assert ct.state.subscription_queue("orders-q") == []


# -- faults, other writers, world API ----------------------------------------------------------------------


def test_fail_next_and_concurrent_writer(ct: Served, estate: Estate) -> None:
    """Kills: injected failures not served, after_execute not taking effect, other-writer knob not bumping versions."""
    sku = _skus(estate)[5]
    entry = _dc_entry(ct, sku)
    ct.state.fail_next(503, count=2)
    assert [ct.http.get("/inventory").status_code for _ in range(3)] == [503, 503, 200]
    ct.state.fail_next(502, after_execute=True)
    r = ct.http.post(f"/inventory/{entry['id']}", json={"version": entry["version"],
                                                         "actions": [{"action": "addQuantity", "quantity": 1}]})
    assert r.status_code == 502 and r.json()["statusCode"] == 502
    assert _dc_entry(ct, sku)["quantityOnStock"] == estate.initial_stock["DC01"][sku] + 1
    ct.state.concurrent_writer(1.0, delta=2)
    current = _dc_entry(ct, sku)
    r = ct.http.post(f"/inventory/{entry['id']}", json={"version": current["version"],
                                                         "actions": [{"action": "addQuantity", "quantity": 1}]})
    assert r.status_code == 409 and r.json()["errors"][0]["currentVersion"] == current["version"] + 1
    ct.state.concurrent_writer(0)
    ok = ct.http.post(f"/inventory/{entry['id']}", json={"version": current["version"] + 1,
                                                          "actions": [{"action": "addQuantity", "quantity": 1}]})
    assert ok.json()["quantityOnStock"] == estate.initial_stock["DC01"][sku] + 4
    assert ct.state.request_count("POST", "inventory") == 3 and ct.state.updates["inventory"] >= 3


def test_world_place_ship_and_stock(ct: Served, estate: Estate) -> None:
    """Kills: world checkout not deducting the supply channel, payment without Authorization+Charge, shipping
    without delivery/Shipped, set_stock not acting as another writer."""
    sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 3)
    start = estate.initial_stock["DC01"][sku]
    order = ct.state.place_order("web-se", [(sku, 3)], "w@example.com", created_at=T0 - timedelta(hours=1))
    assert order["createdAt"].startswith("2026-03-02T08:00:00") and order["store"] == {"typeId": "store",
                                                                                       "key": "web-se"}
    assert ct.state.stock("DC01", sku) == (start - 3, start - 3)
    pay_id = order["paymentInfo"]["payments"][0]["id"]
    pay = ct.http.get(f"/payments/{pay_id}").json()
    assert [(t["type"], t["state"]) for t in pay["transactions"]] == [("Authorization", "Success"),
                                                                      ("Charge", "Success")]
    shipped = ct.state.ship_order(order["id"])
    assert shipped["shipmentState"] == "Shipped" and len(shipped["shippingInfo"]["deliveries"]) == 1
    via_api = ct.http.get(f"/orders/{order['id']}", params={"expand": "paymentInfo.payments[*]"}).json()
    assert via_api["paymentInfo"]["payments"][0]["obj"]["id"] == pay_id
    before = _dc_entry(ct, sku)
    ct.state.set_stock("DC01", sku, 42)
    after = _dc_entry(ct, sku)
    assert after["quantityOnStock"] == 42 and after["version"] == before["version"] + 1
    assert ct.state.message_count("InventoryEntryQuantitySet") == 1


def test_reserve_on_cart_and_expand(ct: Served, estate: Estate) -> None:
    """Kills: ReserveOnCart reservations not lowering availableQuantity (onStock unchanged) or double-deducting on
    order; `expand=supplyChannel` not resolving the reference."""
    sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 4)
    start = estate.initial_stock["DC01"][sku]
    cart = _cart(ct, [(sku, 3)], "ReserveOnCart")
    entry = _dc_entry(ct, sku)
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (start, start - 3)
    r = ct.http.post("/orders", json={"cart": {"typeId": "cart", "id": cart["id"]}, "version": cart["version"]})
    assert r.status_code == 201, r.text
    assert ct.state.stock("DC01", sku) == (start - 3, start - 3)
    ext = ct.http.get(f"/inventory/{entry['id']}", params={"expand": "supplyChannel"}).json()
    assert ext["supplyChannel"]["obj"]["key"] == "DC01"


def test_random_bursts_and_delayed_subscription_delivery(estate: Estate) -> None:
    """Kills: the burst-rate knob ignored (every request must fail with a gateway status), delivery delay ignored."""
    for ct in _served(estate, burst_rate=1.0, burst_length=1, delivery=DeliveryKnobs(delay_s=10.0)):
        statuses = {ct.http.get("/channels").status_code for _ in range(6)}
        assert statuses <= {502, 503, 504} and statuses
        ct.state.burst_rate = 0.0
        assert ct.http.post("/subscriptions", json={"key": "inv", "destination": {"type": "SQS"},
                                                    "messages": [{"resourceTypeId": "inventory-entry"}]}
                            ).status_code == 201
        ct.state.subscription_queue("inv")  # the test message
        ct.state.set_stock("DC01", _skus(estate)[0], 5)
        assert ct.state.subscription_queue("inv") == []
        ct.clock.advance(10)
        got = ct.state.subscription_queue("inv")
        assert [p["type"] for p in got] == ["InventoryEntryQuantitySet"] and got[0]["newQuantityOnStock"] == 5


def test_order_and_message_predicates(ct: Served, estate: Estate) -> None:
    """Kills: array predicates `lineItems(variant(sku=...))`, `type in (...)` and `resource(typeId=...)` on
    messages, or `createdAt` comparisons between differently written datetimes, evaluated wrongly."""
    a, b = [s for s, q in estate.initial_stock["DC01"].items() if q >= 2][:2]
    first = ct.state.place_order("web-se", [(a, 1)], "a@example.com", created_at=T0 - timedelta(hours=2))
    second = ct.state.place_order("web-se", [(a, 1), (b, 1)], "b@example.com", created_at=T0 - timedelta(hours=1))
    with_b = ct.http.get("/orders", params={"where": f'lineItems(variant(sku="{b}"))'}).json()
    assert [o["id"] for o in with_b["results"]] == [second["id"]]
    with_a = ct.http.get("/orders", params={"where": f'lineItems(variant(sku="{a}"))', "sort": "createdAt asc"})
    assert [o["id"] for o in with_a.json()["results"]] == [first["id"], second["id"]]
    later = ct.http.get("/orders", params={"where": 'createdAt > "2026-03-02T07:00:00Z"'}).json()
    assert [o["id"] for o in later["results"]] == [second["id"]]
    msgs = ct.http.get("/messages", params=[("where", 'type in ("OrderCreated", "PaymentCreated")'),
                                            ("where", 'resource(typeId="order")'), ("limit", 500)]).json()
    assert sorted(m["resource"]["id"] for m in msgs["results"]) == sorted([first["id"], second["id"]])
