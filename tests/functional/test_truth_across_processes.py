"""The database is the only truth, across real processes (docs/API.md sections 5 and 6).

A committed change to the catalogue, a logout and a deleted user hold from the next request in
every server process, whichever process or console script made the change, whatever the Redis
between the processes does: paused, frozen or slow. Each test warms the cache and the token
check of the process it reads through first, so a design that trusted a copy (invalidation
messages through Redis, a login session mirrored in a cache) would serve the old answer there.

The servers are real ``pserve`` processes; Redis is a private server of each test, never the
shared one.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import redis

from cinema_api.scripts.seed import DAYS, MOVIES, ROOMS
from cinema_api.testing import RedisServer, ServerProcess, TcpProxy, child_environ, copy_ini
from tests.conftest import PASSWORD, bearer

#: Longer than any scenario run under it: every step must happen while Redis is paused.
PAUSE_MS = 5000
#: A request that takes longer than this while Redis is frozen is counted as a hang.
BOUNDED_SEC = 2.0
#: Added by the proxy in each direction on the reading process's link to Redis.
LINK_DELAY_SEC = 0.12


def require_program(name):
    """Skip when ``name`` is not installed; in CI a missing program is a failure."""
    if shutil.which(name):
        return
    message = "%s is not on PATH" % name
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must not skip this test)")
    pytest.skip(message)


@pytest.fixture
def private_redis():
    """A redis-server of this test's own on a free loopback port, stopped afterwards."""
    require_program("redis-server")
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_database_url(request):
    """A fresh database that two server processes share: PostgreSQL, or one SQLite file."""
    return request.getfixturevalue("fresh_postgres_url" if request.param == "postgresql" else "fresh_sqlite_url")


@pytest.fixture(params=["sqlite-memory", "postgresql-redis"])
def stores(request):
    """``(database_url, cache_url)``: the default setup, or PostgreSQL with a private Redis."""
    if request.param == "sqlite-memory":
        return request.getfixturevalue("fresh_sqlite_url"), "memory://"
    return request.getfixturevalue("fresh_postgres_url"), request.getfixturevalue("private_redis").url


def server_environ(database_url, cache_url):
    """What a server and a console script of one deployment share (on development.ini, which applies the migrations)."""
    return {"DATABASE_URL": database_url, "CACHE_URL": cache_url}


def register_manager(server, username="boss"):
    """Register a manager through ``server``; its bearer header."""
    body = {"username": username, "password": PASSWORD, "age": 40, "role": "manager"}
    status, _, answer = server.request("POST", "/v1/auth/register", body)
    assert status == 201, answer
    return bearer(answer["accessToken"])


def create_movie(server, auth, title):
    status, _, body = server.request("POST", "/v1/movies", {"title": title, "ageRestriction": 1}, auth)
    assert status == 201, body
    return body


def titles(body):
    return [movie["title"] for movie in body["movies"]]


def listed_titles(answer):
    """The titles of a movie list answer ``(status, headers, body)``, or its status when not 200."""
    status, _, body = answer
    return titles(body) if status == 200 else status


def warm_movie_list(server, auth):
    """Read the movie list through ``server`` until it is served from its cache; its titles."""
    server.request("GET", "/v1/movies", headers=auth)
    status, headers, body = server.request("GET", "/v1/movies", headers=auth)
    assert status == 200 and headers["X-Cache"] == "HIT", (status, headers)
    return titles(body)


def run_script(name, *args, environ):
    """A console script of the venv, on development.ini, with the servers' environment."""
    script = os.path.join(os.path.dirname(sys.executable), name)
    with tempfile.TemporaryDirectory() as directory:
        result = subprocess.run(
            [script, copy_ini("development.ini", directory), *args], cwd=directory, env=child_environ(**environ),
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 0, result.stderr
    return result


class TimedClient:
    """Requests to several servers, each answer kept with its duration."""

    def __init__(self):
        self.answers = []

    def request(self, server, method, path, body=None, headers=None):
        started = time.monotonic()
        status, answer_headers, answer = server.request(method, path, body, headers)
        self.answers.append((method, server.port, path, status, time.monotonic() - started))
        return status, answer_headers, answer


# ----------------------------------------------------------------------------- Redis paused


@pytest.mark.slow
def test_while_redis_is_paused_the_other_process_serves_the_new_list_and_refuses_the_logged_out_token(
    shared_database_url, private_redis
):
    environ = server_environ(shared_database_url, private_redis.url)
    with ServerProcess(**environ) as first, ServerProcess(**environ) as second:
        auth = register_manager(first)
        create_movie(first, auth, "Alien")
        assert warm_movie_list(second, auth) == ["Alien"]
        # CLIENT PAUSE ALL holds every command of every client: what the processes would tell
        # each other through Redis from now on arrives late, if ever.
        with redis.Redis(host="127.0.0.1", port=private_redis.port, socket_timeout=5) as client:
            client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
        paused_at = time.monotonic()
        observed = {"write through first": first.request("POST", "/v1/movies", {"title": "Heat", "ageRestriction": 1}, auth)[0]}
        status, headers, body = second.request("GET", "/v1/movies", headers=auth)
        observed["list through second"] = (listed_titles((status, headers, body)), headers.get("X-Cache"))
        observed["logout through first"] = first.request("POST", "/v1/auth/logout", headers=auth)[0]
        observed["token through second"] = second.request("GET", "/v1/movies", headers=auth)[0]
        # the steps above prove something only if Redis was paused during all of them
        assert time.monotonic() - paused_at < PAUSE_MS / 1000
    assert observed == {
        "write through first": 201,
        "list through second": (["Alien", "Heat"], "MISS"),
        "logout through first": 204,
        "token through second": 401,
    }


# ----------------------------------------------------------------------------- Redis frozen


@pytest.mark.slow
def test_while_redis_is_frozen_both_processes_answer_at_once_with_the_current_truth(shared_database_url, private_redis):
    environ = server_environ(shared_database_url, private_redis.url)
    client = TimedClient()
    with ServerProcess(**environ) as first, ServerProcess(**environ) as second:
        auth = register_manager(first)
        alien = create_movie(first, auth, "Alien")
        detail = "/v1/movies/" + alien["id"]
        for server in (first, second):
            assert warm_movie_list(server, auth) == ["Alien"]
            server.request("GET", detail, headers=auth)
        # a stopped process: connections are accepted by the kernel and never answered
        private_redis.freeze()
        try:
            observed = {}
            observed["write through first"] = client.request(first, "POST", "/v1/movies", {"title": "Heat", "ageRestriction": 1}, auth)[0]
            observed["list through second"] = listed_titles(client.request(second, "GET", "/v1/movies", headers=auth))
            session = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}
            observed["session added through second"] = client.request(second, "POST", detail + "/sessions", session, auth)[0]
            status, _, body = client.request(first, "GET", detail, headers=auth)
            observed["sessions of the movie through first"] = len(body["sessions"]) if status == 200 else status
            observed["rename through second"] = client.request(second, "PATCH", detail, {"title": "Aliens"}, auth)[0]
            observed["list through first"] = listed_titles(client.request(first, "GET", "/v1/movies", headers=auth))
            observed["logout through first"] = client.request(first, "POST", "/v1/auth/logout", headers=auth)[0]
            observed["token through second"] = client.request(second, "GET", "/v1/movies", headers=auth)[0]
            observed["token through first"] = client.request(first, "GET", "/v1/movies", headers=auth)[0]
        finally:
            private_redis.thaw()
    assert observed == {
        "write through first": 201,
        "list through second": ["Alien", "Heat"],
        "session added through second": 201,
        "sessions of the movie through first": 1,
        "rename through second": 200,
        "list through first": ["Aliens", "Heat"],
        "logout through first": 204,
        "token through second": 401,
        "token through first": 401,
    }
    assert [answer for answer in client.answers if answer[3] >= 500] == []
    assert [answer for answer in client.answers if answer[4] >= BOUNDED_SEC] == []


# ----------------------------------------------------------------------------- Redis slow


@pytest.mark.slow
def test_over_a_slow_redis_link_every_read_after_a_write_or_a_logout_sees_it(shared_database_url, private_redis):
    # The reading process is the one far from Redis: anything it learnt through Redis would
    # reach it after the writer had answered (over equally slow links the two arrive together).
    with TcpProxy(private_redis.port, delay=0) as slow_link:
        writer = server_environ(shared_database_url, private_redis.url)
        reader = server_environ(shared_database_url, "redis://127.0.0.1:%d/0" % slow_link.port)
        with ServerProcess(**writer) as first, ServerProcess(**reader) as second:
            # slow from here on: the start-up health check need not wait for it
            slow_link.delay = LINK_DELAY_SEC
            auth = register_manager(first)
            create_movie(first, auth, "Movie 0")
            assert warm_movie_list(second, auth) == ["Movie 0"]
            seen = []
            # five writes, each followed at once by four reads through the other process: the
            # first read of each round is the one a late message would leave stale
            for round_ in range(1, 6):
                create_movie(first, auth, "Movie %d" % round_)
                for _ in range(4):
                    status, _, body = second.request("GET", "/v1/movies", headers=auth)
                    seen.append(status == 200 and "Movie %d" % round_ in titles(body))
            assert first.request("POST", "/v1/auth/logout", headers=auth)[0] == 204
            statuses = [second.request("GET", "/v1/movies", headers=auth)[0] for _ in range(10)]
    assert {"reads showing the latest write": seen.count(True), "refused after the logout": statuses.count(401)} == {
        "reads showing the latest write": 20,
        "refused after the logout": 10,
    }


# ----------------------------------------------------------------------------- console scripts


@pytest.mark.slow
def test_a_manager_deleted_by_cinema_admin_is_refused_on_the_next_request(stores):
    environ = server_environ(*stores)
    with ServerProcess(**environ) as server:
        witness = register_manager(server, "witness")
        auth = register_manager(server, "boss")
        create_movie(server, auth, "Alien")  # the token has been checked: any copy of that check is warm
        run_script("cinema-admin", "delete-user", "boss", environ=environ)
        status, _, _ = server.request("POST", "/v1/movies", {"title": "Heat", "ageRestriction": 1}, auth)
        assert status == 401
        assert server.request("GET", "/v1/movies", headers=auth)[0] == 401
        _, _, body = server.request("GET", "/v1/movies", headers=witness)
        assert titles(body) == ["Alien"]  # the refused write left nothing


@pytest.mark.slow
def test_movies_and_sessions_seeded_by_cinema_seed_are_listed_on_the_next_request(stores):
    environ = server_environ(*stores)
    with ServerProcess(**environ) as server:
        auth = register_manager(server)
        create_movie(server, auth, "Solaris")  # not one of the demo movies
        assert warm_movie_list(server, auth) == ["Solaris"]
        for _ in range(2):
            _, headers, body = server.request("GET", "/v1/movie-sessions", headers=auth)
        assert headers["X-Cache"] == "HIT" and body["meta"]["totalItems"] == 0
        run_script("cinema-seed", environ=environ)
        _, headers, body = server.request("GET", "/v1/movies", headers=auth)
        assert body["meta"]["totalItems"] == 1 + len(MOVIES) and headers["X-Cache"] == "MISS"
        _, headers, body = server.request("GET", "/v1/movie-sessions", headers=auth)
        assert body["meta"]["totalItems"] == DAYS * len(ROOMS) * 3 and headers["X-Cache"] == "MISS"
