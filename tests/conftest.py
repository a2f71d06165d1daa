"""Test fixtures: one application per test session on a schema built by the migrations.

``DATABASE_URL`` and ``CACHE_URL`` select PostgreSQL and Redis (as ``.ci/run`` does);
by default the suite runs on a temporary SQLite file with the memory cache. The settings are
built explicitly, from testing.ini and those two variables: a ``.env`` in the checkout or a
setting exported by the shell changes nothing the tests check.
"""

import os
import secrets
import socket
import threading
import uuid
from contextlib import contextmanager

import pytest
from pony.orm import db_session
from pyramid.paster import get_appsettings
from webtest import TestApp

from cinema_api import make_app
from cinema_api.settings import load_settings
from cinema_api.testing import SELECTORS

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTING_INI = os.path.join(HERE, "testing.ini")

# Children first, so deleting never trips a foreign key.
TABLES = ["tickets", "movie_sessions", "movies", "rooms", "refresh_tokens", "user_sessions", "users"]


def service_available(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name, host, port):
    """Skip when the server is truly absent; in CI a missing server is a failure."""
    if service_available(host, port):
        return
    message = "%s is not reachable on %s:%s" % (name, host, port)
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must not skip this test)")
    pytest.skip(message)


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
def test_environ(tmp_path_factory):
    """The environment the application reads: the selectors of the real one (DATABASE_URL,
    CACHE_URL), and a temporary SQLite file when no database is selected."""
    environ = {key: os.environ[key] for key in SELECTORS if os.environ.get(key)}
    if not environ.get("DATABASE_URL"):
        path = tmp_path_factory.mktemp("db") / "cinema.sqlite"
        environ["DATABASE_URL"] = "sqlite:///" + str(path)
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


PG_HOST, PG_PORT = "127.0.0.1", 5432


@pytest.fixture
def fresh_postgres_url():
    """A new, empty PostgreSQL database, dropped afterwards."""
    import psycopg2

    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = "cinema_test_" + os.urandom(6).hex()
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute('CREATE DATABASE "%s"' % name)
    try:
        yield "postgresql://postgres@%s:%d/%s" % (PG_HOST, PG_PORT, name)
    finally:
        with admin.cursor() as cursor:
            cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        admin.close()


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




def commit_elsewhere(settings, sql, *params):
    """Run ``sql`` (driver placeholders: ``?`` on SQLite, ``%s`` on PostgreSQL; write them as
    ``%s``) on a connection of its own and commit: another process's write, landing between two
    steps of a request."""
    url = settings.database_url
    if url.is_sqlite:
        import sqlite3

        connection = sqlite3.connect(url.bind_kwargs["filename"])
        connection.execute("PRAGMA foreign_keys = ON")
        sql = sql.replace("%s", "?")
        params = tuple(uuid.UUID(p).bytes if isinstance(p, str) and len(p) == 36 else p for p in params)
    else:
        import psycopg2

        given = url.bind_kwargs
        connection = psycopg2.connect(
            dbname=given["database"], **{key: given[key] for key in ("host", "port", "user", "password") if key in given}
        )
    try:
        connection.cursor().execute(sql, params)
        connection.commit()
    finally:
        connection.close()
