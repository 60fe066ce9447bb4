"""Faithful fake of a Microsoft Dynamics 365 Business Central environment (API v2.0 + Entra ID client credentials).

Field names come from the AL source of the API v2.0 pages (microsoft/ALAppExtensions, Apps/W1/APIV2); every
emitted field's source or ASSUMPTION is in ``PROVENANCE.md`` beside this file. Knobs: ``token_ttl_s``,
``rate_limit``/``rate_window_s``/``retry_after_s`` (documented: 6,000 requests per 5-minute sliding window),
``page_size`` (documented: 20,000 entities per page; ``Prefer: odata.maxpagesize`` lowers it), the state's
``currencies`` and ``tax_codes``. World API: ``state.ship_order`` (a posted shipment with package tracking number
and shipping agent), ``state.invoice_order``.
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
