"""The store sales journal's pure part: grouping as the reconciliation's store-sales rule groups, the documents on
the sales journal accounts, and the ledger read back (`pipelines.domain.erp.journal`). Known answers by hand."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from pipelines.domain.erp.journal import (
    NO_ACCOUNTS,
    TAX_CODE_UNMAPPED,
    SalesGroup,
    document_number,
    journal_request,
    journal_requests,
    read_back,
    sales_frame,
    sales_groups,
    store_indexes,
)
from pipelines.domain.erp.mapping import mapping_from_dict
from pipelines.domain.erp.model import LedgerEntry
from pipelines.domain.reconciliation.reference import LOCATION_COLUMNS, normalise_locations
from pipelines.domain.reconciliation.rules.store_sales import store_sales

DAY = "2026-12-01"
RATES = (0.0, 0.06, 0.12, 0.25)
LOCATIONS = normalise_locations(pd.DataFrame([
    {"location_id": "ST-A", "fulfillment_node_id": "A", "warehouse_id": 2, "currency": "SEK", "country": "SE",
     "pricelist_id": 1, "tax_rate": 0.25, "fx_to_base": 0.09},
    {"location_id": "ST-B", "fulfillment_node_id": "B", "warehouse_id": 3, "currency": "SEK", "country": "SE",
     "pricelist_id": 1, "tax_rate": 0.25, "fx_to_base": 0.09},
], columns=LOCATION_COLUMNS))
ERP = {"tax_codes": {"25": "STANDARD", "12": "REDUCED", "0": "ZERO"},
       "sales_journal": {"revenue_account": "3000", "discount_account": "3050", "vat_account": "2610",
                         "balancing_accounts": {"ST-A": "1910"}, "default_balancing_account": "1900"}}


def line(tid: str, qty: int, unit: float, disc: float, tax: float, net: float, *, loc: str | None = "ST-A",
         node: str = "A", kind: str = "sale", day: str = DAY) -> dict:
    return {"business_date": day, "transaction_id": tid, "kind": kind, "location_id": loc, "fulfillment_node_id": node,
            "quantity": qty, "unit_price": unit, "discount": disc, "tax": tax, "net_amount": net}


LINES = pd.DataFrame([
    line("T1", 2, 125.0, 0.0, 50.0, 200.0),  # 25 %: (250 - 0) x 0.25 / 1.25 = 50
    line("T1", 1, 112.0, 0.0, 12.0, 100.0),  # not 25 %: 12 / (112 - 12) = 12 % (a reduced-rate item)
    line("T2", 1, 100.0, 20.0, 16.0, 64.0),  # 25 % after the discount
    line("T3", 1, 100.0, 0.0, 20.0, 80.0, kind="return"),  # returns are not sales
    line("T4", 1, 50.0, 0.0, 10.0, 40.0, loc=None, node="B"),  # a store known by its node only
    line("T5", 1, 50.0, 0.0, 10.0, 40.0, loc=None, node="ZZ"),  # not a store of ours
    line("T6", 1, 50.0, 0.0, 10.0, 40.0, day="2026-11-30"),  # another day
])


def test_groups_per_store_and_derived_rate_known_answer() -> None:
    """Kills: grouping by the store's country rate instead of each line's derived rate, counting lines instead of
    distinct transactions, keeping returns, other days or unknown stores, or missing a store known by node only."""
    got = sales_groups(LINES, DAY, LOCATIONS, RATES)
    assert got == [
        SalesGroup("ST-A", DAY, 0.12, 1, 112.0, 0.0, 12.0, 100.0),
        SalesGroup("ST-A", DAY, 0.25, 2, 350.0, 20.0, 66.0, 264.0),
        SalesGroup("ST-B", DAY, 0.25, 1, 50.0, 0.0, 10.0, 40.0),
    ]


def test_groups_agree_with_the_reconciliation_rule() -> None:
    """Kills: a journal that groups differently from the store-sales rule (the ERP's figures would then always be a
    finding). Oracle: the rule itself finds nothing when fed the groups as downstream, and finds the gap when one
    group is missing."""
    groups = sales_groups(LINES, DAY, LOCATIONS, RATES)
    assert store_sales(DAY, LINES, sales_frame(groups), LOCATIONS, tax_rates=RATES).empty
    found = store_sales(DAY, LINES, sales_frame(groups[1:]), LOCATIONS, tax_rates=RATES)
    assert [(r.location_id, r.tax_rate) for r in found.itertuples()] == [("ST-A", 0.12)]


def test_document_on_the_sales_journal_accounts_balances() -> None:
    """Kills: wrong signs (credits positive), VAT without the group's tax code, revenue net of the discount, the
    default balancing account instead of the store's, a zero line sent, an unbalanced document."""
    mapping = mapping_from_dict(ERP)
    group = SalesGroup("ST-A", DAY, 0.25, 2, 350.0, 20.0, 66.0, 264.0)
    req = journal_request(group, mapping.sales_journal, "STANDARD", "POS261201-001-2500")
    assert req.document_number == "POS261201-001-2500" and req.posting_date == DAY
    assert req.balancing_account == "1910"
    assert [(ln.account_number, ln.amount, ln.tax_code) for ln in req.lines] == [
        ("3000", -284.0, ""), ("3050", 20.0, ""), ("2610", -66.0, "STANDARD")]
    assert -sum(ln.amount for ln in req.lines) == pytest.approx(330.0)  # the balancing debit: net + tax taken in
    plain = journal_request(SalesGroup("ST-B", DAY, 0.0, 1, 50.0, 0.0, 0.0, 50.0), mapping.sales_journal, "ZERO", "X")
    assert [(ln.account_number, ln.amount) for ln in plain.lines] == [("3000", -50.0)]
    assert plain.balancing_account == "1900"


def test_document_numbers_unique_stable_and_short() -> None:
    """Kills: numbers that collide between stores or rates (one group's posting would hide another's), change
    between runs, or exceed Business Central's 20 characters."""
    assert document_number(DAY, 1, 0.25) == "POS261201-001-2500"
    assert document_number(DAY, 12, 0.065) == "POS261201-012-650"
    numbers = [document_number(day, i, r) for day, i, r in itertools.product(
        ("2026-12-01", "2026-12-02", "2027-01-01"), range(1, 1000, 7), (0.0, 0.06, 0.065, 0.12, 0.25, 1.0))]
    assert len(set(numbers)) == len(numbers) and max(map(len, numbers)) <= 20
    with pytest.raises(ValueError):
        document_number(DAY, 100_000, 0.25)


def test_unmapped_tax_code_and_clashing_accounts_are_problems_not_postings() -> None:
    """Kills: posting a group with an empty or guessed tax code, or on accounts the read-back cannot tell apart."""
    groups = sales_groups(LINES, DAY, LOCATIONS, RATES)
    mapping = mapping_from_dict({**ERP, "tax_codes": {"25": "STANDARD"}})
    ok, problems = journal_requests(groups, mapping, store_indexes(LOCATIONS))
    assert [r.document_number for _, r in ok] == ["POS261201-001-2500", "POS261201-002-2500"]
    assert [(p.group.tax_rate, p.kind) for p in problems] == [(0.12, TAX_CODE_UNMAPPED)]
    clash = mapping_from_dict({**ERP, "sales_journal": {**ERP["sales_journal"], "discount_account": "3000"}})
    ok, problems = journal_requests(groups, clash, store_indexes(LOCATIONS))
    assert not ok and {p.kind for p in problems} == {NO_ACCOUNTS}


def _ledger(req, *, drop_account: str | None = None, vat_delta: float = 0.0) -> list[LedgerEntry]:
    """G/L entries as a posted journal leaves them: one per line, and the balancing account's."""
    out = []
    for ln in req.lines:
        if ln.account_number == drop_account:
            continue
        amount = ln.amount - (vat_delta if ln.account_number == "2610" else 0.0)
        out.append(LedgerEntry(req.document_number, req.posting_date, ln.account_number, max(amount, 0.0),
                               max(-amount, 0.0)))
    total = -sum(e.debit - e.credit for e in out)
    out.append(LedgerEntry(req.document_number, req.posting_date, req.balancing_account, max(total, 0.0),
                           max(-total, 0.0)))
    return out


def test_read_back_recovers_the_posted_figures_exactly() -> None:
    """Kills: a read-back that mixes accounts up, takes gross as what the store took in, loses the discount, or
    keeps documents of others. A tax-excluded till (tax on top of gross) reads back exact too."""
    mapping = mapping_from_dict(ERP)
    on_top = SalesGroup("ST-B", DAY, 0.25, 3, 80.0, 0.0, 20.0, 80.0)  # tax_excluded: net = gross - discount
    groups = [*sales_groups(LINES, DAY, LOCATIONS, RATES), on_top]
    requests = [journal_request(g, mapping.sales_journal, "STANDARD", f"POS-{i}") for i, g in enumerate(groups)]
    entries = [e for r in requests for e in _ledger(r)]
    entries.append(LedgerEntry("POSOTHER", DAY, "3000", 0.0, 999.0))
    got = read_back(entries, mapping.sales_journal, {r.document_number: g for r, g in zip(requests, groups,
                                                                                        strict=True)})
    assert got == groups


def test_read_back_shows_what_the_erp_holds_not_what_we_sent() -> None:
    """Kills: a read-back that echoes our postings: a document the ERP lacks is absent, a VAT amount the ERP
    changed shows in tax and gross, a discount line the ERP lost shows in discount and net."""
    mapping = mapping_from_dict(ERP)
    a12, a25, b25 = sales_groups(LINES, DAY, LOCATIONS, RATES)
    reqs = {g: journal_request(g, mapping.sales_journal, "X", f"D{i}") for i, g in enumerate((a12, a25, b25))}
    entries = [*_ledger(reqs[a25], vat_delta=1.0), *_ledger(reqs[b25], drop_account="3050")]
    got = read_back(entries, mapping.sales_journal, {r.document_number: g for g, r in reqs.items()})
    assert got == [SalesGroup("ST-A", DAY, 0.25, 2, 351.0, 20.0, 67.0, 264.0), b25]
    reqs_disc = journal_request(a25, mapping.sales_journal, "X", "D9")
    got = read_back(_ledger(reqs_disc, drop_account="3050"), mapping.sales_journal, {"D9": a25})
    assert got == [SalesGroup("ST-A", DAY, 0.25, 2, 350.0, 0.0, 66.0, 284.0)]
