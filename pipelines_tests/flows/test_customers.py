"""The single customer view: the pure merge on known cases, NewStore's customer profile API (simulator over
loopback HTTP through the connector) and a sync pass over real HTTP and a real store of record."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace

import dagster as dg
import httpx
import pytest
from sqlalchemy import select, text

from pipelines.connectors.commercetools import CommercetoolsClient
from pipelines.connectors.commercetools.customers import history_order
from pipelines.connectors.newstore import customers as ns_customers
from pipelines.connectors.newstore.errors import Conflict
from pipelines.customers.sync import run_pass
from pipelines.defs.customers import customer_links
from pipelines.defs.resources import CommercetoolsResource, EstateResource, NewStoreResource, StoreOfRecord
from pipelines.domain.customers import COMMERCE, OWNERSHIP, STORE, Customer, merge
from pipelines.domain.flows.customer_ports import HistoryLine, HistoryOrder, StaleCustomer
from pipelines.estate.model import load_estate
from pipelines.simulators.commercetools import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    CommercetoolsSimulator,
)
from pipelines.simulators.estate_gen import write_estate
from pipelines.store import customers as links_state
from pipelines.store.db import make_engine, table
from pipelines_tests.newstore_fixtures import (  # noqa: F401
    CLIENT_ID,
    CLIENT_SECRET,
    ServedNewStore,
    fixture_ns_estate,
    fixture_ns_served,
    make_simulator,
)


def cust(id_: str, email: str, first: str | None = None, last: str | None = None, v: str = "1") -> Customer:
    return Customer(id=id_, email=email, first_name=first, last_name=last, version=v, modified_at="2026-12-01T10:00:00Z")


# -- the ownership table and the pure merge -------------------------------------------------------------------------

def test_ownership_table_names_every_field_once_with_an_owner():
    """Kills: a field listed twice (two owners) or without an owner, or a store-captured field owned online."""
    names = [r.name for r in OWNERSHIP]
    assert len(names) == len(set(names))
    owners = {r.name: r.owner for r in OWNERSHIP}
    assert owners["email"] == owners["first_name"] == owners["last_name"] == owners["addresses"] == COMMERCE
    assert owners["phone"] == owners["home_store"] == owners["created_by"] == STORE
    assert {r.name for r in OWNERSHIP if r.synced} == {"email", "first_name", "last_name"}


def test_owned_field_edited_on_the_other_side_is_set_back_and_reported():
    """Kills: last-writer-wins (the store's newer name copied online), or an overwrite with no conflict reported."""
    baseline = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    online = cust("c1", "ann@example.com", "Ann", "Lee", v="5")
    in_store = cust("s1", "ann@example.com", "Anne", "Lee", v="2026-12-01T11:00:00.000Z")
    to_commerce, to_store = merge(online, in_store, baseline)
    assert to_commerce.empty and not to_commerce.overridden
    assert dict(to_store.set) == {"first_name": "Ann"}
    assert [(c.field, c.kept, c.overridden) for c in to_store.overridden] == [("first_name", "Ann", "Anne")]


def test_owner_change_propagates_without_conflict():
    """Kills: an owner's legitimate change reported as a conflict, or not carried to the other side."""
    baseline = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    to_commerce, to_store = merge(cust("c1", "ANN.NEW@example.com", "Ann", "Lee-Berg"),
                                  cust("s1", "ann@example.com", "Ann", "Lee"), baseline)
    assert to_commerce.empty
    assert dict(to_store.set) == {"email": "ANN.NEW@example.com", "last_name": "Lee-Berg"}
    assert to_store.overridden == ()


def test_gap_on_the_owner_side_is_filled_from_the_store():
    """Kills: an owner's empty field treated as 'owner wins' (the store's captured name wiped)."""
    to_commerce, to_store = merge(cust("c1", "bo@example.com"), cust("s1", "Bo@Example.com ", "Bo", "Ek"))
    assert dict(to_commerce.set) == {"first_name": "Bo", "last_name": "Ek"}
    assert to_store.empty, "e-mails differing only in case and spaces are the same"


def test_each_side_new_customer_is_created_on_the_other():
    """Kills: a one-sided customer dropped, or created with fields the other platform does not have."""
    c_only = merge(cust("c1", "cy@example.com", "Cy", None), None)
    assert c_only[1].create and dict(c_only[1].set) == {"email": "cy@example.com", "first_name": "Cy"}
    assert c_only[0].empty
    in_store = replace(cust("s1", "di@example.com", "Di", "Fo"), phone="+46700000000", home_store="ST-SE01")
    s_only = merge(None, in_store)
    assert s_only[0].create and dict(s_only[0].set) == {"email": "di@example.com", "first_name": "Di", "last_name": "Fo"}


def test_merge_of_agreeing_records_writes_nothing():
    """Kills: a merge that rewrites equal values (every pass would write every customer)."""
    values = {"email": "ed@example.com", "first_name": "Ed", "last_name": None}
    c, s = merge(cust("c1", "ed@example.com", "Ed"), cust("s1", "ED@example.com", " Ed "), values)
    assert c.empty and s.empty


# commercetools-api-reference `examples/order.example.json` (the fields the mapping reads, values as published)
RAML_ORDER_EXAMPLE = """{"id": "92f5a867-bf19-47ab-982c-6720a03a3921", "createdAt": "2017-01-04T19:54:49.797Z",
 "lastModifiedAt": "2017-01-04T19:54:49.797Z", "customerId": "7297c742-d8b0-484b-aadc-1d0ba6769dc9",
 "totalPrice": {"type": "centPrecision", "fractionDigits": 2, "currencyCode": "EUR", "centAmount": 1000},
 "lineItems": [{"id": "7297c742-d8b0-484b-aadc-1d0ba1869dc9", "variant": {"id": 1, "sku": "some-sku-123"},
   "price": {"id": "6d36dc85-6131-495d-9f20-d00f411d4124",
             "value": {"type": "centPrecision", "fractionDigits": 2, "currencyCode": "EUR", "centAmount": 1000}},
   "quantity": 1,
   "taxRate": {"name": "Bla", "amount": 0.1, "includedInPrice": false, "country": "DE", "subRates": []},
   "totalPrice": {"type": "centPrecision", "fractionDigits": 2, "currencyCode": "EUR", "centAmount": 1000},
   "taxedPrice": {"totalNet": {"type": "centPrecision", "fractionDigits": 2, "currencyCode": "EUR", "centAmount": 1000},
                  "totalGross": {"type": "centPrecision", "fractionDigits": 2, "currencyCode": "EUR",
                                 "centAmount": 1100}}}]}"""


def test_commercetools_order_maps_to_history_with_gross_amounts():
    """Kills: net amounts sent as NewStore's tax-included prices (the RAML example's line is taxed on top: net 10.00,
    gross 11.00), and orders without a number or e-mail sent (NewStore needs an external id; the profile is found
    by e-mail)."""
    raw = json.loads(RAML_ORDER_EXAMPLE)
    assert history_order(raw) is None, "the example has neither orderNumber nor customerEmail"
    order = history_order({**raw, "orderNumber": "N1", "customerEmail": "x@example.com"})
    assert order is not None and order.currency == "EUR" and order.customer_id == raw["customerId"]
    line = order.lines[0]
    assert (line.sku, line.quantity, line.total, line.list_unit_price, line.tax_rate) == \
        ("some-sku-123", 1, 11.0, 11.0, 0.1)
    assert order.total == 11.0 and order.placed_at == raw["createdAt"]


# -- NewStore's customer profile API (simulator + connector) --------------------------------------------------------

def test_profile_create_is_get_or_create_and_update_checks_last_updated_at(ns_served: ServedNewStore):
    """Kills: a second profile for the same e-mail, an update that ignores a newer state (lost update), or a
    request with both name approaches accepted."""
    with ns_served.client() as client:
        first = ns_customers.create_profile(client, {"email": "fi@example.com", "first_name": "Fi", "last_name": "Gu"})
        again = ns_customers.create_profile(client, {"email": "FI@example.com", "first_name": "Other"})
        assert again.id == first.id and again.first_name == "Fi" and first.full_name == "Fi Gu"
        updated = ns_customers.update_profile(client, first.id, str(first.updated_at), {"first_name": "Fia",
                                                                                           "last_name": "Gu"})
        assert updated.first_name == "Fia" and str(updated.updated_at) > str(first.updated_at)
        with pytest.raises(Conflict):
            ns_customers.update_profile(client, first.id, str(first.updated_at), {"first_name": "Late"})
        page = ns_customers.list_profiles(client, q="fi@example")
        assert [p.id for p in page.profiles] == [first.id] and page.total == 1
        assert ns_customers.get_profile(client, "no-such-profile") is None
    with ns_served.http() as http:
        both = http.post("/customer/profiles", json={"email": "x@example.com", "first_name": "X", "full_name": "X Y"})
        assert both.status_code == 400
        assert http.patch(f"/customer/profiles/{first.id}", json={"first_name": "Q"}).status_code == 400
        assert http.get("/customer/profiles", params={"count": 501}).status_code == 400
        assert http.get("/customer/profiles", params={"offset": 9999, "count": 2}).status_code == 400


# -- a pass over real HTTP (NewStore simulator) and a real store of record --------------------------------------------

class MemoryCommerce:
    """A commerce platform held in memory (a test double of the port: versions, keys, e-mail uniqueness)."""

    platform = "memory-commerce"

    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}
        self.orders: list[HistoryOrder] = []
        self.writes = 0
        self.clock = 0

    def _tick(self) -> str:
        self.clock += 1
        return f"2026-12-02T00:00:{self.clock:02d}.000Z"

    def add(self, id_: str, email: str, first: str | None = None, last: str | None = None, key: str | None = None):
        self.rows[id_] = {"id": id_, "email": email, "first_name": first, "last_name": last, "version": 1,
                          "key": key, "modified_at": self._tick()}

    def edit(self, id_: str, **changes: str | None) -> None:
        row = self.rows[id_]
        row.update(changes)
        row["version"] += 1
        row["modified_at"] = self._tick()

    def _c(self, row: dict) -> Customer:
        return Customer(id=row["id"], email=row["email"], first_name=row["first_name"], last_name=row["last_name"],
                        version=str(row["version"]), modified_at=row["modified_at"])

    def changed_since(self, cursor: str | None) -> Iterator[Customer]:
        return iter([self._c(r) for r in self.rows.values() if cursor is None or r["modified_at"] >= cursor])

    def get(self, customer_id: str) -> Customer | None:
        row = self.rows.get(customer_id)
        return self._c(row) if row else None

    def find_by_email(self, email: str) -> list[Customer]:
        return [self._c(r) for r in self.rows.values() if r["email"].casefold() == email.strip().casefold()]

    def create(self, values: Mapping[str, str | None], *, link_id: str) -> Customer:
        for r in self.rows.values():  # as the commercetools adapter: found by key, or by the e-mail it takes
            if r["key"] == f"ns-{link_id}" or r["email"].casefold() == str(values["email"]).casefold():
                return self._c(r)
        self.writes += 1
        new_id = f"c{len(self.rows) + 1}"
        self.add(new_id, str(values["email"]), values.get("first_name"), values.get("last_name"), key=f"ns-{link_id}")
        return self._c(self.rows[new_id])

    def orders_since(self, cursor: str | None, *, email: str | None = None) -> Iterator[HistoryOrder]:
        return iter([o for o in self.orders if (cursor is None or (o.modified_at or "") >= cursor)
                     and (email is None or o.email.casefold() == email.casefold())])

    def update(self, current: Customer, values: Mapping[str, str | None]) -> Customer:
        row = self.rows[current.id]
        if str(row["version"]) != current.version:
            raise StaleCustomer(current.id)
        self.writes += 1
        self.edit(current.id, **values)
        return self._c(row)


@pytest.fixture(name="engine")
def fixture_engine(db_url: str):
    """The store of record on SQLite and on PostgreSQL (conftest `db_url`: migrated, 0012 included)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _profiles_by_email(served: ServedNewStore) -> dict[str, dict]:
    return {p["email"].casefold(): p for p in served.sim.app.state.customers.profiles()}


def _patches_and_posts(served: ServedNewStore) -> int:
    return sum(1 for x in served.sim.controls.requests
               if x.path.startswith("/customer/profiles") and x.method in ("POST", "PATCH"))


def test_pass_creates_both_ways_resolves_by_ownership_and_second_pass_writes_nothing(ns_served: ServedNewStore,
                                                                                      engine):
    """Kills: a one-sided customer not created on the other platform, a store edit of an owned field winning
    (last writer), a missing conflict record, a second pass that writes again (not idempotent), and a link not
    recorded (the store customer re-created online)."""
    world = ns_served.sim.app.state.customers
    commerce = MemoryCommerce()
    commerce.add("c-online", "online@example.com", "Olle", "Nyman")  # online only
    commerce.add("c-both", "both@example.com", "Bea", "Holm")  # on both, matched on e-mail
    world.capture("Both@Example.com", first_name="Bea", last_name="Holm", store_id="ST-SE01")
    shop = world.capture("till@example.com", first_name="Tilda", last_name="Kass", phone_number="+46701234567",
                         store_id="ST-SE01", associate_id="assoc-7")  # captured at the till only

    with ns_served.client(max_attempts=2) as client:
        store = ns_customers.NewStoreCustomers(client)
        first = run_pass(engine, commerce, store)
        assert (first.created_store, first.created_commerce, first.conflicts, first.failed) == (1, 1, 0, 0)
        profiles = _profiles_by_email(ns_served)
        assert profiles["online@example.com"]["first_name"] == "Olle"
        created_online = [r for r in commerce.rows.values() if r["email"] == "till@example.com"]
        assert len(created_online) == 1 and created_online[0]["key"] == f"ns-{shop['id']}"
        assert created_online[0]["first_name"] == "Tilda"
        assert links_state.link_count(engine) == 3

        writes_before, ns_writes_before = commerce.writes, _patches_and_posts(ns_served)
        second = run_pass(engine, commerce, store)
        assert (second.created, second.updated, second.conflicts) == (0, 0, 0)
        assert commerce.writes == writes_before and _patches_and_posts(ns_served) == ns_writes_before

        # the store edits a name the online account owns; online, the customer changes e-mail
        both = _profiles_by_email(ns_served)["both@example.com"]
        world.edit(both["id"], first_name="Beatrice", last_name="Holm")
        commerce.edit("c-online", email="online.new@example.com")
        third = run_pass(engine, commerce, store)
        profiles = _profiles_by_email(ns_served)
        assert profiles["both@example.com"]["first_name"] == "Bea", "the owner's value is kept, not the newer edit"
        assert commerce.rows["c-both"]["first_name"] == "Bea"
        assert "online.new@example.com" in profiles and "online@example.com" not in profiles
        assert third.conflicts == 1 and third.updated_store == 2 and third.updated_commerce == 0

    t = table(engine, "exceptions")
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.exception_type, t.c.owner_team, t.c.payload)).all()
    assert [(r.exception_type, r.owner_team) for r in rows] == [("customer_conflict", "retail_operations")]
    evidence = json.loads(rows[0].payload)
    assert (evidence["field"], evidence["kept"], evidence["overwritten"]) == ("first_name", "Bea", "Beatrice")


def test_pass_reports_a_refused_write_and_retries_it_next_pass(ns_served: ServedNewStore, engine):
    """Kills: a refused write swallowed (no customer_write_failed record), or the cursor moved past the customer
    so it is never retried."""
    commerce = MemoryCommerce()
    commerce.add("c1", "taken@example.com", "Ty", "Ro")
    world = ns_served.sim.app.state.customers
    world.capture("other@example.com", first_name="Ot", last_name="Her")
    with ns_served.client(max_attempts=2) as client:
        store = ns_customers.NewStoreCustomers(client)
        assert run_pass(engine, commerce, store).failed == 0
        other = _profiles_by_email(ns_served)["other@example.com"]
        linked = links_state.find_link(engine, store_id=other["id"])
        assert linked is not None
        commerce.edit(linked.commerce_id, email="taken@example.com ")  # online e-mail change to one NewStore has
        commerce.edit("c1", first_name="Ty")
        result = run_pass(engine, commerce, store)
        assert result.failed == 1
        with engine.connect() as conn:
            kinds = [r[0] for r in conn.execute(text("SELECT exception_type FROM exceptions"))]
        assert kinds == ["customer_write_failed"]
        world.knobs.email_unique = False  # the data is fixed on NewStore's side
        retried = run_pass(engine, commerce, store)
        assert retried.failed == 0 and retried.updated_store == 1


def test_pass_never_links_duplicates_or_a_profile_linked_elsewhere(ns_served: ServedNewStore, engine):
    """Kills: an e-mail shared by two online accounts paired with an arbitrary one of them, and NewStore's
    get-or-create handing back a profile already linked to another customer being linked twice (a crash on the
    unique link, or two online accounts feeding one profile)."""
    commerce = MemoryCommerce()
    commerce.add("c1", "dup@example.com", "Du", "Pe")
    commerce.add("c2", "DUP@example.com", "Du", "Pa")
    commerce.add("c3", "moved@example.com", "Mo", "Ve")
    with ns_served.client(max_attempts=2) as client:
        store = ns_customers.NewStoreCustomers(client)
        first = run_pass(engine, commerce, store)
        assert first.ambiguous == 1 and first.created_store == 1
        assert "dup@example.com" not in _profiles_by_email(ns_served)
        # online, c3's e-mail moves to an address a store profile already has (NewStore refuses it), and a new
        # account c4 takes c3's old address: NewStore's get-or-create answers c4 with c3's profile
        ns_served.sim.app.state.customers.capture("else@example.com", first_name="El")
        commerce.edit("c3", email="else@example.com")
        commerce.add("c4", "moved@example.com", "New", "Owner")
        second = run_pass(engine, commerce, store)
    links = {x.commerce_id: x.store_id for x in links_state.links(engine)}
    assert "c4" not in links and "c3" in links, "c4 must not be linked to c3's profile"
    kept = ns_served.sim.app.state.customers.show(links["c3"])
    assert (kept["first_name"], kept["last_name"]) == ("Mo", "Ve"), "c4's names must not reach c3's profile"
    # c3's refused update; the duplicate e-mail again; c4 and the else@ profile each handed a linked record
    assert (second.failed, second.ambiguous) == (1, 3)
    with engine.connect() as conn:
        kinds = sorted(r[0] for r in conn.execute(text("SELECT exception_type FROM exceptions")))
    assert kinds == ["customer_conflict"] * 3 + ["customer_write_failed"]


def _order(ref: str, email: str, sku: str, *, customer_id: str | None, qty: int = 3, total: float = 100.0,
           at: str = "2026-12-01T09:00:00.000Z") -> HistoryOrder:
    return HistoryOrder(order_ref=ref, customer_id=customer_id, email=email, placed_at=at, currency="SEK",
                        country="SE", lines=(HistoryLine("li-1", sku, qty, total, 40.0, 0.25),), modified_at=at)


def test_order_history_imports_linked_customers_orders_once(ns_served: ServedNewStore, ns_estate, engine):
    """Kills: a linked customer's online order missing from NewStore (staff cannot see it), an order imported
    twice, a guest's order sent (NewStore would create a profile for it), an order an order flow already handed
    to a store re-imported, units whose prices do not add up to the line, and an order attached by an e-mail
    other than the linked profile's."""
    sku = sorted(ns_estate.by_sku)[0]
    world = ns_served.sim.app.state.customers
    commerce = MemoryCommerce()
    commerce.add("c1", "Hanna@Example.com", "Hanna", "Berg")
    world.capture("hanna@example.com", first_name="Hanna", last_name="Berg")
    commerce.orders += [_order("CT100001", "HANNA@example.com", sku, customer_id="c1"),
                        _order("CT100002", "guest@example.com", sku, customer_id=None)]
    with ns_served.client(max_attempts=2) as client:
        known = client.fulfill_order(_flow_injection(sku))  # an order flow handed CT100003 to a store already
        commerce.orders.append(_order("CT100003", "hanna@example.com", sku, customer_id="c1"))
        store = ns_customers.NewStoreCustomers(client)
        first = run_pass(engine, commerce, store)
        assert (first.history_added, first.history_known, first.history_unlinked) == (1, 1, 1)
        order = client.get_order("CT100001", id_type="external")
        assert order.channel_type == "web" and {i.status for i in order.items} == {"complete"}, "a past order"
        assert sorted(i.gross for i in order.items) == [33.33, 33.33, 33.34] and order.total == 100.0
        assert order.raw["customer"]["email"] == "hanna@example.com", "attached by the linked profile's e-mail"
        with pytest.raises(Exception, match="404"):
            client.get_order("CT100002", id_type="external")
        assert client.get_order("CT100003", id_type="external").id == known["id"]
        injections = sum(1 for x in ns_served.sim.controls.requests if x.path == "/v0/d/fulfill_order")
        second = run_pass(engine, commerce, store)
        assert second.history_added == 0
        assert sum(1 for x in ns_served.sim.controls.requests if x.path == "/v0/d/fulfill_order") == injections
        # the guest signs up online later: once linked, their earlier order is backfilled
        commerce.add("c2", "guest@example.com", "Gus", "Test")
        third = run_pass(engine, commerce, store)
        assert third.history_added == 1
        assert client.get_order("CT100002", id_type="external").raw["customer"]["email"] == "guest@example.com"
    sent = [x.body for x in ns_served.sim.controls.requests if x.path == "/v0/d/fulfill_order" and x.body
            and x.body.get("is_historical")]
    assert sorted(b["external_id"] for b in sent) == ["CT100001", "CT100002"]


def _flow_injection(sku: str) -> dict:
    return {"external_id": "CT100003", "shop": "storefront", "shop_locale": "en-GB", "channel_type": "web",
            "channel_name": "commerce", "currency": "SEK", "price_method": "tax_included",
            "placed_at": "2026-12-01T09:00:00.000Z", "customer_email": "hanna@example.com",
            "shipments": [{"items": [{"external_item_id": "x1", "product_id": sku,
                                      "price": {"item_price": 10.0, "item_list_price": 10.0,
                                                "item_tax_lines": [{"amount": 2.0, "rate": 0.25}]}}],
                           "shipping_option": {"service_level_identifier": "STANDARD", "price": 0, "tax": 0}}]}


def test_newstore_adapter_raises_stale_on_a_newer_profile(ns_served: ServedNewStore):
    """Kills: an update sent without last_updated_at (overwriting an associate's concurrent edit)."""
    with ns_served.client(max_attempts=2) as client:
        store = ns_customers.NewStoreCustomers(client)
        made = store.create({"email": "st@example.com", "first_name": "St"}, link_id="c9")
        ns_served.sim.app.state.customers.edit(made.id, first_name="Changed", last_name="")
        with pytest.raises(StaleCustomer):
            store.update(made, {"first_name": "Mine"})
        assert store.get(made.id).first_name == "Changed"


def test_newstore_listing_beyond_documented_window_is_an_error(ns_served: ServedNewStore):
    """Kills: a simulator that pages past the documented 10,000 profiles (the connector would never learn)."""
    with ns_served.http() as http:
        r = http.get("/customer/profiles", params={"offset": 10_000, "count": 1})
    assert r.status_code == 400 and r.json()["error_code"] == "pagination_limit_exceeded"
    assert isinstance(r, httpx.Response)


# -- both simulators, through the Dagster asset ------------------------------------------------------------------------

def test_customer_links_asset_syncs_commercetools_and_newstore_simulators(tmp_path, db_url: str):
    """Kills: the asset wired to the wrong adapters or resources, a commercetools customer not reaching NewStore
    (or a till customer not reaching commercetools with its key), metadata that does not count what was written,
    and a second run that writes again."""
    estate_path = write_estate(tmp_path / "estate.json", sizes=40, stores=2, seed=5, commerce="commercetools")
    estate = load_estate(estate_path)
    ct_sim, ns_sim = CommercetoolsSimulator(estate), make_simulator(estate)
    with ct_sim.serve() as ct_srv, ns_sim.serve() as ns_srv:
        with CommercetoolsClient(ct_srv.url, ct_srv.url, ct_sim.project_key, DEFAULT_CLIENT_ID,
                                 DEFAULT_CLIENT_SECRET) as shopfront:
            online = shopfront.create_customer({"email": "web@example.com", "password": "pw-123456",
                                                "firstName": "Wera", "lastName": "Webb"})
        till = ns_sim.app.state.customers.capture("till@example.com", first_name="Tor", last_name="Kass",
                                                  store_id="ST-SE01")
        store_key = ct_sim.state.all("stores")[0]["key"]
        sku = sorted(estate.by_sku)[0]
        web_order = ct_sim.state.place_order(store_key, [(sku, 2)], "web@example.com")
        resources = {
            "store": StoreOfRecord(database_url=db_url), "estate": EstateResource(path=str(estate_path)),
            "commercetools": CommercetoolsResource(api_url=ct_srv.url, client_id=DEFAULT_CLIENT_ID,
                                                   client_secret=DEFAULT_CLIENT_SECRET),
            "newstore": NewStoreResource(base_url=ns_srv.url, tenant=ns_sim.tenant, client_id=CLIENT_ID,
                                         client_secret=CLIENT_SECRET),
        }
        first = dg.materialize([customer_links], resources=resources)
        assert first.success
        meta = first.asset_materializations_for_node("customer_links")[0].metadata
        assert (meta["created"].value, meta["updated"].value, meta["conflicts"].value) == (2, 0, 0)
        profiles = {p["email"]: p for p in ns_sim.app.state.customers.profiles()}
        assert (profiles["web@example.com"]["first_name"], profiles["web@example.com"]["last_name"]) == ("Wera", "Webb")
        ct_customers = {c["email"]: c for c in ct_sim.state.all("customers")}
        made = ct_customers["till@example.com"]
        assert (made["firstName"], made["key"], made["externalId"], made["authenticationMode"]) == \
            ("Tor", f"ns-{till['id']}", till["id"], "ExternalAuth")
        assert online["id"] in {c["id"] for c in ct_customers.values()}
        assert meta["history_orders_added"].value == 1
        with resources["newstore"].client() as ns_client:
            past = ns_client.get_order(web_order["orderNumber"], id_type="external")
        cents = web_order["totalPrice"]["centAmount"] / 100
        assert (len(past.items), past.total, past.raw["customer"]["email"]) == (2, cents, "web@example.com")

        second = dg.materialize([customer_links], resources=resources)
        meta2 = second.asset_materializations_for_node("customer_links")[0].metadata
        assert (meta2["created"].value, meta2["updated"].value, meta2["links"].value) == (0, 0, 2)
        assert meta2["history_orders_added"].value == 0
        assert len(ct_sim.state.all("customers")) == 2 and len(ns_sim.app.state.customers.profiles()) == 2
