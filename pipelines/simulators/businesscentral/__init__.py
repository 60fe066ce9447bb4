"""Faithful fake of a Microsoft Dynamics 365 Business Central environment (API v2.0 + Entra ID client credentials).

Field names come from the AL source of the API v2.0 pages (microsoft/ALAppExtensions, Apps/W1/APIV2); every
emitted field's source or ASSUMPTION is in ``PROVENANCE.md`` beside this file. Knobs: ``token_ttl_s``,
``rate_limit``/``rate_window_s``/``retry_after_s`` (documented: 6,000 requests per 5-minute sliding window),
``page_size`` (documented: 20,000 entities per page; ``Prefer: odata.maxpagesize`` lowers it); fault knobs on
``sim.settings`` for tests: ``force_429``, ``force_412``, ``lose_responses`` (+ ``lose_path_contains``; the write
commits, the connection drops before the answer); the state's ``currencies``, ``tax_codes``, ``tax_percents``,
``published_late_s``, ``journal_template``.

Surfaces: items (with ``inventory``), item variants, customers, sales orders (``pricesIncludeTax``, atomic deep
insert of ``salesOrderLines``) and lines, posted sales shipments and invoices (read only), G/L ``accounts`` (read
only), general ``journals`` with ``journalLines`` and the bound action ``Microsoft.NAV.post``, read-only
``generalLedgerEntries``; ``$filter`` (datetimes as instants), ``$orderby`` (one field), ``$top``/``$skip``,
``$expand``, server-driven paging.

World API (no HTTP): ``state.ship_order`` (a posted shipment with package tracking number and shipping agent;
lowers the items' inventory; ``published_late_s`` hides it for a while after its timestamp), ``state.invoice_order``,
``state.add_account`` (the chart of accounts), ``state.set_inventory`` / ``state.adjust_inventory``.
"""

from __future__ import annotations

from pipelines.simulators.serving import BackgroundServer

from .app import ApiSettings, create_app, parse_filter
from .state import BcError, BusinessCentralState, etag_of

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "ApiSettings", "BcError", "BusinessCentralSimulator",
           "BusinessCentralState", "create_app", "etag_of", "parse_filter"]

DEFAULT_CLIENT_ID = "pipelines"
DEFAULT_CLIENT_SECRET = "pipelines-secret"
DEFAULT_TENANT = "contoso.onmicrosoft.com"
DEFAULT_ENVIRONMENT = "production"


class BusinessCentralSimulator:
    """A Business Central environment served on loopback; `url` is the host for both token and API calls."""

    def __init__(self, state: BusinessCentralState | None = None, *, tenant: str = DEFAULT_TENANT,
                 environment: str = DEFAULT_ENVIRONMENT, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET, **knobs) -> None:
        self.state = state or BusinessCentralState()
        self.settings = ApiSettings(tenant=tenant, environment=environment, client_id=client_id,
                                    client_secret=client_secret, **knobs)
        self.app = create_app(self.state, self.settings)
        self._server: BackgroundServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "simulator not started"
        return self._server.url

    def start(self) -> BusinessCentralSimulator:
        self._server = BackgroundServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> BusinessCentralSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
