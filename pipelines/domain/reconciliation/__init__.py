"""Daily finance reconciliation: POS vs commerce platform (vs downstream/ERP), as findings with value at risk.

Pure pandas/numpy: no Dagster, no database, no HTTP. Entry point: :func:`reconcile`.
"""

from pipelines.domain.reconciliation.engine import (
    ReconciliationInputs,
    ReconciliationResult,
    RuleConfig,
    exception_records,
    reconcile,
)
from pipelines.domain.reconciliation.model import (
    FINDING_COLUMNS,
    FINDING_DTYPES,
    FINDING_TYPES,
    FindingType,
    Tolerance,
    empty_findings,
)
from pipelines.domain.reconciliation.reference import Reference, build_reference

__all__ = [
    "FINDING_COLUMNS",
    "FINDING_DTYPES",
    "FINDING_TYPES",
    "FindingType",
    "ReconciliationInputs",
    "ReconciliationResult",
    "Reference",
    "RuleConfig",
    "Tolerance",
    "build_reference",
    "empty_findings",
    "exception_records",
    "reconcile",
]
