"""The watchdog that bounds each exchange with PostgreSQL, on sockets of its own: a call left
waiting past the timeout has its connection broken off and fails with DatabaseTimeout; a call
that ends in time is left alone; a commit or rollback that sends nothing is no exchange. (A real
frozen server: tests/functional/test_sick_database.py.)"""

import socket
import time

import psycopg2
import pytest

from cinema_api.infrastructure.watchdog import DatabaseTimeout, Watchdog, watched_connections

TIMEOUT_SEC = 0.3


class Connection:
    """What the watchdog needs of a psycopg2 connection: its socket's descriptor."""

    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()


@pytest.fixture
def sockets():
    ours, server = socket.socketpair()
    with ours, server:
        yield ours, server


def test_a_call_left_waiting_is_broken_off_after_the_timeout(sockets):
    ours, server = sockets
    watchdog = Watchdog(TIMEOUT_SEC)
    call = watchdog.start(Connection(ours))
    started = time.monotonic()
    ours.settimeout(5)
    assert ours.recv(1) == b""  # as libpq's wait for an answer ends: the socket was shut down
    waited = time.monotonic() - started
    assert TIMEOUT_SEC <= waited < TIMEOUT_SEC + 1, waited
    lost = psycopg2.OperationalError("server closed the connection unexpectedly")
    with pytest.raises(DatabaseTimeout) as info:
        call.done(lost)
    assert info.value.pgcode == "57014" and info.value.__cause__ is lost
    assert not watchdog.calls


def test_a_call_that_ends_in_time_is_left_alone(sockets):
    ours, server = sockets
    watchdog = Watchdog(TIMEOUT_SEC)
    for _ in range(3):
        call = watchdog.start(Connection(ours))
        time.sleep(TIMEOUT_SEC / 3)
        call.done()
    time.sleep(TIMEOUT_SEC + 3 * Watchdog.TICK_SEC)
    server.sendall(b"x")
    assert ours.recv(1) == b"x" and not watchdog.calls  # still connected


def test_an_error_of_a_call_in_time_stays_what_it_was(sockets):
    ours, _ = sockets
    call = Watchdog(TIMEOUT_SEC).start(Connection(ours))
    call.done(psycopg2.OperationalError("anything else"))  # no DatabaseTimeout: the caller re-raises its own


def test_an_answer_just_before_the_break_stands(sockets):
    ours, _ = sockets
    watchdog = Watchdog(TIMEOUT_SEC)
    call = watchdog.start(Connection(ours))
    time.sleep(TIMEOUT_SEC + 3 * Watchdog.TICK_SEC)
    assert call.expired
    call.done()  # the answer came: it stands; the broken connection fails its next call


class Timings:
    """Stands for cinema_database_call_duration_seconds: what the watchdog timed."""

    def __init__(self):
        self.calls = 0

    def observe(self, seconds):
        self.calls += 1


@pytest.fixture
def watched(fresh_postgres_url):
    """A watched connection to a database of the run's own, and its watchdog's timings."""
    factory = watched_connections(5)
    timings = factory.watchdog.call_duration = Timings()
    connection = psycopg2.connect(fresh_postgres_url, connection_factory=factory)
    try:
        yield connection, timings
    finally:
        connection.close()


def test_what_reaches_the_server_is_timed_and_a_commit_or_rollback_with_nothing_open_is_not(watched):
    """Every request ends with a rollback (Pony's pool), which sends nothing after statements in
    autocommit mode: timed, it made every other sample of the histogram a zero."""
    connection, timings = watched
    connection.autocommit = True
    connection.cursor().execute("SELECT 1")
    connection.rollback()
    connection.commit()
    assert timings.calls == 1
    connection.autocommit = False
    cursor = connection.cursor()
    cursor.execute("SELECT 1")  # psycopg2 sends BEGIN with it
    connection.commit()
    cursor.execute("SELECT 1")
    connection.rollback()
    assert timings.calls == 5
    connection.rollback()
    connection.commit()
    assert timings.calls == 5


def test_a_rollback_that_sends_nothing_leaves_an_open_breaker_open(watched):
    """The breaker closes when the server answers; a rollback with nothing open asks it nothing
    (a request that read before an outage and ends after it has opened the breaker)."""
    connection, _ = watched
    connection.autocommit = True
    connection.cursor().execute("SELECT 1")
    breaker = type(connection).watchdog.breaker
    breaker.failure(DatabaseTimeout("the database did not answer within 5 s"))
    connection.rollback()
    connection.commit()
    assert breaker.is_open
    connection.cursor().execute("SELECT 1")  # the server answered
    assert not breaker.is_open
