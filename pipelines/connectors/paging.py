"""The page loop the connectors share.

Each connector keeps its platform's request shape in a `fetch(key)` that asks for one page and
answers `(items, next_key)`: Centra `limit`/`page` lists (key = page number) and Relay
`first`/`after` connections (key = cursor); NewStore `next_page_key`/`start_at` (key = page key)
and `limit`/`offset` (key = offset). `paginate` runs the loop:

- it stops after a page that is empty, shorter than `page_size` (when given), has no next key
  (`None`), or completes `max_items` (an upper bound the caller knows);
- a next key already used (a server handing out the same cursor again) ends the walk with a
  warning: from there on the server would only repeat pages already read;
- a walk longer than `max_pages` raises `PaginationError` rather than return a silently truncated
  listing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TypeVar

from pipelines.connectors.errors import ConnectorError

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

#: Default bound on the pages of one walk (10,000 pages of 200 are 2 million rows).
MAX_PAGES = 10_000


class PaginationError(ConnectorError):
    """A listing did not end within `max_pages` pages."""


def paginate(fetch: Callable[[K], tuple[Sequence[T], K | None]], start: K, *, page_size: int | None = None,
             max_items: int | None = None, max_pages: int = MAX_PAGES, what: str = "listing") -> Iterator[T]:
    """Yield the items of every page, starting with `fetch(start)` (see the module docstring)."""
    key = start
    used: set[K] = {start}
    count = 0
    for _ in range(max_pages):
        items, next_key = fetch(key)
        yield from items
        count += len(items)
        if (not items or next_key is None or (page_size is not None and len(items) < page_size)
                or (max_items is not None and count >= max_items)):
            return
        if next_key in used:
            log.warning("%s: the next page key %r was used before; stopping after %d items", what, next_key, count)
            return
        used.add(next_key)
        key = next_key
    raise PaginationError(f"{what}: no last page within {max_pages} pages")

