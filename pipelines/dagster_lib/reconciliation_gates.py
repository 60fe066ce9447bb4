"""The conditions a day's findings must meet, judged in one place for the asset checks and the report.

The finance report evaluates the same gates as the checks itself before it writes anything, so it
cannot exist for a day whose money check is red, however it is launched (alone, in a backfill, with
the check skipped), and it states the gates it was produced under.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pandera.errors import SchemaErrors

from pipelines.dagster_lib.schemas import Findings
from pipelines.defs.resources import ReconciliationSettings
from pipelines.domain.reconciliation.model import DRIFT_TYPES, MONEY_TYPES

MONEY_GATE = "money_mismatches_within_tolerance"
DRIFT_GATE = "stock_drift_within_tolerance"


@dataclass(frozen=True)
class Gate:
    """One condition on one day's findings."""

    name: str
    passed: bool
    hits: pd.DataFrame  # the findings the gate is about
    value_base: float  # their value at risk, base currency
    limit_base: float
    what: str  # e.g. "money mismatch(es)"

    @property
    def description(self) -> str:
        return f"{len(self.hits)} {self.what}, {self.value_base:.2f} at risk (limit {self.limit_base:.2f})"


def _gate(name: str, findings: pd.DataFrame, types: tuple[str, ...], limit_base: float, what: str) -> Gate:
    hits = findings[findings["finding_type"].isin(types)]
    value = round(float(hits["value_at_risk_base"].sum()), 2)
    limit = round(float(limit_base), 2)
    return Gate(name, hits.empty or value <= limit, hits, value, limit, what)


def money_gate(findings: pd.DataFrame, limits: ReconciliationSettings) -> Gate:
    """Blocking: money mismatches above `blocking_value_base` (base currency, per day)."""
    return _gate(MONEY_GATE, findings, MONEY_TYPES, limits.blocking_value_base, "money mismatch(es)")


def drift_gate(findings: pd.DataFrame, limits: ReconciliationSettings) -> Gate:
    """Warning: stock drift above `drift_warn_value_base` (base currency, per day)."""
    return _gate(DRIFT_GATE, findings, DRIFT_TYPES, limits.drift_warn_value_base, "drifting (store, SKU) pair(s)")


@dataclass(frozen=True)
class ReportGates:
    """What the finance report of a day is produced under: it may be published only when the findings
    are well formed and the money gate passes (the drift gate warns, it does not block)."""

    schema_passed: bool
    schema_detail: str
    money: Gate
    drift: Gate

    @property
    def may_publish(self) -> bool:
        return self.schema_passed and self.money.passed

    @property
    def produced_under(self) -> list[tuple[str, bool, str]]:
        return [("reconciliation_findings_schema", self.schema_passed, self.schema_detail),
                (self.money.name, self.money.passed, self.money.description),
                (self.drift.name, self.drift.passed, self.drift.description)]


def report_gates(findings: pd.DataFrame, limits: ReconciliationSettings) -> ReportGates:
    try:
        Findings.validate(findings, lazy=True)
        schema_passed, detail = True, f"{len(findings)} finding(s), well formed"
    except SchemaErrors as exc:
        schema_passed, detail = False, f"{len(exc.failure_cases)} schema failure(s) in {len(findings)} finding(s)"
    return ReportGates(schema_passed, detail, money_gate(findings, limits), drift_gate(findings, limits))
