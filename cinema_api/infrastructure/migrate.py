"""Schema migrations with yoyo-migrations.

The migration scripts live in ``cinema_api/infrastructure/migrations`` (a data folder,
not a package). ``cinema-migrate <ini>`` applies them; development and testing apply
them at start-up, production refuses to serve a database with pending migrations.
"""

import logging
import os
import sqlite3
from datetime import date, datetime

from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def register_sqlite_datetime_types():
    """Explicit sqlite3 adapters and converters for dates and datetimes, in the text form the
    built-in ones used. yoyo writes and reads its bookkeeping (lock and log rows) with them;
    Python 3.12 deprecated the built-in ones, which now warn on every use."""
    sqlite3.register_adapter(datetime, lambda value: value.isoformat(" "))
    sqlite3.register_adapter(date, lambda value: value.isoformat())
    sqlite3.register_converter("timestamp", lambda raw: datetime.fromisoformat(raw.decode()))
    sqlite3.register_converter("date", lambda raw: date.fromisoformat(raw.decode()))


register_sqlite_datetime_types()


def _backend(database_url):
    if database_url.is_sqlite:
        os.makedirs(os.path.dirname(database_url.bind_kwargs["filename"]), exist_ok=True)
    return get_backend(database_url.url)


def pending(database_url):
    """Ids of the migrations not yet applied to the database."""
    backend = _backend(database_url)
    try:
        return [migration.id for migration in backend.to_apply(read_migrations(MIGRATIONS_DIR))]
    finally:
        backend.connection.close()


def apply(database_url):
    """Apply every pending migration (under yoyo's lock); return the ids applied."""
    backend = _backend(database_url)
    try:
        with backend.lock():
            todo = backend.to_apply(read_migrations(MIGRATIONS_DIR))
            backend.apply_migrations(todo)
            return [migration.id for migration in todo]
    finally:
        backend.connection.close()


def rollback_all(database_url):
    """Roll every applied migration back (used by tests of the migrations themselves)."""
    backend = _backend(database_url)
    try:
        with backend.lock():
            todo = backend.to_rollback(read_migrations(MIGRATIONS_DIR))
            backend.rollback_migrations(todo)
            return [migration.id for migration in todo]
    finally:
        backend.connection.close()
