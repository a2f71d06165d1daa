"""Pony ORM: one ``Database`` per application, bound from ``DATABASE_URL``.

Each domain registers its entities with ``config.add_entities(define)``; the database is
built, bound and mapped once every include has run. The schema itself belongs to the
migrations (``cinema_api/infrastructure/migrations``): Pony never creates tables, it only
checks that the tables it maps exist.
"""

import logging

from pony.orm import Database, db_session, rollback
from pyramid.tweens import EXCVIEW

from cinema_api.infrastructure import migrate

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 5000

# Run after every include has registered its entities (Pyramid's default order is 0).
_BIND_ORDER = 100


def make_database(database_url, definers):
    """A new bound and mapped ``Database`` with the entities of ``definers``."""
    db = Database()
    for define in definers:
        define(db)
    if database_url.is_sqlite:

        @db.on_connect(provider="sqlite")
        def sqlite_pragmas(db, connection):
            cursor = connection.cursor()
            # WAL lets readers go on while one writer commits; the busy timeout makes a
            # second writer wait instead of failing at once.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA busy_timeout = %d" % SQLITE_BUSY_TIMEOUT_MS)
            cursor.execute("PRAGMA foreign_keys = ON")
            # In WAL mode NORMAL survives a crash of the process (kill -9 included); only an
            # operating system crash or a power loss can drop the last commits. PostgreSQL is
            # the production database.
            cursor.execute("PRAGMA synchronous = NORMAL")

    db.bind(**database_url.bind_kwargs)
    db.generate_mapping(create_tables=False, check_tables=True)
    return db


def ping(db):
    """One real round trip to the database (``SELECT 1``)."""
    with db_session:
        db.select("SELECT 1")


def add_entities(config, define):
    """Directive: register ``define(db)``, a function that declares entities on ``db``."""
    config.registry.setdefault("cinema.entity_definers", []).append(define)


def _bind(config):
    settings = config.registry["cinema.settings"]
    url = settings.database_url
    if settings.is_production:
        pending = migrate.pending(url)
        if pending:
            raise SystemExit(
                "cinema_api: the database is not migrated (%d pending: %s); run: cinema-migrate production.ini"
                % (len(pending), ", ".join(pending))
            )
    else:
        applied = migrate.apply(url)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
    config.registry["cinema.db"] = make_database(url, config.registry.get("cinema.entity_definers", []))


def db_session_tween_factory(handler, registry):
    """One ``db_session`` per request: commit on success, roll back on any error response.

    It sits under the exception view tween, so an error raised while committing still
    becomes a JSON error response.
    """

    def db_session_tween(request):
        with db_session(strict=True):
            response = handler(request)
            if response.status_code >= 400:
                rollback()
            return response

    return db_session_tween


def includeme(config):
    config.add_directive("add_entities", add_entities)
    config.add_request_method(lambda request: request.registry["cinema.db"], "db", reify=True)
    config.add_tween(
        "cinema_api.infrastructure.db.db_session_tween_factory",
        under=("cinema_api.core.body.body_limits_tween_factory", EXCVIEW),
    )
    config.action(("cinema.db", "bind"), _bind, args=(config,), order=_BIND_ORDER)


def sql_uuid(db, value):
    """A UUID as a raw SQL parameter on this database (SQLite stores UUIDs as 16-byte blobs)."""
    return value.bytes if db.provider.dialect == "SQLite" else value


# ---------------------------------------------------------------- raw SQL of the hot paths

_CATALOG_VERSION = 'SELECT "version" FROM "catalog_version" WHERE "id" = 1'

_LIVE_LOGIN_SESSION = (
    'SELECT "u"."role", (%s) FROM "user_sessions" "s" JOIN "users" "u" ON "u"."id" = "s"."user_id" '
    'WHERE "s"."id" = $sid AND "s"."user_id" = $uid AND "s"."revoked_at" IS NULL AND "s"."expires_at" > $now'
    % _CATALOG_VERSION
)


def read_catalog_version(db):
    """The catalogue's current version (changed by the database with every write to movies or
    sessions; see migration 0002), or None if it cannot be read."""
    rows = db.select(_CATALOG_VERSION)
    return rows[0] if rows else None


def live_login_session(db, user_id, session_id, now):
    """``(role, catalog_version)`` while the login session is live (not revoked, not expired, its
    user not deleted), else None: one indexed read, which also serves the cache its version."""
    rows = db.select(_LIVE_LOGIN_SESSION, {"sid": sql_uuid(db, session_id), "uid": sql_uuid(db, user_id), "now": now})
    return tuple(rows[0]) if rows else None
