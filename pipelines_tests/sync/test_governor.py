"""The rate-budget governor: Centra's buckets mirrored, a share kept for others, oversell risks first."""

from __future__ import annotations

from pipelines.domain.sync import Governor, Mutation, mark_critical, online_keys, prioritise
from pipelines.domain.sync.model import KeyPlan
from pipelines_tests.sync.conftest import RateRow as Row

GROWTH = [Row("REQUEST_COUNT", 10, 60, 60), Row("REQUEST_COUNT", 3600, 5000, 5000),
          Row("MUTATION_COUNT", 10, 20, 20), Row("MUTATION_COUNT", 3600, 1800, 1800),
          Row("QUERY_COMPLEXITY", 10, 250_000, 250_000)]


def test_budget_keeps_a_share_for_other_integrations_and_refills() -> None:
    g = Governor(share=0.8, clock=lambda: 0.0)
    g.observe(GROWTH, now=0.0)
    assert g.budget(now=0.0).mutations == 4  # burst: what keeps any 10 s window within the quota of 20
    g.spend(requests=4, mutations=4, now=0.0)
    assert g.budget(now=0.0).mutations == 0
    assert g.budget(now=2.5).mutations == 4  # refilled at 80 % of 2 mutations/s
    assert g.seconds_until_mutation(now=0.0) == 0.625


def test_greedy_spending_never_exceeds_the_quota_in_any_window_nor_the_share_over_time() -> None:
    g = Governor(share=0.8, clock=lambda: 0.0)
    g.observe(GROWTH, now=0.0)
    sent, t = [], 0.0
    while t < 600:
        n = g.budget(now=t).mutations
        g.spend(requests=n, mutations=n, now=t)
        sent += [t] * n
        t = round(t + 0.05, 2)
    windows = [sum(1 for x in sent if s <= x < s + 10) for s in sorted(set(sent))]
    assert max(windows) <= 20
    assert len(sent) <= 4 + 0.8 * 2 * 600  # 80 % of the sustained rate


def test_hourly_bucket_caps_the_ten_second_one() -> None:
    g = Governor(share=0.5)
    g.observe([Row("MUTATION_COUNT", 10, 20, 20), Row("MUTATION_COUNT", 3600, 1800, 3),
               Row("REQUEST_COUNT", 10, 60, 60)], now=0.0)
    assert g.budget(now=0.0).mutations == 3


def test_a_429_blocks_until_retry_after() -> None:
    g = Governor(share=1.0)
    g.observe(GROWTH, now=0.0)
    g.on_rate_limited(4.0, now=1.0)
    assert g.budget(now=2.0).mutations == 0 and g.budget(now=2.0).wait_s == 3.0
    assert g.budget(now=5.5).mutations > 0
    assert g.rate_limited == 1
    assert g.observed_at is None  # the mirror was wrong: rateLimits is read again once unblocked


def _mutation(wid: int, op: str, lines: dict[str, int], first: str = "2026-11-20T10:00:00Z") -> Mutation:
    plans = [KeyPlan(wid, s, "delta", -q if op == "remove" else q, (1,), (), first, first) for s, q in lines.items()]
    return Mutation(wid, op, dict(lines), plans)


def test_starved_budget_goes_to_oversell_risks_first() -> None:
    safe_removal = _mutation(2, "remove", {"A": 1}, first="2026-11-20T09:00:00Z")  # oldest, but plenty left
    addition = _mutation(3, "add", {"B": 2}, first="2026-11-20T08:00:00Z")
    risky = _mutation(4, "remove", {"C": 1}, first="2026-11-20T10:00:00Z")  # leaves 1 <= safety stock 1
    risky_set = _mutation(5, "set", {"D": 0})
    stock = {(2, "A"): (10, 10), (4, "C"): (2, 2), (5, "D"): (3, 3)}
    mark_critical([safe_removal, addition, risky, risky_set], stock, safety_stock=1)
    assert (risky.critical, risky_set.critical, safe_removal.critical, addition.critical) == (True, True, False, False)
    send, defer = prioritise([addition, safe_removal, risky_set, risky], capacity=2)
    assert send == [risky, risky_set]
    assert defer == [addition, safe_removal]  # then the oldest first, whatever the operation


def test_earliest_deadline_first_lets_old_work_overtake_fresh_oversell_risks() -> None:
    risky = _mutation(4, "remove", {"C": 1}, first="2026-11-20T10:00:00Z")
    risky.critical_skus.add("C")
    waited = _mutation(2, "remove", {"A": 1}, first="2026-11-20T09:58:30Z")  # 90 s older than the risk
    fresh = _mutation(3, "remove", {"B": 1}, first="2026-11-20T09:59:30Z")  # 30 s older
    added = _mutation(5, "add", {"D": 2}, first="2026-11-20T09:56:20Z")  # 220 s older: additions wait 4 x 60 s
    send, defer = prioritise([fresh, added, risky, waited], capacity=1, max_defer_s=60)
    assert send == [waited] and defer == [risky, added, fresh]  # due 09:59:30, 10:00:00, 10:00:20, 10:00:30
    assert prioritise([fresh, risky, waited], capacity=1)[0] == [risky]  # without a deadline: critical first


def test_unknown_stock_counts_as_critical() -> None:
    m = _mutation(2, "remove", {"X": 1})
    mark_critical([m], {}, safety_stock=0)
    assert m.critical


def test_critical_means_the_skus_online_free_to_allocate_across_the_allocation_rule() -> None:
    """Store 2 sells its last unit: no oversell threat while the DC (1) still sells the SKU online."""
    online = {2: [(1, 2, 3)], 3: [(1, 2, 3)]}
    sale = _mutation(2, "remove", {"A": 1})
    assert online_keys([sale], online) == {(1, "A"), (2, "A"), (3, "A")}
    mark_critical([sale], {(1, "A"): (40, 40), (2, "A"): (1, 1)}, safety_stock=1, online=online)
    assert not sale.critical
    mark_critical([sale], {(1, "A"): (0, 0), (2, "A"): (1, 1), (3, "A"): (1, 1)}, safety_stock=1, online=online)
    assert sale.critical  # 0 + 1 + 1 - 1 = 1 unit left online


def test_a_warehouse_in_two_allocation_rules_is_critical_when_either_rule_is_nearly_sold_out() -> None:
    """Store 2 sells online through rule (1, 2) (DC with plenty) and rule (2, 3) (nearly sold out): its
    last-but-one unit is an oversell risk through the second rule whatever the first has, in either
    rule order. Kills: the most exposed rule replaced by the least exposed (`min` -> `max`), only the
    first or only the last rule looked at, online_keys missing the second rule's warehouses."""
    near = [(1, 2), (2, 3)]
    for rules in (near, near[::-1]):
        online = {1: [(1, 2)], 2: rules, 3: [(2, 3)]}
        sale = _mutation(2, "remove", {"A": 1})
        assert online_keys([sale], online) == {(1, "A"), (2, "A"), (3, "A")}
        mark_critical([sale], {(1, "A"): (40, 40), (2, "A"): (1, 1), (3, "A"): (1, 1)}, safety_stock=1,
                      online=online)
        assert sale.critical, rules  # rule (2, 3): 1 + 1 - 1 = 1 unit left online
        mark_critical([sale], {(1, "A"): (40, 40), (2, "A"): (1, 1), (3, "A"): (5, 5)}, safety_stock=1,
                      online=online)
        assert not sale.critical, rules  # mirror: both rules have plenty (41 - 1, 6 - 1)


def test_split_due_holds_non_critical_work_for_its_delay_and_additions_for_four_times_that() -> None:
    """At 10:01:00 with a 60 s delay: a removal from 10:00:00 is due (60 s, the boundary), one from
    10:00:01 is not; an addition from 09:57:00 (240 s) is due, one from 09:57:01 is not; a critical
    removal from 10:00:59 is due at once. Kills: `<=` made `<`, additions with the removals' delay."""
    from datetime import datetime

    from pipelines.domain.sync.governor import split_due

    now = datetime.fromisoformat("2026-11-20T10:01:00+00:00").timestamp()
    removal_due = _mutation(1, "remove", {"A": 1}, first="2026-11-20T10:00:00Z")
    removal_young = _mutation(2, "remove", {"B": 1}, first="2026-11-20T10:00:01Z")
    addition_due = _mutation(3, "add", {"C": 1}, first="2026-11-20T09:57:00Z")
    addition_young = _mutation(4, "add", {"D": 1}, first="2026-11-20T09:57:01Z")
    critical = _mutation(5, "remove", {"E": 1}, first="2026-11-20T10:00:59Z")
    critical.critical_skus.add("E")
    ready, held = split_due([removal_due, removal_young, addition_due, addition_young, critical], now, 60)
    assert ready == [removal_due, addition_due, critical] and held == [removal_young, addition_young]
    assert split_due([removal_young], now, None) == ([removal_young], [])  # no delay: nothing held


def test_a_critical_mutation_is_due_from_its_oldest_critical_line_or_once_its_riders_waited() -> None:
    """With a 60 s delay riders make a critical mutation due after 5 s (`RIDE_ALONG_SHARE`). Warehouse 2's
    risk (SKU R) is from 10:00:10, riding on a trickle (SKU T) from 10:00:01 (due 10:00:06); warehouse 3's
    risk is from 10:00:05: EDF sends warehouse 3 first, its risk is older. A trickle from 09:59:59 makes
    warehouse 2 due at 10:00:04, before warehouse 3. Kills: the deadline of a critical mutation taken from
    its oldest line alone, from its critical lines alone, or the riders' wait taken as the full delay."""
    from pipelines.domain.sync.governor import RIDE_ALONG_SHARE, due_at

    assert RIDE_ALONG_SHARE * 60 == 5

    def riding(trickle_since: str) -> Mutation:
        m = _mutation(2, "remove", {"R": 1, "T": 1})
        m.plans[0] = KeyPlan(2, "R", "delta", -1, (1,), (), "2026-11-20T10:00:10Z", "2026-11-20T10:00:10Z")
        m.plans[1] = KeyPlan(2, "T", "delta", -1, (2,), (), trickle_since, trickle_since)
        m.critical_skus.add("R")
        return m

    older_risk = _mutation(3, "remove", {"C": 1}, first="2026-11-20T10:00:05Z")
    older_risk.critical_skus.add("C")
    fresh_riders = riding("2026-11-20T10:00:01Z")
    send, defer = prioritise([fresh_riders, older_risk], capacity=1, max_defer_s=60)
    assert send == [older_risk] and defer == [fresh_riders]
    waited = riding("2026-11-20T09:59:59Z")
    assert prioritise([older_risk, waited], capacity=1, max_defer_s=60)[0] == [waited]
    alone = _mutation(9, "remove", {"X": 1}, first="2026-11-20T09:59:59Z")
    assert due_at(waited, 60) == due_at(alone, 60) - 55  # 5 s, not the 60 s a non-critical mutation waits
