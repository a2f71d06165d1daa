"""Login throttling against what clients send and what the storage does (docs/API.md section 5).

The tests on ``testapp`` run on the suite's cache backend (memory, or Redis when ``CACHE_URL``
points at it); those that stop or freeze Redis use a private ``redis-server``.
"""

import logging
import time

import pytest
import redis
from webtest import TestApp

from cinema_api import make_app
from cinema_api.infrastructure.ratelimit import LoginLimiter, MemoryAttempts, RedisAttempts
from cinema_api.testing import RedisServer
from tests.conftest import build_settings, ini_settings

#: Usernames no storage key could hold as they are: a lone surrogate, a NUL, nearly 1 MiB.
HOSTILE_USERNAMES = {"lone surrogate": "\ud800", "nul": "a\x00b", "huge": "x" * 1_000_000}


def fail_login(client, username, address, status=401):
    body = {"username": username, "password": "wrong1234"}
    return client.post_json("/v1/auth/login", body, status=status, extra_environ={"REMOTE_ADDR": address})


@pytest.mark.parametrize("username", HOSTILE_USERNAMES.values(), ids=HOSTILE_USERNAMES.keys())
def test_a_username_no_key_can_hold_is_an_ordinary_failure_counted_against_its_username(testapp, username):
    for index in range(10):
        response = fail_login(testapp, username, "10.50.0.%d" % index)
        assert response.json["message"] == "Invalid credentials"
    fail_login(testapp, username, "10.50.1.1", status=429)
    # and the throttle is still on for everybody else
    for _ in range(10):
        fail_login(testapp, "bob", "10.50.2.1")
    fail_login(testapp, "carol", "10.50.2.1", status=429)


@pytest.mark.parametrize("username", HOSTILE_USERNAMES.values(), ids=HOSTILE_USERNAMES.keys())
def test_a_username_no_key_can_hold_is_counted_against_its_address(testapp, username):
    for index in range(10):
        fail_login(testapp, username + str(index), "10.51.0.1")
    fail_login(testapp, "alice", "10.51.0.1", status=429)


def test_a_private_redis_counts_hostile_usernames_too():
    """The same on Redis in every run of the suite, not only when it is pointed at Redis."""
    with RedisServer() as server:
        limiter = LoginLimiter(RedisAttempts(server.url), 10, 10)
        for username in HOSTILE_USERNAMES.values():
            for index in range(10):
                retry_after, reservation = limiter.reserve("10.52.0.%d" % index, username)
                assert retry_after is None and reservation is not None
            retry_after, _ = limiter.reserve("10.52.1.1", username)
            assert retry_after is not None
        assert not limiter.breaker.is_open
        with redis.Redis.from_url(server.url) as client:
            assert all(len(key) < 100 for key in client.keys("*"))
        limiter.attempts.client.connection_pool.disconnect()


class FailingAttempts(MemoryAttempts):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def reserve(self, keys, limits, now, member):
        raise self.exc


@pytest.mark.parametrize("exc", [UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), KeyError("bug"),
                                 redis.exceptions.DataError("bad argument"), redis.exceptions.ResponseError("script error")])
def test_an_error_of_ours_is_raised_and_never_taken_for_an_outage(exc):
    limiter = LoginLimiter(FailingAttempts(exc), 10, 10)
    with pytest.raises(type(exc)):
        limiter.reserve("10.53.0.1", "alice")
    assert not limiter.breaker.is_open


@pytest.mark.parametrize("exc", [redis.ConnectionError("refused"), redis.TimeoutError("timed out"),
                                 redis.exceptions.BusyLoadingError("loading"), ConnectionResetError()])
def test_a_storage_failure_lets_the_login_proceed(exc):
    limiter = LoginLimiter(FailingAttempts(exc), 10, 10)
    retry_after, reservation = limiter.reserve("10.53.0.1", "alice")
    assert retry_after is None and reservation is not None


# ---------------------------------------------------------------- back as soon as the storage is


def restarted(server):
    """A new private redis-server on the port of ``server``, which was stopped."""
    again = RedisServer()
    again.port, again.url = server.port, server.url
    return again.__enter__()


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["frozen", "stopped"])
def test_the_throttle_is_back_within_a_second_of_redis_answering_again(test_environ, caplog, outage):
    caplog.set_level(logging.WARNING, "cinema_api.infrastructure.breaker")
    servers = [RedisServer().__enter__()]
    try:
        app = make_app(build_settings(dict(test_environ, CACHE_URL=servers[0].url)), ini_settings())
        client = TestApp(app)
        servers[0].freeze() if outage == "frozen" else servers[0].stop()
        for _ in range(12):  # unthrottled while Redis cannot answer
            fail_login(client, "during", "10.60.0.1")
        assert any("login limiter storage is unavailable" in r.getMessage() for r in caplog.records)
        if outage == "frozen":
            servers[0].thaw()
        else:
            servers.append(restarted(servers[0]))
        time.sleep(1.0)
        for _ in range(10):
            fail_login(client, "after", "10.60.0.2")
        fail_login(client, "after", "10.60.0.2", status=429)
        app.registry["cinema.login_limiter"].attempts.client.connection_pool.disconnect()
    finally:
        for server in servers:
            server.stop()


def test_an_open_breaker_lets_one_caller_probe_each_cooldown():
    from cinema_api.infrastructure.breaker import CircuitBreaker

    now = [100.0]
    breaker = CircuitBreaker("storage", cooldown=0.5, clock=lambda: now[0])
    assert breaker.allows()
    breaker.failure(OSError("down"))
    assert not breaker.allows()
    now[0] += 0.5
    assert breaker.allows()  # the probe
    assert not breaker.allows()  # the others bypass while it tries
    breaker.failure(OSError("still down"))
    now[0] += 0.5
    assert breaker.allows()
    breaker.success()
    assert breaker.allows() and breaker.allows()
