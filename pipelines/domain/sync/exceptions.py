"""Exception types raised by the stock sync (the shared ones live in domain/exceptions.py)."""

from __future__ import annotations

from pipelines.domain.exceptions import ExceptionType

STOCK_SYNC_REJECTED = ExceptionType(
    "stock_sync_rejected", "ERROR", "ecommerce",
    "Centra rejected a stock change for this warehouse and SKU (userErrors in the payload). 'Not enough "
    "free stock' means Centra had allocated units the store already sold (an oversell: handle the online "
    "order); an unknown or inactive size must be created or activated in Centra. Then re-send the "
    "movements with the stock_sync_replay_job (or let the nightly stock resync correct the quantity).",
)
STOCK_SYNC_UNKNOWN_SIZE = ExceptionType(
    "stock_sync_unknown_size", "ERROR", "ecommerce",
    "Centra does not know this size, so the store's stock movements for it cannot be synced. Create or "
    "map the size in Centra (and the estate file), then run the stock_sync_replay_job for the movements.",
)
