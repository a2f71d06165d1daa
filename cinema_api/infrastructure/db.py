"""Pony ORM: one ``Database`` per application, bound from ``DATABASE_URL``; one ``db_session`` per
request; the reads of every authenticated request (the login session, the catalogue version).

Each domain registers its entities with ``config.add_entities(define)``; the database is
built, bound and mapped once every include has run. The schema itself belongs to the
migrations (``cinema_api/infrastructure/migrations``): Pony never creates tables, it only
checks that the tables it maps exist. The rest of the storage, by job: what a failure answers
(:mod:`~cinema_api.infrastructure.storage_errors`), raw and prepared SQL
(:mod:`~cinema_api.infrastructure.sql`), the bound on every exchange and the breaker
(:mod:`~cinema_api.infrastructure.watchdog`), and what reaches inside Pony
(:mod:`~cinema_api.infrastructure.pony_internals`).
"""

import contextvars
import logging
import os
import random
import threading
import time
import uuid

from pony.orm import Database, db_session, rollback
from pony.orm.core import RollbackException
from pyramid.tweens import EXCVIEW
from pyramid_retry import is_last_attempt, mark_error_retryable

from cinema_api.core.body import MAX_BODY_BYTES, is_chunked
from cinema_api.core.clock import utcnow
from cinema_api.infrastructure import migrate
from cinema_api.infrastructure.checkpoints import FALLBACK_PAGES, WalCheckpointer
from cinema_api.infrastructure.pony_internals import PostgresProvider, select_rows
from cinema_api.infrastructure.sql import on_sqlite, sql_datetime, sql_uuid
from cinema_api.infrastructure.storage_errors import driver_error, is_retryable
from cinema_api.infrastructure.watchdog import watched_connections

log = logging.getLogger(__name__)

#: A deadlock or serialization failure: the whole request is tried again, at most this often.
ATTEMPTS = 3
RETRY_PAUSE_SEC = 0.02

# Run after every include has registered its entities (Pyramid's default order is 0).
_BIND_ORDER = 100


def make_database(database_url, definers, timeout=5):
    """A new bound and mapped ``Database`` with the entities of ``definers``; every call to the
    database is bounded by ``timeout`` seconds (``DATABASE_TIMEOUT_SEC``)."""
    db = Database()
    for define in definers:
        define(db)
    close_connections_with_their_thread(db)
    if database_url.is_sqlite:
        checkpointer = WalCheckpointer(database_url.bind_kwargs["filename"])

        @db.on_connect(provider="sqlite")
        def sqlite_pragmas(db, connection):
            cursor = connection.cursor()
            # WAL lets readers go on while one writer commits; the busy timeout makes a
            # second writer wait instead of failing at once.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA busy_timeout = %d" % (timeout * 1000))
            cursor.execute("PRAGMA foreign_keys = ON")
            # In WAL mode NORMAL survives a crash of the process (kill -9 included); only an
            # operating system crash or a power loss can drop the last commits. PostgreSQL is
            # the production database.
            cursor.execute("PRAGMA synchronous = NORMAL")
            # 512 KiB of pages per connection (SQLite's default: 2 MiB), one connection per
            # request thread: the operating system already caches the file for all of them.
            cursor.execute("PRAGMA cache_size = -512")
            # A thread of the process moves the log into the file (checkpoints); a commit does it
            # itself only past the fallback, should that thread fall behind.
            cursor.execute("PRAGMA wal_autocheckpoint = %d" % FALLBACK_PAGES)
            checkpointer.start()

        db.bind(**database_url.bind_kwargs)
    else:
        db.bind(**postgres_bind_kwargs(database_url, timeout))
    db.generate_mapping(create_tables=False, check_tables=True)
    return db


class _ConnectionCloser:
    """Closes one connection when it is dropped: Pony keeps a connection per thread and leaves
    it to the garbage collector when the thread ends or the database goes away. Only in the
    process that opened it: a forked child must never close (and so end on the server) its
    parent's connection, which Pony's pool keeps aside for that reason."""

    def __init__(self, connection):
        self.connection = connection
        self.pid = os.getpid()

    def __del__(self):
        if os.getpid() != self.pid:
            return
        try:
            self.connection.close()
        except Exception:  # already closed, broken, or (SQLite) owned by another thread
            pass


def close_connections_with_their_thread(db):
    """Every connection ``db`` opens is closed when its thread ends, instead of waiting for the garbage collector (Python 3.13 warns about such a SQLite
    connection, and a PostgreSQL one would hold its server process until then)."""
    owners = threading.local()

    @db.on_connect()
    def close_with_thread(db, connection):
        owners.closer = _ConnectionCloser(connection)


def postgres_bind_kwargs(database_url, timeout):
    """libpq parameters that bound a connection: connect and statement timeouts, TCP keepalive
    (a vanished server or a partition is noticed). A server that is there but does not answer
    (frozen, overloaded) is bounded on our side, by a :class:`Watchdog`."""
    kwargs = dict(database_url.bind_kwargs, provider=PostgresProvider, connection_factory=watched_connections(timeout))
    kwargs.setdefault("connect_timeout", timeout)
    kwargs.setdefault("keepalives", 1)
    kwargs.setdefault("keepalives_idle", max(1, timeout // 2))
    kwargs.setdefault("keepalives_interval", 1)
    kwargs.setdefault("keepalives_count", 3)
    kwargs.setdefault("options", "-c statement_timeout=%d -c lock_timeout=%d" % (timeout * 1000, timeout * 1000))
    return kwargs


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
        migrate.check_environment(url, settings.environment)
    else:
        applied = migrate.apply(url, settings.environment)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
    definers = config.registry.get("cinema.entity_definers", [])
    db = config.registry["cinema.db"] = make_database(url, definers, settings.database_timeout_sec)
    watchdog = getattr(db.provider, "watchdog", None)  # PostgreSQL's
    if watchdog is not None:
        metrics = config.registry["cinema.metrics"]
        watchdog.call_duration, watchdog.timeouts = metrics.database_call_duration, metrics.database_timeouts
        metrics.watch_database_breaker(watchdog.breaker)


def discard_changes():
    """Roll back what an error response leaves behind; a connection already lost has nothing
    left to undo, and the error response stands."""
    try:
        rollback()
    except RollbackException as exc:
        log.debug("rollback after an error response failed: %s", exc)


def db_session_tween_factory(handler, registry):
    """One ``db_session`` per request: commit on success, roll back on any error response.

    It sits under the exception view tween, so an error raised while committing still
    becomes a JSON error response. A deadlock or serialization failure rolled everything back:
    it is marked retryable, and the execution policy (``pyramid_retry``) runs the whole request
    again on a new request object (:func:`retry_attempts`), after a short jittered pause (as
    Warehouse retries them); on the last attempt it is answered 409.
    """

    def db_session_tween(request):
        committed = []  # what after_commit() leaves for this attempt
        token = _after_commit.set(committed)
        try:
            with db_session(strict=True):
                response = handler(request)
                if response.status_code >= 400:
                    discard_changes()
                    committed.clear()
        except Exception as exc:
            if is_retryable(exc) and not is_last_attempt(request):
                attempt = request.environ.get("retry.attempt", 0) + 1
                log.info("retrying after %s [trace %s]", type(driver_error(exc)).__name__, request.trace_id)
                time.sleep(random.uniform(0.5, 1.5) * RETRY_PAUSE_SEC * attempt)
                mark_error_retryable(exc)
            raise
        finally:
            _after_commit.reset(token)
        for callback in committed:
            callback()
        return response

    return db_session_tween


#: The callbacks of the request being answered that wait for its commit (see after_commit).
_after_commit = contextvars.ContextVar("cinema_after_commit", default=None)


def after_commit(callback):
    """Call ``callback()`` once the transaction of the request being answered has committed, and
    never if it does not (an error response, a commit that fails, an attempt that is retried);
    outside a request's transaction (a script), at once. What counts a change (the tickets
    sold) must not count one the database then refused."""
    committed = _after_commit.get()
    if committed is None:
        callback()
    else:
        committed.append(callback)


#: Requests that run once: reads (they neither deadlock nor fail to serialize at READ COMMITTED),
#: and bodies the body check refuses unread (over the limit, or chunked), which a retry would have
#: to copy first.
_RUN_ONCE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def retry_attempts(request):
    """``pyramid_retry``'s activate hook: how many attempts this request may have.

    A request that may run again needs its body again: ``pyramid_retry`` then makes it seekable
    (WebOb's ``make_body_seekable``), which copies the input through a loop of reads and, past
    10 kB, into a temporary file. A body of a known length within the limit is read here once
    instead, into memory, which WebOb then only rewinds: a purchase cost about 5 % more
    instructions with the copy."""
    if request.method in _RUN_ONCE_METHODS:
        return 1
    length = request.content_length
    if length is None and is_chunked(request):
        return 1
    if length is not None and length > MAX_BODY_BYTES:
        return 1
    if length:
        request.body = request.body_file_raw.read(length)  # seekable from now on (WebOb's own flag)
    return ATTEMPTS


def includeme(config):
    config.add_directive("add_entities", add_entities)
    config.include("cinema_api.infrastructure.storage_errors")
    config.add_request_service(lambda request: request.registry["cinema.db"], "db")
    config.add_tween(
        "cinema_api.infrastructure.db.db_session_tween_factory",
        under=("cinema_api.core.body.body_limits_tween_factory", EXCVIEW),
    )
    config.action(("cinema.db", "bind"), _bind, args=(config,), order=_BIND_ORDER)


# ---------------------------------------------------------------- raw SQL of the hot paths

_CATALOG_VERSION = 'SELECT "version" FROM "catalog_version" WHERE "id" = 1'

# One column, role and version joined by ":", as the PostgreSQL function of migration 0004
# answers (a function returning a row would be a composite value to parse).
_LIVE_LOGIN_SESSION = (
    'SELECT "u"."role" || \':\' || (%s) FROM "user_sessions" "s" JOIN "users" "u" ON "u"."id" = "s"."user_id" '
    'WHERE "s"."id" = $sid AND "s"."user_id" = $uid AND "s"."revoked_at" IS NULL AND "s"."expires_at" > $now'
    % _CATALOG_VERSION
)

_LIVE_LOGIN_SESSION_CALL = 'SELECT "live_login_session"($sid, $uid, $now)'


def read_catalog_version(db):
    """The catalogue's current version (changed by the database with every write to movies or
    sessions; see migration 0002), or None if it cannot be read."""
    rows = db.select(_CATALOG_VERSION)
    return rows[0] if rows else None


def live_login_session_of(db, claims, select=select_rows):
    """:func:`live_login_session` of the login session an access token's checked claims name, now."""
    return live_login_session(db, uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), utcnow(), select)


def live_login_session(db, user_id, session_id, now, select=select_rows):
    """``(role, catalog_version)`` while the login session is live (not revoked, not expired, its
    user not deleted), else None: one indexed read, which also serves the cache its version.
    On PostgreSQL a function of migration 0004, whose plan the server keeps."""
    params = {"sid": sql_uuid(db, session_id), "uid": sql_uuid(db, user_id), "now": sql_datetime(db, now)}
    rows = select(db, _LIVE_LOGIN_SESSION if on_sqlite(db) else _LIVE_LOGIN_SESSION_CALL, params, prepared=True)
    return login_session_answer(rows[0][0] if rows else None)


def login_session_answer(value):
    """What the login-session check's one column says (``role:version``, or NULL) as
    :func:`live_login_session` answers it: ``(role, catalog_version)``, or None."""
    return tuple(value.split(":", 1)) if value is not None else None
