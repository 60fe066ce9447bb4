"""With the catalog export running, the POS catalog holds what NewStore's import accepted, so the orphan-SKU rule
("active in Centra, unknown to the POS") only shows real drift: the SKU NewStore refused, not the ones it took.
Real simulators over loopback, real Dagster materialisations; the oracle is the Centra simulator's catalog."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg

from pipelines.dagster_lib.partitions import BUSINESS_TIMEZONE, yesterday
from pipelines.defs.pos.assets import pos_catalog
from pipelines.domain.reconciliation import rules
from pipelines.domain.timeutil import business_date
from pipelines.store.catalog_export import record_held
from pipelines.store.partitions import read_partition
from pipelines_tests.catalog.test_catalog_export import export, resources, stack  # noqa: F401 (the fixture)


def test_accepted_skus_are_known_to_the_pos_and_a_refused_one_is_not(stack) -> None:  # noqa: ANN001, F811
    state = stack.centra.state
    refused = next(iter(state.sizes.values()))
    state.sizes[refused.size.size_id] = replace(refused, size=replace(refused.size, ean="12345"))  # not an EAN-13
    export(stack, full=True)
    # Later, Centra loses a price for a SKU NewStore already took: held back from the next send, still in NewStore.
    kept = next(ref.size.sku for ref in state.sizes.values() if ref.size.sku != refused.size.sku and ref.size.active)
    record_held(stack.engine, {kept: "no price in a store market's price list"})
    today = business_date(datetime.now(UTC), BUSINESS_TIMEZONE)
    with dg.instance_for_test() as instance:
        for day in (today, yesterday(datetime.now(UTC))):
            assert dg.materialize([pos_catalog], resources=resources(stack), instance=instance,
                                  partition_key=day).success
    active = {ref.size.sku for ref in state.sizes.values() if ref.size.active}
    catalog = read_partition(stack.engine, "pos_catalog", today)
    known = set(rules.pos_known_skus(pos_catalog=catalog, business_date=today))
    assert known == active - {refused.size.sku}  # no stock snapshot here: the catalog alone; `kept` included
    assert (catalog["locations"] == 0).all()
    # The export happened today: yesterday's POS catalog did not hold these SKUs yet.
    assert read_partition(stack.engine, "pos_catalog", yesterday(datetime.now(UTC))).empty
