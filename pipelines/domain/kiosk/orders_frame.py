"""The kiosk orders of one business day as the raw dataset `cloudshelf_orders`: one row per order line (pure shaping).

Input: Cloudshelf orders as `CloudshelfClient.order`/`orders_since` read them (`order(id)`/`orders(...)`: `id`,
`thirdPartyId`, `status`, `createdAt`, the lines' `id`, `productVariantId`, `quantity`, `price`, `currencyCode`,
and the session's `locationId`, `fulfilmentMethod`, `basketCurrencyCode`; field names from Cloudshelf's generated
types, see the client). An order belongs to the business day of its `createdAt` in the estate's business timezone
(an order updated later, e.g. refunded the next day, stays on the day it was placed, with its current status).

Columns (ORDER_LINE_COLUMNS):

- ``order_id``: Cloudshelf's order GlobalId; ``line_id``: the line's id;
- ``status``: Cloudshelf's OrderStatus as read (DRAFT_BASKET, PLACED, PAID, PARTIALLY_REFUNDED, REFUNDED, VOIDED);
- ``location_id``: the estate location id of the session's location (`ids.location_of`; None when the location is
  not one of our GlobalIds), ``location_gid`` the GlobalId as read;
- ``fulfilment_method``: the session's fulfilment method (the acquisition option's internal name) and
  ``fulfilment_kind``: ``take_home`` when it is the take-home option (`PIPELINES_KIOSK_TAKE_HOME`, compared
  case-insensitively, as the kiosk order flow classifies), else ``delivery`` (endless aisle; an option missing from
  the shipping map is still a delivery: the order flow raises it as an exception);
- ``sku`` (from our variant GlobalId; None for a variant that is not ours), ``quantity``, ``unit_price`` (the line's
  `price`, per unit as the kiosk charged), ``line_total`` = quantity x unit_price rounded to cents, ``currency``
  (the line's `currencyCode`, else the basket's);
- ``third_party_id``: the Centra order number the order flow wrote back (`newThirdPartyId`), None until then;
- ``created_at``, ``updated_at``: normalised UTC text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import pandas as pd

from pipelines.domain.timeutil import business_date, normalise_time

TAKE_HOME, DELIVERY = "take_home", "delivery"
#: Cloudshelf OrderStatus values in which the customer has paid (refunds come after the payment).
PAID_STATUSES = ("PAID", "PARTIALLY_REFUNDED", "REFUNDED")
ORDER_LINE_COLUMNS = ["order_id", "line_id", "status", "location_id", "location_gid", "fulfilment_method",
                      "fulfilment_kind", "sku", "quantity", "unit_price", "line_total", "currency",
                      "third_party_id", "created_at", "updated_at"]


class _Line(Protocol):
    id: str
    sku: str | None
    quantity: int
    price: float
    currency: str | None


class _Order(Protocol):
    id: str
    third_party_id: str | None
    status: str
    created_at: str
    updated_at: str
    location_id: str | None
    fulfilment_method: str | None
    currency: str | None
    lines: tuple[Any, ...]


def fulfilment_kind(method: str | None, take_home: str) -> str:
    """take_home when `method` is the take-home option (case-insensitive), else delivery."""
    return TAKE_HOME if (method or "").strip().casefold() == take_home.strip().casefold() else DELIVERY


def _time(value: str | None) -> str | None:
    try:
        return normalise_time(value) if value else None
    except (TypeError, ValueError):
        return None


def orders_frame(orders: Iterable[_Order], day: str, tz: str, *, take_home: str,
                 location_of: Any) -> pd.DataFrame:
    """The lines of the orders created on business day `day` (in `tz`), one row each (columns above), sorted by
    created_at, order and line. An order read twice (paging overlap) counts once (its latest update wins).
    `location_of`: location GlobalId -> estate location id or None (`pipelines.connectors.cloudshelf.ids`)."""
    latest: dict[str, _Order] = {}
    for order in orders:
        created = _time(order.created_at)
        if created is None or business_date(created, tz) != day:
            continue
        seen = latest.get(order.id)
        if seen is None or (_time(order.updated_at) or "") >= (_time(seen.updated_at) or ""):
            latest[order.id] = order
    rows: list[dict[str, Any]] = []
    for order in latest.values():
        kind = fulfilment_kind(order.fulfilment_method, take_home)
        for line in order.lines:
            qty = int(line.quantity)
            price = float(line.price)
            rows.append({
                "order_id": order.id, "line_id": str(line.id), "status": order.status,
                "location_id": location_of(order.location_id), "location_gid": order.location_id,
                "fulfilment_method": order.fulfilment_method, "fulfilment_kind": kind,
                "sku": line.sku, "quantity": qty, "unit_price": price, "line_total": round(qty * price, 2),
                "currency": line.currency or order.currency, "third_party_id": order.third_party_id or None,
                "created_at": _time(order.created_at), "updated_at": _time(order.updated_at)})
    df = pd.DataFrame(rows, columns=ORDER_LINE_COLUMNS)
    return df.sort_values(["created_at", "order_id", "line_id"], kind="mergesort").reset_index(drop=True)


def kiosk_orders(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per order from its lines: order_id, status, location_id, fulfilment_kind, currency, total (sum of
    line totals), units, third_party_id, created_at."""
    cols = ["order_id", "status", "location_id", "fulfilment_kind", "currency", "total", "units", "third_party_id",
            "created_at"]
    if lines is None or lines.empty:
        return pd.DataFrame(columns=cols)
    g = lines.groupby("order_id", sort=True, dropna=False)
    out = g.agg(status=("status", "first"), location_id=("location_id", "first"),
                fulfilment_kind=("fulfilment_kind", "first"), currency=("currency", "first"),
                total=("line_total", "sum"), units=("quantity", "sum"),
                third_party_id=("third_party_id", "first"), created_at=("created_at", "min")).reset_index()
    out["total"] = out["total"].astype(float).round(2)
    return out[cols]
