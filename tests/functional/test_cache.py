"""Caching of movie and session reads (docs/API.md section 6), on memory, Redis and null backends."""

import logging
import socket
import time

import pytest
import redis
from webtest import TestApp

from cinema_api import make_app
from cinema_api.testing import ServerProcess
from tests.conftest import (
    PASSWORD,
    bearer,
    build_settings,
    ini_settings,
    reading_in_background,
    register,
    reset_state,
)


@pytest.fixture(params=["memory", "redis", "null"])
def cache_app(request, test_environ):
    """The application on each backend; Redis: the one of TEST_CACHE_URL, under the run's prefix."""
    if request.param == "redis":
        cache = request.getfixturevalue("test_redis").environ
    else:
        cache = {"CACHE_URL": request.param + "://"}
    app = make_app(build_settings(dict(test_environ, **cache)), ini_settings())
    reset_state(app.registry["cinema.db"], app.registry)
    client = TestApp(app)
    client.backend = request.param
    return client


@pytest.fixture
def staff(cache_app):
    return register(cache_app, "boss", role="manager", age=40)


def movie_titles(response):
    return [m["title"] for m in response.json["movies"]]


def expected(cache_app, status):
    return "MISS" if cache_app.backend == "null" else status


def test_a_second_read_is_a_hit_with_the_same_body(cache_app, staff):
    cache_app.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=staff.headers)
    first = cache_app.get("/v1/movies", headers=staff.headers)
    second = cache_app.get("/v1/movies", headers=staff.headers)
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == expected(cache_app, "HIT")
    assert second.body == first.body and movie_titles(second) == ["Alien"]
    for response in (first, second):
        assert response.headers["Cache-Control"] == "private, no-cache"
        assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
        assert response.content_type == "application/json"
    assert first.headers["ETag"] == second.headers["ETag"]


def test_parameter_order_and_unknown_parameters_share_a_key(cache_app, staff):
    cache_app.get("/v1/movies?perPage=5&sort=title", headers=staff.headers)
    again = cache_app.get("/v1/movies?foo=1&sort=title&perPage=5&page=", headers=staff.headers)
    assert again.headers["X-Cache"] == expected(cache_app, "HIT")
    other = cache_app.get("/v1/movies?perPage=6&sort=title", headers=staff.headers)
    assert other.headers["X-Cache"] == "MISS"


def test_if_none_match_answers_304(cache_app, staff):
    first = cache_app.get("/v1/movies", headers=staff.headers)
    etag = first.headers["ETag"]
    for header in (etag, "W/" + etag, '"other", ' + etag, "*"):
        response = cache_app.get("/v1/movies", headers=dict(staff.headers, **{"If-None-Match": header}), status=304)
        assert response.body == b""
        assert response.headers["ETag"] == etag
        assert response.headers["X-Cache"] in ("HIT", "MISS") and response.headers["X-Trace-Id"]
    cache_app.get("/v1/movies", headers=dict(staff.headers, **{"If-None-Match": '"stale"'}), status=200)


def test_every_mutation_is_seen_by_the_next_list_and_detail(cache_app, staff):
    movie = cache_app.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=staff.headers).json
    detail = "/v1/movies/" + movie["id"]
    reads = ["/v1/movies", detail, detail + "/sessions", "/v1/movie-sessions"]

    def warm():
        for url in reads:
            cache_app.get(url, headers=staff.headers)

    warm()
    session = cache_app.post_json(
        detail + "/sessions", {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}, headers=staff.headers
    ).json
    assert len(cache_app.get(detail, headers=staff.headers).json["sessions"]) == 1
    assert cache_app.get("/v1/movie-sessions", headers=staff.headers).json["meta"]["totalItems"] == 1
    assert cache_app.get(detail + "/sessions", headers=staff.headers).json["meta"]["totalItems"] == 1
    warm()
    cache_app.patch_json(detail, {"title": "Aliens"}, headers=staff.headers)
    assert cache_app.get(detail, headers=staff.headers).json["title"] == "Aliens"
    assert movie_titles(cache_app.get("/v1/movies", headers=staff.headers)) == ["Aliens"]
    warm()
    cache_app.get("%s/sessions/%s" % (detail, session["id"]), headers=staff.headers)
    cache_app.delete("/v1/movie-sessions/" + session["id"], headers=staff.headers, status=204)
    cache_app.get("%s/sessions/%s" % (detail, session["id"]), headers=staff.headers, status=404)
    assert cache_app.get(detail, headers=staff.headers).json["sessions"] == []
    warm()
    cache_app.post_json("/v1/movies/bulk", {"movies": [{"title": "Heat", "ageRestriction": 1}]}, headers=staff.headers)
    assert movie_titles(cache_app.get("/v1/movies", headers=staff.headers)) == ["Aliens", "Heat"]
    warm()
    cache_app.delete_json("/v1/movies/bulk", {"movieIds": [movie["id"]]}, headers=staff.headers, status=204)
    assert movie_titles(cache_app.get("/v1/movies", headers=staff.headers)) == ["Heat"]
    cache_app.get(detail, headers=staff.headers, status=404)


def test_a_failed_mutation_leaves_the_cached_copies_in_use(cache_app, staff):
    cache_app.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=staff.headers)
    cache_app.get("/v1/movies", headers=staff.headers)
    cache_app.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=staff.headers, status=409)
    assert cache_app.get("/v1/movies", headers=staff.headers).headers["X-Cache"] == expected(cache_app, "HIT")


def test_errors_are_not_cached_and_authentication_runs_first(cache_app, staff):
    cache_app.get("/v1/movies", headers=staff.headers)
    cache_app.get("/v1/movies", status=401)
    cache_app.get("/v1/movies", headers=bearer("nope"), status=401)
    unknown = "/v1/movies/0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    for _ in range(2):
        response = cache_app.get(unknown, headers=staff.headers, status=404)
        assert "X-Cache" not in response.headers


def test_cache_hits_are_trace_logged_with_key_and_trace_id(cache_app, staff, caplog):
    cache_app.get("/v1/movies?perPage=3", headers=staff.headers)
    with caplog.at_level(logging.INFO, logger="cinema_api.cache"):
        cache_app.get("/v1/movies?perPage=3", headers=dict(staff.headers, **{"X-Trace-Id": "hit-trace-123"}))
    lines = [r.getMessage() for r in caplog.records if r.name == "cinema_api.cache"]
    if cache_app.backend == "null":
        assert lines == []
    else:
        assert len(lines) == 1 and "hit-trace-123" in lines[0] and "movies:?perPage=3" in lines[0]


def test_the_memory_backend_is_bounded():
    from cinema_api.infrastructure.cache import LRUDict

    cache = LRUDict(max_entries=3)
    for key in "abcd":
        cache[key] = key
    assert cache.get("a") is None and len(cache) == 3
    cache.get("b")
    cache["e"] = "e"
    assert cache.get("b") == "b" and cache.get("c") is None


# ---------------------------------------------------------------- outages


class BlackHole:
    """A TCP port that accepts connections and never answers."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.sock.close()


@pytest.mark.parametrize("kind", ["closed", "silent"])
def test_a_redis_outage_degrades_to_uncached_answers(test_environ, kind, caplog):
    with BlackHole() as hole:
        port = hole.port if kind == "silent" else 9
        app = make_app(build_settings(dict(test_environ, CACHE_URL="redis://127.0.0.1:%d/0" % port)), ini_settings())
        reset_state(app.registry["cinema.db"], app.registry)
        client = TestApp(app)
        staff = register(client, "boss", role="manager", age=40)
        client.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=staff.headers)
        timings = []
        for _ in range(5):
            started = time.monotonic()
            response = client.get("/v1/movies", headers=staff.headers)
            timings.append(time.monotonic() - started)
            # process-local copies may still serve hits: they are exact under their version
            assert movie_titles(response) == ["Alien"]
        # the first try pays the 0.25 s timeout at most once per call; then Redis is bypassed
        assert max(timings) < 2.0 and sum(timings[1:]) < 1.0
        client.post_json("/v1/movies", {"title": "Heat", "ageRestriction": 1}, headers=staff.headers)
        assert movie_titles(client.get("/v1/movies", headers=staff.headers)) == ["Alien", "Heat"]
        health = client.get("/v1/health").json
        assert health["status"] == "ok" and health["error"]["cache"] == {"status": "down"}
    assert any("cache region movies is unavailable" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- two processes


@pytest.mark.slow
def test_two_processes_share_postgresql_and_redis(fresh_postgres_url, fresh_redis):
    # keys of this test's own (fresh_redis): no counts left by another test or a previous run
    environ = {"DATABASE_URL": fresh_postgres_url, **fresh_redis.environ,
               "LOGIN_LIMIT_PER_ADDRESS": "10", "LOGIN_LIMIT_PER_USERNAME": "10"}  # production's budget
    with ServerProcess(**environ) as first, ServerProcess(**environ) as second:
        status, _, body = first.request("POST", "/v1/auth/register", {"username": "boss", "password": PASSWORD, "age": 40, "role": "manager"})
        assert status == 201
        auth = bearer(body["accessToken"])
        first.request("POST", "/v1/movies", {"title": "Alien", "ageRestriction": 16}, auth)
        # warm the second process's view of the list and the detail
        _, _, listed = second.request("GET", "/v1/movies", headers=auth)
        movie_id = listed["movies"][0]["id"]
        second.request("GET", "/v1/movies/" + movie_id, headers=auth)
        _, headers, _ = second.request("GET", "/v1/movies", headers=auth)
        assert headers["X-Cache"] == "HIT"
        # a write through the first is seen at once through the second
        first.request("POST", "/v1/movies", {"title": "Heat", "ageRestriction": 1}, auth)
        first.request("POST", "/v1/movies/%s/sessions" % movie_id, {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}, auth)
        _, headers, listed = second.request("GET", "/v1/movies", headers=auth)
        assert [m["title"] for m in listed["movies"]] == ["Alien", "Heat"] and headers["X-Cache"] == "MISS"
        _, _, detail = second.request("GET", "/v1/movies/" + movie_id, headers=auth)
        assert len(detail["sessions"]) == 1
        # a search that finds nothing through the first answers another such needle through the
        # second from Redis: the shared answer's key is the same in both processes
        assert first.request("GET", "/v1/movies?title=qqq", headers=auth)[1]["X-Cache"] == "MISS"
        client = redis.Redis.from_url(fresh_redis.url)
        try:
            deadline = time.monotonic() + 5
            while not list(client.scan_iter(match=fresh_redis.prefix + ":movies:*!no-title-match*")):
                assert time.monotonic() < deadline, "the shared answer never reached Redis"
                time.sleep(0.05)
        finally:
            client.close()
        _, headers, body = second.request("GET", "/v1/movies?title=zzz", headers=auth)
        assert (headers["X-Cache"], body["meta"]["totalItems"]) == ("HIT", 0)
        first.request("POST", "/v1/movies", {"title": "ZZZ Top", "ageRestriction": 0}, auth)
        _, headers, body = second.request("GET", "/v1/movies?title=zzz", headers=auth)
        assert (headers["X-Cache"], [m["title"] for m in body["movies"]]) == ("MISS", ["ZZZ Top"])
        # a logout through one is honoured by the other
        assert first.request("POST", "/v1/auth/logout", headers=auth)[0] == 204
        assert second.request("GET", "/v1/movies", headers=auth)[0] == 401
        # the login limiter is shared too
        for _ in range(10):
            assert first.request("POST", "/v1/auth/login", {"username": "boss", "password": "wrong1234"})[0] == 401
        assert second.request("POST", "/v1/auth/login", {"username": "boss", "password": PASSWORD})[0] == 429


def test_concurrent_readers_and_writers_never_serve_stale_data_after_a_write(cache_app, staff):
    """A reader that started before a commit cannot store its old page under the new version."""
    with reading_in_background(cache_app.app, "/v1/movies?perPage=100", staff.headers) as failures:
        for index in range(10):
            cache_app.post_json("/v1/movies", {"title": "Movie %d" % index, "ageRestriction": 1}, headers=staff.headers)
            # right after each write's response, a read shows it
            assert "Movie %d" % index in movie_titles(cache_app.get("/v1/movies?perPage=100", headers=staff.headers))
    assert failures == []
