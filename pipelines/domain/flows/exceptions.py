"""The exception types the order flows raise: who owns each and what they do about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.domain.exceptions import ExceptionType

RETURN_WITHOUT_ORDER_REF = ExceptionType(
    "return_without_order_ref", "ERROR", "finance",
    "A store returned goods of an online order but the store system gave no reference to the online order, so "
    "the return was not written to the commerce platform (it is never guessed). Find the order from the receipt "
    "or the customer's e-mail in the evidence, create the return and refund there by hand, and resolve this.",
)
RETURN_ORDER_NOT_FOUND = ExceptionType(
    "return_order_not_found", "ERROR", "finance",
    "A store return names an online order the commerce platform does not know. Check the reference in the "
    "evidence (typo, another market's store, an order from before the migration); once the order is found or "
    "the reference corrected in the store system, replay the flow (it is retried on its next trigger).",
)
RETURN_LINES_UNMATCHED = ExceptionType(
    "return_lines_unmatched", "ERROR", "finance",
    "A store return lists items or quantities the online order cannot take back (not on the order, not shipped, "
    "or already returned). Nothing was written to the commerce platform. Compare the evidence (requested and "
    "returnable per SKU) with the order; create the return by hand for what is right and resolve this.",
)
REFUND_AMOUNT_MISMATCH = ExceptionType(
    "refund_amount_mismatch", "ERROR", "finance",
    "The store refunded a different amount than the online order's lines are worth (the commerce platform "
    "refunded its own lines, pro-rated for discounts). The evidence lists both per source. Decide which is "
    "right: recover the difference from the customer or refund the rest; the daily reconciliation shows it too.",
)
REFUND_TAX_MISMATCH = ExceptionType(
    "refund_tax_mismatch", "ERROR", "finance",
    "The store refunded tax at a different amount than the online order's line tax pro-rated to the returned "
    "quantity. Check the store's tax setup for the item; correct the VAT posting for the return.",
)
COMMERCE_WRITE_REJECTED = ExceptionType(
    "commerce_write_rejected", "ERROR", "integration",
    "The commerce platform refused a write an order flow made (its error is in the evidence). Nothing was half "
    "written: fix the cause (order on hold, locked, data), then set the work item pending again (it is also "
    "retried on the next event for the order).",
)
PICKUP_STORE_UNKNOWN = ExceptionType(
    "pickup_store_unknown", "ERROR", "ecommerce",
    "A click-and-collect order is not allocated to a store's warehouse, so it is not known which store the "
    "customer collects from, and it was not sent to any store. Allocate it to the pickup store's warehouse in "
    "the commerce platform (or map the warehouse in the estate file); the next order event sends it.",
)
STORE_ORDER_REJECTED = ExceptionType(
    "store_order_rejected", "ERROR", "integration",
    "The store system refused an online order handed to a store (its answer is in the evidence), so the store "
    "does not know the customer is coming. Fix the data (SKU, price, store) and set the work item pending again.",
)
PICKUP_UNCOLLECTED = ExceptionType(
    "pickup_uncollected", "WARN", "retail_operations",
    "A click-and-collect order has waited in the store longer than the collection window. Contact the customer; "
    "if they will not come, cancel the order online: the cancellation releases the store's allocation.",
)
HANDOVER_UNMATCHED = ExceptionType(
    "handover_unmatched", "ERROR", "integration",
    "A store handed over items that do not belong to a line of the online order (item ids or SKUs differ), so "
    "the online order was not shipped for them. Compare the evidence; ship the order by hand if it was collected.",
)


SHIP_FROM_STORE_REROUTED = ExceptionType(
    "ship_from_store_rerouted", "WARN", "retail_operations",
    "A ship-from-store order was moved away from the store it was assigned to: the final stock check against the "
    "store's live availability failed, or the store rejected items. The order was re-routed automatically to the "
    "next location of the fallback order (evidence: from, to, why, the shortfall) and the commerce platform's "
    "allocation moved with it. Check the first store's stock count (a miscount or a sale not yet synced); "
    "resolve this when understood, nothing else is needed for the order.",
)
SHIP_FROM_STORE_UNFULFILLABLE = ExceptionType(
    "ship_from_store_unfulfillable", "ERROR", "ecommerce",
    "A ship-from-store order cannot be fulfilled: its store failed (stock check or rejection) and no location of "
    "its fallback order (other stores, the DC) has the stock. The allocation stays where it was. Contact the "
    "customer: wait for stock, offer a substitute, or cancel the lines online (releasing the allocation).",
)
SHIP_FROM_STORE_SPLIT = ExceptionType(
    "ship_from_store_split", "ERROR", "retail_operations",
    "A store shipped part of a ship-from-store order and rejected the rest, so the order was neither shipped in "
    "full nor re-routed. The shipped units are shipped online; allocate and ship the rejected units from "
    "another location by hand (or cancel them online), then resolve this.",
)

@dataclass(frozen=True)
class Problem:
    """A flow that cannot proceed: the exception to record, with the evidence a person needs."""

    kind: ExceptionType
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


# -- endless aisle (pipelines.domain.flows.endless_aisle) ------------------------------------------------------
SHIPPING_OPTION_UNMAPPED = ExceptionType(
    "shipping_option_unmapped", "ERROR", "ecommerce",
    "A store took an endless-aisle order with a delivery service level the shipping map does not name (or with "
    "several service levels), so no commerce order was created: the shipping method is never guessed. Add the "
    "service level to PIPELINES_FLOW_SHIPPING_MAP (or correct it in the store system), then set the work item "
    "pending again.",
)
PRICE_OFF_PRICELIST = ExceptionType(
    "price_off_pricelist", "WARN", "ecommerce",
    "An endless-aisle order was charged in store at a price that differs from the store's price list in the "
    "commerce platform (the evidence lists charged and list price per SKU). The order was created at the "
    "charged price. Check the store's prices or the discount given, and correct the price list if it is wrong.",
)
COMMERCE_ORDER_REJECTED = ExceptionType(
    "commerce_order_rejected", "ERROR", "integration",
    "The commerce platform refused to create an endless-aisle order (its answer is in the evidence: product not "
    "sold in the market, no stock, missing fields). The customer paid in store and has no order yet: fix the "
    "cause, then set the work item pending again, or create the order by hand.",
)
ENDLESS_AISLE_INCOMPLETE = ExceptionType(
    "endless_aisle_incomplete", "ERROR", "retail_operations",
    "A store took an endless-aisle order without what the commerce platform needs to deliver it (the customer's "
    "e-mail, a delivery address with its country), so it was not created. Complete the order in the store "
    "system and set the work item pending again.",
)
STORE_MARKET_UNMAPPED = ExceptionType(
    "store_market_unmapped", "ERROR", "ecommerce",
    "A store took an endless-aisle order but the estate file gives the store no commerce market and price list, "
    "so it was not created. Map the store (centra_market_id, centra_pricelist_id) and set the work item pending.",
)


# -- kiosk orders (pipelines.domain.flows.kiosk, Cloudshelf) ---------------------------------------------------
KIOSK_ORDER_UNMAPPED = ExceptionType(
    "kiosk_order_unmapped", "ERROR", "integration",
    "A paid kiosk order (Cloudshelf) names a location or product variants that are not ours (the session's "
    "locationId is not a Store GlobalId of the estate, or a line's variant is not a CentraVariant GlobalId), so "
    "its store stock was not deducted / no Centra order was created for those lines. Check the kiosk's location "
    "and catalogue publishing (evidence: the order, its location and lines); fix the mapping, then set the work "
    "item pending again.",
)
KIOSK_STATUS_REJECTED = ExceptionType(
    "kiosk_status_rejected", "ERROR", "integration",
    "Cloudshelf refused the fulfilment status sent back for a kiosk order (`upsertOrders` userErrors in the "
    "evidence), so the kiosk does not show the Centra order's number, shipment or cancellation. Fix the cause "
    "(order deleted or unknown in Cloudshelf, a line id that changed); the next Centra event for the order, or "
    "setting the work item pending, sends it again.",
)
