"""The Centra simulator's `response_delay_s` knob (simulated round trip), over loopback HTTP.

No timing asserts: an injected sleep records the delay it was asked for, and it only returns once
both requests are inside their delay at the same time (so a delay that blocked the server or
serialised requests would fail the test instead of merely slowing it).
"""

from __future__ import annotations

import asyncio

import httpx

from pipelines.simulators.centra import CentraSimulator, CentraState, create_app
from pipelines.simulators.serving import serve
from pipelines_tests.centra_fixtures import TOKEN, data, gql, small_estate


class RecordingSleep:
    """`asyncio.sleep` that records its argument and waits until `overlap` sleepers are in at once."""

    def __init__(self, overlap: int = 1) -> None:
        self.calls: list[float] = []
        self.overlap = overlap
        self.all_in = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if len(self.calls) >= self.overlap:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), timeout=10)
        await asyncio.sleep(seconds)


async def _two_at_once(url: str) -> list[httpx.Response]:
    q = {"query": "{ stores { id } }"}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        return await asyncio.gather(*(client.post(f"{url}/graphql", json=q) for _ in range(2)))


def test_concurrent_requests_are_each_delayed_and_overlap() -> None:
    sleep = RecordingSleep(overlap=2)
    app = create_app(CentraState(small_estate()), tokens=[TOKEN], response_delay_s=0.3, sleep=sleep)
    with serve(app) as server:
        responses = asyncio.run(_two_at_once(server.url))
    assert [r.status_code for r in responses] == [200, 200]
    assert all(r.json()["data"]["stores"] for r in responses)
    assert sleep.calls == [0.3, 0.3]


def test_default_is_no_delay_and_simulator_threads_the_knob() -> None:
    sleep = RecordingSleep()
    app = create_app(CentraState(small_estate()), tokens=[TOKEN], sleep=sleep)
    with serve(app) as server:
        assert data(server, "{ stores { id } }")["stores"]
    assert sleep.calls == []
    sim = CentraSimulator(small_estate(), tokens=[TOKEN], response_delay_s=0.3, tier="ENHANCED")
    assert sim.app.state.graphql.response_delay_s == 0.3
    assert sim.state.rate_limiter.tier == "ENHANCED"


def test_mutations_charged_counts_what_the_limiter_charged() -> None:
    state = CentraState(small_estate())
    state.set_rate_limits(overrides={("MUTATION_COUNT", "TEN_SECONDS"): 3})
    app = create_app(state, tokens=[TOKEN])
    sku = state.sizes[state.size_ids_sorted[0]].size.sku
    two = """mutation($i: StockChangeInput!) {
      a: changeStock(input: $i) { userErrors { message } }
      b: changeStock(input: $i) { userErrors { message } } }"""
    variables = {"i": {"intoWarehouse": {"id": 1}, "description": "two",
                       "productSizes": [{"productSize": {"SKU": sku}, "deliveredQuantity": 1}]}}
    with serve(app) as server:
        assert gql(server, two, variables).status_code == 200
        assert gql(server, two, variables).status_code == 429  # not charged, not counted
        assert gql(server, "{ stores { id } }").status_code == 200
    assert app.state.graphql.mutations_charged == {"changeStock": 2}
