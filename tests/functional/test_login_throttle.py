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
from tests.conftest import PASSWORD, build_settings, ini_settings, register, reset_state

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


# ---------------------------------------------------------------- an attacker cannot lock a customer out


HOME = "192.0.2.10"  # where alice signs in from


def sign_in(client, username="alice", address=HOME, status=200, **kwargs):
    body = {"username": username, "password": PASSWORD}
    return client.post_json("/v1/auth/login", body, status=status, extra_environ={"REMOTE_ADDR": address}, **kwargs)


def spend_username_budget(client, username="alice", attempts=10):
    """Wrong passwords for ``username`` from addresses other than its owner's, 10.0.x.y."""
    statuses = [fail_login(client, username, "10.0.%d.%d" % divmod(index, 250), status="*").status_int for index in range(attempts)]
    return statuses


@pytest.fixture
def alice(testapp):
    account = register(testapp, "alice")
    sign_in(testapp)  # a successful login from her usual address
    return account


def test_a_thousand_wrong_passwords_leave_the_owner_signing_in_from_her_usual_address(testapp, alice):
    statuses = spend_username_budget(testapp, attempts=1000)
    assert statuses.count(401) == 10 and statuses.count(429) == 990
    # an address she never signed in from is refused, the right password too
    response = sign_in(testapp, address="198.51.100.7", status=429)
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    assert sign_in(testapp).json["user"]["id"] == alice.id


def test_her_usual_address_still_has_its_own_budget(testapp, alice):
    spend_username_budget(testapp)
    for _ in range(10):
        fail_login(testapp, "alice", HOME)  # spared by the username budget: counted against the address
    sign_in(testapp, status=429)
    fail_login(testapp, "someone", HOME, status=429)


def test_an_address_is_spared_only_for_the_username_that_signed_in_from_it(testapp, alice):
    register(testapp, "bob")
    sign_in(testapp, "bob", address="192.0.2.20")
    spend_username_budget(testapp, "bob")
    sign_in(testapp, "bob", status=429)  # alice's usual address is not bob's
    sign_in(testapp, "bob", address="192.0.2.20")


def test_an_address_is_known_only_after_a_successful_login(testapp):
    register(testapp, "alice")  # registering is not a login from an address
    fail_login(testapp, "alice", HOME)
    spend_username_budget(testapp)
    sign_in(testapp, status=429)


def test_an_address_is_forgotten_thirty_days_after_its_last_successful_login(testapp, app, alice):
    from datetime import timedelta

    from pony.orm import db_session

    from cinema_api.core.clock import utcnow
    from cinema_api.infrastructure.db import sql_datetime

    db = app.registry["cinema.db"]
    spend_username_budget(testapp)
    with db_session:
        db.execute('UPDATE "known_login_addresses" SET "last_success_at" = $at', {"at": sql_datetime(db, utcnow() - timedelta(days=29))})
    sign_in(testapp)  # 29 days ago: spared, and the successful login starts the 30 days again
    with db_session:
        assert db.select('SELECT COUNT(*) FROM "known_login_addresses" WHERE "last_success_at" > $at', {"at": sql_datetime(db, utcnow() - timedelta(days=1))}) == [1]
        db.execute('UPDATE "known_login_addresses" SET "last_success_at" = $at', {"at": sql_datetime(db, utcnow() - timedelta(days=31))})
    spend_username_budget(testapp)
    sign_in(testapp, status=429)


def test_each_successful_login_keeps_one_row_per_user_and_address(testapp, app, alice):
    from pony.orm import db_session

    sign_in(testapp)
    sign_in(testapp, address="192.0.2.11")
    db = app.registry["cinema.db"]
    with db_session:
        rows = db.select('SELECT "address" FROM "known_login_addresses" ORDER BY "address"')
    assert rows == [HOME, "192.0.2.11"]


def test_the_known_address_is_the_one_the_throttle_sees_behind_a_trusted_proxy(test_environ):
    from pony.orm import db_session

    client = TestApp(make_app(build_settings(dict(test_environ, TRUSTED_PROXIES="127.0.0.1")), ini_settings()))
    reset_state(client.app.registry["cinema.db"], client.app.registry)
    proxied = lambda hop: {"headers": {"X-Forwarded-For": hop}, "extra_environ": {"REMOTE_ADDR": "127.0.0.1"}}  # noqa: E731
    try:
        register(client, "alice")
        client.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, **proxied("203.0.113.5"))
        with db_session:
            assert client.app.registry["cinema.db"].select('SELECT "address" FROM "known_login_addresses"') == ["203.0.113.5"]
        for index in range(10):
            client.post_json("/v1/auth/login", {"username": "alice", "password": "wrong1234"}, status=401, **proxied("10.0.0.%d" % index))
        client.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=429, **proxied("10.0.1.1"))
        client.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, **proxied("203.0.113.5"))
    finally:
        reset_state(client.app.registry["cinema.db"], client.app.registry)


def test_a_password_change_from_the_usual_address_is_spared_too(testapp, alice):
    account = sign_in(testapp).json
    spend_username_budget(testapp)
    body = {"currentPassword": PASSWORD, "newPassword": "n3w-secret"}
    headers = {"Authorization": "Bearer " + account["accessToken"]}
    testapp.post_json("/v1/auth/password", body, headers=headers, status=429, extra_environ={"REMOTE_ADDR": "198.51.100.7"})
    testapp.post_json("/v1/auth/password", body, headers=headers, status=204, extra_environ={"REMOTE_ADDR": HOME})


def test_the_usual_address_budget_is_exact_under_concurrency(app, testapp, alice, monkeypatch):
    """Spared by the username budget, thirty simultaneous wrong passwords from her usual address
    still get ten password checks: the address's budget is reserved atomically on that path too."""
    from cinema_api.infrastructure.passwords import HashingGate, PasswordHasher
    from tests.functional.test_movies import run_parallel

    spend_username_budget(testapp)
    monkeypatch.setitem(app.registry, "cinema.password_hasher", PasswordHasher(4, None, gate=HashingGate(4, max_admitted=30, share=1)))
    attempt = lambda client: client.post_json(  # noqa: E731
        "/v1/auth/login", {"username": "alice", "password": "wrong1234"}, extra_environ={"REMOTE_ADDR": HOME}, expect_errors=True
    )
    results = run_parallel(app, 30, attempt)
    assert results.count(401) == 10 and results.count(429) == 20
    sign_in(testapp, status=429)


def test_the_suites_throttle_refuses_the_eleventh_failure_on_its_backend(app, testapp):
    """On Redis whenever the suite is pointed at one (TEST_CACHE_URL): there the Lua script decides."""
    from tests.conftest import TEST_CACHE_URL

    assert app.registry["cinema.login_limiter"].is_shared == bool(TEST_CACHE_URL)
    register(testapp, "alice")
    for index in range(10):
        fail_login(testapp, "alice", "10.70.0.%d" % index)
    fail_login(testapp, "alice", "10.70.1.1", status=429)
    for _ in range(10):
        fail_login(testapp, "nobody", "10.70.2.1")
    fail_login(testapp, "nobody2", "10.70.2.1", status=429)
    sign_in(testapp, address="10.70.3.1", status=429)


def test_deleting_a_user_forgets_their_addresses(testapp, app, alice):
    from pony.orm import db_session

    from cinema_api.users.services import Users

    db = app.registry["cinema.db"]
    with db_session:
        assert Users(db, None).delete("alice")
    with db_session:
        assert db.select('SELECT COUNT(*) FROM "known_login_addresses"') == [0]
