"""Centra's own documented operations against the Centra simulator (issue 12).

The fixture `centra_documented_ops.json` holds every GraphQL operation of the code blocks of Centra's docs
(`centrahq/api-documentation` @3a2b757f; written by `scripts/extract_centra_doc_ops.py`), verbatim, with
its scope. Every in-scope operation must validate against the simulator's schema; the runnable ones are
sent over loopback HTTP to a served `CentraSimulator` with ids taken from the simulated world, and must
come back without `errors`/`userErrors`, with the documented effect on the simulated state and, where the
docs show the response's `extensions.permissionsUsed`, with exactly those permissions.

The oracle is Centra's documentation (the operation texts and their documented permissions) and the
simulator's world state read through the Python world API, never the resolvers under test.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.language import REMOVE, Visitor

from pipelines.simulators.centra import CentraSimulator, CentraState
from pipelines.simulators.centra.resolvers import build_schema
from pipelines.simulators.serving import BackgroundServer
from pipelines_tests.centra_fixtures import ManualClock, small_estate

FIXTURE = Path(__file__).with_name("centra_documented_ops.json")
OPS: list[dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))["operations"]
IN_SCOPE = [op for op in OPS if op["scope"] == "in"]
BY_ID = {op["id"]: op for op in OPS}
TOKEN = "centra-sim-token"
SCHEMA = build_schema()


class _Strip(Visitor):
    """Drops inline fragments, spreads and fragment definitions on the given (wholesale) types."""

    def __init__(self, types: set[str], fragments_on: dict[str, str]) -> None:
        super().__init__()
        self.types, self.fragments_on = types, fragments_on

    def enter_inline_fragment(self, node: InlineFragmentNode, *_: Any) -> Any:
        return REMOVE if node.type_condition and node.type_condition.name.value in self.types else None

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> Any:
        return REMOVE if self.fragments_on.get(node.name.value) in self.types else None

    def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> Any:
        return REMOVE if node.type_condition.name.value in self.types else None


def document_text(op: dict[str, Any]) -> str:
    """The operation as sent: the doc's text (or its stated repair), plus the fragments it uses from other
    blocks, minus the wholesale-only type conditions the fixture names."""
    text = op.get("repaired_text") or op["text"]
    text = "\n\n".join([text, *(f["text"] for f in op.get("fragments", []))])
    strip = set(op.get("strip_type_conditions") or [])
    if strip:
        doc = parse(text)
        fragments_on = {d.name.value: d.type_condition.name.value for d in doc.definitions
                        if isinstance(d, FragmentDefinitionNode)}
        text = print_ast(visit(doc, _Strip(strip, fragments_on)))
    return text


def _document(op: dict[str, Any]) -> DocumentNode:
    return parse(document_text(op))


def _skip_if_events_missing(op: dict[str, Any]) -> None:
    """Operations another engineer builds (events system, allocation) are skipped until their roots exist."""
    root = SCHEMA.mutation_type if op["type"] == "mutation" else SCHEMA.query_type
    missing = [r for r in op["roots"] if r not in root.fields]  # type: ignore[union-attr]
    if op.get("owner") and missing:
        pytest.skip(f"{op['owner']}: {', '.join(missing)} not in the schema yet")


# ------------------------------------------------------------------ the fixture itself


def test_fixture_covers_the_documented_operations() -> None:
    """Kills a fixture that lost operations or scope reasons: the in-scope set is the one the issue names,
    and every out-of-scope entry says why."""
    roots = {r for op in IN_SCOPE for r in op["roots"]}
    for needed in ("orders", "orderConnection", "setOrdersLock", "updateDirectToConsumerOrder", "confirmOrder",
                   "captureOrder", "createShipment", "updateShipment", "captureShipment", "completeShipment",
                   "createReturn", "returns", "completeReturn", "changeStock", "setStock", "rateLimits",
                   "cancelDirectToConsumerOrder", "events", "confirmEvents", "setEventListeners"):
        assert needed in roots, needed
    assert all(op["scope"] == "in" or re.match(r"out: \S", op["scope"]) for op in OPS)
    assert all(op["text"].strip() and op["doc"].startswith("pages/") and op["heading"] for op in OPS)
    assert len(IN_SCOPE) >= 50


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("op", IN_SCOPE, ids=[op["id"] for op in IN_SCOPE])
def test_documented_operation_validates(op: dict[str, Any]) -> None:
    """Kills a schema that lacks a documented type, field, argument, input field or enum value."""
    _skip_if_events_missing(op)
    errors = validate(SCHEMA, _document(op))
    assert not errors, [e.message for e in errors]


# ------------------------------------------------------------------ execution over loopback HTTP

MARKET = 1
DC = 1


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> CentraSimulator:
    # Europe/Stockholm: the docs' own responses are in a +01:00/+02:00 instance, so their times are oracles.
    return CentraSimulator(small_estate(), clock=clock, tokens=(TOKEN,), timezone="Europe/Stockholm")


@pytest.fixture
def server(sim: CentraSimulator) -> Iterator[BackgroundServer]:
    with sim.serve() as srv:
        yield srv


def _user_errors(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = list(node.get("userErrors") or [])
        return found + [e for k, v in node.items() if k != "userErrors" for e in _user_errors(v)]
    if isinstance(node, list):
        return [e for v in node for e in _user_errors(v)]
    return []


def run(server: BackgroundServer, op_id: str, subs: dict[str, str] | None = None,
        variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send a documented operation (ids substituted, each documented literal must be present) and check it
    ran clean: HTTP 200, no `errors`, no `userErrors`, and the documented `permissionsUsed` when shown."""
    op = BY_ID[op_id]
    assert op["scope"] == "in", op["scope"]
    text = document_text(op)
    for old, new in (subs or {}).items():
        assert old in text, f"{op_id}: documented literal {old!r} not found"
        text = text.replace(old, new)
    response = httpx.post(f"{server.url}/graphql", json={"query": text, "variables": variables or {},
                                                         "operationName": op.get("operation_name")},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    assert not _user_errors(body["data"]), _user_errors(body["data"])
    if op.get("documented_permissions") is not None:
        assert sorted(body["extensions"]["permissionsUsed"]) == sorted(op["documented_permissions"]), op_id
    return body["data"]


def _skus(state: CentraState, n: int) -> list[str]:
    return [state.sizes[sid].size.sku for sid in state.size_ids_sorted[:n]]


def _list_price(state: CentraState, sku: str) -> float:
    ref = state.size_by_sku[sku]
    return ref.variant.prices[state.markets[MARKET].pricelist_id]


def _line_id(state: CentraState, number: int, sku: str) -> int:
    return next(ln["id"] for ln in state.order_summary(number)["lines"] if ln["sku"] == sku)


FLOWS = {
    "erp": {"getOrders": "02.erp-gql-integration:1775", "basic": "02.erp-gql-integration:1904",
            "cancelLines": "02.erp-gql-integration:2077", "confirm": "02.erp-gql-integration:2288",
            "captureOrder": "02.erp-gql-integration:2382", "createShipment": "02.erp-gql-integration:2412",
            "capture": "02.erp-gql-integration:2586", "markPaid": "02.erp-gql-integration:2614",
            "createCapturing": "02.erp-gql-integration:2713", "complete": "02.erp-gql-integration:2757",
            "createReturn": "02.erp-gql-integration:2879", "returns": "02.erp-gql-integration:2913",
            "completeReturn": "02.erp-gql-integration:2931"},
    "dtc": {"getOrders": "01.dtc:516", "basic": "01.dtc:597", "cancelLines": "01.dtc:774", "confirm": "01.dtc:1162",
            "captureOrder": "01.dtc:1378", "createShipment": "01.dtc:1414", "capture": "01.dtc:1766",
            "markPaid": "01.dtc:1659", "createCapturing": "01.dtc:1603", "complete": "01.dtc:1806",
            "createReturn": "01.dtc:1923", "returns": "01.dtc:1957", "completeReturn": "01.dtc:1973"},
}


@pytest.mark.parametrize("doc", sorted(FLOWS))
def test_documented_order_flow_runs_with_its_documented_effects(doc: str, sim: CentraSimulator,
                                                                server: BackgroundServer) -> None:
    """The documented DTC flow, in the docs' order: read, update, cancel a line, confirm, create an unpaid
    shipment, mark it paid, capture, complete, create+capture, return, complete the return, capture a whole
    order. Kills: a dropped `additionalMessage`/`internalShippingCost`/address update, a shipment email sent
    despite `sendEmail: false` or not sent with `true`, naive times read as UTC, stock not moving, a capture
    of the wrong amount, and permissionsUsed differing from the documented responses."""
    ops, state = FLOWS[doc], sim.state
    a, b, c, d = _skus(state, 4)
    pa = round(_list_price(state, a) * 0.8, 2)
    n = state.place_order(MARKET, [(a, 3), (b, 2)], email="jane.doe@example.com", unit_prices={a: pa},
                          shipping=49.0)["number"]
    cid = state.orders[n].customer_id
    got = run(server, ops["getOrders"], {"number: 14": f"number: {n}"})["orders"]
    assert [(o["number"], o["customer"]["id"]) for o in got] == [(n, cid)]

    basic = run(server, ops["basic"], {"number: 14": f"number: {n}", "id: 4\n": f"id: {cid}\n"})
    order = basic["updateDirectToConsumerOrder"]["order"]
    assert order["shippingAddress"]["city"] == "Stockholm" and order["billingAddress"]["address2"] == "1b"
    assert order["customer"] == {"email": "jon.snow@example.com", "firstName": "Jon", "lastName": "Snow"}
    assert state.orders[n].shipping_address["address1"] == "Teststr. 1"
    # the line discount the order was placed with (list price - charged), as discountsApplied
    assert order["discountsApplied"][0]["value"]["value"] == pytest.approx(round((_list_price(state, a) - pa) * 3, 2))

    fta_before = state.stock_of(DC, a)["fta"]
    cancel = run(server, ops["cancelLines"], {"number: 14": f"number: {n}", "id: 68": f"id: {_line_id(state, n, a)}"})
    assert {ln["quantity"] for ln in cancel["updateDirectToConsumerOrder"]["order"]["lines"]} == {2}
    assert state.stock_of(DC, a)["fta"] == fta_before + 1

    run(server, ops["confirm"], {"number: 14": f"number: {n}"})
    assert state.orders[n].status == "CONFIRMED"

    created = run(server, ops["createShipment"], {"number: 39790": f"number: {n}",
                                                  "id: 17635": f"id: {_line_id(state, n, a)}"})["createShipment"]
    shipment = created["shipment"]
    assert shipment["createdAt"] == "2022-06-23T15:47:12+02:00"  # the documented response: naive = instance time
    assert shipment["additionalMessage"] == "Additional message" and shipment["isPaid"] is False
    sid = shipment["id"]
    assert state.shipments[sid].additional_message == "Additional message"

    run(server, ops["markPaid"], {"id: 345": f"id: {sid}"})
    assert state.shipments[sid].is_paid
    run(server, ops["capture"], {"captureShipment(id: 123)": f"captureShipment(id: {sid})"})
    captures = [p for p in state.orders[n].payment_history if p.entry_type == "CAPTURE"]
    assert [p.value for p in captures] == [pytest.approx(round(2 * pa + 49.0, 2))]

    physical = state.stock_of(DC, a)["physical"]
    done = run(server, ops["complete"], {"id: 345": f"id: {sid}"})["completeShipment"]["shipment"]
    assert done["shippedAt"] == "2023-01-09T15:18:33+01:00" and done["internalShippingCost"]["value"] == 12
    assert done["carrierInformation"] == {"carrierName": "Carrier name", "serviceName": "Service name"}
    assert state.stock_of(DC, a)["physical"] == physical - 2
    assert state.shipments[sid].emails_sent == ["shipment_confirmation"]  # sendEmail: true on completion
    assert state.shipments[sid].internal_shipping_cost == (12.0, "SEK")

    both = run(server, ops["createCapturing"], {'"05ac658a8e815571fdba2984eb358932"': f'"{state.orders[n].id}"',
                                                "id: 10 }": f"id: {_line_id(state, n, b)} }}"})
    history = both["createShipment"]["shipment"]["order"]["paymentHistory"]
    assert [h["entryType"] for h in history] == ["CAPTURE", "CAPTURE"]
    assert history[1]["value"]["value"] == pytest.approx(_list_price(state, b))

    m = state.place_order(MARKET, [(c, 2), (d, 2)], email="r@example.com", shipping=49.0)["number"]
    shipped = state.ship_order(m)
    sl = {state.order_lines[x.order_line_id].ref.size.sku: x.id for x in state.shipments[shipped["shipment_id"]].lines}
    phys_c = state.stock_of(DC, c)["physical"]
    ret = run(server, ops["createReturn"], {"id: 1338": f"id: {shipped['shipment_id']}", "id: 2943": f"id: {sl[c]}",
                                            "id: 2944": f"id: {sl[d]}"})["createReturn"]["return"]
    rid = ret["id"]
    assert len(ret["lines"]) == 2 and state.returns[rid].shipping == 10.0
    assert state.stock_of(DC, c)["physical"] == phys_c + 2  # releaseItemsBackToWarehouse
    assert rid in [r["id"] for r in run(server, ops["returns"])["returns"]]
    run(server, ops["completeReturn"], {"id: 315": f"id: {rid}"})
    assert state.returns[rid].status == "COMPLETED"

    k = state.place_order(MARKET, [(d, 1)], email="k@example.com", shipping=20.0)["number"]
    state.confirm_order(k)
    whole = run(server, ops["captureOrder"], {'"05ac658a8e815571fdba2984eb358932"': f'"{state.orders[k].id}"'})
    entry = whole["captureOrder"]["paymentHistoryEntry"]
    assert (entry["entryType"], entry["status"]) == ("CAPTURE", "SUCCESS")
    assert entry["value"]["value"] == pytest.approx(round(_list_price(state, d) + 20.0, 2))
    assert state.create_shipment(k).is_captured  # a later shipment of a captured order is captured


def test_documented_dtc_order_operations(sim: CentraSimulator, server: BackgroundServer) -> None:
    """The DTC page's remaining order operations and the ERP page's lock. Kills: a hold that does not hold,
    a shipping cost update that does not lower the shipping, a cancel that leaves stock allocated, a fetch-all
    query without shipping option / payment method / brand, date filters read as UTC."""
    state = sim.state
    a, b = _skus(state, 2)
    n = state.place_order(MARKET, [(a, 1)], email="h@example.com", shipping=49.0,
                          shipping_option="Click & Collect")["number"]
    m = state.place_order(MARKET, [(b, 2)], email="i@example.com")["number"]

    run(server, "01.dtc:570", {"number: 14": f"number: {n}"})
    assert state.orders[n].is_on_hold

    everything = run(server, "01.dtc:14")
    mine = next(o for o in everything["orders"] if o["number"] == n)
    assert mine["shippingPriceGroup"]["shippingOption"]["name"] == "Click & Collect"
    assert mine["paymentMethod"] is not None and mine["lines"][0]["brand"]["name"] == state.estate.name
    assert everything["baseCurrency"] == [{"code": state.estate.base_currency}]
    assert mine["totals"]["shipping"]["value"] == 49.0

    # 2026-03-02 in Stockholm: the orders were placed 2026-03-02 09:00 UTC = 10:00 local
    day = run(server, "01.dtc:330", {"2021-10-23": "2026-03-02"})
    assert {o["number"] for o in day["orders"]} == {n, m}
    assert run(server, "01.dtc:330", {"2021-10-23": "2026-03-01"})["orders"] == []

    state.update_order(n, is_on_hold=False)
    state.confirm_order(n)
    run(server, "01.dtc:1269", {'"f8b90249400edc71f30ce1caa6f0b911"': f'"{state.orders[n].id}"'})
    assert state.orders[n].shipping_value == 30.0

    run(server, "01.dtc:1162", {"number: 14": f"number: {m}"})
    locked = run(server, "02.erp-gql-integration:1833", {"number: 39514": f"number: {n}",
                                                         "number: 39515": f"number: {m}"})
    assert [o["isLocked"] for o in locked["setOrdersLock"]["orders"]] == [True, True]
    assert state.orders[n].is_locked and state.orders[m].is_locked

    before = state.stock_of(DC, b)
    run(server, "01.dtc:994", {'"c80521760fe108d56513234f97da4f4a"': f'"{state.orders[m].id}"'})
    after = state.stock_of(DC, b)  # stockAction removeItemsFromStock: the allocated units leave the warehouse
    assert state.orders[m].status == "CANCELLED"
    assert (after["physical"], after["allocated"], after["fta"]) == (before["physical"] - 2, before["allocated"] - 2,
                                                                      before["fta"])

    conn = run(server, "01.authorization:88")["orderConnection"]  # the wholesale store has no orders here
    assert conn["edges"] == []

    shipped = state.ship_order(n)
    rid = state.create_return(n, [(a, 1)])["id"]
    other = state.place_order(MARKET, [(a, 1)], email="someone.else@example.com")["number"]
    state.ship_order(other)
    state.create_return(other, [(a, 1)])
    cid = state.orders[n].customer_id
    assert shipped["shipment_id"] in state.orders[n].shipment_ids
    mine = run(server, "01.authorization:358", {"customerId: 1": f"customerId: {cid}"})["returns"]
    assert mine == [{"id": rid, "customer": {"email": "h@example.com"}}]


def test_documented_stock_operations(sim: CentraSimulator, server: BackgroundServer) -> None:
    """changeStock (add, remove, move) and setStock (physical, and free-to-allocate) as documented. Kills:
    variant/size references resolved to the wrong size, a move that only removes, FTA set as physical."""
    state = sim.state
    v1 = state.variants[1]
    v2 = state.variants[sorted(state.variants)[1]]
    size_of = {s.size: s for s in v1.sizes}
    v2_size = v2.sizes[0]

    def physical(wid: int, size: Any) -> int:
        return state.stock_of(wid, size.sku)["physical"]

    s1 = next(s for s in v1.sizes if state.size_names[s.size] == 1)
    s2 = next(s for s in v1.sizes if state.size_names[s.size] == 2)
    for op_id in ("02.erp-gql-integration:868", "05.pim-gql-integration:2816"):
        before = physical(3, v2_size)
        run(server, op_id, {"productVariant: {id: 2}": f"productVariant: {{id: {v2.variant_id}}}",
                            'size: {name: "S"}': f'size: {{name: "{v2_size.size}"}}'})
        assert physical(3, v2_size) == before + 2
    for op_id in ("02.erp-gql-integration:919", "05.pim-gql-integration:2871"):
        before = physical(1, s1)
        run(server, op_id)
        assert physical(1, s1) == before - 5
    before = physical(3, s1)
    run(server, "05.pim-gql-integration:2787")
    assert physical(3, s1) == before + 5
    out_before, in_before = physical(1, s2), physical(2, s2)
    run(server, "05.pim-gql-integration:2930", {"id: 2459": "id: 1"})
    assert (physical(1, s2), physical(2, s2)) == (out_before - 1, in_before + 1)
    xl = sorted(size_of)[-1]
    for op_id in ("02.erp-gql-integration:970", "05.pim-gql-integration:2987"):
        run(server, op_id, {"id: 1445": "id: 1", '"XL"': f'"{xl}"'})
        assert physical(1, size_of[xl]) == 10
    state.place_order(MARKET, [(size_of[xl].sku, 2)], email="fta@example.com")
    run(server, "02.erp-gql-integration:970", {"id: 1445": "id: 1", '"XL"': f'"{xl}"', "PHYSICAL": "FREE_TO_ALLOCATE"})
    assert state.stock_of(1, size_of[xl].sku) | {} == {"physical": 12, "allocated": 2, "fta": 10, "demand": 0}


def test_documented_reads(sim: CentraSimulator, server: BackgroundServer) -> None:
    """The reference and catalog reads. Kills: filters ignored (name contains, storeId), wrong EU flags, a
    product counter or stock totals that disagree with the tenant."""
    state = sim.state
    assert len(run(server, "03.api-rate-limits:83")["rateLimits"]) == 6
    assert [m["id"] for m in run(server, "01.dtc:206")["markets"]] == sorted(
        (m.id for m in state.markets.values() if m.store_id == 1), reverse=True)
    assert {p["id"] for p in run(server, "01.dtc:221")["pricelists"]} == {
        p.id for p in state.pricelists.values() if p.store_id == 1}
    countries = {c["name"]: c for c in run(server, "01.dtc:280")["countries"]}
    assert countries["Sweden"]["isEU"] is True and countries["Sweden"]["continent"] == "Europe"
    assert all(c["isEU"] is False for name, c in countries.items() if name in ("Norway", "United Kingdom"))
    assert {s["id"] for s in run(server, "05.pim-gql-integration:55")["stores"]} == set(state.stores)
    shops = run(server, "05.pim-gql-integration:1130", {'"Retail"': '"Store"'})["warehouses"]
    assert [w["id"] for w in shops] == sorted(w["id"] for w in state.warehouses.values() if "Store" in w["name"])
    assert [p["name"] for p in run(server, "05.pim-gql-integration:2005")["pricelists"]] == [
        p.name for p in sorted(state.pricelists.values(), key=lambda p: p.id) if "SEK" in p.name]
    listed = run(server, "05.pim-gql-integration:2511")
    assert listed["counters"]["products"] == len(state.products)
    assert {p["productNumber"] for p in listed["products"]} == {p.product_number for p in state.products.values()}
    with_stock = run(server, "05.pim-gql-integration:2694")
    size = with_stock["products"][0]["variants"][0]["productSizes"][0]
    expected = sum(state.stock_of(w, size["SKU"])["physical"] for w in state.warehouses)
    assert size["stockTotals"]["physicalQuantity"] == expected


def test_operations_ran_cover_every_runnable_in_scope_operation() -> None:
    """Kills a silently shrinking execution set: every in-scope operation outside the events system is run by
    one of the tests above, as their source says (the ids given to `run(...)` and the flows), not a kept list."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))

    def op_args(scope: ast.AST) -> list[ast.expr]:
        return [n.args[1] for n in ast.walk(scope) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                and n.func.id == "run" and len(n.args) >= 2]

    called = {a.value for a in op_args(tree) if isinstance(a, ast.Constant)}
    for loop in (n for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                 and isinstance(n.iter, ast.Tuple)):  # for op_id in ("...", "..."): run(server, op_id)
        if any(isinstance(a, ast.Name) and a.id == loop.target.id for a in op_args(loop)):
            called |= {e.value for e in loop.iter.elts if isinstance(e, ast.Constant)}
    ran = {op_id for flow in FLOWS.values() for op_id in flow.values()} | called
    missing = [op["id"] for op in IN_SCOPE if not op.get("owner") and op["id"] not in ran]
    assert missing == []
