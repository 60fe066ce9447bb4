"""Where a store return's original sale happened: in a store, online, or not known (pure).

A store return names its original NewStore order (`original_transaction_id`) and, where one exists, an
order reference (`original_order_ref`: for a web order injected from the commerce platform, the
platform's order number). Only a return of an online order is judged against the commerce platform's
returns and refunds; a return of one of the stores' own sales is not. Whether the original order was a
store sale is looked up in this order: the sale lines already loaded, then whatever `lookup` knows (the
landed event stream, then NewStore's order API). A return whose original order cannot be found anywhere
is not judged at all: the reconciliation cannot stand behind a money finding it has no evidence for,
and says so instead (`evidence_notes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

STORE_CHANNEL = "store"


@dataclass(frozen=True)
class OrderOrigin:
    """What the reconciliation needs to know of an original order."""

    channel_type: str  # "store" for a store sale; "web" etc. for an order from the commerce platform
    external_id: str | None  # the commerce platform's order number for a web order


@dataclass(frozen=True)
class ClassifiedReturns:
    lines: pd.DataFrame  # the sale lines, store returns' original_order_ref pointing at their store sale
    store_sale_ids: set[str]  # transaction ids of store sales (known, or found by look-up)
    unverified: pd.DataFrame  # return lines of the day whose original order was not found: not judged


def classify_returns(lines: pd.DataFrame, business_date: str, known_store_sales: Iterable[str],
                     lookup: Callable[[str], OrderOrigin | None]) -> ClassifiedReturns:
    """Resolve the original order of every return line of `business_date` that names one."""
    store_sales = set(known_store_sales)
    lines = lines.copy()
    day_returns = (lines["kind"] == "return") & (lines["business_date"] == business_date)
    named = day_returns & lines["original_transaction_id"].notna()
    unresolved: list[int] = []
    origins: dict[str, OrderOrigin | None] = {}
    for idx in lines.index[named & ~lines["original_transaction_id"].isin(store_sales)]:
        tid = str(lines.at[idx, "original_transaction_id"])
        if tid not in origins:
            origins[tid] = lookup(tid)
        origin = origins[tid]
        if origin is None:
            unresolved.append(idx)
        elif origin.channel_type == STORE_CHANNEL:
            store_sales.add(tid)
        elif pd.isna(lines.at[idx, "original_order_ref"]) and origin.external_id:
            lines.at[idx, "original_order_ref"] = origin.external_id
    store_returns = named & lines["original_transaction_id"].isin(store_sales)
    lines.loc[store_returns, "original_order_ref"] = lines.loc[store_returns, "original_transaction_id"]
    return ClassifiedReturns(lines, store_sales, lines.loc[unresolved])


def evidence_notes(unverified: pd.DataFrame) -> list[str]:
    """Sentences for the report and the asset's metadata about what could not be judged."""
    if unverified.empty:
        return []
    refund = (unverified["net_amount"].astype(float) + unverified["tax"].astype(float)).groupby(
        unverified["currency"]).sum()
    amounts = ", ".join(f"{currency} {value:,.2f}" for currency, value in sorted(refund.items()))
    n = unverified["transaction_id"].nunique()
    return [f"Evidence incomplete: {n} return(s) ({len(unverified)} line(s), refunds {amounts}) name an original "
            "sale that is neither in the landed event stream nor known to NewStore, so they were not judged "
            "against Centra. Land or recover the original sales, then re-materialise the day."]
