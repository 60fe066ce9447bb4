"""The figures of one day's findings (totals by type, team and store, the headline) and the report's ranking."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.domain.reconciliation.engine import totals_by_type
from pipelines.domain.reconciliation.model import DRIFT_TYPE_BY_KIND, DRIFT_TYPES, FINDING_COLUMNS
from pipelines.reporting.finance_report.fmt import money_series, round_money

TOP_RISKS = 20
OVERSELL = DRIFT_TYPE_BY_KIND["oversell"]
LOST_SALES = DRIFT_TYPE_BY_KIND["lost_sales"]
#: the report's rank of a finding (1..n, unique): a column of the CSVs and ``data-rank`` of the page.
REPORT_RANK = "report_rank"

TYPE_COLUMNS = ["finding_type", "severity", "owner_team", "count", "value_at_risk_base"]
TEAM_COLUMNS = ["owner_team", "count", "value_at_risk_base"]
STORE_COLUMNS = ["location_id", "oversell_value_base", "lost_sales_value_base", "drift_value_base", "units"]

#: tie-breakers after the engine's risk_rank (asc) and the value at risk in the base currency (desc).
_RANK_KEYS = ["finding_type", "location_id", "sku", "order_ref", "transaction_id", "tax_rate", "detail"]


@dataclass(frozen=True)
class ReportSummary:
    """The figures of one day's findings (money in the base currency, rounded to its minor unit).

    totals_by_type: finding_type, severity, owner_team, count, value_at_risk_base (value desc, then type).
    totals_by_team: owner_team, count, value_at_risk_base (value desc, then team).
    drift_by_store: location_id, oversell_value_base, lost_sales_value_base, drift_value_base, units
        (abs quantity_diff of the drift findings); stores with stock drift only, drift value desc.
    base_currency: the currency the money is rounded for (None: 2 decimals).
    """

    totals_by_type: pd.DataFrame
    totals_by_team: pd.DataFrame
    drift_by_store: pd.DataFrame
    findings: int
    value_at_risk_base: float
    error_findings: int
    oversell_value_base: float
    lost_sales_value_base: float
    base_currency: str | None = None

    @property
    def drift_value_base(self) -> float:
        return round_money(self.oversell_value_base + self.lost_sales_value_base, self.base_currency)

    def headline(self) -> dict[str, float | int]:
        """The headline figures as plain numbers, money rounded to the base currency's minor unit (for asset
        metadata and the history table)."""
        ccy = self.base_currency
        return {
            "findings": int(self.findings),
            "value_at_risk_base": round_money(self.value_at_risk_base, ccy),
            "error_findings": int(self.error_findings),
            "oversell_value_base": round_money(self.oversell_value_base, ccy),
            "lost_sales_value_base": round_money(self.lost_sales_value_base, ccy),
            "drift_value_base": self.drift_value_base,
        }


def check_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """The FINDING_COLUMNS of a findings frame (ValueError if one lacks), categorical text as plain objects."""
    missing = [c for c in FINDING_COLUMNS if c not in findings.columns]
    if missing:
        raise ValueError(f"findings frame lacks columns {missing}")
    f = findings[FINDING_COLUMNS].reset_index(drop=True)
    cats = [c for c in FINDING_COLUMNS if isinstance(f[c].dtype, pd.CategoricalDtype)]
    # categorical text (as the rules may produce) would group over unobserved categories: use plain objects
    return f.astype({c: object for c in cats}) if cats else f


def _empty(columns: list[str]) -> pd.DataFrame:
    def dtype(c: str) -> str:
        return "int64" if c in ("count", "units") else "float64" if "value" in c else "object"
    return pd.DataFrame({c: pd.Series(dtype=dtype(c)) for c in columns})


def _by_value(t: pd.DataFrame, key: str, columns: list[str], ccy: str | None) -> pd.DataFrame:
    """Money rounded to the currency, then value desc and `key` asc."""
    t = t.assign(value_at_risk_base=t["value_at_risk_base"].map(lambda v: round_money(v, ccy)))
    return t.sort_values(["value_at_risk_base", key], ascending=[False, True],
                         kind="mergesort").reset_index(drop=True)[columns]


def _drift_by_store(f: pd.DataFrame, ccy: str | None) -> pd.DataFrame:
    drift = f[f["finding_type"].isin(DRIFT_TYPES)]
    if drift.empty:
        return _empty(STORE_COLUMNS)
    d = pd.DataFrame({
        "location_id": drift["location_id"],
        "oversell_value_base": drift["value_at_risk_base"].where(drift["finding_type"] == OVERSELL, 0.0),
        "lost_sales_value_base": drift["value_at_risk_base"].where(drift["finding_type"] == LOST_SALES, 0.0),
        "units": pd.to_numeric(drift["quantity_diff"], errors="coerce").astype("float64").abs().fillna(0.0),
    })
    stores = d.groupby("location_id", as_index=False, sort=True, dropna=False).sum()
    for c in ("oversell_value_base", "lost_sales_value_base"):
        stores[c] = stores[c].map(lambda v: round_money(v, ccy))
    stores["drift_value_base"] = (stores["oversell_value_base"] + stores["lost_sales_value_base"]).map(
        lambda v: round_money(v, ccy))
    stores["units"] = stores["units"].round().astype("int64")
    return stores.sort_values(["drift_value_base", "location_id"], ascending=[False, True],
                              kind="mergesort").reset_index(drop=True)[STORE_COLUMNS]


def summarise(findings: pd.DataFrame, *, totals: pd.DataFrame | None = None,
              base_currency: str | None = None) -> ReportSummary:
    """The figures of a day's findings (FINDING_COLUMNS): totals by type and by team, drift by store, the headline.

    totals: the reconciliation engine's totals of these findings (`ReconciliationResult.totals`, i.e. the day's
    rows of `reconciliation_daily_totals`: finding_type, severity, owner_team, findings, value_at_risk_base);
    the type and team totals and the headline are these, not a count of their own. Without them they are
    derived by the engine's own :func:`~pipelines.domain.reconciliation.engine.totals_by_type`.
    Money is rounded to the minor unit of ``base_currency`` (2 decimals when None or not a known exception).
    """
    f = check_findings(findings)
    f = f.assign(value_at_risk_base=money_series(f["value_at_risk_base"]))
    ccy = base_currency
    if f.empty:
        return ReportSummary(_empty(TYPE_COLUMNS), _empty(TEAM_COLUMNS), _empty(STORE_COLUMNS), 0, 0.0, 0, 0.0,
                             0.0, ccy)
    t = totals_by_type(f) if totals is None else totals
    t = t.rename(columns={"findings": "count"}).astype({"count": "int64"})
    t["value_at_risk_base"] = money_series(t["value_at_risk_base"])
    by_team = t.groupby("owner_team", as_index=False, sort=True, dropna=False)[["count", "value_at_risk_base"]].sum()
    of_type = lambda ftype: t.loc[t["finding_type"] == ftype, "value_at_risk_base"].sum()  # noqa: E731
    return ReportSummary(
        totals_by_type=_by_value(t, "finding_type", TYPE_COLUMNS, ccy),
        totals_by_team=_by_value(by_team, "owner_team", TEAM_COLUMNS, ccy),
        drift_by_store=_drift_by_store(f, ccy),
        findings=int(t["count"].sum()),
        value_at_risk_base=round_money(t["value_at_risk_base"].sum(), ccy),
        error_findings=int(t.loc[t["severity"] == "ERROR", "count"].sum()),
        oversell_value_base=round_money(of_type(OVERSELL), ccy),
        lost_sales_value_base=round_money(of_type(LOST_SALES), ccy),
        base_currency=ccy,
    )


def rank_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Every finding in the report's order with a unique ``report_rank`` 1..n.

    Order: the engine's risk_rank ascending (1 = highest commercial risk; missing last), then value at risk
    in the base currency descending, then finding type, location, SKU, order ref, transaction, tax rate and
    detail (text, missing last); rows equal on all of these keep their input order.
    """
    f = check_findings(findings)
    keys = pd.DataFrame({
        "_rank": pd.to_numeric(f["risk_rank"], errors="coerce").astype("float64"),
        "_var": pd.to_numeric(f["value_at_risk_base"], errors="coerce").astype("float64").fillna(0.0),
        **{f"_{c}": f[c].astype("string") for c in _RANK_KEYS if c != "tax_rate"},
        "_tax_rate": pd.to_numeric(f["tax_rate"], errors="coerce").astype("float64"),
    })
    cols = ["_rank", "_var", *(f"_{c}" for c in _RANK_KEYS)]
    order = keys.sort_values(cols, ascending=[True, False] + [True] * len(_RANK_KEYS), kind="mergesort",
                             na_position="last").index
    out = f.loc[order].reset_index(drop=True)
    out[REPORT_RANK] = pd.Series(range(1, len(out) + 1), dtype="int64")
    return out


def top_risks(findings: pd.DataFrame, n: int = TOP_RISKS) -> pd.DataFrame:
    """The n findings of highest risk in the report's order (see :func:`rank_findings`), with report_rank."""
    return rank_findings(findings).head(n).reset_index(drop=True)
