"""The exception types the ERP order-to-cash flows raise (`pipelines.order_flows.erp`): who owns each and what they
do about it. A mapping gap blocks the order with every gap recorded at once; the order is replayed by itself once
the estate's `erp` mapping changes (its fingerprint differs), so fixing the mapping is all that is needed."""

from __future__ import annotations

from pipelines.domain.exceptions import ExceptionType

ERP_SKU_UNMAPPED = ExceptionType(
    "erp_sku_unmapped", "ERROR", "integration",
    "A verified commerce order names SKUs whose ERP item (the estate's `erp.items`, else the item numbered like the "
    "SKU) does not exist in the ERP, so the order was not posted to the ERP (nothing was written; the evidence lists "
    "every SKU and the item it maps to). Create the item (or item variant) in the ERP or correct `erp.items` in the "
    "estate file; the order is posted on the next flows run after the mapping changes or on its next order event.",
)
ERP_BUNDLE_UNMAPPED = ExceptionType(
    "erp_bundle_unmapped", "ERROR", "integration",
    "A verified commerce order contains a bundle SKU that the estate's `erp.bundles` does not explode into "
    "components (or a component has no price in the order's price list to split the bundle's price by), so the "
    "order was not posted to the ERP. Add the bundle's components (and their prices) to the estate file; the order "
    "is replayed once the mapping changes.",
)
ERP_TAX_CODE_UNMAPPED = ExceptionType(
    "erp_tax_code_unmapped", "ERROR", "finance",
    "A verified commerce order has lines at a tax rate the estate's `erp.tax_codes` does not map to an ERP tax code "
    "(VAT product posting group), so the order was not posted to the ERP: a tax code is never guessed. Add the "
    "rate (evidence: the rates and lines) to `erp.tax_codes`; the order is replayed once the mapping changes.",
)
ERP_CURRENCY_MISMATCH = ExceptionType(
    "erp_currency_mismatch", "ERROR", "finance",
    "A verified commerce order's currency has no ERP currency code in the estate's `erp.currencies`, or differs "
    "from the currency of the ERP customer its market posts to, so the order was not posted to the ERP (the ERP "
    "would book it at the customer's currency). Map the currency, or point the market at a customer in that "
    "currency (`erp.customers`); the order is replayed once the mapping changes.",
)
ERP_CUSTOMER_UNMAPPED = ExceptionType(
    "erp_customer_unmapped", "ERROR", "finance",
    "A verified commerce order's market has no ERP customer in the estate's `erp.customers` (or the ERP has no "
    "customer with that number), so the order was not posted to the ERP. Map the market to the ERP customer its "
    "web orders are sold to; the order is replayed once the mapping changes.",
)
ERP_ORDER_REJECTED = ExceptionType(
    "erp_order_rejected", "ERROR", "integration",
    "The ERP refused to create the sales order for a verified commerce order (its answer is in the evidence); the "
    "order and its lines are created in one request, so nothing was written. Fix the cause in the ERP (blocked "
    "customer or item, missing posting setup), then set the work item pending again or change the mapping.",
)
ERP_SHIPMENT_UNMATCHED = ExceptionType(
    "erp_shipment_unmatched", "ERROR", "integration",
    "An ERP shipment could not be applied to a commerce order: its external document number names no order this "
    "pipeline posted, it belongs to another ERP order than the one posted (a duplicate), it ships lines that map to "
    "no commerce order line, or more units than the commerce order still has to ship. Nothing was shipped in the "
    "commerce platform. Compare the evidence with both orders; ship in the commerce platform by hand with the "
    "tracking number and resolve this.",
)
ERP_SHIPPING_ACCOUNT_UNMAPPED = ExceptionType(
    "erp_shipping_account_unmapped", "ERROR", "finance",
    "A verified commerce order charged shipping, but the estate's `erp.shipping_account` names no G/L account for "
    "the shipping line, so the order was not posted to the ERP. Set the account; the order is replayed once the "
    "mapping changes.",
)

ERP_EXCEPTION_TYPES = (ERP_SKU_UNMAPPED, ERP_BUNDLE_UNMAPPED, ERP_TAX_CODE_UNMAPPED, ERP_CURRENCY_MISMATCH,
                       ERP_CUSTOMER_UNMAPPED, ERP_ORDER_REJECTED, ERP_SHIPMENT_UNMATCHED,
                       ERP_SHIPPING_ACCOUNT_UNMAPPED)
