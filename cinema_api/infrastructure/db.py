"""Pony ORM: one ``Database`` per application, bound from ``DATABASE_URL``.

Each domain registers its entities with ``config.add_entities(define)``; the database is
built, bound and mapped once every include has run. The schema itself belongs to the
migrations (``cinema_api/infrastructure/migrations``): Pony never creates tables, it only
checks that the tables it maps exist.
"""

import hashlib
import logging
import os
import random
import re
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from datetime import datetime

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from pony.orm import Database, db_session, rollback
from pony.orm.core import CacheIndexError, CommitException, RollbackException, TransactionIntegrityError, UnexpectedError
from pony.orm.dbapiprovider import DBException, wrap_dbapi_exceptions
from pony.orm.dbproviders.postgres import PGPool, PGProvider
from pony.utils import datetime2timestamp
from pyramid.exceptions import ConfigurationExecutionError
from pyramid.tweens import EXCVIEW
from pyramid_retry import is_last_attempt, mark_error_retryable

from cinema_api.core.body import MAX_BODY_BYTES
from cinema_api.core.clock import utcnow
from cinema_api.core.errors import domain_error_view, error_response
from cinema_api.core.metrics import UNCOUNTED
from cinema_api.core.threads import ProcessThread
from cinema_api.infrastructure import migrate
from cinema_api.infrastructure.breaker import CircuitBreaker

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


class ReusedConnectionPool(PGPool):
    """Pony's pool, without the ``DISCARD ALL`` it sends when each ``db_session`` ends.

    That statement resets what a session may have set up (prepared statements, temporary
    tables, ``SET``, advisory locks, ``LISTEN``). Of these the application sets up only its
    :class:`Prepared` statements, which are meant to outlive the request, so it only cost every
    request a second round trip, the server's work of resetting and the plans of the next
    request. What a request leaves behind is its transaction, and that is rolled back (no
    round trip when none is open, as after a read in autocommit mode).
    """

    def release(self, con):
        assert con is self.con
        try:
            con.rollback()
        except Exception:
            self.drop(con)
            raise


class PostgresProvider(PGProvider):
    """Pony's PostgreSQL provider, failing fast while the database is known to be down, and never
    handing out a connection known to be broken.

    Every use of the database takes a connection here first (a ``db_session``'s first query, the
    fast path's read). While the database breaker is open (a call timed out, or a connection was
    refused) the request answers 503 at once instead of waiting out another timeout; one request
    at a time, once per ``DATABASE_TIMEOUT_SEC``, goes through as the probe, and its answer
    closes the breaker. Without it, a frozen database with more requests than threads held every
    thread for a timeout each, wave after wave (13 requests on 8 threads: 10 s each).
    """

    def get_pool(self, *args, **kwargs):
        self.watchdog = kwargs["connection_factory"].watchdog
        self.breaker = self.watchdog.breaker
        return ReusedConnectionPool(self.dbapi_module, *args, **kwargs)

    @wrap_dbapi_exceptions
    def connect(self):
        if not self.breaker.allows():
            raise DatabaseUnavailable("the database did not answer recently; asked again within %g s" % self.breaker.cooldown)
        try:
            connection, is_new = self.pool.connect()
            if not is_new and connection_gone(connection):
                self.pool.drop(connection)  # broken by the watchdog, or found lost: never reused
                connection, is_new = self.pool.connect()
        except psycopg2.OperationalError as exc:  # refused, unreachable, or no answer within connect_timeout
            if "timeout expired" in str(exc):  # libpq's words for connect_timeout
                self.watchdog.timeouts.inc()
            self.breaker.failure(" ".join(str(exc).split()) or type(exc).__name__)
            raise
        return connection, is_new

    def should_reconnect(self, exc):
        """Pony's cases (a connection error without SQLSTATE), and any other error that says the
        connection is gone (``DatabaseError: server closed the connection unexpectedly`` after a
        crash carries no SQLSTATE and is no ``OperationalError``)."""
        return super().should_reconnect(exc) or lost_connection(exc)


def connection_gone(connection):
    """Whether ``connection`` must not be used again: closed, found broken by psycopg2, or broken
    off by the watchdog."""
    return bool(connection.closed) or getattr(connection, "broken", False)


def lost_connection(exc):
    """Whether the driver error ``exc`` means that its connection is gone: a driver error with no
    SQLSTATE from the server (the server never answered it), other than a timeout of ours."""
    return (
        isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
        or type(exc) is psycopg2.DatabaseError
    ) and getattr(exc, "pgcode", None) is None


class DatabaseTimeout(psycopg2.OperationalError):
    """The server did not answer in time. Its SQLSTATE (query_canceled) keeps Pony from
    reconnecting and trying once more, which would double the wait."""

    pgcode = "57014"


class DatabaseUnavailable(psycopg2.OperationalError):
    """Refused at once: the database breaker is open. Its SQLSTATE (cannot_connect_now) keeps
    Pony from reconnecting."""

    pgcode = "57P03"


class Watchdog:
    """Bounds every exchange with a PostgreSQL server (a statement, a commit, a rollback): one
    still waiting after ``timeout`` seconds has its connection broken off (the socket shut
    down), which ends libpq's wait at once, and fails with :class:`DatabaseTimeout`.

    libpq's own bounds do not cover a server that is there but does not answer (frozen,
    overloaded): its socket stays open and quiet, and libpq would wait forever. psycopg2's
    process-wide wait callback could bound it, but turns every exchange into a loop of
    ``poll()`` and ``select()`` in Python; here the driver waits in C, without the interpreter
    lock, and one thread of the process looks at the calls in progress of every watchdog
    ``TICK_SEC`` times a second.
    """

    TICK_SEC = 0.1
    #: cinema_database_call_duration_seconds and cinema_database_timeouts_total (see _bind)
    call_duration = timeouts = UNCOUNTED
    _all = weakref.WeakSet()
    _all_lock = threading.Lock()

    def __init__(self, timeout):
        self.timeout = timeout
        self.calls = {}  # Call -> None, oldest first (all have the same timeout)
        self.lock = threading.Lock()
        # open once a call timed out or a connection failed: requests fail fast (PostgresProvider)
        self.breaker = CircuitBreaker("the database", cooldown=timeout, while_open="requests answer 503 at once")
        with Watchdog._all_lock:
            Watchdog._all.add(self)

    def start(self, connection):
        """A :class:`Call` on ``connection`` that ends within the timeout: ``done()`` it."""
        _WATCHING.ensure()
        call = Call(self, connection, time.monotonic() + self.timeout)
        self.calls[call] = None
        return call

    @classmethod
    def watch_all(cls):
        while True:
            time.sleep(cls.TICK_SEC)
            with cls._all_lock:
                watchdogs = list(cls._all)
            for watchdog in watchdogs:
                watchdog.expire_late_calls(time.monotonic())

    def expire_late_calls(self, now):
        for call in list(self.calls):
            if call.deadline > now:
                break  # the others started later
            with self.lock:
                if self.calls.pop(call, False) is None:  # not done meanwhile
                    call.expire()


_WATCHING = ProcessThread("db-watchdog", Watchdog.watch_all)


class Call:
    __slots__ = ("watchdog", "connection", "fd", "deadline", "expired")

    def __init__(self, watchdog, connection, deadline):
        self.watchdog, self.connection, self.deadline, self.expired = watchdog, connection, deadline, False
        self.fd = connection.fileno()

    def expire(self):
        """Break the connection off (under the watchdog's lock): its state is unknown, so it
        must never be reused (the provider drops it from its pool when it is next taken).
        Closing it here would wait for the lock its own query holds."""
        self.expired = True
        self.connection.broken = True
        try:
            with socket.socket(fileno=os.dup(self.fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed meanwhile
            pass

    def done(self, exc=None):
        """The call is over; ``exc``, what it raised, becomes :class:`DatabaseTimeout` when the
        watchdog broke the connection. (An answer that came just before stands: the broken
        connection fails its next call, and Pony replaces it.)"""
        watchdog = self.watchdog
        with watchdog.lock:
            watchdog.calls.pop(self, None)
        watchdog.call_duration.observe(time.monotonic() - self.deadline + watchdog.timeout)
        if self.expired and exc is not None:
            watchdog.timeouts.inc()
            timeout = DatabaseTimeout("the database did not answer within %s s" % self.watchdog.timeout)
            self.watchdog.breaker.failure(timeout)
            raise timeout from exc
        if exc is None or getattr(exc, "pgcode", None) is not None:
            self.watchdog.breaker.success()  # the server answered


def _watched(connection, method, *args):
    """``method(*args)``, an exchange of ``connection`` with its server, under its watchdog."""
    call = connection.watchdog.start(connection)
    try:
        result = method(*args)
    except psycopg2.Error as exc:
        call.done(exc)
        raise
    call.done()
    return result


class WatchedCursor(psycopg2.extensions.cursor):
    def execute(self, query, vars=None):
        return _watched(self.connection, super().execute, query, vars)

    def executemany(self, query, vars_list):
        return _watched(self.connection, super().executemany, query, vars_list)


class WatchedConnection(psycopg2.extensions.connection):
    """A connection whose statements, commits and rollbacks its class's ``watchdog`` bounds."""

    watchdog = None

    broken = False  # broken off by the watchdog: never to be used again

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cursor_factory = WatchedCursor
        self.prepared = {}  # name of a Prepared statement -> whether its plan is usable (see Prepared)

    def commit(self):
        _watched(self, super().commit)

    def rollback(self):
        _watched(self, super().rollback)


def watched_connections(timeout):
    """A psycopg2 ``connection_factory`` whose connections wait at most ``timeout`` seconds for the server."""
    return type("WatchedConnection", (WatchedConnection,), {"watchdog": Watchdog(timeout)})


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
        try:
            with db_session(strict=True):
                response = handler(request)
                if response.status_code >= 400:
                    discard_changes()
                return response
        except Exception as exc:
            if is_retryable(exc) and not is_last_attempt(request):
                attempt = request.environ.get("retry.attempt", 0) + 1
                log.info("retrying after %s [trace %s]", type(driver_error(exc)).__name__, request.trace_id)
                time.sleep(random.uniform(0.5, 1.5) * RETRY_PAUSE_SEC * attempt)
                mark_error_retryable(exc)
            raise

    return db_session_tween


#: Requests that run once: reads (they neither deadlock nor fail to serialize at READ COMMITTED),
#: and bodies the body check refuses unread (over the limit, or chunked), which a retry would have
#: to copy first.
_RUN_ONCE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def retry_attempts(request):
    """``pyramid_retry``'s activate hook: how many attempts this request may have."""
    if request.method in _RUN_ONCE_METHODS:
        return 1
    length = request.content_length
    if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return 1
    if length is not None and length > MAX_BODY_BYTES:
        return 1
    return ATTEMPTS


# ---------------------------------------------------------------- storage errors, at one boundary
#
# Pony wraps what the driver raised (TransactionIntegrityError, CommitException,
# UnexpectedError, its own DB-API classes). Whatever the wrapping, the answer is decided here
# from the driver's error: an integrity error is the 409 (or 404) of the constraint that fired,
# as the domains registered it (``config.add_constraint_error``); a lost, frozen or timed-out
# database is 503 with Retry-After; a deadlock or serialization failure is a 409 to retry.

#: SQLite names the columns of a failed unique constraint, not the constraint.
SQLITE_UNIQUE_CONSTRAINTS = {
    "users.username": "uq_users_username",
    "movies.title": "uq_movies_title",
    "movie_sessions.room_number, movie_sessions.timeslot, movie_sessions.day": "uq_movie_sessions_room_slot_day",
    "tickets.user_id, tickets.session_id": "uq_tickets_user_session",
    "tickets.session_id, tickets.seat": "uq_tickets_session_seat",
    "refresh_tokens.token_hash": "uq_refresh_tokens_token_hash",
}
#: SQLite names no foreign key either: a new ticket can only miss its session (its buyer is the
#: caller), a new session its movie, and the only restricting key is a ticket's session, when a
#: session is deleted.
SQLITE_FOREIGN_KEYS = {
    "Ticket": ("tickets_session_id_fkey", "tickets"),
    "Screening": ("movie_sessions_movie_id_fkey", "movie_sessions"),
}
SQLITE_RESTRICTING_KEY = ("tickets_session_id_fkey", "movie_sessions")
#: A rule a SQLite trigger enforces is raised under its constraint's name (PostgreSQL's triggers
#: name it in the error's diagnostics), with the table whose write it refused.
SQLITE_TRIGGER_CONSTRAINTS = {
    "ck_tickets_seat_in_plan": "tickets",
    "ck_catalog_version_kept": "catalog_version",
    "ck_movie_sessions_seat_plan_kept": "movie_sessions",
}

RETRY_AFTER_SEC = "5"


def driver_error(exc):
    """The DB-API driver's exception under Pony's wrappers, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sqlite3.Error, psycopg2.Error)):
            return exc
        if isinstance(exc, (CommitException, RollbackException)) and exc.exceptions:
            exc = exc.exceptions[0][1]
        else:
            exc = getattr(exc, "original_exc", None) or exc.__cause__ or exc.__context__
    return None


def unusable_database(exc):
    """One line saying why the database cannot be used at all (unreachable, refused, a SQLite
    folder that cannot be created), whatever wraps the error; None for any other error. For
    start-up, where there is no request to answer 503."""
    if isinstance(exc, ConfigurationExecutionError):
        exc = exc.evalue
    error = driver_error(exc)
    if error is None and isinstance(exc, OSError):
        error = exc
    if error is None:
        return None
    return "database unavailable: " + " ".join(str(error).split())


def is_retryable(exc):
    """A deadlock or serialization failure: the transaction was rolled back as a whole."""
    return isinstance(driver_error(exc), psycopg2.errors.TransactionRollbackError)


def violated_constraint(exc):
    """``(constraint, table)`` of an integrity error: the constraint that fired and the table whose
    write it refused (for a foreign key, the referencing table on insert, the referenced one on delete)."""
    error = driver_error(exc)
    diag = getattr(error, "diag", None)
    if diag is not None:
        return diag.constraint_name, diag.table_name
    text = str(error or exc)
    if text in SQLITE_TRIGGER_CONSTRAINTS:
        return text, SQLITE_TRIGGER_CONSTRAINTS[text]
    unique = re.search(r"UNIQUE constraint failed: (.+)$", text)
    if unique:
        columns = unique.group(1).strip()
        return SQLITE_UNIQUE_CONSTRAINTS.get(columns), columns.split(".")[0]
    if "FOREIGN KEY constraint failed" in text:
        entity = re.match(r"Object (\w+)\[.*\] cannot be stored", str(exc))
        return SQLITE_FOREIGN_KEYS.get(entity.group(1)) if entity else SQLITE_RESTRICTING_KEY
    return None, None


def add_constraint_error(config, constraint, table, error):
    """Directive: a violation of ``constraint`` by a write to ``table`` answers ``error()``."""
    config.registry.setdefault("cinema.constraint_errors", {})[(constraint, table)] = error


def storage_error_view(exc, request):
    """The one place where a storage failure becomes an answer."""
    error = driver_error(exc)
    if isinstance(exc, (TransactionIntegrityError, CacheIndexError)) or isinstance(
        error, (sqlite3.IntegrityError, psycopg2.IntegrityError)
    ):
        known = request.registry.get("cinema.constraint_errors", {}).get(violated_constraint(exc))
        if known is not None:
            return domain_error_view(known(), request)
        log.info("integrity conflict [trace %s]: %s", request.trace_id, exc)
        return error_response(request, 409, "The request conflicts with the current state of the resource", code="CONFLICT")
    if is_retryable(exc):  # still failing after ATTEMPTS tries
        return error_response(request, 409, "The request conflicted with a concurrent one; retry", {"Retry-After": "1"}, code="CONFLICT_RETRY")
    if isinstance(error, (sqlite3.OperationalError, psycopg2.OperationalError, psycopg2.InterfaceError)) or (
        error is not None and lost_connection(error)
    ):
        log.error("database unavailable [trace %s]: %s", request.trace_id, exc)
        request.registry["cinema.metrics"].database_unavailable.inc()
        return error_response(request, 503, "Database unavailable", {"Retry-After": RETRY_AFTER_SEC}, code="DATABASE_UNAVAILABLE")
    log.error("database error [trace %s]", request.trace_id, exc_info=exc)
    return error_response(request, 500, "Internal server error", code="INTERNAL_ERROR")


def includeme(config):
    config.add_directive("add_entities", add_entities)
    config.add_directive("add_constraint_error", add_constraint_error)
    wrappers = (TransactionIntegrityError, CacheIndexError, CommitException, RollbackException, UnexpectedError)
    for storage_error in (*wrappers, DBException, sqlite3.Error, psycopg2.Error):
        config.add_exception_view(storage_error_view, context=storage_error)
    config.add_request_service(lambda request: request.registry["cinema.db"], "db")
    config.add_tween(
        "cinema_api.infrastructure.db.db_session_tween_factory",
        under=("cinema_api.core.body.body_limits_tween_factory", EXCVIEW),
    )
    config.action(("cinema.db", "bind"), _bind, args=(config,), order=_BIND_ORDER)


def on_sqlite(db):
    """Whether ``db`` is bound to SQLite (else PostgreSQL): where raw SQL differs."""
    return db.provider.dialect == "SQLite"


def sql_uuid(db, value):
    """A UUID as a raw SQL parameter on this database (SQLite stores UUIDs as 16-byte blobs)."""
    return value.bytes if on_sqlite(db) else value


def sql_datetime(db, value):
    """A naive UTC datetime as a raw SQL parameter: on SQLite, the text Pony stores (and compares
    as text), not the ISO form with a ``T`` that the driver would send."""
    return datetime2timestamp(value) if on_sqlite(db) else value


def sqlite_datetime(text):
    """A datetime as SQLite stores it (Pony's text form) -> naive UTC ``datetime``."""
    return datetime.fromisoformat(text)


_PARAMETER = re.compile(r"\$(\w+)")
_driver_statements = {}  # (sql, paramstyle, prepared) -> (the driver's SQL, the parameters' names in order)


def _driver_statement(db, sql, params, prepared=False):
    """``sql`` with ``$name`` parameters and their values in ``params``, in the driver's style:
    ``?`` and a tuple (SQLite), or ``%(name)s`` (``%`` doubled) and the mapping (psycopg2). A
    ``prepared`` statement on PostgreSQL is the :class:`Prepared` statement and a tuple."""
    paramstyle = db.provider.paramstyle
    key = (sql, paramstyle, prepared)
    statement = _driver_statements.get(key)
    if statement is None:
        if paramstyle == "qmark":
            statement = (_PARAMETER.sub("?", sql), _PARAMETER.findall(sql))
        elif prepared:
            statement = Prepared(sql)
            statement = (statement, statement.names)
        else:
            statement = (_PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%")), None)
        _driver_statements[key] = statement
    text, names = statement
    return text, params if names is None else tuple([params[name] for name in names])


class Prepared:
    """A statement that a PostgreSQL server parses and plans once per connection, not once per
    call: ``PREPARE`` the first time a connection runs it, ``EXECUTE`` with the values after.
    For the hot paths' statements whose planning costs the server more than running them
    (the read of a purchase: about 140 us of planning for 80 of work; its insert about 65 us).
    The server plans a prepared statement again by itself when a table it uses changes.
    SQLite needs none of this: its driver keeps the statements it compiled."""

    def __init__(self, sql):
        self.names = list(dict.fromkeys(_PARAMETER.findall(sql)))
        self.name = "cinema_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        self.body = _PARAMETER.sub(lambda match: "$%d" % (self.names.index(match.group(1)) + 1), sql)
        values = " (%s)" % ", ".join(["%s"] * len(self.names)) if self.names else ""
        self.call = "EXECUTE " + self.name + values

    def execute(self, cursor, arguments, execute):
        """Run it on ``cursor`` through ``execute(cursor, sql, arguments)``. A connection
        prepares it once. If a table it reads has changed its columns since (a
        migration run beside the server), the server refuses the old plan: it is prepared
        again, and run once more where no transaction was open to be spoilt by the refusal
        (in one, the request fails and the next use prepares it again)."""
        prepared = cursor.connection.prepared  # name -> True, or False once its plan went stale
        if not prepared.get(self.name):
            self._prepare(cursor, prepared)
        try:
            return execute(cursor, self.call, arguments)
        except Exception as exc:
            if not _stale_plan(exc):
                raise
            prepared[self.name] = False
            if not cursor.connection.autocommit:
                raise
            self._prepare(cursor, prepared)
            return execute(cursor, self.call, arguments)

    def _prepare(self, cursor, prepared):
        """Prepare it on the cursor's connection, dropping a stale plan first. The name is
        forgotten as soon as the server has none by it (dropped, or never there), so a PREPARE
        that fails (a timeout, an aborted transaction) leaves nothing to drop next time: a name
        kept after its statement was dropped made every later DEALLOCATE fail, and every
        purchase on that connection answer 503 until a restart."""
        if self.name in prepared:
            try:
                cursor.execute("DEALLOCATE %s" % self.name)
            except psycopg2.errors.InvalidSqlStatementName:
                del prepared[self.name]
                raise
            del prepared[self.name]
        cursor.execute("PREPARE %s AS %s" % (self.name, self.body))
        prepared[self.name] = True


def _stale_plan(exc):
    """Whether ``exc`` (psycopg2's, or Pony's wrapping of it) is the server's refusal of a
    prepared plan whose result columns changed."""
    original = getattr(exc, "original_exc", exc)
    return isinstance(original, psycopg2.errors.FeatureNotSupported) and "must not change result type" in str(original)


def _cursor_execute(cursor, sql, arguments):
    return cursor.execute(sql, arguments)


def _execute(cursor, statement, arguments, execute=_cursor_execute):
    """Run a statement from :func:`_driver_statement` on ``cursor``, through
    ``execute(cursor, sql, arguments)`` (the cursor's own, or Pony's ``provider.execute``)."""
    if isinstance(statement, Prepared):
        return statement.execute(cursor, arguments, execute)
    return execute(cursor, statement, arguments)


def select_rows(db, sql, params, prepared=False):
    """The rows of a raw ``SELECT`` with ``$name`` parameters (values in ``params``), as plain
    tuples, in the request's ``db_session`` and outside any transaction, as ``db.select``.

    The hot paths' reads (the login-session check of every authenticated request, the movie
    list) go to the driver's cursor on the session's connection: ``db.select`` evaluates its
    parameters as Python expressions, keeps statistics and builds a new row class for every
    result of several columns, costs these reads need not pay. As Pony's own queries, a query
    on a pooled connection that broke is sent once more on a new one (Pony decides which
    errors allow it); driver errors reach the error mapping unwrapped (:func:`driver_error`).
    ``prepared``: the server plans it once per connection (:class:`Prepared`)."""
    statement, arguments = _driver_statement(db, sql, params, prepared)
    cache = db._get_cache()
    connection = cache.prepare_connection_for_query_execution()
    try:
        cursor = connection.cursor()
        _execute(cursor, statement, arguments)
    except Exception as exc:
        cursor = cache.reconnect(exc).cursor()  # re-raises unless the connection itself was lost
        _execute(cursor, statement, arguments)
    if cache.immediate:
        cache.in_transaction = True
    return cursor.fetchall()


def select_without_session(db, sql, params, prepared=False):
    """The rows of a raw ``SELECT`` (as :func:`select_rows`) where no ``db_session`` is open: on
    this thread's pooled connection, in autocommit mode, without the work of opening and closing
    a session around one read. For the reads made before Pyramid sees a request (the fast path
    of cached hits). A pooled connection that broke is replaced and the read sent once more,
    as Pony does; other errors reach the caller as from :func:`select_rows`."""
    statement, arguments = _driver_statement(db, sql, params, prepared)
    provider = db.provider
    for attempt in (1, 2):
        connection, is_new = provider.connect()
        try:
            if is_new:
                db.call_on_connect(connection)
            if not on_sqlite(db) and not connection.autocommit:
                connection.autocommit = True  # Pony sets the mode each session needs when it starts
            cursor = connection.cursor()
            _execute(cursor, statement, arguments)
            return cursor.fetchall()
        except Exception as exc:
            if attempt == 2 or not provider.should_reconnect(exc):
                raise  # in autocommit mode a failed read leaves no transaction behind
            provider.pool.drop(connection)


def execute_alone(db, sql, params, prepared=False):
    """Run one writing statement with ``$name`` parameters as a transaction of its own, and
    return its cursor (``rowcount``). A single statement is atomic by itself: on PostgreSQL it
    runs in autocommit mode, without the round trips of ``BEGIN`` and ``COMMIT`` that
    ``db.execute`` costs; on SQLite under Pony's write lock, as Pony's transactions (writers
    queue on it instead of polling SQLite's lock). Inside a transaction the request already
    opened, it is one more statement of that transaction. Errors are Pony's, as from
    ``db.execute``. ``prepared``: as for :func:`select_rows`, outside a transaction."""
    cache = db._get_cache()
    if cache.in_transaction or cache.modified:
        return db._exec_raw_sql(sql, params, None, 0, start_transaction=True)
    statement, arguments = _driver_statement(db, sql, params, prepared)
    connection = cache.prepare_connection_for_query_execution()
    cursor = connection.cursor()
    sqlite = on_sqlite(db)
    if sqlite:
        db.provider.acquire_lock()
    try:
        _execute(cursor, statement, arguments, db.provider.execute)
    finally:
        if sqlite:
            db.provider.release_lock()
    return cursor


def substring_condition(db, column, parameter):
    """SQL: ``column`` contains the value of ``$parameter`` literally (no LIKE wildcards)."""
    function = "instr" if on_sqlite(db) else "strpos"
    return "%s(%s, $%s) > 0" % (function, column, parameter)


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
    if not rows or rows[0][0] is None:
        return None
    return tuple(rows[0][0].split(":", 1))
