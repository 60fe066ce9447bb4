"""The exception types the customer sync raises (`pipelines.customers.sync`): who owns each and what they do."""

from __future__ import annotations

from pipelines.domain.exceptions import ExceptionType

CUSTOMER_CONFLICT = ExceptionType(
    "customer_conflict", "WARN", "retail_operations",
    "A field of a customer was changed on the platform that does not own it (for example the e-mail or name "
    "edited at the till, while the online account owns them) and was set back to the owner's value: the "
    "ownership table in docs/customers.md decides, never the latest edit. The evidence lists the field, the value "
    "kept and the value overwritten. If the overwritten value was right, change it on the owning platform (the "
    "online account for e-mail and names); the next sync carries it over. Then resolve this. Also raised when "
    "one e-mail matches several customers on a platform (duplicate profiles): merge or correct them there; the "
    "customer is not synced until one record per platform is left.",
)
CUSTOMER_WRITE_FAILED = ExceptionType(
    "customer_write_failed", "ERROR", "integration",
    "A platform refused to create or update a customer (its answer is in the evidence: invalid e-mail or phone, "
    "an e-mail taken by another customer, a missing permission). Nothing was recorded as synced for this "
    "customer, so the next sync tries again. Fix the data on the platform named in the evidence (or the API "
    "client's scopes: customer:profile:read/write on NewStore, manage_customers on commercetools), then resolve.",
)

CUSTOMER_EXCEPTION_TYPES = (CUSTOMER_CONFLICT, CUSTOMER_WRITE_FAILED)
