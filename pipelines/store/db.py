"""Engine creation and table reflection for the store of record."""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, MetaData, Table, create_engine, event
from sqlalchemy.engine import make_url


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs (psycopg2 is only there for dagster-postgres)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # WAL lets the intake service write while Dagster runs read; FULL syncs every commit, so an
            # acknowledged webhook survives an OS crash too (about 0.25 ms per commit, measured).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


# The process's engines for `shared_engine`, by normalised URL: (engine, identity of the SQLite file).
_SHARED: dict[str, tuple[Engine, tuple[int, int] | None]] = {}
_SHARED_LOCK = threading.Lock()


def _sqlite_file_identity(url: str) -> tuple[int, int] | None:
    """(device, inode) of a SQLite database file; None for PostgreSQL, in-memory or a missing file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    try:
        st = os.stat(parsed.database)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def shared_engine(url: str) -> Engine:
    """The one engine of this process for `url`, migrated once when it is built.

    Dagster builds resources for every run and every sensor tick (the stock sync sensor ticks every 5 s),
    so an engine per resource instance meant a new connection pool and a migration pass (on PostgreSQL
    under the migration advisory lock) per tick. Engines are cached by URL, so several databases in one
    process each get their own. A SQLite file deleted or replaced since (a fresh devstack or bench home)
    gets a new, migrated engine. A failed migration caches nothing: the next call tries again.
    """
    # The module, not the package attribute (`pipelines.store.migrate` is also the re-exported function).
    migrations = importlib.import_module("pipelines.store.migrate")
    key = normalise_url(url)
    with _SHARED_LOCK:
        cached = _SHARED.get(key)
        if cached is not None:
            engine, identity = cached
            if identity is None or identity == _sqlite_file_identity(key):
                return engine
            engine.dispose()
            del _SHARED[key]
        engine = make_engine(key)
        migrations.migrate(engine)
        _SHARED[key] = (engine, _sqlite_file_identity(key))
        return engine


def _after_fork_in_child() -> None:
    # A forked child must not reuse the parent's pooled connections; it keeps the (migrated) engines.
    for engine, _identity in list(_SHARED.values()):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


_METADATA: WeakKeyDictionary[Engine, MetaData] = WeakKeyDictionary()


_REFLECT_LOCK = threading.Lock()


def table(engine: Engine, name: str) -> Table:
    """A reflected table (cached per engine; reflection is serialised so no caller sees a half-built table)."""
    with _REFLECT_LOCK:
        md = _METADATA.setdefault(engine, MetaData())
        if name not in md.tables:
            Table(name, md, autoload_with=engine)
        return md.tables[name]


def dialect_insert(engine: Engine, name: str):  # noqa: ANN201 - the dialect's Insert, with on_conflict_* methods
    """(INSERT of the dialect's flavour, with `on_conflict_do_nothing` / `on_conflict_do_update`, the table)."""
    from sqlalchemy.dialects import postgresql, sqlite

    tbl = table(engine, name)
    return (postgresql.insert(tbl) if engine.dialect.name == "postgresql" else sqlite.insert(tbl)), tbl
