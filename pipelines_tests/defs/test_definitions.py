"""Definitions load, and every asset explains itself (description, owners, group, kinds)."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs

PKG = Path(__file__).resolve().parents[2] / "pipelines"


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("daily_datasets_job") is not None
    assert defs.resolve_job_def("snapshots_job") is not None


def test_every_asset_has_description_owners_group_kinds() -> None:
    specs = list(defs.resolve_all_asset_specs())
    assert len(specs) >= 10
    for spec in specs:
        key = spec.key.to_user_string()
        assert spec.description and len(spec.description) > 40, key
        assert spec.owners, key
        assert spec.group_name and spec.group_name != "default", key
        assert spec.kinds, key


def test_every_daily_dataset_has_a_check() -> None:
    checked = {k.asset_key.to_user_string() for k in defs.resolve_asset_graph().asset_check_keys}
    for spec in defs.resolve_all_asset_specs():
        if isinstance(spec.partitions_def, dg.DailyPartitionsDefinition):
            assert spec.key.to_user_string() in checked, spec.key


def test_production_code_never_imports_simulators() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "simulators" or rel.name == "devstack.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{rel}: {n}" for n in names if n.startswith("pipelines.simulators")]
    assert offenders == []


def _parents(key: str) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get(dg.AssetKey(key)).parent_keys}


def test_every_table_dagster_writes_is_an_asset_with_its_lineage() -> None:
    tables = {"reconciliation_findings", "reconciliation_daily_totals", "reconciliation_drift_by_store",
              "reconciliation_evidence", "reconciliation_sales_totals", "reconciliation_restatements"}
    findings = defs.resolve_assets_def("reconciliation_findings")
    assert {k.to_user_string() for k in findings.keys} == tables  # one run writes the six
    assert {"reconciliation_findings", "reconciliation_daily_totals", "reconciliation_evidence"} <= _parents(
        "finance_daily_report")
    assert "reconciliation_daily_totals" in _parents("finance_month_end_rollup")
    assert _parents("exceptions") == {"pos_sale_lines", "pos_stock_movements", "reconciliation_findings",
                                      "newstore_catalog_export", "order_flow_work", "customer_links"}
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert specs["centra_webhook_inbox"].group_name == specs["newstore_event_inbox"].group_name == "intake"


def test_no_private_dagster_imports() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(PKG)}: {n}" for n in names if n.startswith("dagster._")]
    assert offenders == []
