"""Schema migrations with yoyo-migrations, and the environment each database was made for.

The migration scripts live in ``cinema_api/infrastructure/migrations`` (a data folder,
not a package). ``cinema-migrate <ini>`` applies them; development and testing apply
them at start-up, production refuses to serve a database with pending migrations.

A database records the environment it was first migrated for (migration 0005, one row), and
each environment migrates and serves only its own databases: production never serves
development's demo accounts, development never migrates or seeds production's data. A
database migrated before environments were recorded has no row; only an explicit
``cinema-migrate <ini>`` records it (as that ini file's environment, with a warning in the log),
never the migrate-at-start of a development or testing server, which could be pointed at
production's database by a stray ``.env``.
"""

import logging
import os
import sqlite3
from datetime import date, datetime, timezone

from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")
#: The migration that creates the table recording a database's environment.
ENVIRONMENT_MIGRATION = "0005_database_environment"

#: What :func:`_recorded` says of a database no migration has touched yet: anyone may make it theirs.
NEW = "new"
#: ... of a migrated database that records no environment (migrated before they were recorded).
UNRECORDED = "unrecorded"


class WrongEnvironment(Exception):
    """The database was made for another environment, or records none; the message is one line."""


def wrong_environment(exc):
    """The one line of a :class:`WrongEnvironment`, also under Pyramid's
    ``ConfigurationExecutionError`` (raised at start-up); None for any other error."""
    exc = getattr(exc, "evalue", exc)
    return str(exc) if isinstance(exc, WrongEnvironment) else None


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


def apply(database_url, environment, claim_unrecorded=False):
    """Apply every pending migration (under yoyo's lock) for ``environment``; return the ids
    applied. A new database records ``environment``; one made for another environment raises
    :class:`WrongEnvironment` before anything is applied. One that records none (migrated
    before environments were recorded) is recorded as ``environment`` only when
    ``claim_unrecorded`` (``cinema-migrate``, an operator naming the ini file), else refused."""
    backend = _backend(database_url)
    try:
        with backend.lock():
            migrations = read_migrations(MIGRATIONS_DIR)
            recorded = _recorded(backend, migrations)
            _refuse_another(database_url, recorded, environment, also=(NEW, UNRECORDED) if claim_unrecorded else (NEW,))
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
            if recorded in (NEW, UNRECORDED):
                _record(backend, environment)
                if recorded == UNRECORDED:
                    log.warning(
                        "the database %s recorded no environment (migrated before they were recorded): "
                        "recorded as %s from now on", database_url.display, environment,
                    )
            return [migration.id for migration in todo]
    finally:
        backend.connection.close()


def recorded_environment(database_url):
    """The environment the database was made for, or None (new, or migrated before
    environments were recorded)."""
    recorded = _read_recorded(database_url)
    return None if recorded in (NEW, UNRECORDED) else recorded


def check_environment(database_url, environment):
    """Raise :class:`WrongEnvironment` unless the database records ``environment`` (production
    at start-up, which never migrates: its database must already be its own)."""
    _refuse_another(database_url, _read_recorded(database_url), environment)


def _read_recorded(database_url):
    backend = _backend(database_url)
    try:
        return _recorded(backend, read_migrations(MIGRATIONS_DIR))
    finally:
        backend.connection.close()


def _recorded(backend, migrations):
    """:data:`NEW`, :data:`UNRECORDED` or the environment the database records."""
    applied = set(backend.get_applied_migration_hashes())
    if not any(migration.hash in applied for migration in migrations):
        return NEW
    if not any(migration.id == ENVIRONMENT_MIGRATION and migration.hash in applied for migration in migrations):
        return UNRECORDED
    row = backend.execute('SELECT "environment" FROM "database_environment" WHERE "id" = 1').fetchone()
    return row[0] if row else UNRECORDED


def _refuse_another(database_url, recorded, environment, also=()):
    """Raise :class:`WrongEnvironment` unless ``recorded`` is ``environment`` or one of ``also``."""
    if recorded == environment or recorded in also:
        return
    if recorded in (NEW, UNRECORDED):
        raise WrongEnvironment(
            "the database %s records no environment (it was migrated before databases recorded theirs): "
            "run cinema-migrate %s.ini if it is %s's" % (database_url.display, environment, environment)
        )
    raise WrongEnvironment(
        "the database %s was made for %s, not %s: each environment migrates and serves only its own database"
        % (database_url.display, recorded, environment)
    )


def _record(backend, environment):
    """Write the environment's row; it is never changed afterwards."""
    with backend.transaction():
        backend.execute(
            'INSERT INTO "database_environment" ("id", "environment", "recorded_at") VALUES (1, :environment, :now)',
            {"environment": environment, "now": datetime.now(timezone.utc).replace(tzinfo=None)},
        )


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
