"""Pony ORM, adapted beyond its public API where a request paid for what we do not need (written
against pony 0.7.20; ``tests/unit/test_library_contracts.py`` names each internal used here and fails
when the installed Pony no longer has it). This is the only module that reaches inside Pony.

- :class:`ReusedConnectionPool` overrides ``PGPool.release``: no ``DISCARD ALL`` after each
  ``db_session`` (a second round trip per request, and the prepared plans thrown away).
- :class:`PostgresProvider` overrides ``connect`` (the database breaker, broken connections and
  those the server closed while they idled dropped from the thread's pool) and
  ``should_reconnect`` (a lost connection without SQLSTATE).
- :func:`select_rows`, :func:`select_without_session` and :func:`execute_alone` use the session
  cache's connection handling (``Database._get_cache``, ``SessionCache.prepare_connection_for_query_execution``,
  ``reconnect``, ``in_transaction``, ``immediate``, ``modified``; ``Database._exec_raw_sql``): the hot
  paths' reads cost a third less than through ``db.select``, which evaluates its parameters as
  Python expressions and builds a row class per result.
"""

import select
import time

import psycopg2
from pony.orm.dbapiprovider import wrap_dbapi_exceptions
from pony.orm.dbproviders.postgres import PGPool, PGProvider

from cinema_api.infrastructure.sql import _driver_statement, _execute, on_sqlite
from cinema_api.infrastructure.storage_errors import lost_connection
from cinema_api.infrastructure.watchdog import DatabaseUnavailable


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
            if not is_new and (connection_gone(connection) or closed_while_idle(connection)):
                self.pool.drop(connection)  # broken by the watchdog, or found lost: never reused
                connection, is_new = self.pool.connect()
            connection.taken_at = time.monotonic()
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


#: A pooled connection idle for longer than this is looked at before it is used again
#: (:func:`closed_while_idle`); one in use more recently is not.
IDLE_CHECK_SEC = 1.0


def closed_while_idle(connection):
    """Whether the server closed a pooled connection while it idled: a server that stops, restarts
    or ends the session says so and closes the socket, which then has something to read while no
    statement is waiting for an answer. One ``select`` of the socket, no round trip, and only for
    a connection idle for more than ``IDLE_CHECK_SEC`` (under load every connection is in use,
    and a select would hand the interpreter lock over). Without it, the first statement on such a
    connection fails: a read is sent again on a new one (:func:`select_rows`), but a purchase's
    one statement, a write, is not, and would answer 503 once per thread after every restart."""
    if time.monotonic() - getattr(connection, "taken_at", 0.0) <= IDLE_CHECK_SEC:
        return False
    try:
        readable, _, _ = select.select([connection], [], [], 0)
    except (OSError, ValueError):  # the socket is gone already
        return True
    return bool(readable)


def connection_gone(connection):
    """Whether ``connection`` must not be used again: closed, found broken by psycopg2, or broken
    off by the watchdog."""
    return bool(connection.closed) or getattr(connection, "broken", False)


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
