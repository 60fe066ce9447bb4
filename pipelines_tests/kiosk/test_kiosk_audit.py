"""The daily SKU audit over loopback: after a clean publish it finds nothing; with faults injected on both sides
(a product deleted on the kiosk, a variant switched off there, a variant Centra does not know, a SKU deactivated in
Centra) it finds exactly those, its check fails, and after the fix (a full publish) re-running the day replaces the
day's rows with what is left. Oracle: the injected faults, named from the estate."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg

from pipelines.connectors.cloudshelf import ids
from pipelines.defs.kiosk import kiosk_catalog, kiosk_sku_audit, kiosk_sku_audit_clean
from pipelines.devstack import Stack
from pipelines.estate.model import SizeRef
from pipelines.store.kiosk import read_audit
from pipelines_tests.kiosk.kiosk_support import resources

DAY = "2026-11-20"


def _publish(stack: Stack, *, full: bool = False) -> None:
    result = dg.materialize([kiosk_catalog], resources=resources(stack),
                            run_config={"ops": {"kiosk_catalog": {"config": {"full": full}}}})
    assert result.success


def _audit(stack: Stack) -> tuple[set[tuple[str, str, str]], bool]:
    """The day's findings as (type, SKU, severity) and whether the check passed."""
    result = dg.materialize([kiosk_sku_audit, kiosk_sku_audit_clean], resources=resources(stack), partition_key=DAY,
                            raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    df = read_audit(stack.engine, DAY)
    return {(r.finding_type, r.sku, r.severity) for r in df.itertuples()}, evaluation.passed


def _deactivate_in_centra(stack: Stack, sku: str) -> None:
    state = stack.centra.state
    with state.lock:
        ref = state.size_by_sku[sku]
        off = SizeRef(ref.product, ref.variant, replace(ref.size, active=False))
        state.sizes[ref.size.size_id] = off
        state.size_by_sku[sku] = off


def test_audit_finds_exactly_the_injected_faults_and_the_day_is_replaced_after_the_fix(stack: Stack) -> None:
    # Kills: a missing check that ignores the kiosk (every SKU reported), a reverse check that ignores Centra's
    # status (the deactivated SKU not reported), availableToPurchase not read (switched-off variant missed), a
    # variant id not mapped back to its SKU (every SKU unknown), the check passing on ERROR findings, and rows
    # appended instead of replaced when the day is re-run.
    est = stack.estate
    _publish(stack)
    assert _audit(stack) == (set(), True)

    deleted = est.catalog[0]
    gone = {s.sku for v in deleted.variants for s in v.sizes}
    rest = [s for s in est.skus() if s not in gone]
    switched_off, retired = rest[0], rest[1]
    with stack.cloudshelf_client() as client:
        client.delete_products([ids.product_gid(deleted.product_id)])
        product = ids.product_gid(est.by_sku[switched_off].product.product_id)
        client.upsert_variants(product, [{"id": ids.variant_gid(switched_off), "availableToPurchase": False},
                                         {"id": ids.variant_gid("GHOST-1"), "sku": "GHOST-1", "displayName": "Ghost",
                                          "availableToPurchase": True, "currentPrice": 1.0, "originalPrice": 1.0}])
    _deactivate_in_centra(stack, retired)

    findings, passed = _audit(stack)
    assert not passed
    assert findings == {("kiosk_sku_missing_on_kiosk", sku, "ERROR") for sku in gone} | {
        ("kiosk_sku_not_purchasable_on_kiosk", switched_off, "ERROR"),
        ("kiosk_sku_unknown_in_commerce", "GHOST-1", "ERROR"),
        ("kiosk_sku_inactive_in_commerce", retired, "ERROR")}

    _publish(stack)  # incremental: the retired SKU changed in Centra, so it is sent (not purchasable any more)
    assert ("kiosk_sku_inactive_in_commerce", retired, "ERROR") not in _audit(stack)[0]
    _publish(stack, full=True)  # the playbook's fix for what was changed on the kiosk
    findings, passed = _audit(stack)
    assert findings == {("kiosk_sku_unknown_in_commerce", "GHOST-1", "ERROR")} and not passed
    assert len(read_audit(stack.engine, DAY)) == 1
