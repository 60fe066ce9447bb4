"""What a restatement of a reconciled business day changed (pure: pandas only, no Dagster, no I/O).

A day is restated when events for it land after it was reconciled (late deliveries, recovered transactions):
its raw datasets and findings are rebuilt, and before the new findings replace the old ones the two are
compared here. A finding is identified by its type and keys (location, SKU, order ref, transaction, tax
rate; repeats of one key are told apart by their order): a key only in the new findings is *added*, only in
the old ones *resolved*, in both with another value at risk (base currency) or quantity difference *changed*.
The day's store sales totals (per kind and currency: lines, units, net amount) are compared the same way.

`Restatement.changes()` is the table `reconciliation_restatements` stores (CHANGE_COLUMNS, one row a change,
plus one `total` row: the day's findings and value at risk before and after) and the finance report shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

#: the identity of a finding across two reconciliations of one day.
FINDING_KEY = ["finding_type", "location_id", "sku", "order_ref", "transaction_id", "tax_rate"]
#: the day's store sales totals (`reconciliation_sales_totals`), one row per kind (sale / return) and currency.
SALES_COLUMNS = ["kind", "currency", "lines", "units", "net_amount"]
#: one row per change of a restatement.
CHANGE_COLUMNS = ["change", "finding_type", "location_id", "sku", "order_ref", "transaction_id", "currency",
                  "count_before", "count_after", "value_before", "value_after", "detail"]
ADDED, RESOLVED, CHANGED, SALES, TOTAL = "added", "resolved", "changed", "sales", "total"
_ORDER = {TOTAL: 0, ADDED: 1, RESOLVED: 2, CHANGED: 3, SALES: 4}
_CENT = 0.005


def sales_totals(lines: pd.DataFrame) -> pd.DataFrame:
    """The store sales totals of a day's `pos_sale_lines`: per kind and currency, lines, units and net amount."""
    if lines is None or lines.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("lines", "units") else
                                          "float64" if c == "net_amount" else "object") for c in SALES_COLUMNS})
    df = lines.assign(quantity=pd.to_numeric(lines["quantity"], errors="coerce").fillna(0),
                      net_amount=pd.to_numeric(lines["net_amount"], errors="coerce").fillna(0.0))
    out = df.groupby(["kind", "currency"], as_index=False, dropna=False).agg(
        lines=("quantity", "size"), units=("quantity", "sum"), net_amount=("net_amount", "sum"))
    out["lines"] = out["lines"].astype("int64")
    out["units"] = out["units"].round().astype("int64")
    out["net_amount"] = out["net_amount"].astype("float64").round(2)
    return out.sort_values(["kind", "currency"]).reset_index(drop=True)[SALES_COLUMNS]


def _keyed(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings with a hashable key per row: the FINDING_KEY values (missing = None) and the repeat number."""
    f = findings.reset_index(drop=True).copy()
    for c in FINDING_KEY:
        if c not in f.columns:
            f[c] = None
    parts = []
    for c in FINDING_KEY:
        col = f[c].astype(object)
        if c == "tax_rate":
            col = pd.to_numeric(col, errors="coerce").round(4)
        parts.append(col.where(pd.notna(col), None).map(lambda v: None if v is None else str(v)))
    base = list(zip(*parts, strict=True)) if len(f) else []
    f["_base"] = base
    f["_n"] = f.groupby("_base").cumcount() if len(f) else pd.Series(dtype="int64")
    f["_key"] = [(*b, int(n)) for b, n in zip(f["_base"], f["_n"], strict=True)]
    f["_value"] = pd.to_numeric(f.get("value_at_risk_base"), errors="coerce").astype("float64").fillna(0.0)
    f["_qty"] = pd.to_numeric(f.get("quantity_diff"), errors="coerce").astype("Float64")
    return f


def _value(x: float) -> float:
    return round(float(x), 2)


@dataclass(frozen=True)
class Restatement:
    """The changes of one restated day. Frames keep the findings' own columns (added, resolved) or the key
    columns with value_before / value_after / quantity_before / quantity_after (changed); sales_* are SALES_COLUMNS."""

    business_date: str
    added: pd.DataFrame
    resolved: pd.DataFrame
    changed: pd.DataFrame
    sales_before: pd.DataFrame
    sales_after: pd.DataFrame
    findings_before: int
    findings_after: int
    value_before: float
    value_after: float

    @property
    def sales_changes(self) -> pd.DataFrame:
        """kind, currency, lines/units/net_amount before and after: the (kind, currency) rows that differ."""
        b = self.sales_before.set_index(["kind", "currency"])[["lines", "units", "net_amount"]]
        a = self.sales_after.set_index(["kind", "currency"])[["lines", "units", "net_amount"]]
        j = b.join(a, how="outer", lsuffix="_before", rsuffix="_after").fillna(0)
        differs = ((j["lines_before"] != j["lines_after"]) | (j["units_before"] != j["units_after"])
                   | ((j["net_amount_before"] - j["net_amount_after"]).abs() >= _CENT))
        return j[differs].reset_index()

    @property
    def has_changes(self) -> bool:
        return bool(len(self.added) or len(self.resolved) or len(self.changed) or len(self.sales_changes))

    def headline(self) -> dict[str, int | float]:
        return {"findings_added": len(self.added), "findings_resolved": len(self.resolved),
                "findings_changed": len(self.changed), "findings_before": self.findings_before,
                "findings_after": self.findings_after, "value_at_risk_base_before": self.value_before,
                "value_at_risk_base_after": self.value_after, "sales_changes": len(self.sales_changes)}

    def changes(self) -> pd.DataFrame:
        """One row per change (CHANGE_COLUMNS): the `total` first, then added, resolved, changed and sales rows.
        Values of findings are value at risk in the base currency; sales rows carry the net amount in their
        currency, lines as count_* and `detail` with the units."""
        rows = [{"change": TOTAL, "count_before": self.findings_before, "count_after": self.findings_after,
                 "value_before": self.value_before, "value_after": self.value_after,
                 "detail": f"{len(self.added)} added, {len(self.resolved)} resolved, {len(self.changed)} changed"}]

        def keys(r: pd.Series) -> dict:
            return {c: (None if pd.isna(r.get(c)) else r.get(c))
                    for c in ("finding_type", "location_id", "sku", "order_ref", "transaction_id", "currency")}

        for _, r in self.added.iterrows():
            rows.append({"change": ADDED, **keys(r), "count_before": 0, "count_after": 1, "value_before": 0.0,
                         "value_after": _value(r["_value"]), "detail": r.get("detail")})
        for _, r in self.resolved.iterrows():
            rows.append({"change": RESOLVED, **keys(r), "count_before": 1, "count_after": 0,
                         "value_before": _value(r["_value"]), "value_after": 0.0, "detail": r.get("detail")})
        for _, r in self.changed.iterrows():
            q = f"quantity difference {r['quantity_before']} -> {r['quantity_after']}" \
                if str(r["quantity_before"]) != str(r["quantity_after"]) else None
            rows.append({"change": CHANGED, **keys(r), "count_before": 1, "count_after": 1,
                         "value_before": r["value_before"], "value_after": r["value_after"], "detail": q})
        for r in self.sales_changes.itertuples(index=False):
            rows.append({"change": SALES, "finding_type": r.kind, "currency": r.currency,
                         "count_before": int(r.lines_before), "count_after": int(r.lines_after),
                         "value_before": _value(r.net_amount_before), "value_after": _value(r.net_amount_after),
                         "detail": f"units {int(r.units_before)} -> {int(r.units_after)}"})
        out = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
        return out.astype({"count_before": "int64", "count_after": "int64", "value_before": "float64",
                           "value_after": "float64"})


def restate(business_date: str, before: pd.DataFrame, after: pd.DataFrame,
            sales_before: pd.DataFrame | None = None, sales_after: pd.DataFrame | None = None) -> Restatement:
    """Compare a day's findings (and store sales totals) as last reconciled with the restated ones."""
    b, a = _keyed(before), _keyed(after)
    bk, ak = set(b["_key"]), set(a["_key"])
    added = a[~a["_key"].isin(bk)].reset_index(drop=True)
    resolved = b[~b["_key"].isin(ak)].reset_index(drop=True)
    both = b[b["_key"].isin(ak)].set_index("_key")[["_value", "_qty"]].join(
        a.set_index("_key")[["_value", "_qty", *FINDING_KEY, "currency"]
                            if "currency" in a.columns else ["_value", "_qty", *FINDING_KEY]],
        lsuffix="_b", rsuffix="_a", how="inner")
    qty_b = both["_qty_b"].astype(object).where(both["_qty_b"].notna(), None)
    qty_a = both["_qty_a"].astype(object).where(both["_qty_a"].notna(), None)
    moved = ((both["_value_b"] - both["_value_a"]).abs() >= _CENT) | (qty_b.map(str) != qty_a.map(str))
    ch = both[moved].reset_index(drop=True)
    changed = ch.drop(columns=["_value_b", "_value_a", "_qty_b", "_qty_a"]).assign(
        value_before=ch["_value_b"].map(_value), value_after=ch["_value_a"].map(_value),
        quantity_before=[None if pd.isna(v) else int(v) for v in ch["_qty_b"]],
        quantity_after=[None if pd.isna(v) else int(v) for v in ch["_qty_a"]])
    empty_sales = sales_totals(pd.DataFrame())
    return Restatement(
        business_date=business_date, added=added, resolved=resolved, changed=changed,
        sales_before=empty_sales if sales_before is None or sales_before.empty else sales_before[SALES_COLUMNS],
        sales_after=empty_sales if sales_after is None or sales_after.empty else sales_after[SALES_COLUMNS],
        findings_before=len(b), findings_after=len(a),
        value_before=_value(b["_value"].sum()), value_after=_value(a["_value"].sum()))


def describe(changes: pd.DataFrame) -> list[str]:
    """Sentences for a stored restatement's rows (CHANGE_COLUMNS): the headline first, then one per change."""
    out = []
    for r in changes.itertuples(index=False):
        keys = " / ".join(str(v) for v in (r.location_id, r.sku, r.order_ref, r.transaction_id)
                          if v is not None and not pd.isna(v))
        keys = f" ({keys})" if keys else ""
        if r.change == TOTAL:
            out.append(f"Findings {r.count_before} -> {r.count_after}, value at risk {r.value_before:,.2f} -> "
                       f"{r.value_after:,.2f} (base currency): {r.detail}.")
        elif r.change == ADDED:
            out.append(f"Added: {r.finding_type}{keys}, value at risk {r.value_after:,.2f}.")
        elif r.change == RESOLVED:
            out.append(f"Resolved: {r.finding_type}{keys}, was {r.value_before:,.2f}.")
        elif r.change == CHANGED:
            more = f"; {r.detail}" if isinstance(r.detail, str) and r.detail else ""
            out.append(f"Changed: {r.finding_type}{keys}, value at risk {r.value_before:,.2f} -> "
                       f"{r.value_after:,.2f}{more}.")
        elif r.change == SALES:
            out.append(f"Store {r.finding_type}s ({r.currency}): {r.count_before} -> {r.count_after} lines, "
                       f"{r.detail}, net {r.value_before:,.2f} -> {r.value_after:,.2f}.")
    return out
