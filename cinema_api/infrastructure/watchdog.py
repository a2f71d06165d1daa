"""A bound on every exchange with a PostgreSQL server, and the breaker that makes requests fail fast
while it does not answer.

libpq bounds connecting and, with TCP keepalive, a vanished server; a server that is there but does
not answer (frozen, overloaded) is bounded here, on our side: :class:`Watchdog`. Its breaker (open
once a call timed out or a connection was refused) is what ``PostgresProvider.connect``
(:mod:`cinema_api.infrastructure.pony_internals`) asks before every use of the database.
"""

import os
import socket
import threading
import time
import weakref

import psycopg2
import psycopg2.extensions

from cinema_api.core.metrics import UNCOUNTED
from cinema_api.core.threads import ProcessThread
from cinema_api.infrastructure.breaker import CircuitBreaker


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
        self._end_transaction(super().commit)

    def rollback(self):
        self._end_transaction(super().rollback)

    def _end_transaction(self, method):
        """``method`` (the driver's commit or rollback), under the watchdog when it reaches the
        server. With no transaction open (autocommit mode, or none begun) psycopg2 sends nothing:
        no exchange to bound, to time, nor to take as the server's answer, which would close an
        open breaker. Every request ends with such a rollback (Pony's pool) after its statements
        in autocommit mode (reads, a purchase)."""
        if self.status == psycopg2.extensions.STATUS_READY:
            method()
        else:
            _watched(self, method)


def watched_connections(timeout):
    """A psycopg2 ``connection_factory`` whose connections wait at most ``timeout`` seconds for the server."""
    return type("WatchedConnection", (WatchedConnection,), {"watchdog": Watchdog(timeout)})
