"""commercetools simulator against commercetools' RAML types and JSON examples
(../shared/reference/specs/commercetools/{types,examples}, copied from commercetools/commercetools-api-reference).

Checks, over loopback HTTP: responses carry every required property of ``InventoryEntry``, ``Order``,
``ReturnInfo``, ``ReturnItem``/``LineItemReturnItem`` and the message types we have RAML for, with enum values
from the RAML enums; no top-level field outside the RAML (field names are commercetools', never invented); the
example requests are accepted and have the documented effect; the 409 body is ``ErrorResponse`` +
``ConcurrentModificationError``.

The RAML base types ``BaseResource``, ``Message``/``OrderMessage`` and ``ErrorObject`` are not in the shared specs;
their required properties are written down here from ``api-specs/api/types/message/Message.raml`` and
``error/ErrorObject.raml`` of the same repository.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pipelines.estate.model import Estate, estate_from_dict
from pipelines.simulators.commercetools import CommercetoolsSimulator
from pipelines.simulators.estate_gen import generate_estate

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "specs" / "commercetools"
PROJECT = "nordlys-sim"
# Message.raml: required properties of every Message (``type`` is its discriminator).
MESSAGE_BASE = {"id": "string", "version": "number", "createdAt": "datetime", "lastModifiedAt": "datetime",
                "sequenceNumber": "number", "resource": "object", "resourceVersion": "number", "type": "string"}
MESSAGE_OPTIONAL = {"lastModifiedBy", "createdBy", "resourceUserProvidedIdentifiers"}
ERROR_OBJECT = {"code": "string", "message": "string"}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!include", lambda loader, node: None)


def _load_types() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((SPEC / "types").glob("*.raml")):
        out[path.stem] = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - SafeLoader
    return out


TYPES = _load_types()


def _props(name: str) -> dict[str, tuple[bool, str]]:
    """name -> (required, type) including inherited properties of a type we have."""
    t = TYPES[name]
    base = t.get("type")
    props: dict[str, tuple[bool, str]] = dict(_props(base)) if base in TYPES else {}
    if base in ("Message", "OrderMessage"):
        props.update({k: (True, v) for k, v in MESSAGE_BASE.items()})
    if base == "ErrorObject":
        props.update({k: (True, v) for k, v in ERROR_OBJECT.items()})
    for key, spec in (t.get("properties") or {}).items():
        required = not key.endswith("?")
        ptype = spec.get("type", "string") if isinstance(spec, dict) else str(spec)
        props[key.rstrip("?")] = (required, ptype)
    return props


def _is_datetime(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$", value) is not None


def conform(obj: Any, type_name: str, where: str = "$", closed: bool = True) -> list[str]:
    """Problems of ``obj`` against RAML type ``type_name`` (required props, primitive types, enums, nested types
    we have RAML for; ``closed``: no top-level property outside the type)."""
    if type_name.endswith("[]"):
        if not isinstance(obj, list):
            return [f"{where}: expected an array"]
        return [p for i, item in enumerate(obj) for p in conform(item, type_name[:-2], f"{where}[{i}]", closed)]
    if type_name in ("number", "integer"):
        return [] if isinstance(obj, int | float) and not isinstance(obj, bool) else [f"{where}: not a number"]
    if type_name == "string":
        return [] if isinstance(obj, str) else [f"{where}: not a string"]
    if type_name == "datetime":
        return [] if _is_datetime(obj) else [f"{where}: not a datetime: {obj!r}"]
    if type_name == "boolean":
        return [] if isinstance(obj, bool) else [f"{where}: not a boolean"]
    if type_name not in TYPES:
        return []  # a type the shared specs do not carry: not checked here
    t = TYPES[type_name]
    if "enum" in t:
        return [] if obj in t["enum"] else [f"{where}: {obj!r} not in {type_name} enum"]
    if t.get("discriminator") and isinstance(obj, dict) and obj.get(t["discriminator"]) in TYPES:
        type_name = obj[t["discriminator"]]
    if not isinstance(obj, dict):
        return [f"{where}: expected an object of {type_name}"]
    props = _props(type_name)
    problems = [f"{where}.{k}: required by {type_name}, missing" for k, (req, _) in props.items()
                if req and k not in obj]
    for key, value in obj.items():
        if key in props:
            problems += conform(value, props[key][1], f"{where}.{key}", closed=False)
        elif closed and not (type_name.endswith("Message") and key in MESSAGE_OPTIONAL):
            problems.append(f"{where}.{key}: not a property of {type_name}")
    return problems


def assert_conforms(obj: Any, type_name: str) -> None:
    problems = conform(obj, type_name)
    assert not problems, f"{type_name}:\n  " + "\n  ".join(problems)


def example(name: str, **subs: str) -> Any:
    text = (SPEC / "examples" / name).read_text(encoding="utf-8")
    for key, value in subs.items():
        text = text.replace("{{" + key + "}}", value)
    return json.loads(text)


@pytest.fixture(scope="module", name="estate")
def fixture_estate() -> Estate:
    return estate_from_dict(generate_estate(sizes=20, stores=2, commerce="commercetools"))


@pytest.fixture(name="sim")
def fixture_sim(estate: Estate) -> Iterator[tuple[CommercetoolsSimulator, httpx.Client]]:
    sim = CommercetoolsSimulator(estate, clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with sim.serve() as srv:
        basic = base64.b64encode(b"pipelines:pipelines-secret").decode()
        tok = httpx.post(f"{srv.url}/oauth/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
        with httpx.Client(base_url=f"{srv.url}/{PROJECT}", headers={"Authorization": f"Bearer {tok}"}) as http:
            yield sim, http


def test_raml_checker_catches_missing_and_invented_fields() -> None:
    """Kills: a checker that passes anything (the oracle of the other tests)."""
    good = example("inventory.example.json")
    assert conform(good, "InventoryEntry") == []
    assert conform({k: v for k, v in good.items() if k != "availableQuantity"}, "InventoryEntry")
    assert conform(dict(good, quantityAvailable=1), "InventoryEntry")
    assert conform({"id": "x", "quantity": 1, "type": "LineItemReturnItem", "shipmentState": "Gone",
                    "paymentState": "Initial", "lineItemId": "l", "createdAt": "2026-01-01T00:00:00.000Z",
                    "lastModifiedAt": "2026-01-01T00:00:00.000Z"}, "ReturnItem")


def test_inventory_examples_accepted_with_documented_effect(sim: tuple[CommercetoolsSimulator, httpx.Client]) -> None:
    """Kills: example drafts/actions refused, wrong effect of any inventory update action, non-RAML fields."""
    state, http = sim
    created = http.post("/inventory", json=example("inventory-create.example.json"))
    assert created.status_code == 201, created.text
    entry = created.json()
    expected = example("inventory.example.json")
    assert {k: entry[k] for k in ("version", "key", "sku", "quantityOnStock", "availableQuantity")} == {
        k: expected[k] for k in ("version", "key", "sku", "quantityOnStock", "availableQuantity")}
    assert_conforms(entry, "InventoryEntry")
    updated = http.post(f"/inventory/{entry['id']}", json=example("inventory-update.example.json")).json()
    assert updated["quantityOnStock"] == 8 and updated["availableQuantity"] == 8
    t = http.post("/types", json={"key": "example-type", "name": {"en": "Example"},
                                  "resourceTypeIds": ["inventory-entry"],
                                  "fieldDefinitions": [{"name": "exampleStringField", "type": {"name": "String"},
                                                        "required": False, "label": {"en": "x"}}]}).json()
    channel = http.get("/channels/key=ST-SE01").json()["id"]
    effects = {
        "InventoryEntryAddQuantityAction.json": ("quantityOnStock", 9),
        "InventoryEntryRemoveQuantityAction.json": ("quantityOnStock", 8),
        "InventoryEntryChangeQuantityAction.json": ("quantityOnStock", 5),
        "InventoryEntrySetKeyAction.json": ("key", "ie-key-1"),
        "InventoryEntrySetExpectedDeliveryAction.json": ("expectedDelivery", "2015-10-21T14:00:00.000Z"),
        "InventoryEntrySetInventoryLimitsAction.json": ("maxCartQuantity", 50),
        "InventoryEntrySetRestockableInDaysAction.json": ("restockableInDays", 7),
        "InventoryEntrySetReorderPointAction.json": ("stockLevels", {"reorderPoint": 100}),
        "InventoryEntrySetSafetyStockAction.json": ("stockLevels", {"reorderPoint": 100, "safetyStock": 50}),
        "InventoryEntrySetReservationExpirationInMinutesAction.json": ("reservationExpirationInMinutes", 5),
        "InventoryEntrySetSupplyChannelAction.json": ("supplyChannel", {"typeId": "channel", "id": channel}),
        "InventoryEntrySetCustomTypeAction.json": ("custom", {"type": {"typeId": "type", "id": t["id"]},
                                                              "fields": {"exampleStringField": "TextString"}}),
        "InventoryEntrySetCustomFieldAction.json": ("custom", {"type": {"typeId": "type", "id": t["id"]},
                                                               "fields": {"exampleStringField": "TextString"}}),
    }
    version = updated["version"]
    for name, (field, value) in effects.items():
        action = example(name, supplyChannelId=channel, **{"type-id": t["id"]})
        resp = http.post(f"/inventory/{entry['id']}", json={"version": version, "actions": [action]})
        assert resp.status_code == 200, (name, resp.text)
        body = resp.json()
        assert body[field] == value, name
        assert body["version"] == version + 1
        version = body["version"]
        assert_conforms(body, "InventoryEntry")
    assert body["availableQuantity"] == 5 and body["minCartQuantity"] == 2
    for entry_doc in http.get("/inventory", params={"limit": 50}).json()["results"]:
        assert_conforms(entry_doc, "InventoryEntry")
    quantity_set = [m for m in state.state.all_messages() if m["type"] == "InventoryEntryQuantitySet"]
    assert len(quantity_set) == 4  # the update example + add/remove/change examples, nothing else
    for m in quantity_set:
        assert_conforms(m, "InventoryEntryQuantitySetMessage")


def test_concurrent_modification_body_matches_raml(sim: tuple[CommercetoolsSimulator, httpx.Client]) -> None:
    """Kills: a 409 body that is not ErrorResponse + ConcurrentModificationError (currentVersion, message text)."""
    _, http = sim
    entry = http.get("/inventory", params={"limit": 1}).json()["results"][0]
    resp = http.post(f"/inventory/{entry['id']}", json={"version": entry["version"] + 5,
                                                         "actions": [{"action": "addQuantity", "quantity": 1}]})
    assert resp.status_code == 409
    body = resp.json()
    assert_conforms(body, "ErrorResponse")
    assert body["statusCode"] == 409 and body["message"] == body["errors"][0]["message"]
    err = body["errors"][0]
    assert_conforms(err, "ConcurrentModificationError")
    assert err["code"] == "ConcurrentModification" and err["currentVersion"] == entry["version"]
    assert err["message"] == (f"Object {entry['id']} has a different version than expected. "
                              f"Expected: {entry['version'] + 5} - Actual: {entry['version']}.")


def test_order_examples_and_return_types(sim: tuple[CommercetoolsSimulator, httpx.Client], estate: Estate) -> None:
    """Kills: order-create/import examples refused, Order/ReturnInfo/ReturnItem missing required properties or
    carrying invented ones, action examples without their effect, messages not matching their RAML."""
    sim_, http = sim
    state = sim_.state
    sku = next(s for s, q in estate.initial_stock["DC01"].items() if q >= 2)
    cart = http.post("/carts", json={"currency": "SEK", "country": "SE", "lineItems": [{"sku": sku, "quantity": 1}],
                                     "inventoryMode": "None"}).json()
    draft = example("order-create.example.json")
    draft["cart"]["id"], draft["version"] = cart["id"], cart["version"]
    created = http.post("/orders", json=draft)
    assert created.status_code == 201, created.text
    order = created.json()
    assert_conforms(order, "Order")
    imported = http.post("/orders/import", json=example("order-import.example.json"))
    assert imported.status_code == 201, imported.text
    imp = imported.json()
    assert_conforms(imp, "Order")
    shown = example("order-import-create.example.json")
    for key in ("orderNumber", "totalPrice", "orderState", "syncInfo", "returnInfo", "taxMode", "inventoryMode",
                "origin", "shippingMode", "lineItems"):
        assert imp[key] == shown[key], key
    assert imp["customLineItems"][0]["totalPrice"] == shown["customLineItems"][0]["totalPrice"]
    listed = http.get("/orders").json()
    assert set(listed) == set(example("orders.example.json")) and listed["total"] == 2
    line = order["lineItems"][0]["id"]
    version = order["version"]
    channel = http.get("/channels/key=DC01").json()["id"]

    def apply(action: dict[str, Any]) -> dict[str, Any]:
        nonlocal version
        resp = http.post(f"/orders/{order['id']}", json={"version": version, "actions": [action]})
        assert resp.status_code == 200, (action, resp.text)
        version = resp.json()["version"]
        assert_conforms(resp.json(), "Order")
        return resp.json()

    assert apply(example("OrderChangeOrderStateAction.json"))["orderState"] == "Open"
    assert apply(example("OrderChangePaymentStateAction.json"))["paymentState"] == "Failed"
    assert apply(example("OrderChangeShipmentStateAction.json"))["shipmentState"] == "Ready"
    synced = apply(example("OrderUpdateSyncInfoAction.json", **{"channel-id": channel}))
    assert synced["syncInfo"][0]["channel"] == {"typeId": "channel", "id": channel}
    assert _is_datetime(synced["syncInfo"][0]["syncedAt"])
    with_return = apply(example("OrderAddReturnInfoAction.json", lineItemId=line))
    info = with_return["returnInfo"][0]
    assert_conforms(info, "ReturnInfo")
    item = info["items"][0]
    assert_conforms(item, "ReturnItem")
    assert (item["type"], item["lineItemId"], item["quantity"], item["shipmentState"], item["paymentState"]) == (
        "LineItemReturnItem", line, 1, "Returned", "Initial")
    back = apply(example("OrderSetReturnShipmentStateAction.json", returnItemId=item["id"]))
    assert back["returnInfo"][0]["items"][0]["shipmentState"] == "BackInStock"
    paid = apply(example("OrderSetReturnPaymentStateAction.json", returnItemId=item["id"]))
    assert paid["returnInfo"][0]["items"][0]["paymentState"] == "NotRefunded"
    checked = 0
    for m in state.all_messages():
        name = f"{m['type']}Message"
        if name in TYPES:
            assert_conforms(m, name)
            checked += 1
        assert set(example("message.example.json")) - {"paymentId", "interfaceCode"} - set(m) <= \
            {"resourceUserProvidedIdentifiers"}
    assert checked >= 5  # OrderCreated, OrderStateChanged, OrderShipmentStateChanged, ReturnInfoAdded, ...
    messages = http.get("/messages", params={"where": f'resource(id="{order["id"]}")', "sort": "sequenceNumber asc"})
    assert set(messages.json()) == set(example("messages.example.json"))
    assert [m["type"] for m in messages.json()["results"]] == [
        "OrderCreated", "OrderStateChanged", "OrderPaymentStateChanged", "OrderShipmentStateChanged",
        "ReturnInfoAdded", "OrderReturnShipmentStateChanged"]
