"""The watchdog that bounds each exchange with PostgreSQL, on sockets of its own: a call left
waiting past the timeout has its connection broken off and fails with DatabaseTimeout; a call
that ends in time is left alone. (A real frozen server: tests/functional/test_sick_database.py.)"""

import socket
import time

import psycopg2
import pytest

from cinema_api.infrastructure.watchdog import DatabaseTimeout, Watchdog

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
