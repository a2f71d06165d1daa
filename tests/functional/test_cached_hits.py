"""The fast path of cached hits (cinema_api.runtime.cached_hits.CachedHits): a hit is answered
before Pyramid builds a request, exactly as the whole way would answer it; whatever the fast
path is not sure of goes the whole way, and the login-session check it made is not made twice."""

import sqlite3

import pytest
from pony.orm.dbapiprovider import OperationalError

from cinema_api.auth import identity
from cinema_api.core.request import CinemaRequest
from cinema_api.infrastructure import cache
from cinema_api.infrastructure.pony_internals import select_without_session


@pytest.fixture
def requests_built(monkeypatch):
    """Every request Pyramid builds, by path."""
    built = []
    init = CinemaRequest.__init__

    def counting(request, environ, *args, **kwargs):
        built.append(environ.get("PATH_INFO"))
        init(request, environ, *args, **kwargs)

    monkeypatch.setattr(CinemaRequest, "__init__", counting)
    return built


@pytest.fixture
def movie(testapp, manager):
    return testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json


def without_trace_id(response):
    """The headers in order, the trace's (new for every request) masked."""
    return [(name, "-" if name in ("X-Trace-Id", "traceparent") else value) for name, value in response.headerlist]


def test_a_hit_is_answered_before_a_request_is_built_with_the_whole_ways_headers(testapp, customer, movie, requests_built):
    path = "/v1/movies/%s" % movie["id"]
    miss = testapp.get(path, headers=customer.headers)
    requests_built.clear()
    hit = testapp.get(path, headers=dict(customer.headers, **{"X-Trace-Id": "fast-path-0001"}))
    assert requests_built == [] and hit.headers["X-Cache"] == "HIT" and hit.body == miss.body
    assert hit.headers["X-Trace-Id"] == "fast-path-0001"
    # a Content-Type (no body) sends the same GET the whole way, where the cache tween answers it
    whole_way = testapp.get(path, headers=dict(customer.headers, **{"Content-Type": "application/json"}))
    assert requests_built == [path] and whole_way.headers["X-Cache"] == "HIT"
    assert without_trace_id(hit) == without_trace_id(whole_way)


def test_a_client_holding_the_etag_gets_304_from_the_fast_path(testapp, customer, movie, requests_built):
    etag = testapp.get("/v1/movies", headers=customer.headers).headers["ETag"]
    requests_built.clear()
    again = testapp.get("/v1/movies", headers=dict(customer.headers, **{"If-None-Match": etag}), status=304)
    assert requests_built == [] and again.body == b"" and again.headers["X-Cache"] == "HIT"
    assert "Content-Type" not in again.headers and again.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/v1/movies?title=%41lien", {}),  # escaped: WebOb decodes it
        ("/v1/movies?title=Ali+en", {}),
        ("/v1/movies", {"Authorization": "Token abc"}),
        ("/v1/movies", {"Authorization": "Bearer not-a-token"}),
        ("/v1/health", {}),  # not a cached read
        ("/v1/movies", {"Content-Length": "0", "Content-Type": "application/json"}),
    ],
)
def test_what_the_fast_path_is_not_sure_of_goes_the_whole_way(testapp, customer, movie, requests_built, path, headers):
    headers = dict(customer.headers, **headers)
    first = testapp.get(path, headers=headers, status="*")
    second = testapp.get(path, headers=headers, status="*")
    assert requests_built == [path.split("?")[0]] * 2
    assert second.status_int == first.status_int and second.body == first.body


def test_a_revoked_token_is_refused_the_whole_way_with_one_check(testapp, customer, movie, requests_built, monkeypatch):
    testapp.get("/v1/movies", headers=customer.headers)  # cached
    testapp.post_json("/v1/auth/logout", {}, headers=customer.headers, status="*")
    checks = []
    check = identity.live_login_session_of

    def counted(db, claims, select):
        checks.append("fast" if select is select_without_session else "whole")
        return check(db, claims, select)

    monkeypatch.setattr(identity, "live_login_session_of", counted)
    refused = testapp.get("/v1/movies", headers=customer.headers, status=401)
    assert refused.json["message"] == "Token has been revoked" and checks == ["fast"]


def test_a_database_error_in_the_fast_path_is_answered_whole_without_asking_again(testapp, customer, movie, monkeypatch):
    testapp.get("/v1/movies", headers=customer.headers)  # cached
    checks = []

    def failing(*args):
        checks.append(args)
        raise OperationalError(sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(identity, "live_login_session_of", failing)
    answer = testapp.get("/v1/movies", headers=customer.headers, status=503)
    assert answer.json["message"] == "Database unavailable" and len(checks) == 1


def test_where_cors_is_configured_a_hit_varies_on_origin_as_the_whole_way(testapp, test_environ, requests_built):
    from webtest import TestApp

    from cinema_api import make_app
    from tests.conftest import build_settings, ini_settings, register

    allowed = "https://admin.example.com"
    cors = TestApp(make_app(build_settings(dict(test_environ, CORS_ORIGINS=allowed)), ini_settings()))
    customer = register(cors, "corsfan")
    cors.get("/v1/movies", headers=customer.headers)
    requests_built.clear()
    hit = cors.get("/v1/movies", headers=customer.headers)
    whole_way = cors.get("/v1/movies", headers=dict(customer.headers, **{"Content-Type": "application/json"}))
    assert requests_built == ["/v1/movies"] and hit.headers["Vary"] == "Origin"
    assert without_trace_id(hit) == without_trace_id(whole_way)
    granted = cors.get("/v1/movies", headers=dict(customer.headers, Origin=allowed))  # the CORS tween answers it
    assert requests_built == ["/v1/movies"] * 2 and granted.headers["Access-Control-Allow-Origin"] == allowed
    assert granted.headers["X-Cache"] == "HIT"


def test_a_miss_is_looked_up_once(testapp, customer, movie, monkeypatch):
    lookups = []
    get = cache.Region.get
    monkeypatch.setattr(cache.Region, "get", lambda region, key: lookups.append(key) or get(region, key))
    assert testapp.get("/v1/movies?title=ali", headers=customer.headers).headers["X-Cache"] == "MISS"
    assert testapp.get("/v1/movies?title=ali", headers=customer.headers).headers["X-Cache"] == "HIT"
    assert len(lookups) == 2 and lookups[0] == lookups[1]
