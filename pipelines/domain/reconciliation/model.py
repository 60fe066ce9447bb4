"""The finding types of the daily finance reconciliation and the shape of a finding row.

A finding is one difference between two systems' own records for one business day, with the money it
puts at risk and the team that must act. Sign conventions of a finding row:

- ``quantity_diff = quantity_commerce - quantity_pos`` and ``amount_diff = amount_commerce - amount_pos``;
  the "commerce" side is Centra, or the downstream/expected side for store-sales and line checks; in the ERP
  rules (`rules.erp`) the "commerce" side is the ERP for orders (Centra's order is the source) and Centra for
  shipments and DC stock (the ERP is their master).
- amounts and ``value_at_risk`` are in the store's currency (``currency``); ``value_at_risk >= 0``;
  ``value_at_risk_base`` is the same value in the estate's base currency.
- ``risk_rank`` 1 = highest commercial risk of the day, dense over all findings (see engine).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.domain.exceptions import ExceptionType

FINDING_COLUMNS: list[str] = [
    "business_date", "finding_type", "severity", "owner_team", "location_id", "sku", "order_ref",
    "transaction_id", "tax_rate", "quantity_pos", "quantity_commerce", "quantity_diff", "amount_pos",
    "amount_commerce", "amount_diff", "currency", "value_at_risk", "value_at_risk_base", "risk_rank",
    "playbook", "detail",
]

#: dtypes of a findings frame (quantities are nullable integers, money float64 with NaN for "n/a").
FINDING_DTYPES: dict[str, str] = {
    "business_date": "object", "finding_type": "object", "severity": "object", "owner_team": "object",
    "location_id": "object", "sku": "object", "order_ref": "object", "transaction_id": "object",
    "tax_rate": "float64", "quantity_pos": "Int64", "quantity_commerce": "Int64", "quantity_diff": "Int64",
    "amount_pos": "float64", "amount_commerce": "float64", "amount_diff": "float64", "currency": "object",
    "value_at_risk": "float64", "value_at_risk_base": "float64", "risk_rank": "int64", "playbook": "object",
    "detail": "object",
}

#: the two kinds of stock drift (:attr:`FindingType.drift`).
OVERSELL, LOST_SALES = "oversell", "lost_sales"


@dataclass(frozen=True)
class FindingType:
    """One kind of finding: its family (the rule that raises it), severity, owner team and playbook, and
    what it means (said here only; gates, engine and reports read these or the tuples derived below).

    money: a money mismatch (store sales, refunds, tax, an open paid order): the money gate sums these,
        and above its limit the finance report of the day is not published.
    drift: "oversell" or "lost_sales" for stock drift (POS on-hand vs Centra physical), else None.
    """

    name: str
    family: str
    severity: str  # "ERROR" | "WARN"
    owner_team: str  # "finance" | "retail_operations" | "ecommerce" | "integration"
    playbook: str
    money: bool = False
    drift: str | None = None  # OVERSELL | LOST_SALES | None

    def __post_init__(self) -> None:
        if self.drift not in (None, OVERSELL, LOST_SALES):
            raise ValueError(f"{self.name}: drift must be {OVERSELL!r}, {LOST_SALES!r} or None")

    @property
    def blocks_report(self) -> bool:
        """Blocks the day's finance report (above the money limit): the money mismatches; drift only warns."""
        return self.money

    def as_exception_type(self) -> ExceptionType:
        return ExceptionType(self.name, self.severity, self.owner_team, self.playbook)


STOCK_DRIFT_OVERSELL = FindingType(
    "stock_drift_oversell", "stock_drift", "ERROR", "retail_operations",
    "Centra shows more physical stock in the store's warehouse than the POS has on hand: the web shop can "
    "sell units that are not there. Confirm the shelf quantity (recount if in doubt), then push it to the "
    "store warehouse in Centra (setStock): the detail's `shelf` where kiosk take-home units are outstanding, "
    "else the POS quantity; and look for the unsynced movement.",
    drift=OVERSELL,
)
STOCK_DRIFT_LOST_SALES = FindingType(
    "stock_drift_lost_sales", "stock_drift", "WARN", "retail_operations",
    "Centra shows less physical stock in the store's warehouse than the POS has on hand: online sales are "
    "lost. Confirm the shelf quantity, then push it to Centra (setStock): the detail's `shelf` where kiosk "
    "take-home units are outstanding (NewStore never records them), else the POS quantity.",
    drift=LOST_SALES,
)
SYNC_MISSING_IN_COMMERCE = FindingType(
    "sync_missing_in_commerce", "sync", "ERROR", "integration",
    "The store's movements on NewStore's event stream changed stock more than Centra's stock-change ledger "
    "did for the store warehouse, and NewStore's own stock differs from Centra's at the cut-off (see detail): "
    "likely a silent sync failure, but either side can be wrong. Before changing either system, check NewStore's "
    "stock for the location and SKU (its API, not the event stream) against Centra's physical stock and the "
    "sync ledger. Replay only movements Centra does not have (never re-send one it has), or set Centra to "
    "NewStore's confirmed quantity (setStock); then re-run the day's reconciliation.",
)
SYNC_UNEXPECTED_IN_COMMERCE = FindingType(
    "sync_unexpected_in_commerce", "sync", "WARN", "ecommerce",
    "Centra's ledger moved stock in the store warehouse beyond the store's movements on NewStore's event "
    "stream, and NewStore's own stock differs from Centra's at the cut-off (see detail). Either side can be "
    "wrong: a foreign change in Centra (manual edit, double apply, another integration) or a store movement "
    "the stream lost. Before changing either system, identify the Centra change by its description and check "
    "NewStore's stock for the location and SKU (its API, not the event stream). Do not revert the change: "
    "if the shelf confirms NewStore's quantity, set Centra to it (setStock); if it confirms Centra's, record "
    "the movement in NewStore. Then re-run the day.",
)
POS_STREAM_GAP = FindingType(
    "pos_stream_gap", "completeness", "WARN", "integration",
    "The store's movements on NewStore's event stream and Centra's stock-change ledger differ for the day, but "
    "NewStore's own stock for this location and SKU agrees with Centra's at the cut-off (see detail): Centra "
    "is right, and the stream lost the store's event (or dated it on another day, published late). Change "
    "nothing in Centra: do not revert its change and do not replay a movement. Let the recovery run fetch lost "
    "sales and returns, ask NewStore to re-publish other lost events from its publication log, and re-run the "
    "day; if gaps recur, check the event-stream subscription and the intake.",
)
ORPHAN_POS_UNKNOWN = FindingType(
    "orphan_sku_pos_unknown_in_commerce", "orphan_sku", "ERROR", "ecommerce",
    "The POS stocks or sells a SKU the Centra catalog does not know: its stock never reaches the web shop and "
    "its sales are not reflected online. Create or map the product size in Centra (or fix the POS catalog), "
    "then re-materialise the day.",
)
ORPHAN_POS_INACTIVE = FindingType(
    "orphan_sku_pos_inactive_in_commerce", "orphan_sku", "WARN", "ecommerce",
    "The POS stocks or sells a SKU that is inactive in Centra. Reactivate the size in Centra if it is still "
    "sold, or take it out of store assortment and return the stock.",
)
ORPHAN_COMMERCE_UNKNOWN = FindingType(
    "orphan_sku_commerce_unknown_in_pos", "orphan_sku", "WARN", "retail_operations",
    "A SKU active in Centra is unknown to the POS; stock Centra shows for it in a store warehouse can be "
    "oversold. Add the SKU to the POS catalog (or deactivate it in Centra / zero the store warehouse stock).",
)
STORE_SALES_MISMATCH = FindingType(
    "store_sales_mismatch", "store_sales", "ERROR", "finance",
    "Store sales of the day for this store and tax rate differ between the POS and what was recorded "
    "downstream (count, gross, discount, tax or net). Find the unposted or double-posted transactions, repost "
    "them, and re-run the day.",
    money=True,
)
RETURN_WITHOUT_ORDER_REF = FindingType(
    "return_without_order_ref", "returns", "ERROR", "retail_operations",
    "A store return was processed without the original order reference and is not a return of a known store "
    "sale: the refund cannot be matched to an online order. Ask the store for the receipt/order number, add "
    "it to the return, and let the return sync to Centra.",
    money=True,
)
RETURN_MISSING_IN_COMMERCE = FindingType(
    "return_missing_in_commerce", "returns", "ERROR", "ecommerce",
    "A store return of an online order has no matching return in Centra: the order is not credited and stock "
    "is not restocked online. Replay the return sync for the order, or create the return in Centra.",
    money=True,
)
REFUND_AMOUNT_MISMATCH = FindingType(
    "refund_amount_mismatch", "returns", "ERROR", "finance",
    "The amount (or quantity) refunded in the store differs from the refunded return in Centra for this "
    "order and SKU. Check partial refunds and the refund state in Centra, then correct the refund.",
    money=True,
)
REFUND_TAX_MISMATCH = FindingType(
    "refund_tax_mismatch", "returns", "ERROR", "finance",
    "The refund amount matches but the refunded tax differs between the store and Centra's return line tax "
    "rate. Correct the tax on the return (tax rate of the original order) before the VAT report.",
    money=True,
)
CLICK_COLLECT_OPEN = FindingType(
    "click_collect_open", "click_collect", "ERROR", "ecommerce",
    "The store completed the pickup but the online order is not in its terminal state in Centra (or is "
    "missing): it stays open, is not invoiced, and may be fulfilled twice. Complete the shipment in Centra "
    "and check that nothing else was dispatched.",
    money=True,
)
LINE_TAX_MISMATCH = FindingType(
    "line_tax_mismatch", "lines", "ERROR", "finance",
    "A store sale line's tax differs from the tax of the store country's rate on its price after discount. "
    "Check the POS tax configuration of the store and correct the posted tax.",
    money=True,
)
LINE_DISCOUNT_MISMATCH = FindingType(
    "line_discount_mismatch", "lines", "WARN", "finance",
    "A store sale line's discount is negative, larger than the line's gross, or not one of the allowed "
    "discount rates. Check the promotion set-up or the associate override on the transaction.",
)
PRICE_OFF_PRICELIST = FindingType(
    "price_off_pricelist", "lines", "WARN", "retail_operations",
    "A store sold a SKU at a unit price different from the store market's price list in Centra. Align the POS "
    "price book with the price list (or record the markdown as a discount).",
)

STORE_TRANSACTION_MISSING = FindingType(
    "store_transaction_missing", "completeness", "ERROR", "integration",
    "A store sale or return exists in NewStore (other events of it arrived) but its own event never did, and "
    "NewStore's API did not give it back: the day's sales or refunds lack it, by the amount shown where its "
    "events name one. Look the transaction up in NewStore by its id; if it is there, re-publish it from the "
    "event stream's publication log (or let the next recovery run fetch it) and re-run the day; if it is not, "
    "ask the store about the receipt. Do not correct Centra stock by hand: the recovered event moves it.",
    money=True,
)

KIOSK_ORDER_MISSING_IN_COMMERCE = FindingType(
    "kiosk_order_missing_in_commerce", "kiosk_orders", "ERROR", "ecommerce",
    "A kiosk order for home delivery (endless aisle) was paid in Cloudshelf but no Centra order exists for it (by "
    "the Centra order number written back to the kiosk order, nor by the Centra order's external id = the kiosk "
    "order id): the customer paid and nothing will be shipped. Look for the open kiosk-order exception (unmapped "
    "shipping option, missing customer details, rejected order), fix its cause and let the order flow retry it "
    "(it never creates the order twice); then re-run the day.",
    money=True,
)
KIOSK_ORDER_TOTAL_MISMATCH = FindingType(
    "kiosk_order_total_mismatch", "kiosk_orders", "ERROR", "finance",
    "The Centra order made for a paid kiosk delivery order differs in value from what the kiosk charged (goods, "
    "without shipping). Compare the order lines in Cloudshelf and Centra (price list, quantities, discounts), "
    "correct the Centra order or refund the difference, and re-run the day.",
    money=True,
)
KIOSK_SALE_NOT_DEDUCTED = FindingType(
    "kiosk_sale_not_deducted", "kiosk_stock", "ERROR", "integration",
    "Units a kiosk customer paid for and took home never left the store's warehouse in Centra (the stock sync's "
    "changes of the day fall short of the store's movements plus the kiosk sales): the web shop can sell them "
    "again. Check the kiosk sale's rows in stock_sync_movements (unmapped, failed, replayable) and replay them "
    "(stock_sync_replay_job); never deduct by hand what the sync will still apply. Then re-run the day.",
)
KIOSK_AVAILABILITY_OVERSELL = FindingType(
    "kiosk_availability_oversell", "kiosk_availability", "ERROR", "integration",
    "At the cut-off the kiosk showed the SKU in stock at this store while Centra had nothing to sell for it (store "
    "warehouse plus what the market's allocation rule ships): a kiosk customer can pay for a unit that is not there. "
    "Check the kiosk availability refresh (kiosk_stock_levels, kiosk_availability_refresh sensor) and publish the "
    "store's level again.",
)
KIOSK_AVAILABILITY_LOST_SALES = FindingType(
    "kiosk_availability_lost_sales", "kiosk_availability", "WARN", "integration",
    "At the cut-off the kiosk showed the SKU out of stock at this store while Centra had units to sell: kiosk sales "
    "are lost. Check the kiosk availability refresh (kiosk_stock_levels) and publish the store's level again.",
)

# -- the ERP behind the commerce platform (issue 15; `rules.erp`): Centra is the upstream side of orders, the ERP of
# shipments and stock (the ERP is the master of fulfilment and physical stock).
ERP_ORDER_MISSING = FindingType(
    "erp_order_missing", "erp", "ERROR", "finance",
    "A Centra order of the day that is due in the ERP (confirmed, processing, shipped or archived) has no ERP sales "
    "order carrying its order number as external reference: the ERP will neither fulfil nor invoice it. If the "
    "detail names a blocking exception, fix its cause as that exception's playbook says (the estate's erp mapping: "
    "items, bundles, tax codes, currencies, customers; or the ERP's own set-up): the order flow replays the order by "
    "itself once the mapping changes. With no exception named, find the order's erp_order work item "
    "(order_flow_work, work key = the order number) and set it pending again. Never key the sales order into the "
    "ERP by hand: the flow would not know it and a second one follows. Then re-run the day.",
    money=True,
)
ERP_ORDER_DUPLICATED = FindingType(
    "erp_order_duplicated", "erp", "ERROR", "finance",
    "More than one ERP sales order carries this Centra order number as external reference: the customer can be "
    "shipped and invoiced twice. Keep the first (the detail lists them, oldest number first) and delete the others "
    "in the ERP before anything is shipped or invoiced on them (credit one that was); then find out how the second "
    "was made (a hand-keyed order, an external reference changed in the ERP) and re-run the day.",
    money=True,
)
ERP_ORDER_TOTAL_MISMATCH = FindingType(
    "erp_order_total_mismatch", "erp", "ERROR", "finance",
    "The ERP sales order's total including tax differs from what the customer paid in Centra (the grand total; "
    "shipping is in both). Compare the lines of both orders (quantities, unit prices, line discounts, the shipping "
    "line, an exploded bundle's component prices), correct the ERP order before it is invoiced (credit or invoice "
    "the difference if it was), and re-run the day.",
    money=True,
)
ERP_ORDER_TAX_MISMATCH = FindingType(
    "erp_order_tax_mismatch", "erp", "ERROR", "finance",
    "The ERP sales order's tax differs from the tax Centra charged on the order: a line carries the wrong tax code or "
    "the ERP recomputed tax from its own set-up. Check each line's tax code against the estate's erp.tax_codes and "
    "the ERP's VAT posting set-up for it, correct the order before it is invoiced and before the VAT report (and the "
    "mapping, for the orders to come), then re-run the day.",
    money=True,
)
ERP_ORDER_DISCOUNT_MISMATCH = FindingType(
    "erp_order_discount_mismatch", "erp", "ERROR", "finance",
    "The ERP sales order's discount differs from Centra's discount on the order: a line discount was lost, or the "
    "ERP added its own (a customer, line or invoice discount of the web customer). Compare the line discounts with "
    "Centra's order lines, switch ERP-side discounts off for the web customers, correct the order before it is "
    "invoiced, and re-run the day.",
    money=True,
)
ERP_ORDER_CURRENCY_MISMATCH = FindingType(
    "erp_order_currency_mismatch", "erp", "ERROR", "finance",
    "The ERP sales order is in another currency than the estate's erp.currencies gives for the Centra order's "
    "currency: every amount on it is off by an exchange rate. Do not ship or invoice it. Delete it in the ERP, correct "
    "erp.currencies or the ERP customer's currency (erp.customers), and let the order flow create it again (set "
    "its erp_order work item pending); then re-run the day.",
    money=True,
)
ERP_SHIPMENT_NOT_IN_COMMERCE = FindingType(
    "erp_shipment_not_in_commerce", "erp", "ERROR", "ecommerce",
    "The ERP posted a shipment of the day that Centra does not show: the customer got no shipping notification and "
    "the order stays open in Centra. Find the shipment's erp_shipment work item (order_flow_work, work key = the "
    "ERP shipment id) and its exception (erp_shipment_unmatched), fix the cause and set it pending again: the flow "
    "applies each shipment once. Only where it cannot be applied, ship the order in Centra by hand with the "
    "detail's carrier and tracking number and resolve the exception. Then re-run the day.",
)
ERP_STOCK_DRIFT = FindingType(
    "erp_stock_drift", "erp", "WARN", "integration",
    "Centra's physical stock in the DC warehouse differs from the ERP's on-hand for this SKU at the cut-off (Centra "
    "more: the web shop can oversell; less: online sales are lost). The ERP is the master of DC stock: never set "
    "Centra's DC stock by hand. Check the ERP stock resync's latest runs (failed or rate-limited batches) and "
    "Centra's stock changes of the DC for the SKU (a change made in Centra only), then run the ERP stock resync (or "
    "wait for its next run) and re-run the day.",
)
ERP_MAPPING_ORPHAN = FindingType(
    "erp_mapping_orphan", "erp", "WARN", "ecommerce",
    "An active Centra SKU has no ERP item (the estate's erp.items, else the ERP item numbered like the SKU), or a "
    "Centra bundle has no erp.bundles entry or a component without an ERP item: an order that carries it cannot "
    "reach the ERP (erp_sku_unmapped, erp_bundle_unmapped). Create the item or item variant in the ERP, or map "
    "the SKU (erp.items) or the bundle (erp.bundles) in the estate file; blocked orders are replayed once the "
    "mapping changes. The value is 0 until an order of the day carries the SKU (nothing is lost before), then the "
    "value of those order lines.",
)

FINDING_TYPES: dict[str, FindingType] = {t.name: t for t in (
    STOCK_DRIFT_OVERSELL, STOCK_DRIFT_LOST_SALES, SYNC_MISSING_IN_COMMERCE, SYNC_UNEXPECTED_IN_COMMERCE,
    POS_STREAM_GAP,
    ORPHAN_POS_UNKNOWN, ORPHAN_POS_INACTIVE, ORPHAN_COMMERCE_UNKNOWN, STORE_SALES_MISMATCH,
    RETURN_WITHOUT_ORDER_REF, RETURN_MISSING_IN_COMMERCE, REFUND_AMOUNT_MISMATCH, REFUND_TAX_MISMATCH,
    CLICK_COLLECT_OPEN, LINE_TAX_MISMATCH, LINE_DISCOUNT_MISMATCH, PRICE_OFF_PRICELIST, STORE_TRANSACTION_MISSING,
    KIOSK_ORDER_MISSING_IN_COMMERCE, KIOSK_ORDER_TOTAL_MISMATCH, KIOSK_SALE_NOT_DEDUCTED, KIOSK_AVAILABILITY_OVERSELL,
    KIOSK_AVAILABILITY_LOST_SALES,
    ERP_ORDER_MISSING, ERP_ORDER_DUPLICATED, ERP_ORDER_TOTAL_MISMATCH, ERP_ORDER_TAX_MISMATCH, ERP_ORDER_DISCOUNT_MISMATCH,
    ERP_ORDER_CURRENCY_MISMATCH, ERP_SHIPMENT_NOT_IN_COMMERCE, ERP_STOCK_DRIFT, ERP_MAPPING_ORPHAN,
)}

#: Derived from the FindingType attributes, in FINDING_TYPES order: the money mismatches (the money gate,
#: which blocks the report), the stock drift types, and the drift type of each drift kind.
MONEY_TYPES: tuple[str, ...] = tuple(t.name for t in FINDING_TYPES.values() if t.money)
DRIFT_TYPES: tuple[str, ...] = tuple(t.name for t in FINDING_TYPES.values() if t.drift)
DRIFT_TYPE_BY_KIND: dict[str, str] = {t.drift: t.name for t in FINDING_TYPES.values() if t.drift}


@dataclass(frozen=True)
class Tolerance:
    """What counts as a difference: strictly more than these.

    money: in the store's currency, per compared amount.
    units: stock units, per (location, SKU) comparison.
    tax_rounding_per_unit: extra slack for tax compared against a recomputed value, per unit, because the
        POS rounds tax per item (a line of n units can be n x 0.005 off the line-level recomputation).
    """

    money: float = 0.01
    units: int = 0
    tax_rounding_per_unit: float = 0.005


DEFAULT_TOLERANCE = Tolerance()


def empty_findings() -> pd.DataFrame:
    """A findings frame with no rows and the contract's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in FINDING_DTYPES.items()})[FINDING_COLUMNS]
