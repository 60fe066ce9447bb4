"""Value types of the stock sync: queued movements, count watermarks, per-key plans, mutations."""

from __future__ import annotations

from dataclasses import dataclass, field

COUNT = "count"

#: Mutation operations: changeStock removals, changeStock additions, setStock (absolute PHYSICAL).
REMOVE, ADD, SET = "remove", "add", "set"

OrderKey = tuple[str, int, int, int]


def order_key(event_time: str, logical_timestamp: int | None, is_count: bool, ident: int) -> OrderKey:
    """Total order of stock events for one (warehouse, SKU).

    POS event time first (canonical UTC text sorts chronologically), NewStore's logical timestamp as
    the tie-breaker, then counts before deltas (a delta at the very instant of a count is on top of
    it, as in the ground truth), then the row id for determinism.
    """
    return (event_time, logical_timestamp if logical_timestamp is not None else 0, 0 if is_count else 1, ident)


@dataclass(frozen=True)
class QueuedMovement:
    """A decoded POS movement waiting in the queue, mapped to a Centra warehouse."""

    id: int
    warehouse_id: int
    sku: str
    movement_type: str  # sale | return | receipt | adjustment | count (resync corrections are counts)
    quantity: int  # signed delta, or the counted quantity
    event_time: str
    logical_timestamp: int | None = None
    isolate: bool = False

    @property
    def is_count(self) -> bool:
        return self.movement_type == COUNT

    @property
    def key(self) -> tuple[int, str]:
        return (self.warehouse_id, self.sku)

    @property
    def order(self) -> OrderKey:
        return order_key(self.event_time, self.logical_timestamp, self.is_count, self.id)


@dataclass(frozen=True)
class Watermark:
    """The latest absolute count applied for one (warehouse, SKU)."""

    event_time: str
    logical_timestamp: int | None
    quantity: int
    movement_id: int

    @property
    def order(self) -> OrderKey:
        return order_key(self.event_time, self.logical_timestamp, True, self.movement_id)

    @classmethod
    def of(cls, m: QueuedMovement) -> Watermark:
        return cls(m.event_time, m.logical_timestamp, m.quantity, m.id)


@dataclass(frozen=True)
class KeyPlan:
    """What one (warehouse, SKU) needs: a delta, an absolute quantity, or nothing.

    `applies` are the movements whose effect the operation carries (done once it is confirmed);
    `absorbs` are movements made obsolete by a count (superseded once it is confirmed).
    """

    warehouse_id: int
    sku: str
    operation: str  # "delta" | "set" | "none"
    quantity: int
    applies: tuple[int, ...]
    absorbs: tuple[int, ...]
    first_event_time: str
    last_event_time: str
    watermark: Watermark | None = None  # the new count watermark (operation "set")
    isolate: bool = False

    @property
    def key(self) -> tuple[int, str]:
        return (self.warehouse_id, self.sku)

    @property
    def movement_ids(self) -> tuple[int, ...]:
        return self.applies + self.absorbs


@dataclass
class Mutation:
    """One Centra mutation for one warehouse: `lines` are SKU -> positive quantity (remove/add) or
    the absolute PHYSICAL quantity (set)."""

    warehouse_id: int
    operation: str
    lines: dict[str, int]
    plans: list[KeyPlan] = field(default_factory=list)
    critical_skus: set[str] = field(default_factory=set)

    @property
    def critical(self) -> bool:
        return bool(self.critical_skus)

    @property
    def oldest_event_time(self) -> str:
        return min(p.first_event_time for p in self.plans)

    @property
    def critical_since(self) -> str | None:
        """The first movement of its oldest critical line (None when nothing is critical): the lines
        riding along may be older, but an oversell risk is only as old as the risk."""
        critical = [p.first_event_time for p in self.plans if p.sku in self.critical_skus]
        return min(critical) if critical else None

    @property
    def movement_count(self) -> int:
        return sum(len(p.movement_ids) for p in self.plans)

    def signed(self, sku: str) -> int:
        """The line as a signed physical delta (remove/add) or the absolute quantity (set)."""
        return -self.lines[sku] if self.operation == REMOVE else self.lines[sku]
