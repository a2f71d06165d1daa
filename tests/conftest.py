"""Test fixtures: one application per test session on a schema built by the migrations.

By default the suite runs on a temporary SQLite file with the memory cache, and touches no
PostgreSQL or Redis server: the tests that need one skip. Variables of the suite's own point it
at servers it may use (as ``.ci/run`` does):

- ``TEST_DATABASE_URL``: a PostgreSQL server on which the run may create databases (the URL of
  a database to connect to for that, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``).
  The session's application then runs on a database of its own there, and so do the tests
  that need a fresh one. Each is named ``cinema_test_<pid>_<random>_...`` and dropped at the end.
- ``TEST_CACHE_URL``: a Redis database (``redis://127.0.0.1:6379/15``). The session's
  application then caches there, every key under the run's own ``CACHE_KEY_PREFIX``
  (``cinema-test-<pid>-<random>``); the keys of that prefix are deleted at the end (SCAN and
  UNLINK, never a FLUSHDB).

A variable that is set names a server that must answer: the run stops at once otherwise (that is
how ``.ci/run`` makes a missing server a failure, not a skip). The application's own
``DATABASE_URL``, ``CACHE_URL`` and ``CACHE_KEY_PREFIX`` are never read: they are removed from
this process's environment before any test runs, so a developer's exported settings can be
neither read nor written. The settings are built explicitly, from testing.ini and the variables
above: a ``.env`` in the checkout or a setting exported by the shell changes nothing the tests
check.
"""

import os
import secrets
import threading
import uuid
from contextlib import contextmanager

import pytest
from pony.orm import db_session
from pyramid.paster import get_appsettings
from webtest import TestApp

from cinema_api import make_app
from cinema_api.settings import load_settings
from cinema_api.testing import TEST_CACHE_VARIABLE, TEST_DATABASE_VARIABLE, PostgresServer, RedisPrefix, run_tag

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTING_INI = os.path.join(HERE, "testing.ini")

# Children first, so deleting never trips a foreign key.
TABLES = ["tickets", "movie_sessions", "movies", "rooms", "refresh_tokens", "user_sessions", "known_login_addresses", "users"]


#: The application's variables that choose where it writes: a developer's, never the suite's.
for _name in ("DATABASE_URL", "CACHE_URL", "CACHE_KEY_PREFIX"):
    os.environ.pop(_name, None)

TEST_DATABASE_URL = os.environ.get(TEST_DATABASE_VARIABLE, "").strip()
TEST_CACHE_URL = os.environ.get(TEST_CACHE_VARIABLE, "").strip()
#: This run's names on the servers it was pointed at.
RUN_TAG = run_tag()
DATABASE_PREFIX = "cinema_test_%s_" % RUN_TAG
KEY_PREFIX = "cinema-test-%s" % RUN_TAG.replace("_", "-")

NOT_POINTED = (
    "%s is not set: the tests touch no %s server they were not pointed at (e.g. %s=%s; "
    "README, Tests)"
)


def pytest_report_header(config):
    return "servers: PostgreSQL %s, Redis %s (databases %s*, keys %s:*)" % (
        TEST_DATABASE_URL or "none (TEST_DATABASE_URL unset)", TEST_CACHE_URL or "none (TEST_CACHE_URL unset)",
        DATABASE_PREFIX, KEY_PREFIX,
    )


def pytest_sessionstart(session):
    """A server the run was pointed at must answer: a missing one fails the run, never skips it."""
    problems = []
    if TEST_DATABASE_URL:
        try:
            PostgresServer(TEST_DATABASE_URL, DATABASE_PREFIX).check()
        except Exception as exc:
            problems.append("%s=%s: %s" % (TEST_DATABASE_VARIABLE, TEST_DATABASE_URL, " ".join(str(exc).split())))
    if TEST_CACHE_URL:
        import redis

        try:
            client = redis.Redis.from_url(TEST_CACHE_URL, socket_timeout=5, socket_connect_timeout=5)
            client.ping()
            client.close()
        except Exception as exc:
            problems.append("%s=%s: %s" % (TEST_CACHE_VARIABLE, TEST_CACHE_URL, exc))
    if problems:
        pytest.exit("the suite was pointed at a server that does not answer: " + "; ".join(problems), returncode=3)


@pytest.fixture(scope="session", autouse=True)
def redis_pools_closed():
    """Every Redis connection pool the applications of the tests open is disconnected after
    each test (a later use connects again), and kept until the end: an application dropped by
    a test cannot leave a socket for the garbage collector to find open (a ResourceWarning,
    an error here), whenever the collector runs."""
    from cinema_api.infrastructure import cache, ratelimit

    pools, make_pool = [], cache.redis_pool

    def redis_pool(url):
        pools.append(make_pool(url))
        return pools[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "redis_pool", redis_pool)
        patch.setattr(ratelimit, "redis_pool", redis_pool)
        yield pools
    for pool in pools:
        pool.disconnect()


@pytest.fixture(autouse=True)
def redis_connections_closed(redis_pools_closed):
    yield
    for pool in redis_pools_closed:
        pool.disconnect(inuse_connections=False)  # a cache writer's thread may be using one


@pytest.fixture(scope="session")
def test_postgres():
    """The PostgreSQL server of ``TEST_DATABASE_URL`` (a skip without it); the databases this
    run created there are dropped at the end, whatever happened."""
    if not TEST_DATABASE_URL:
        pytest.skip(NOT_POINTED % (TEST_DATABASE_VARIABLE, "PostgreSQL", TEST_DATABASE_VARIABLE, "postgresql://postgres@127.0.0.1:5432/postgres"))
    server = PostgresServer(TEST_DATABASE_URL, DATABASE_PREFIX)
    try:
        yield server
    finally:
        server.drop_all()


@pytest.fixture(scope="session")
def test_redis():
    """This run's keys in the Redis database of ``TEST_CACHE_URL`` (a skip without it); they
    are deleted at the end, and nothing else is."""
    if not TEST_CACHE_URL:
        pytest.skip(NOT_POINTED % (TEST_CACHE_VARIABLE, "Redis", TEST_CACHE_VARIABLE, "redis://127.0.0.1:6379/15"))
    keys = RedisPrefix(TEST_CACHE_URL, KEY_PREFIX)
    try:
        yield keys
    finally:
        keys.clean()


@pytest.fixture
def fresh_redis(test_redis, request):
    """Keys of this test's own in the Redis of ``TEST_CACHE_URL`` (where a previous test
    cannot have left a count or a body), deleted afterwards."""
    keys = test_redis.child("t%s" % secrets.token_hex(4))
    try:
        yield keys
    finally:
        keys.clean()


def production_secret():
    """A random JWT secret, as production requires (a literal one would be published here)."""
    return secrets.token_urlsafe(48)


def ini_settings(**overrides):
    settings = dict(get_appsettings(TESTING_INI))
    settings.update(overrides)
    return settings


def build_settings(environ, **overrides):
    """Settings from testing.ini and ``environ`` only (never the checkout's ``.env``)."""
    return load_settings(ini_settings(**overrides), HERE, environ=environ, dotenv={})


@pytest.fixture(scope="session")
def test_environ(request, tmp_path_factory):
    """The environment the session's application reads: a database of the run's own on the
    server of TEST_DATABASE_URL, else a temporary SQLite file; the Redis of TEST_CACHE_URL
    under the run's key prefix, else testing.ini's memory cache."""
    if TEST_DATABASE_URL:
        environ = {"DATABASE_URL": request.getfixturevalue("test_postgres").create("session")}
    else:
        environ = {"DATABASE_URL": "sqlite:///" + str(tmp_path_factory.mktemp("db") / "cinema.sqlite")}
    if TEST_CACHE_URL:
        environ.update(request.getfixturevalue("test_redis").environ)
    return environ


@pytest.fixture(scope="session")
def settings(test_environ):
    return build_settings(test_environ)


@pytest.fixture(scope="session")
def app(settings):
    return make_app(settings, ini_settings())


@pytest.fixture(scope="session")
def registry(app):
    return app.registry


@pytest.fixture(scope="session")
def db(registry):
    return registry["cinema.db"]


def reset_state(db, registry):
    with db_session:
        for table in TABLES:
            db.execute('DELETE FROM "%s"' % table)
    registry["cinema.login_limiter"].reset()


@pytest.fixture
def testapp(app, db, registry):
    reset_state(db, registry)
    return TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})


@pytest.fixture
def fresh_postgres_url(test_postgres):
    """A new, empty database of the run's own on the server of TEST_DATABASE_URL, dropped afterwards."""
    url = test_postgres.create()
    try:
        yield url
    finally:
        test_postgres.drop(url)


@pytest.fixture
def fresh_sqlite_url(tmp_path):
    return "sqlite:///" + str(tmp_path / "fresh.sqlite")


PASSWORD = "secret123"


def bearer(token):
    return {"Authorization": "Bearer " + token}


class Account:
    """A registered user as the tests see it: its auth response and a bearer header."""

    def __init__(self, body):
        self.body = body
        self.id = body["user"]["id"]
        self.username = body["user"]["username"]
        self.access_token = body["accessToken"]
        self.refresh_token = body["refreshToken"]
        self.headers = bearer(self.access_token)


@contextmanager
def reading_in_background(app, path, headers, threads=3):
    """Threads that GET ``path`` from ``app`` until the block ends; yields the list of the
    statuses other than 200 they were answered."""
    stop = threading.Event()
    failures = []

    def read():
        client = TestApp(app)
        while not stop.is_set():
            response = client.get(path, headers=headers, expect_errors=True)
            if response.status_code != 200:
                failures.append(response.status)

    readers = [threading.Thread(target=read) for _ in range(threads)]
    for thread in readers:
        thread.start()
    try:
        yield failures
    finally:
        stop.set()
        for thread in readers:
            thread.join(30)


def register(testapp, username, role="customer", age=30, password=PASSWORD, **kwargs):
    body = {"username": username, "password": password, "age": age, "role": role}
    return Account(testapp.post_json("/v1/auth/register", body, status=201, **kwargs).json)


@pytest.fixture
def manager(testapp):
    return register(testapp, "manager1", role="manager", age=40)


@pytest.fixture
def customer(testapp):
    return register(testapp, "customer1", age=30)




def connect_elsewhere(settings):
    """A driver connection of its own to the test database (not the application's pool):
    another process's, as far as the application can tell."""
    url = settings.database_url
    if url.is_sqlite:
        import sqlite3

        connection = sqlite3.connect(url.bind_kwargs["filename"])
        connection.execute("PRAGMA foreign_keys = ON")
        return connection
    import psycopg2

    given = url.bind_kwargs
    return psycopg2.connect(
        dbname=given["database"], **{key: given[key] for key in ("host", "port", "user", "password") if key in given}
    )


def commit_elsewhere(settings, sql, *params):
    """Run ``sql`` (driver placeholders: ``?`` on SQLite, ``%s`` on PostgreSQL; write them as
    ``%s``) on a connection of its own and commit: another process's write, landing between two
    steps of a request."""
    connection = connect_elsewhere(settings)
    if settings.database_url.is_sqlite:
        sql = sql.replace("%s", "?")
        params = tuple(uuid.UUID(p).bytes if isinstance(p, str) and len(p) == 36 else p for p in params)
    try:
        connection.cursor().execute(sql, params)
        connection.commit()
    finally:
        connection.close()
