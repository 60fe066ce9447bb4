"""The store of record: SQLAlchemy over SQLite (default) or PostgreSQL, with versioned SQL migrations."""

from pipelines.store.db import make_engine, table
from pipelines.store.migrate import migrate

__all__ = ["make_engine", "migrate", "table"]
