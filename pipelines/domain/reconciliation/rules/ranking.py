"""Risk rank and the deterministic order of a day's findings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.domain.reconciliation.model import DRIFT_TYPES


def rank_findings(findings: pd.DataFrame, sell_through: pd.DataFrame | None = None) -> pd.DataFrame:
    """Set risk_rank: dense rank (1 = highest) of the commercial-risk weight.

    weight = value_at_risk_base, and for stock drift x (1 + sell-through), where sell-through =
    units_sold_recent / (units_sold_recent + max(on-hand, 0)) from ``sell_through`` (location_id, sku,
    units_sold_recent; absent -> 0).
    """
    if findings.empty:
        return findings
    w = findings["value_at_risk_base"].to_numpy(dtype=float).copy()
    if sell_through is not None and len(sell_through):
        drift = findings["finding_type"].isin(DRIFT_TYPES).to_numpy()
        if drift.any():
            sub = findings.loc[drift, ["location_id", "sku", "quantity_pos"]]
            st = sell_through[sell_through["sku"].isin(pd.unique(sub["sku"])).to_numpy()]
            st = st.groupby(["location_id", "sku"], as_index=False, sort=False, observed=True)["units_sold_recent"].sum()
            joined = sub.merge(st, how="left", on=["location_id", "sku"])
            units = joined["units_sold_recent"].fillna(0).clip(lower=0).to_numpy(dtype=float)
            on_hand = joined["quantity_pos"].astype("float64").fillna(0).clip(lower=0).to_numpy()
            denom = units + on_hand
            rate = np.divide(units, denom, out=np.zeros_like(units), where=denom > 0)
            w[drift] = w[drift] * (1.0 + rate)
    out = findings.copy()
    out["risk_rank"] = pd.Series(np.round(w, 6)).rank(method="dense", ascending=False).astype("int64").to_numpy()
    return out


def sort_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Deterministic order: value_at_risk_base desc, then risk_rank, type and keys."""
    if findings.empty:
        return findings.reset_index(drop=True)
    keys = ["value_at_risk_base", "risk_rank", "finding_type", "location_id", "sku", "order_ref",
            "transaction_id", "tax_rate"]
    return findings.sort_values(keys, ascending=[False] + [True] * 7, kind="mergesort",
                                na_position="last").reset_index(drop=True)
