"""The daily store sales journal (pure): the day's POS sales grouped per (store, business date, tax rate) exactly as
the reconciliation's `store_sales` rule groups them, each group as one general journal document for the ERP, and
the ERP's posted ledger entries read back into the rule's `downstream_sales` rows.

Figures of a group (the rule's): count = distinct transactions, gross = sum(unit price x quantity), discount, tax,
net = sum(net amount). POS `net_amount` excludes tax (`pipelines.domain.newstore_events.decode_store_sale`), so what
the store took in is net + tax. The document, on the estate's `erp.sales_journal` accounts (amounts signed as in
`JournalLineRequest`: positive debits, negative credits):

| account | amount |
|---|---|
| revenue | credit net + discount (excluding tax, before the discount) |
| discount | debit discount |
| VAT | credit tax, with the group's tax code |
| the store's balancing account (`JournalRequest.balancing_account`) | debit net + tax (what the store took in) |

Read back per document: discount = discount debit, tax = VAT credit, net = revenue credit - discount debit, gross =
revenue credit + VAT credit, less the tax a tax-excluded till priced on top (posted gross - net - discount - tax:
0 when the prices include tax); count is the posted group's (the ledger does not know transactions).

Document numbers (the ERP's idempotency key, at most 20 characters): ``POS<yymmdd>-<store>-<rate>``, the store as
its 1-based position among the estate's stores (3 digits) and the rate in basis points (25 % -> 2500), e.g.
``POS261201-002-2500``. Stable across runs as long as the estate file keeps its stores in order (add new stores at
the end).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.domain.erp.mapping import ErpMapping, SalesJournalAccounts
from pipelines.domain.erp.model import LedgerEntry
from pipelines.domain.erp.ports import JournalLineRequest, JournalRequest
from pipelines.domain.exceptions import ExceptionType
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance
from pipelines.domain.reconciliation.rules.keyspace import KeySpace
from pipelines.domain.reconciliation.rules.store_sales import derive_tax_rates

DOCUMENT_PREFIX = "POS"
MAX_DOCUMENT_NUMBER = 20
SALES_COLUMNS = ["location_id", "business_date", "tax_rate", "count", "gross", "discount", "tax", "net"]

TAX_CODE_UNMAPPED = "tax_code_unmapped"
NO_ACCOUNTS = "no_sales_journal"

ERP_SALES_JOURNAL_UNMAPPED = ExceptionType(
    "erp_sales_journal_unmapped", "ERROR", "finance",
    "A store's sales of the day at one tax rate were not posted to the ERP: the estate's `erp.tax_codes` has no ERP "
    "tax code for the rate, or `erp.sales_journal` names no accounts (or the revenue, discount, VAT and the store's "
    "balancing account are not four different accounts). The evidence holds the group's figures. Fix the estate "
    "file, then re-materialise `erp_sales_journal` for the day (posting is idempotent per document number).",
)
ERP_SALES_JOURNAL_REJECTED = ExceptionType(
    "erp_sales_journal_rejected", "ERROR", "finance",
    "The ERP refused the general journal document of a store's sales of the day at one tax rate (its answer is in "
    "the evidence: an account that does not exist or is blocked, a closed posting period); nothing of it was "
    "posted. Fix the cause in the ERP, then re-materialise `erp_sales_journal` for the day.",
)


@dataclass(frozen=True)
class SalesGroup:
    location_id: str
    business_date: str
    tax_rate: float  # a fraction (0.25), one of the estate's rates
    count: int
    gross: float
    discount: float
    tax: float
    net: float  # excluding tax

    @property
    def taken(self) -> float:
        """What the store took in (tax included, after discounts): the balancing account's debit."""
        return round(self.net + self.tax, 2)

    @property
    def tax_on_top(self) -> float:
        """Tax a tax-excluded till priced on top of gross (0 when the prices include tax)."""
        return round(self.net + self.discount + self.tax - self.gross, 2)


@dataclass(frozen=True)
class JournalProblem:
    group: SalesGroup
    kind: str  # TAX_CODE_UNMAPPED | NO_ACCOUNTS
    message: str


def sales_groups(lines: pd.DataFrame, business_date: str, locations: pd.DataFrame,
                 tax_rates: Iterable[float] | None = None, tolerance: Tolerance = DEFAULT_TOLERANCE
                 ) -> list[SalesGroup]:
    """The day's sale lines per (store, tax rate), as `rules.store_sales.store_sales` groups its POS side.

    lines: pos_sale_lines (business_date, location_id | fulfillment_node_id, transaction_id, kind, quantity,
    unit_price, discount, tax, net_amount); locations: the reconciliation's stores frame (`locations_frame`).
    Lines of other days, returns and lines of unknown stores are left out, as the rule leaves them out.
    """
    if lines.empty:
        return []
    keys = KeySpace(locations)
    store = keys.store(lines)
    mask = keys.day(lines, business_date) & keys.eq(lines, "kind", "sale") & (store >= 0)
    if not mask.any():
        return []
    day = lines[mask].reset_index(drop=True)
    loc = store[mask]
    rate = derive_tax_rates(day, loc, locations, tax_rates, tolerance)
    rates = np.array(sorted(set(float(r) for r in (tax_rates or ())) | set(locations["tax_rate"].astype(float))))
    rate = rates[np.clip(np.searchsorted(rates, rate), 0, len(rates) - 1)]  # derived rates are members of rates
    qty, unit = day["quantity"].to_numpy(dtype=float), day["unit_price"].to_numpy(dtype=float)
    frame = pd.DataFrame({"loc": loc, "rate": rate, "transaction_id": day["transaction_id"].astype(str),
                          "gross": unit * qty, "discount": day["discount"].to_numpy(dtype=float),
                          "tax": day["tax"].to_numpy(dtype=float), "net": day["net_amount"].to_numpy(dtype=float)})
    agg = frame.groupby(["loc", "rate"], sort=True).agg(
        count=("transaction_id", "nunique"), gross=("gross", "sum"), discount=("discount", "sum"),
        tax=("tax", "sum"), net=("net", "sum")).reset_index()
    ids = locations["location_id"].to_numpy(dtype=object)
    return [SalesGroup(str(ids[int(r.loc)]), business_date, float(r.rate), int(r.count), round(float(r.gross), 2),
                       round(float(r.discount), 2), round(float(r.tax), 2), round(float(r.net), 2))
            for r in agg.itertuples(index=False)]


def rate_code(tax_rate: float) -> str:
    """A tax rate (fraction) in basis points: 0.25 -> "2500", 0.065 -> "650"."""
    return str(int(round(float(tax_rate) * 10_000)))


def document_number(business_date: str, store_index: int, tax_rate: float) -> str:
    """``POS<yymmdd>-<store>-<rate>``: unique per (day, store, rate), at most 20 characters (ValueError past it)."""
    if store_index < 1:
        raise ValueError(f"store index {store_index} must be 1 or more")
    number = f"{DOCUMENT_PREFIX}{business_date[2:4]}{business_date[5:7]}{business_date[8:10]}-{store_index:03d}-" \
             f"{rate_code(tax_rate)}"
    if len(number) > MAX_DOCUMENT_NUMBER:
        raise ValueError(f"document number {number!r} is longer than {MAX_DOCUMENT_NUMBER} characters")
    return number


def store_indexes(locations: pd.DataFrame) -> dict[str, int]:
    """Each store's 1-based position in the stores frame (the estate file's order)."""
    return {str(loc): i for i, loc in enumerate(locations["location_id"], start=1)}


def journal_request(group: SalesGroup, accounts: SalesJournalAccounts, tax_code: str,
                    number: str) -> JournalRequest:
    """The group as one balanced journal document (zero amounts are left out)."""
    label = f"POS sales {group.location_id} {group.business_date} VAT {group.tax_rate * 100:g}%"
    candidates = (
        JournalLineRequest(accounts.revenue_account, -round(group.net + group.discount, 2), "", f"{label} revenue"),
        JournalLineRequest(accounts.discount_account, round(group.discount, 2), "", f"{label} discount"),
        JournalLineRequest(accounts.vat_account, -round(group.tax, 2), tax_code, f"{label} VAT"),
    )
    return JournalRequest(document_number=number, posting_date=group.business_date, description=label,
                          balancing_account=accounts.balancing_account(group.location_id),
                          lines=tuple(line for line in candidates if abs(line.amount) >= 0.005))


def accounts_clash(accounts: SalesJournalAccounts, location_id: str) -> str | None:
    """Why the accounts cannot carry a store's journal (the read-back tells the figures apart by account), or None."""
    named = [accounts.revenue_account, accounts.discount_account, accounts.vat_account,
             accounts.balancing_account(location_id)]
    if len(set(named)) < len(named):
        return (f"erp.sales_journal: the revenue, discount, VAT and {location_id}'s balancing accounts must differ "
                f"({', '.join(named)})")
    return None


def journal_requests(groups: Iterable[SalesGroup], mapping: ErpMapping, indexes: Mapping[str, int]
                     ) -> tuple[list[tuple[SalesGroup, JournalRequest]], list[JournalProblem]]:
    """Every group's document; a group whose tax rate has no tax code (or an estate without `sales_journal`
    accounts) is a problem instead."""
    out: list[tuple[SalesGroup, JournalRequest]] = []
    problems: list[JournalProblem] = []
    for g in groups:
        if mapping.sales_journal is None:
            problems.append(JournalProblem(g, NO_ACCOUNTS, "the estate's erp section has no sales_journal accounts"))
            continue
        clash = accounts_clash(mapping.sales_journal, g.location_id)
        if clash:
            problems.append(JournalProblem(g, NO_ACCOUNTS, clash))
            continue
        code = mapping.tax_code(g.tax_rate * 100)
        if code is None:
            problems.append(JournalProblem(g, TAX_CODE_UNMAPPED, (
                f"tax rate {g.tax_rate * 100:g}% of {g.location_id}'s sales on {g.business_date} has no ERP tax code "
                "(erp.tax_codes)")))
            continue
        number = document_number(g.business_date, indexes[g.location_id], g.tax_rate)
        out.append((g, journal_request(g, mapping.sales_journal, code, number)))
    return out, problems


def _signed(entries: Iterable[LedgerEntry], account: str, *, debit: bool) -> float:
    total = sum((e.debit - e.credit) if debit else (e.credit - e.debit) for e in entries if e.account_number == account)
    return round(total, 2)


def read_back(entries: Iterable[LedgerEntry], accounts: SalesJournalAccounts,
              posted: Mapping[str, SalesGroup]) -> list[SalesGroup]:
    """What the ERP has posted of our documents (`posted`: document number -> the group we posted under it), in the
    rule's `downstream_sales` terms; a document without ledger entries is absent, entries of other documents are
    ignored."""
    by_doc: dict[str, list[LedgerEntry]] = {}
    for e in entries:
        if e.document_number in posted:
            by_doc.setdefault(e.document_number, []).append(e)
    out = []
    for number, group in posted.items():
        mine = by_doc.get(number)
        if not mine:
            continue
        revenue = _signed(mine, accounts.revenue_account, debit=False)
        discount = _signed(mine, accounts.discount_account, debit=True)
        tax = _signed(mine, accounts.vat_account, debit=False)
        out.append(SalesGroup(group.location_id, group.business_date, group.tax_rate, group.count,
                              round(revenue + tax - group.tax_on_top, 2), discount, tax, round(revenue - discount, 2)))
    return out


def sales_frame(groups: Iterable[SalesGroup]) -> pd.DataFrame:
    """Groups as rows of SALES_COLUMNS (the reconciliation's `downstream_sales`)."""
    rows = [{c: getattr(g, c) for c in SALES_COLUMNS} for g in groups]
    return pd.DataFrame(rows, columns=SALES_COLUMNS).astype({"tax_rate": float, "count": int, "gross": float,
                                                             "discount": float, "tax": float, "net": float})
