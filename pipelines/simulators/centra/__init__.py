"""A faithful fake of Centra's GraphQL Integration API (see shared/reference/platforms/centra.md).

`CentraState` is the tenant (built from an `Estate`), `create_app(state, tokens=...)` serves it at
`POST /graphql`, `WebhookEmitter` plays the webhook plugin and `CentraSimulator` wires all three.

Choices where centra.md is silent or ambiguous (verify against a QA tenant):
- 429 `Retry-After` is the documented timestamp as Unix seconds by default (`state.retry_after_style` =
  "http-date"/"seconds" for the other forms); the rate limiter runs on real monotonic time.
- `changeStock`/`setStock` are all-or-nothing: one unknown size or a negative result rejects the
  whole mutation with `userErrors` (nothing applied).
- Stock ledger: every physical/FTA movement is a `StockChange` whose lines carry signed
  `deliveredQuantity` (physical delta) and `freeToAllocateQuantity` (FTA delta);
  `StockChangeFilter.search` is a substring match on the description. Initial stock is not logged.
- Variant prices are read via `productVariants{prices{pricelist price}}` (shape of Display.prices).
- `ReturnStatus` is PENDING/COMPLETED; REFUND payment entries have negative values; restock happens
  when the return is created. `DateRange` filters are inclusive at both ends.
- No ID conversion, wholesale or product-creation mutations. The events queue is `events.py`, the REST
  Order API's create-order `order_api.py`, `allocateOrder`/`unallocateOrder` `allocation.py`.
"""

from pipelines.simulators.centra.app import create_app
from pipelines.simulators.centra.simulator import CentraSimulator
from pipelines.simulators.centra.state import CentraState, MutationError
from pipelines.simulators.centra.webhooks import WebhookEmitter, sign, verify_signature

__all__ = ["CentraSimulator", "CentraState", "MutationError", "WebhookEmitter", "create_app", "sign",
           "verify_signature"]
