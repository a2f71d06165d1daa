"""Odd strings and costly bodies (docs/API.md section 1): a clear 4xx, the same on both databases."""

import gc
import json

import pytest

from cinema_api.core.request import CinemaRequest
from tests.conftest import PASSWORD

LONE_SURROGATE = "\ud800"
NUL = "\u0000"
UNSTORABLE = "must not contain NUL or unpaired surrogate characters"


def post_raw(testapp, path, body, **kwargs):
    """POST a JSON text as it is (json.dumps escapes a lone surrogate as \\ud800)."""
    return testapp.post(path, json.dumps(body), content_type="application/json", **kwargs)


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL, "ab" + NUL + "cd"])
def test_register_refuses_unstorable_strings_and_writes_nothing(testapp, manager, bad):
    for field in ("username", "password"):
        body = {"username": "alice", "password": "secret123", "age": 30, field: "x1" + bad + "yyyyyy"}
        response = post_raw(testapp, "/v1/auth/register", body, status=400)
        assert response.json["message"] == ["%s %s" % (field, UNSTORABLE)]
    assert [u["username"] for u in testapp.get("/v1/users", headers=manager.headers).json] == ["manager1"]


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL])
def test_movie_titles_and_title_searches_refuse_unstorable_strings(testapp, manager, bad):
    response = post_raw(testapp, "/v1/movies", {"title": "Alien" + bad, "ageRestriction": 1}, headers=manager.headers, status=400)
    assert response.json["message"] == ["title " + UNSTORABLE]
    bulk = {"movies": [{"title": "Heat", "ageRestriction": 1}, {"title": bad, "ageRestriction": 1}]}
    assert post_raw(testapp, "/v1/movies/bulk", bulk, headers=manager.headers, status=400).json["message"] == ["movies.1.title " + UNSTORABLE]
    assert testapp.get("/v1/movies", headers=manager.headers).json["movies"] == []
    if bad == NUL:  # a query string cannot carry a lone surrogate: it is UTF-8 or a 400
        search = testapp.get("/v1/movies?title=Al%00", headers=manager.headers, status=400)
        assert search.json["message"] == ["title " + UNSTORABLE]


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL])
def test_credentials_that_cannot_be_valid_are_invalid_credentials(testapp, customer, bad):
    for body in ({"username": "customer1" + bad, "password": PASSWORD}, {"username": "customer1", "password": PASSWORD + bad}):
        response = post_raw(testapp, "/v1/auth/login", body, status=401)
        assert response.json["message"] == "Invalid credentials"
    refreshed = post_raw(testapp, "/v1/auth/refresh", {"refreshToken": customer.refresh_token + bad}, status=401)
    assert refreshed.json["statusCode"] == 401
    testapp.post_json("/v1/auth/refresh", {"refreshToken": customer.refresh_token}, status=200)


def test_a_body_of_too_many_values_is_refused_before_any_work(testapp, customer):
    body = '{"refreshToken": "x", "pad": [%s]}' % ",".join(["[]"] * 330_000)
    response = testapp.post("/v1/auth/refresh", body, content_type="application/json", status=400)
    assert response.json["message"] == "Request body holds more than 10000 JSON values"


def live_requests():
    return sum(1 for thing in gc.get_objects() if isinstance(thing, CinemaRequest))


FLOOD = '{"refreshToken": "x", "pad": [%s]}' % ",".join(["[]"] * 330_000)


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", "/v1/auth/refresh", FLOOD, 400),  # too many values
        ("POST", "/v1/auth/refresh", FLOOD[:-2], 400),  # malformed
        ("POST", "/v1/auth/refresh", '{"refreshToken": "%s"}' % ("x" * 200_000), 401),
        ("POST", "/v1/movies/bulk", None, 201),
        ("GET", "/v1/movies", None, 200),
        ("GET", "/v1/nothing", None, 404),
    ],
    ids=["too many values", "malformed", "refused token", "bulk create", "list", "no route"],
)
def test_a_request_is_freed_once_answered(testapp, manager, method, path, body, status):
    """Nothing keeps a request in a reference cycle once it is answered: its body (WebOb's
    copy of it included) and whatever its frames read go at once, not at the garbage
    collector's next pass over old objects. A server refusing ten bodies of 1 MiB in a row
    kept them all, several MiB, when its exception (``request.exc_info``, whose frames hold
    the request) or its context (which held the request) made a cycle."""
    if body is None and method == "POST":
        body = json.dumps({"movies": [{"title": "Freed %d" % i, "ageRestriction": 1} for i in range(300)]})
    headers = {"Content-Type": "application/json", **manager.headers}
    gc.collect()
    gc.disable()
    try:
        before = live_requests()
        testapp.request(path, method=method, body=body.encode() if body else b"", headers=headers, status=status)
        assert live_requests() == before
    finally:
        gc.enable()


def test_a_bulk_of_a_thousand_movies_is_within_the_value_cap(testapp, manager):
    body = {"movies": [{"title": "Movie %d" % i, "ageRestriction": 1} for i in range(1000)]}
    assert len(testapp.post_json("/v1/movies/bulk", body, headers=manager.headers, status=201).json) == 1000
