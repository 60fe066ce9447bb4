"""Netting pending movements per (Centra warehouse, SKU), combining absolute counts with deltas.

The rule (docs/stock-sync.md, "Counts and deltas"): movements of one key are totally ordered by
`model.order_key` (POS event time, then NewStore's logical timestamp). A count says "on hand was N
at that moment", so it absorbs every movement ordered before it, whenever that movement arrives.
Hence, with W the latest count already applied (the watermark) and K the latest pending count:

* K newer than W: setStock(K + deltas ordered after K, pending or already applied); every other
  pending movement is absorbed by K.
* otherwise: changeStock(sum of pending deltas ordered after W); pending counts and deltas ordered
  before W are absorbed (they arrived late).

Deltas commute, so the order of arrival never matters; a late count older than W changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipelines.domain.sync.model import ADD, REMOVE, SET, KeyPlan, Mutation, QueuedMovement, Watermark


def newer_count(pending: Iterable[QueuedMovement], watermark: Watermark | None) -> QueuedMovement | None:
    """The pending count that becomes the new watermark, if any (the caller then needs the sum of
    deltas already applied after it, see `net_key`)."""
    counts = [m for m in pending if m.is_count]
    if not counts:
        return None
    latest = max(counts, key=lambda m: m.order)
    if watermark is not None and latest.order <= watermark.order:
        return None
    return latest


def net_key(pending: Sequence[QueuedMovement], watermark: Watermark | None, applied_after: int = 0) -> KeyPlan:
    """The plan for one key. `applied_after`: the sum of deltas already applied in Centra that are
    ordered after `newer_count(pending, watermark)` (ignored when there is no newer count)."""
    if not pending:
        raise ValueError("net_key needs at least one pending movement")
    ordered = sorted(pending, key=lambda m: m.order)
    first = ordered[0]
    count = newer_count(ordered, watermark)
    floor = count.order if count is not None else (watermark.order if watermark is not None else None)
    after = [m for m in ordered if not m.is_count and (floor is None or m.order > floor)]
    carried = {m.id for m in after} | ({count.id} if count is not None else set())
    absorbs = tuple(m.id for m in ordered if m.id not in carried)
    delta = sum(m.quantity for m in after)
    common = {"warehouse_id": first.warehouse_id, "sku": first.sku, "absorbs": absorbs,
              "first_event_time": ordered[0].event_time, "last_event_time": ordered[-1].event_time,
              "isolate": any(m.isolate for m in ordered)}
    if count is not None:
        # Centra stock cannot be negative; a POS that went below zero is mirrored as zero.
        return KeyPlan(operation="set", quantity=max(0, count.quantity + applied_after + delta),
                       applies=(count.id, *(m.id for m in after)), watermark=Watermark.of(count), **common)
    return KeyPlan(operation="delta" if delta else "none", quantity=delta, applies=tuple(m.id for m in after),
                   **common)


def group_mutations(plans: Iterable[KeyPlan], max_lines: int = 200) -> list[Mutation]:
    """Batch key plans into mutations: per warehouse one setStock, one changeStock of removals and
    one of additions (chunks of `max_lines`); plans flagged `isolate` get a mutation of their own."""
    groups: dict[tuple[int, str], list[KeyPlan]] = {}
    alone: list[tuple[str, KeyPlan]] = []
    for p in plans:
        if p.operation == "none":
            continue
        op = SET if p.operation == "set" else (REMOVE if p.quantity < 0 else ADD)
        if p.isolate:
            alone.append((op, p))
        else:
            groups.setdefault((p.warehouse_id, op), []).append(p)
    out: list[Mutation] = []
    for (wid, op), members in sorted(groups.items()):
        members.sort(key=lambda p: p.sku)
        for start in range(0, len(members), max(1, max_lines)):
            chunk = members[start:start + max_lines]
            out.append(Mutation(wid, op, {p.sku: _line(op, p) for p in chunk}, list(chunk)))
    for op, p in alone:
        out.append(Mutation(p.warehouse_id, op, {p.sku: _line(op, p)}, [p]))
    return out


def _line(op: str, plan: KeyPlan) -> int:
    return plan.quantity if op == SET else abs(plan.quantity)
