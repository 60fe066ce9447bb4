"""The commerce datasets the daily reconciliation reads, from commercetools, as the Centra connector's records.

`CommercetoolsReads(client, estate)` answers what `CentraClient` answers to `pipelines/defs/commerce/assets.py`
(`orders_between`, `returns_between`, `stock`, `stock_changes`, `product_sizes`), so commercetools data lands in
the same tables. Mapping (Order/ReturnInfo/InventoryEntry/Message fields per the RAML in
`../shared/reference/specs/commercetools/types`; the estate maps keys to the Centra-shaped ids):

- Order number: `orderNumber` when it is all digits (after `order_number_prefix`, if the project's numbers carry
  one, e.g. "CT"); otherwise (it is optional and user-defined, "unique across a
  Project") a stable number derived from the order `id`: 2**62 + 62 bits of sha256(id), so it never meets a real
  one. `external_id` = the first `syncInfo[].externalId` (our POS export marker), else None.
- Status (the Centra statuses the reconciliation and the schema use): orderState Cancelled -> CANCELLED;
  shipmentState Shipped/Delivered or orderState Complete -> SHIPPED (click-and-collect's terminal status);
  shipmentState Partial/Ready -> PROCESSING; orderState Confirmed -> CONFIRMED; else (Open) PENDING.
- Money: `centAmount / 10**fractionDigits`. Totals from `taxedPrice` (gross, tax = gross - net; without it
  `totalPrice`); line value = the line's `taxedPrice.totalGross` (after discounts), unit price = value / quantity,
  original unit price = `price.value` (gross: our prices are `includedInPrice`, else rate added), tax rate =
  `taxRate.amount` x 100; discount = what `discountedPricePerQuantity` took off (original - value) plus
  `discountOnTotalPrice`. Market = the order's `store` key reversed through `estate.commercetools.store_of_market`,
  store id = that market's; price list = the estate's for the order's currency (and country when several).
  Cancelled quantity = the line's quantity on a Cancelled order; returned quantity = return items in `Returned`,
  `BackInStock` or `Unusable`.
- Returns: each `returnInfo[]` entry is one return, id = its first return item's `id` (stable: items are never
  removed), created at its items' earliest `createdAt`, `external_id` = `returnTrackingId`. Refunded when every
  item's `paymentState` is `Refunded` or a Success `Refund` transaction is matched to it; refund amount = the
  matched Success Refund transactions: matched by `interactionId` (= returnTrackingId, the return id or an item id),
  the order's other Success Refunds go one each, oldest first, to its refunded returns left unmatched, oldest first.
  COMPLETED when every item is settled (`Refunded`/`NotRefunded`, or `BackInStock`/`Unusable`), else PENDING.
  `return_warehouse_id` = the location of the restock supply channel recorded on the return items' custom field
  `restock_field` (a channel reference or key), else None.
- Stock: entries on the estate's location supply channels; physical = quantityOnStock, free = availableQuantity,
  allocated = the difference (reservations), demand 0. SKUs the estate does not know get a stable negative size id.
- Stock changes: `InventoryEntryQuantitySet` messages (delta = new - old quantityOnStock; order deductions make
  none, per the RAML) and `InventoryEntryCreated` (delta = the entry's quantityOnStock), created in [from, to);
  id = message id; description = the sync's batch marker for that entry at that `resourceVersion` (custom field
  `marker_field` on the entry, default the stock sync's `lastSyncBatch`: "<resourceVersion>:<marker>" strings, one
  or a set; a bare "<marker>", as the sync writes it today, counts for the entry's current version only, so it is
  right while the sync's write is the entry's last and lost, or given to another writer's change, once a later
  update moves the version on), else "". Entries on channels that are no location are left out.
- Catalog: one size per product variant with an SKU; ids from the estate by SKU (unknown: stable negative ids),
  is_active = the product is published.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pipelines.connectors.centra.decode import as_utc, utc_iso
from pipelines.connectors.centra.models import (
    CentraOrder,
    CentraOrderLine,
    CentraReturn,
    CentraReturnLine,
    CentraSize,
    CentraStock,
    CentraStockChange,
)
from pipelines.connectors.commercetools.client import CommercetoolsClient
from pipelines.connectors.commercetools.markers import MARKER_FIELD, parse_marker
from pipelines.connectors.commercetools.predicates import in_list, ts
from pipelines.estate.model import Estate, Location

log = logging.getLogger("pipelines.connectors.commercetools.reads")

STOCK_MESSAGE_TYPES = ("InventoryEntryQuantitySet", "InventoryEntryCreated")
_RETURNED = frozenset({"Returned", "BackInStock", "Unusable"})
_SETTLED_PAYMENT = frozenset({"Refunded", "NotRefunded"})
_SETTLED_SHIPMENT = frozenset({"BackInStock", "Unusable"})
_ID_BATCH = 100


def _digest(text: str, nbytes: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:nbytes], "big")


def derived_order_number(order_id: str) -> int:
    """The stable number of an order without a numeric `orderNumber` (>= 2**62, fits a signed BIGINT)."""
    return (1 << 62) | (_digest(order_id, 8) & ((1 << 62) - 1))


def stable_negative_id(text: str) -> int:
    """A stable id for something the estate does not know (negative, so it never meets an estate id)."""
    return -1 - _digest(text, 6)


def order_number(order: dict[str, Any], prefix: str = "") -> int:
    """`orderNumber` as a number (after `prefix`), else the number derived from the id."""
    number = str(order.get("orderNumber") or "").strip()
    if prefix and number.startswith(prefix):
        number = number[len(prefix):]
    return int(number) if number.isdigit() and int(number) > 0 else derived_order_number(str(order["id"]))


def money(m: dict[str, Any] | None) -> float:
    if not m or m.get("centAmount") is None:
        return 0.0
    digits = int(m.get("fractionDigits", 2))
    return round(int(m["centAmount"]) / 10 ** digits, digits)


def order_status(order: dict[str, Any]) -> str:
    state, shipment = order.get("orderState"), order.get("shipmentState")
    if state == "Cancelled":
        return "CANCELLED"
    if shipment in ("Shipped", "Delivered") or state == "Complete":
        return "SHIPPED"
    if shipment in ("Partial", "Ready"):
        return "PROCESSING"
    return "CONFIRMED" if state == "Confirmed" else "PENDING"


def _ref_id(ref: Any) -> str | None:
    return str(ref["id"]) if isinstance(ref, dict) and ref.get("id") else None


def _rate(line: dict[str, Any]) -> tuple[float, bool]:
    tax = line.get("taxRate") or {}
    return float(tax.get("amount") or 0.0), bool(tax.get("includedInPrice", True))


def _line_gross(line: dict[str, Any]) -> float:
    taxed = line.get("taxedPrice") or {}
    if taxed.get("totalGross"):
        return money(taxed["totalGross"])
    rate, included = _rate(line)
    total = money(line.get("totalPrice"))
    return total if included else round(total * (1 + rate), 2)


def _unit_original_gross(line: dict[str, Any]) -> float:
    rate, included = _rate(line)
    unit = money((line.get("price") or {}).get("value"))
    return unit if included else round(unit * (1 + rate), 2)


def _unit_gross(line: dict[str, Any]) -> float:
    qty = int(line.get("quantity") or 0)
    return round(_line_gross(line) / qty, 2) if qty else _unit_original_gross(line)


class CommercetoolsReads:
    """The reconciliation's commerce datasets from commercetools (see the module docstring)."""

    def __init__(self, client: CommercetoolsClient, estate: Estate, *, marker_field: str = MARKER_FIELD,
                 restock_field: str = "restockSupplyChannel", order_number_prefix: str = "") -> None:
        if estate.commercetools is None:
            raise ValueError("the estate has no commercetools section")
        self.client = client
        self.estate = estate
        self.ct = estate.commercetools
        self.marker_field = marker_field
        self.restock_field = restock_field
        self.order_number_prefix = order_number_prefix
        self._market_of_store = {s.key: s.market_id for s in self.ct.stores}
        self._channels: dict[str, dict[str, Any]] | None = None

    # -- reference data

    def _channel_by_id(self) -> dict[str, dict[str, Any]]:
        if self._channels is None:
            self._channels = {str(c["id"]): c for c in self.client.channels()}
        return self._channels

    def _location_of_channel(self, ref: Any) -> Location | None:
        """The estate location of a channel given as a reference `{typeId, id}`, an id or a key."""
        if ref is None:
            return None
        channels = self._channel_by_id()
        if isinstance(ref, dict):
            key = (ref.get("obj") or channels.get(str(ref.get("id"))) or {}).get("key") or ref.get("key")
        else:
            key = (channels.get(str(ref)) or {}).get("key") or str(ref)
        loc_id = self.ct.location_of_channel.get(str(key)) if key else None
        return self.estate.by_location_id.get(loc_id) if loc_id else None

    def _pricelist_id(self, currency: str | None, country: str | None, market_id: int | None) -> int | None:
        same = [p for p in self.estate.centra.pricelists if p.currency == currency]
        best = [p for p in same if country in p.countries] or same
        if best:
            return best[0].id
        market = self.estate.markets.get(market_id) if market_id is not None else None
        return market.pricelist_id if market else None

    def _size_id(self, sku: str) -> int:
        ref = self.estate.by_sku.get(sku)
        return ref.size.size_id if ref else stable_negative_id(f"sku:{sku}")

    # -- orders

    def orders_between(self, start: datetime, end: datetime) -> list[CentraOrder]:
        """Orders created in [start, end), oldest first."""
        where = [f"createdAt >= {ts(start)}", f"createdAt < {ts(end)}"]
        orders = [self.order_record(o) for o in self.client.orders(where)]
        return sorted(orders, key=lambda o: (o.created_at, o.number))

    def orders_by_numbers(self, numbers: Iterable[int], *, batch_size: int = 100) -> dict[int, CentraOrder]:
        """The orders with these numbers, by number (`orderNumber in (...)`, `batch_size` a request); numbers
        commercetools does not know, and numbers derived from ids, are absent."""
        wanted = sorted({int(n) for n in numbers if 0 < int(n) < (1 << 62)})
        out: dict[int, CentraOrder] = {}
        for i in range(0, len(wanted), batch_size):
            batch = [f"{p}{n}" for n in wanted[i:i + batch_size] for p in {"", self.order_number_prefix}]
            for o in self.client.orders(in_list("orderNumber", batch)):
                order = self.order_record(o)
                out[order.number] = order
        return out

    def order_record(self, o: dict[str, Any]) -> CentraOrder:
        number = order_number(o, self.order_number_prefix)
        returned: dict[str, int] = {}
        for info in o.get("returnInfo") or []:
            for item in info.get("items") or []:
                if item.get("shipmentState") in _RETURNED and item.get("lineItemId"):
                    returned[item["lineItemId"]] = returned.get(item["lineItemId"], 0) + int(item.get("quantity") or 0)
        cancelled = o.get("orderState") == "Cancelled"
        lines, discount = [], 0.0
        for ln in o.get("lineItems") or []:
            sku = (ln.get("variant") or {}).get("sku")
            ref = self.estate.by_sku.get(sku) if sku else None
            qty = int(ln.get("quantity") or 0)
            original, unit, value = _unit_original_gross(ln), _unit_gross(ln), _line_gross(ln)
            discount += max(0.0, original * qty - value)
            lines.append(CentraOrderLine(
                line_id=ln["id"], sku=sku, ean=ref.size.ean if ref else None,
                product_number=ln.get("productKey") or (ref.product.product_number if ref else None),
                quantity=qty, cancelled_quantity=qty if cancelled else 0,
                returned_quantity=min(qty, returned.get(ln["id"], 0)), unit_price=unit,
                unit_original_price=original,
                discount_percent=round((1 - unit / original) * 100, 3) if original and unit < original else 0.0,
                tax_percent=round(_rate(ln)[0] * 100, 3), line_value=value))
        on_total = o.get("discountOnTotalPrice") or {}
        discount += money(on_total.get("discountedGrossAmount") or on_total.get("discountedAmount"))
        taxed = o.get("taxedPrice") or {}
        grand = money(taxed.get("totalGross")) if taxed.get("totalGross") else money(o.get("totalPrice"))
        tax = (round(money(taxed.get("totalGross")) - money(taxed.get("totalNet")), 2) if taxed.get("totalGross")
               else round(sum(ln.line_value * ln.tax_percent / (100 + ln.tax_percent) for ln in lines), 2))
        shipping_info = o.get("shippingInfo") or {}
        shipping = (money((o.get("taxedShippingPrice") or {}).get("totalGross"))
                    or money((shipping_info.get("taxedPrice") or {}).get("totalGross"))
                    or money(shipping_info.get("price")))
        store_key = (o.get("store") or {}).get("key")
        market_id = self._market_of_store.get(store_key) if store_key else None
        market = self.estate.markets.get(market_id) if market_id is not None else None
        currency = (o.get("totalPrice") or {}).get("currencyCode")
        address = o.get("shippingAddress") or {}
        country = o.get("country") or address.get("country")
        sync = [s.get("externalId") for s in o.get("syncInfo") or [] if s.get("externalId")]
        return CentraOrder(
            id=o["id"], number=number, status=order_status(o), created_at=utc_iso(o["createdAt"]) or "",
            store_id=market.store_id if market else None, market_id=market_id,
            pricelist_id=self._pricelist_id(currency, country, market_id), currency=currency, country=country,
            currency_base_rate=None, email=o.get("customerEmail") or address.get("email"),
            external_id=sync[0] if sync else None, grand_total=grand, tax_total=tax,
            discount_total=round(discount, 2), shipping_total=shipping, lines=tuple(lines))

    # -- returns

    def returns_between(self, start: datetime, end: datetime) -> list[CentraReturn]:
        """Returns (returnInfo entries) created in [start, end), oldest first.

        Orders are selected by `lastModifiedAt >= start` (adding a returnInfo modifies the order) and
        `createdAt < end`; their return items' `createdAt` decide."""
        where = [f"lastModifiedAt >= {ts(start)}", f"createdAt < {ts(end)}"]
        lo, hi = as_utc(start), as_utc(end)
        out = []
        for order in self.client.orders(where):
            for ret in self.return_records(order):
                if lo <= datetime.fromisoformat(ret.created_at) < hi:
                    out.append(ret)
        return sorted(out, key=lambda r: (r.created_at, str(r.id)))

    def _refunds(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The order's payments' Success Refund transactions, oldest first."""
        out = []
        for ref in (order.get("paymentInfo") or {}).get("payments") or []:
            payment = ref.get("obj") or (self.client.payment(ref["id"]) if ref.get("id") else None) or {}
            out += [t for t in payment.get("transactions") or []
                    if t.get("type") == "Refund" and t.get("state") == "Success"]
        return sorted(out, key=lambda t: utc_iso(t.get("timestamp")) or "")

    def return_records(self, order: dict[str, Any]) -> list[CentraReturn]:
        """Every return of `order` (see the module docstring)."""
        infos = [i for i in order.get("returnInfo") or [] if i.get("items")]
        if not infos:
            return []
        lines = {ln["id"]: ln for ln in order.get("lineItems") or []}
        refunds = self._refunds(order)
        matched: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(infos))}
        free = []
        for tx in refunds:
            hit = next((i for i, info in enumerate(infos)
                        if tx.get("interactionId") and tx["interactionId"] in
                        {info.get("returnTrackingId"), *(it["id"] for it in info["items"])}), None)
            if hit is None:
                free.append(tx)
            else:
                matched[hit].append(tx)
        created = [min(utc_iso(it.get("createdAt")) or utc_iso(info.get("returnDate")) or "" for it in info["items"])
                   for info in infos]
        by_items = [all(it.get("paymentState") == "Refunded" for it in info["items"]) for info in infos]
        for i in sorted(range(len(infos)), key=lambda i: created[i]):
            if free and by_items[i] and not matched[i]:
                matched[i].append(free.pop(0))
        number = order_number(order, self.order_number_prefix)
        currency = (order.get("totalPrice") or {}).get("currencyCode")
        out = []
        for i, info in enumerate(infos):
            items = info["items"]
            rlines = []
            for it in items:
                ln = lines.get(it.get("lineItemId") or "")
                unit = _unit_gross(ln) if ln else 0.0
                qty = int(it.get("quantity") or 0)
                rlines.append(CentraReturnLine(
                    line_id=it["id"], order_line_id=it.get("lineItemId") or it.get("customLineItemId"),
                    sku=((ln or {}).get("variant") or {}).get("sku"), quantity=qty, unit_price=unit,
                    line_value=round(unit * qty, 2), tax_percent=round(_rate(ln)[0] * 100, 3) if ln else None))
            grand = round(sum(r.line_value for r in rlines), 2)
            tax = round(sum(r.line_value * (r.tax_percent or 0.0) / (100 + (r.tax_percent or 0.0)) for r in rlines), 2)
            txs = matched[i]
            refunded = by_items[i] or bool(txs)
            refunded_at = (max(utc_iso(t.get("timestamp")) or "" for t in txs) if txs else
                           max(utc_iso(it.get("lastModifiedAt")) or "" for it in items) if refunded else None)
            settled = all(it.get("paymentState") in _SETTLED_PAYMENT or it.get("shipmentState") in _SETTLED_SHIPMENT
                          for it in items)
            out.append(CentraReturn(
                id=items[0]["id"], order_number=number, order_id=order["id"], created_at=created[i],
                status="COMPLETED" if settled else "PENDING", currency=currency, grand_total=grand, tax_total=tax,
                refunded=refunded, refund_amount=round(sum(abs(money(t.get("amount"))) for t in txs), 2),
                refunded_at=refunded_at or None, return_warehouse_id=self._restock_warehouse(items),
                external_id=info.get("returnTrackingId"), lines=tuple(rlines)))
        return out

    def _restock_warehouse(self, items: Iterable[dict[str, Any]]) -> int | None:
        for it in items:
            value = ((it.get("custom") or {}).get("fields") or {}).get(self.restock_field)
            loc = self._location_of_channel(value)
            if loc is not None:
                return loc.centra_warehouse_id
        return None

    # -- stock

    def _location_channels(self) -> dict[str, Location]:
        """Channel id -> estate location, for the channels that are a location's supply channel."""
        out = {}
        for cid, channel in self._channel_by_id().items():
            loc_id = self.ct.location_of_channel.get(str(channel.get("key")))
            if loc_id and loc_id in self.estate.by_location_id:
                out[cid] = self.estate.by_location_id[loc_id]
        return out

    def stock(self) -> list[CentraStock]:
        """Every inventory entry on a location's supply channel."""
        out = []
        for cid, loc in self._location_channels().items():
            for e in self.client.inventory_entries(channel_ids=[cid]):
                on_stock, available = int(e.get("quantityOnStock") or 0), int(e.get("availableQuantity") or 0)
                out.append(CentraStock(warehouse_id=loc.centra_warehouse_id, size_id=self._size_id(e["sku"]),
                                       sku=e["sku"], physical=on_stock, allocated=on_stock - available,
                                       free_to_allocate=available, demand=0))
        return out

    def _entries(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(ids))
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(wanted), _ID_BATCH):
            for e in self.client.query("/inventory", where=in_list("id", wanted[i:i + _ID_BATCH])):
                out[str(e["id"])] = e
        return out

    def _markers(self, entry: dict[str, Any]) -> dict[int, str]:
        """resourceVersion -> batch marker written on the entry (see the module docstring); a bare marker counts for
        the entry's current version."""
        value = ((entry.get("custom") or {}).get("fields") or {}).get(self.marker_field)
        out = {}
        for v in value if isinstance(value, list) else [value]:
            parsed = parse_marker(v)
            if parsed is not None:
                version, description = parsed
                out[int(entry.get("version") or 0) if version is None else version] = description
        return out

    def stock_changes(self, created_from: datetime | None = None,
                      created_to: datetime | None = None) -> list[CentraStockChange]:
        """The stock-change ledger from inventory messages created in [created_from, created_to)."""
        where = [in_list("type", STOCK_MESSAGE_TYPES)]
        if created_from is not None:
            where.append(f"createdAt >= {ts(created_from)}")
        if created_to is not None:
            where.append(f"createdAt < {ts(created_to)}")
        messages = list(self.client.query("/messages", where=where))
        entries = self._entries(str(m["resource"]["id"]) for m in messages if m.get("resource"))
        locations = self._location_channels()
        out = []
        for m in messages:
            entry_id = str((m.get("resource") or {}).get("id") or "")
            entry = entries.get(entry_id) or {}
            if m["type"] == "InventoryEntryCreated":
                created = m.get("inventoryEntry") or {}
                sku, channel = created.get("sku"), created.get("supplyChannel")
                qty, fta = int(created.get("quantityOnStock") or 0), created.get("availableQuantity")
            else:
                sku, channel = m.get("sku"), m.get("supplyChannel")
                qty = int(m.get("newQuantityOnStock") or 0) - int(m.get("oldQuantityOnStock") or 0)
                fta = (int(m["newAvailableQuantity"]) - int(m["oldAvailableQuantity"])
                       if m.get("newAvailableQuantity") is not None and m.get("oldAvailableQuantity") is not None
                       else None)
            sku = sku or entry.get("sku")
            loc = locations.get(_ref_id(channel or entry.get("supplyChannel")) or "")
            if loc is None or not sku:
                log.debug("message %s: inventory entry %s is on no location's supply channel; skipped", m["id"],
                          entry_id)
                continue
            marker = self._markers(entry).get(int(m.get("resourceVersion") or 0), "") if entry else ""
            out.append(CentraStockChange(
                id=m["id"], stock_change_id=m["id"], created_at=utc_iso(m["createdAt"]) or "", description=marker,
                warehouse_id=loc.centra_warehouse_id, size_id=self._size_id(sku), sku=sku, quantity=qty,
                fta_delta=fta))
        return sorted(out, key=lambda c: (c.created_at, str(c.id)))

    # -- catalog

    def product_sizes(self, products: Iterable[dict[str, Any]] | None = None) -> list[CentraSize]:
        """One size per product variant with an SKU (of `products` when the caller has read them already)."""
        out = []
        for p in self.client.products() if products is None else products:
            published = bool(p.get("published"))
            names = p.get("name") or {}
            name = names.get("en") or next(iter(names.values()), "") if isinstance(names, dict) else str(names)
            for v in [p.get("masterVariant") or {}, *(p.get("variants") or [])]:
                sku = v.get("sku")
                if not sku:
                    continue
                attrs = {a.get("name"): a.get("value") for a in v.get("attributes") or []}
                ref = self.estate.by_sku.get(sku)
                colour = attrs.get("colour")
                out.append(CentraSize(
                    size_id=self._size_id(sku), sku=sku, ean=ref.size.ean if ref else None,
                    product_id=ref.product.product_id if ref else stable_negative_id(f"product:{p['id']}"),
                    product_number=p.get("key") or (ref.product.product_number if ref else str(p["id"])),
                    product_name=name or (ref.product.name if ref else ""),
                    product_status="ACTIVE" if published else "INACTIVE",
                    variant_id=ref.variant.variant_id if ref else stable_negative_id(f"variant:{p['id']}:{v.get('id')}"),
                    variant_number=ref.variant.variant_number if ref else f"{p.get('key') or p['id']}-{v.get('id')}",
                    variant_name=str(colour) if colour is not None else (ref.variant.name if ref else ""),
                    size_name=str(attrs["size"]) if attrs.get("size") is not None else (ref.size.size if ref else None),
                    is_active=published))
        return out
