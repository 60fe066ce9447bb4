"""What a flow run works with: the store of record, the platforms, the settings and the estate's pickup stores."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine

from pipelines.domain.flows.click_collect import PickupStore
from pipelines.domain.flows.endless_aisle import DEFAULT_SHIPPING_MAP, StoreTerms
from pipelines.domain.flows.exceptions import Problem
from pipelines.domain.flows.kiosk import KioskSettings
from pipelines.domain.flows.model import StoreRefund, StoreReturn
from pipelines.domain.flows.ports import CommercePlatform, StoreSystem
from pipelines.domain.flows.ship_from_store import FulfilmentLocation


class StoreEvidence(Protocol):
    """The store system's landed events a flow reads (`newstore_events.NewStoreEvidence`)."""

    def store_return(self, return_id: str) -> StoreReturn | None: ...

    def store_refund(self, return_id: str) -> StoreRefund: ...

    def is_store_sale(self, order_id: str) -> bool: ...


@dataclass(frozen=True)
class FlowSettings:
    pickup_shipping_options: tuple[str, ...] = ("Click & Collect",)
    pickup_service_level: str = "IN_STORE_PICKUP"
    uncollected_after_h: float = 72.0
    max_attempts: int = 5
    retry_base_s: float = 15.0
    # endless aisle: NewStore service level -> the commerce platform's shipping option (an explicit table), and
    # each store's commerce market and price list (the estate file; `endless_aisle.store_terms`)
    shipping_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SHIPPING_MAP))
    store_terms: Mapping[str, StoreTerms] = field(default_factory=dict)
    # ship-from-store: NewStore's shipping service level of a delivery order, the estate's locations (both
    # platforms' ids), and an explicit fallback order per store (store id -> location ids; else same country, then DC)
    ship_from_store_service_level: str = "STANDARD"
    fulfilment_locations: tuple[FulfilmentLocation, ...] = ()
    ship_from_store_fallback: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # kiosk orders (Cloudshelf): take-home option, fulfilment method -> shipping option, address attribute keys
    kiosk: KioskSettings = field(default_factory=KioskSettings)


@dataclass
class FlowContext:
    engine: Engine
    commerce: CommercePlatform
    stores: StoreSystem
    evidence: StoreEvidence
    settings: FlowSettings
    pickup_stores: Mapping[str, PickupStore]  # commerce warehouse id -> the store it is
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    kiosk: Any = None  # kiosk orders: `pipelines.order_flows.kiosk.KioskRuntime` when Cloudshelf is configured
    erp: Any = None  # the ERP flows: `pipelines.order_flows.erp.ErpRuntime` when an ERP is configured


@dataclass
class FlowResult:
    status: str  # done | skipped (pipelines.store.order_flows)
    outcome: dict[str, Any]
    wrote: bool = False  # this run changed a platform
    problems: list[Problem] = field(default_factory=list)
    blocked: bool = False  # the flow could not do its work: the work item becomes `exception`
