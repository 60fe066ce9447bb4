"""The daily store sales journal's I/O: post a business day's store sales to the ERP and read back what it posted.

`post_sales_journal` reads the day's `pos_sale_lines`, groups them as the reconciliation's store-sales rule does and
posts one general journal document per (store, tax rate) group (`pipelines.domain.erp.journal`), idempotent on the
document number (`ErpSystem.post_journal` answers False when the ERP has it already), and replaces the day in
`erp_sales_postings` with the groups the ERP holds (a group posted on an earlier run keeps its first `posted_at`).
A group that cannot be posted (no tax code for its rate, no usable accounts, the ERP refused it) is an exception
record and no row: the reconciliation then finds the day's `store_sales_mismatch` for it.

`read_store_sales` reads the ERP's posted G/L entries of the day with our document prefix and replaces the day in
`erp_store_sales` (the reconciliation's `downstream_sales` columns) with the figures they carry: a document we
posted that the ERP's ledger lacks is absent.

A day whose POS sales change after it was posted (a late event, a restatement) keeps the ERP's first posting: the
document number is the same, so it is not posted twice; the reconciliation shows the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from pipelines.domain.erp.journal import (
    DOCUMENT_PREFIX,
    ERP_SALES_JOURNAL_REJECTED,
    ERP_SALES_JOURNAL_UNMAPPED,
    SalesGroup,
    journal_requests,
    read_back,
    sales_frame,
    sales_groups,
    store_indexes,
)
from pipelines.domain.erp.ports import ErpRejected, ErpSystem
from pipelines.domain.exceptions import ExceptionRecord
from pipelines.domain.reconciliation.model import DEFAULT_TOLERANCE, Tolerance
from pipelines.domain.reconciliation.reference import build_reference
from pipelines.domain.timeutil import utc_text
from pipelines.estate import Estate
from pipelines.store.inbox import record_exceptions
from pipelines.store.partitions import read_partition, replace_partitions

POSTINGS = "erp_sales_postings"
STORE_SALES = "erp_store_sales"
POSTING_COLUMNS = ["location_id", "tax_rate", "document_number", "count", "gross", "discount", "tax", "net",
                   "posted_at"]
_LINE_COLUMNS = ["business_date", "transaction_id", "kind", "location_id", "fulfillment_node_id", "quantity",
                 "unit_price", "discount", "tax", "net_amount"]
SOURCE = "erp_sales_journal"


@dataclass
class JournalReport:
    groups: int = 0
    posted: int = 0  # posted by this run
    already_posted: int = 0  # the ERP had the document already
    unmapped: int = 0
    rejected: int = 0
    exceptions: int = 0
    documents: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("documents", "problems")}


def _group_key(g: SalesGroup) -> str:
    return f"{g.business_date}:{g.location_id}:{g.tax_rate:g}"


def _evidence(g: SalesGroup) -> dict[str, Any]:
    return {"location_id": g.location_id, "business_date": g.business_date, "tax_rate": g.tax_rate,
            "count": g.count, "gross": g.gross, "discount": g.discount, "tax": g.tax, "net": g.net}


def _previous(engine: Engine, day: str) -> dict[str, str]:
    df = read_partition(engine, POSTINGS, day, ["document_number", "posted_at"])
    return dict(zip(df["document_number"], df["posted_at"], strict=True))


def post_sales_journal(engine: Engine, estate: Estate, erp: ErpSystem, day: str, *,
                       tolerance: Tolerance = DEFAULT_TOLERANCE,
                       now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> tuple[pd.DataFrame, JournalReport]:
    """Post every (store, tax rate) group of the day's store sales; returns the day's `erp_sales_postings` rows.
    `tolerance`: the reconciliation's (its money tolerance decides when a line's tax matches its store's rate)."""
    mapping = estate.erp
    if mapping is None:
        raise ValueError("the estate has no erp section")
    ref = build_reference(estate)
    lines = read_partition(engine, "pos_sale_lines", day, _LINE_COLUMNS)
    groups = sales_groups(lines, day, ref.locations, ref.tax_rates, tolerance)
    requests, problems = journal_requests(groups, mapping, store_indexes(ref.locations))
    report = JournalReport(groups=len(groups), unmapped=len(problems))
    records = [ExceptionRecord.of(ERP_SALES_JOURNAL_UNMAPPED, _group_key(p.group), SOURCE, p.message,
                                  business_date=day, location_id=p.group.location_id, payload=_evidence(p.group))
               for p in problems]
    report.problems += [p.message for p in problems]
    before = _previous(engine, day)
    rows = []
    for group, request in requests:
        try:
            fresh = erp.post_journal(request)
        except ErpRejected as exc:
            report.rejected += 1
            report.problems.append(f"{request.document_number}: {exc}")
            records.append(ExceptionRecord.of(
                ERP_SALES_JOURNAL_REJECTED, request.document_number, SOURCE,
                f"the ERP refused journal {request.document_number} ({group.location_id}, {day}, VAT "
                f"{group.tax_rate * 100:g}%): {exc}", business_date=day, location_id=group.location_id,
                payload={**_evidence(group), "document_number": request.document_number, "erp": exc.evidence}))
            continue
        if fresh:
            report.posted += 1
        else:
            report.already_posted += 1
        report.documents.append(request.document_number)
        posted_at = before.get(request.document_number) or utc_text(now())
        rows.append({"location_id": group.location_id, "tax_rate": group.tax_rate,
                     "document_number": request.document_number, "count": group.count, "gross": group.gross,
                     "discount": group.discount, "tax": group.tax, "net": group.net, "posted_at": posted_at})
    df = pd.DataFrame(rows, columns=POSTING_COLUMNS)
    replace_partitions(engine, day, {POSTINGS: df})
    if records:
        report.exceptions = record_exceptions(engine, records)
    return df, report


@dataclass
class ReadBackReport:
    documents_posted: int = 0  # in erp_sales_postings for the day
    documents_in_erp: int = 0
    missing_in_erp: list[str] = field(default_factory=list)
    foreign_documents: int = 0  # documents with our prefix on the day that we did not post

    def as_dict(self) -> dict[str, Any]:
        return {"documents_posted": self.documents_posted, "documents_in_erp": self.documents_in_erp,
                "missing_in_erp": len(self.missing_in_erp), "foreign_documents": self.foreign_documents}


def read_store_sales(engine: Engine, estate: Estate, erp: ErpSystem, day: str) -> tuple[pd.DataFrame, ReadBackReport]:
    """The day's store sales as the ERP has posted them; replaces the day in `erp_store_sales`."""
    mapping = estate.erp
    if mapping is None or mapping.sales_journal is None:
        raise ValueError("the estate's erp section has no sales_journal accounts")
    postings = read_partition(engine, POSTINGS, day)
    posted = {str(r.document_number): SalesGroup(str(r.location_id), day, float(r.tax_rate), int(r.count),
                                                 float(r.gross), float(r.discount), float(r.tax), float(r.net))
              for r in postings.itertuples(index=False)}
    entries = erp.ledger_entries(day, day, DOCUMENT_PREFIX)
    groups = read_back(entries, mapping.sales_journal, posted)
    found = {e.document_number for e in entries}
    report = ReadBackReport(documents_posted=len(posted), documents_in_erp=len(groups),
                            missing_in_erp=sorted(set(posted) - found), foreign_documents=len(found - set(posted)))
    df = sales_frame(groups).drop(columns=["business_date"])
    replace_partitions(engine, day, {STORE_SALES: df})
    return df.assign(business_date=day)[["location_id", "business_date", "tax_rate", "count", "gross", "discount",
                                         "tax", "net"]], report
