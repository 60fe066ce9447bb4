"""Cloudshelf GlobalIds: the one place that builds and reads them.

Cloudshelf identifies every entity by a `GlobalId`; an integration chooses its own ids in the documented form
`gid://external/<Namespace>/<id>` (reference newstore-commercetools-cloudshelf.md §2; the SFCC connector's
`cloudshelfHelper.js` builds them the same way). The namespaces are OUR convention (docs: Issue 14 design):

- product  `gid://external/CentraProduct/<Centra product id>`
- variant  `gid://external/CentraVariant/<SKU>` (the SKU is the immutable match key)
- location `gid://external/Store/<estate location id>`

Order ids are Cloudshelf's own (`gid://cloudshelf/Order/<uuid>` in the simulator, an ASSUMPTION): read them,
never build them. The id part is percent-encoded (`/`, `%` and whitespace), so any SKU round-trips.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

PRODUCT_NAMESPACE = "CentraProduct"
VARIANT_NAMESPACE = "CentraVariant"
LOCATION_NAMESPACE = "Store"
EXTERNAL = "external"

_GID = re.compile(r"^gid://(?P<authority>[A-Za-z0-9_.-]+)/(?P<namespace>[A-Za-z][A-Za-z0-9_]*)/(?P<id>[^\s/]+)$")


def _external(namespace: str, value: object) -> str:
    text = str(value)
    if not text.strip():
        raise ValueError(f"empty {namespace} id")
    return f"gid://{EXTERNAL}/{namespace}/{quote(text, safe='')}"


def parse(gid: str) -> tuple[str, str, str] | None:
    """(authority, namespace, id) of a GlobalId, the id decoded; None when `gid` is not one."""
    match = _GID.match(gid or "") if isinstance(gid, str) else None
    if match is None:
        return None
    return match["authority"], match["namespace"], unquote(match["id"])


def is_global_id(text: object) -> bool:
    """Whether `text` has the GlobalId form `gid://<authority>/<Namespace>/<id>`."""
    return isinstance(text, str) and parse(text) is not None


def _of(gid: str, namespace: str) -> str | None:
    parts = parse(gid)
    if parts is None or parts[0] != EXTERNAL or parts[1] != namespace:
        return None
    return parts[2]


def product_gid(product_id: object) -> str:
    return _external(PRODUCT_NAMESPACE, product_id)


def product_of(gid: str) -> str | None:
    """The Centra product id of a product GlobalId of ours; None for any other id."""
    return _of(gid, PRODUCT_NAMESPACE)


def variant_gid(sku: str) -> str:
    return _external(VARIANT_NAMESPACE, sku)


def sku_of(gid: str | None) -> str | None:
    """The SKU of a variant GlobalId of ours; None for any other id (or None)."""
    return _of(gid, VARIANT_NAMESPACE) if gid else None


def location_gid(location_id: object) -> str:
    return _external(LOCATION_NAMESPACE, location_id)


def location_of(gid: str | None) -> str | None:
    """The estate location id of a location GlobalId of ours; None for any other id (or None)."""
    return _of(gid, LOCATION_NAMESPACE) if gid else None
