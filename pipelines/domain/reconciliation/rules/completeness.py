"""The completeness rule: store transactions known to exist that the day's datasets do not hold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation import model as m
from pipelines.domain.reconciliation.model import empty_findings
from pipelines.domain.reconciliation.rules.frames import _findings, _fmt
from pipelines.domain.reconciliation.rules.keyspace import KeySpace, _keys, _obj


def missing_transactions(business_date: str, missing: pd.DataFrame, locations: pd.DataFrame, *,
                         keys: KeySpace | None = None) -> pd.DataFrame:
    """One `store_transaction_missing` per lost transaction of the day NewStore did not give back.

    missing: kind ("order" | "return"), transaction_id, order_id, status, evidence (the sibling events seen),
        location_id | fulfillment_node_id, amount, currency, last_error (the day's rows, as given: the caller
        selects those not recovered). value = the amount the siblings name (0 when none does: the detail
        says the amount is unknown). amount_pos = that amount: the day's POS totals lack it.
    """
    if not len(missing):
        return empty_findings()
    k = _keys(keys, locations, None)
    rows = missing.reset_index(drop=True)
    loc = k.store(rows)
    amount = pd.to_numeric(rows["amount"], errors="coerce").to_numpy(dtype=float)
    known = ~np.isnan(amount)
    detail = np.asarray([
        f"kind={kind};status={status};evidence={evidence};order_id={order or ''};"
        f"amount={_fmt(a) if ok else 'unknown'};error={error or ''}"
        for kind, status, evidence, order, a, ok, error in zip(
            _obj(rows["kind"]), _obj(rows["status"]), _obj(rows["evidence"]), _obj(rows["order_id"]), amount, known,
            _obj(rows["last_error"]), strict=True)], dtype=object)
    return _findings(
        m.STORE_TRANSACTION_MISSING, business_date, locations, loc, value=np.where(known, amount, 0.0),
        location_ids=_obj(rows["location_id"]) if "location_id" in rows.columns else None,
        transaction_id=_obj(rows["transaction_id"]), amount_pos=np.where(known, amount, np.nan), detail=detail,
        currency=_obj(rows["currency"]))
