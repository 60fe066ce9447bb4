"""Evidence the reconciliation looks up beyond the day's datasets: the original orders of store returns.

The landed event stream first (`InboxOrders`, an index range scan), then NewStore's order API by id
(`GET /v0/orders/{id}`), so a return of a sale made on a day that was never materialised is still
recognised. A look-up that fails (NewStore down or rate limiting) counts as "not found": the return is
then not judged, and the day's metadata and report say so, rather than guessing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine

from pipelines.connectors.errors import ConnectorError
from pipelines.connectors.newstore import NewStoreClient, NotFound
from pipelines.domain.reconciliation.return_origins import OrderOrigin
from pipelines.store.inbox_orders import InboxOrders

log = logging.getLogger(__name__)


def original_order_lookup(engine: Engine, newstore: NewStoreClient | None) -> Callable[[str], OrderOrigin | None]:
    inbox = InboxOrders(engine)

    def lookup(order_id: str) -> OrderOrigin | None:
        payload = inbox.order(order_id)
        if payload is not None:
            return OrderOrigin(str(payload.get("channel_type") or ""), payload.get("external_id"))
        if newstore is None:
            return None
        try:
            order = newstore.get_order(order_id)
        except NotFound:
            return None
        except ConnectorError as exc:
            log.warning("NewStore order %s could not be read (%s); its return is not judged", order_id, exc)
            return None
        return OrderOrigin(order.channel_type, order.origin_id)

    return lookup
