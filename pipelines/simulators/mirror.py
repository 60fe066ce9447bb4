"""A stand-in for an incumbent store-to-online integration, with faults, for reconciliation tests.

It mirrors every recorded POS stock movement into Centra at the movement's own event time, the way a
perfect integration would, except where a fault knob says otherwise. Reconciliation must find every
fault it injects; each is written to the ground truth. Our own stock sync (the product) replaces it
in the running estate; this lets the reconciliation be tested on its own, deterministically.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from pipelines.estate import Estate
from pipelines.simulators.ground_truth import GroundTruth


@dataclass
class MirrorFaults:
    lost: float = 0.0  # share of movements never applied in Centra (silent sync failure)
    wrong_quantity: float = 0.0  # share applied with one unit too many
    commerce_adjustments_per_store_day: float = 0.0  # manual Centra edits with no POS event


class MirrorIntegration:
    def __init__(self, estate: Estate, centra_state, truth: GroundTruth, faults: MirrorFaults | None = None,  # noqa: ANN001
                 seed: int = 3):
        self.estate = estate
        self.centra = centra_state
        self.truth = truth
        self.faults = faults or MirrorFaults()
        self.rng = random.Random(seed)
        self._done = 0  # movements id watermark

    def run(self, start: datetime, end: datetime) -> dict[str, int]:
        """Mirror the movements recorded so far; add commerce-side adjustments in [start, end)."""
        stats = {"mirrored": 0, "lost": 0, "wrong_quantity": 0, "adjustments": 0, "rejected": 0}
        rows = self.truth.query("SELECT id, at, node_id, sku, delta, kind, ref FROM movements WHERE id > ? ORDER BY id",
                                self._done)
        for mid, at, node, sku, delta, _kind, ref in rows:
            self._done = mid
            loc = self.estate.location_of(node)
            size = self.estate.by_sku.get(sku)
            if loc is None or loc.kind != "store" or size is None or _kind == "pickup":
                continue  # a pickup leaves Centra with its own shipment, not through the integration
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            if self.rng.random() < self.faults.lost:
                self.truth.fault(when, "sync_lost", node_id=node, sku=sku, ref=ref, value=float(delta))
                stats["lost"] += 1
                continue
            qty = delta
            if self.rng.random() < self.faults.wrong_quantity:
                qty = delta + 1
                self.truth.fault(when, "sync_wrong_quantity", node_id=node, sku=sku, ref=ref, value=1.0)
                stats["wrong_quantity"] += 1
            if self._apply(loc.centra_warehouse_id, size.size.size_id, qty, f"pos-mirror {ref} {sku}", when):
                stats["mirrored"] += 1
            else:
                self.truth.fault(when, "sync_lost", node_id=node, sku=sku, ref=ref, value=float(qty))
                stats["rejected"] += 1
        days = max(0.0, (end - start).total_seconds() / 86400)
        for store in self.estate.stores:
            n = int(self.faults.commerce_adjustments_per_store_day * days + self.rng.random())
            for _ in range(n if self.faults.commerce_adjustments_per_store_day else 0):
                at = start + (end - start) * self.rng.random()
                local_noon = at.replace(hour=11, minute=self.rng.randint(0, 59))
                at = local_noon if start <= local_noon < end else at
                sku = self.rng.choice(self.estate.skus())
                qty = self.rng.choice((1, 2))
                if self._apply(store.centra_warehouse_id, self.estate.by_sku[sku].size.size_id, qty,
                               "AMS manual stock adjustment", at):
                    self.truth.fault(at, "commerce_adjustment", node_id=store.newstore_node_id, sku=sku,
                                     value=float(qty))
                    stats["adjustments"] += 1
        return stats

    def _apply(self, warehouse_id: int, size_id: int, qty: int, description: str, at: datetime) -> bool:
        if qty == 0:
            return True
        try:
            if qty > 0:
                self.centra.apply_stock_change(description, [(size_id, qty)], into=warehouse_id, at=at)
            else:
                self.centra.apply_stock_change(description, [(size_id, -qty)], out=warehouse_id, at=at)
        except ValueError:  # MutationError: e.g. not enough free stock
            return False
        return True


__all__ = ["MirrorFaults", "MirrorIntegration"]
