"""A deadlock or serialization failure runs the whole request again, on a new request object
(docs/API.md section 7; pyramid_retry), at most three times; then 409. Reads run once."""

import psycopg2.errors
import pytest
from pony.orm.dbapiprovider import OperationalError as PonyOperationalError

from cinema_api.core.request import CinemaRequest
from cinema_api.infrastructure.db import ATTEMPTS
from cinema_api.movies.services import Movies


@pytest.fixture
def requests_built(monkeypatch):
    """The request objects Pyramid builds."""
    built = []
    init = CinemaRequest.__init__

    def counting(request, environ, *args, **kwargs):
        built.append(request)
        init(request, environ, *args, **kwargs)

    monkeypatch.setattr(CinemaRequest, "__init__", counting)
    return built


def deadlocking(monkeypatch, failures, error=psycopg2.errors.DeadlockDetected):
    """Movie creation fails ``failures`` times with ``error`` (as Pony wraps the driver's), then works."""
    calls = []
    create = Movies.create

    def create_or_deadlock(self, title, age_restriction):
        calls.append(title)
        if len(calls) <= failures:
            raise PonyOperationalError(error("deadlock detected"))
        return create(self, title, age_restriction)

    monkeypatch.setattr(Movies, "create", create_or_deadlock)
    return calls


@pytest.mark.parametrize("error", [psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure])
def test_a_deadlock_runs_the_whole_request_again_on_a_new_request_object(testapp, manager, monkeypatch, requests_built, error):
    calls = deadlocking(monkeypatch, ATTEMPTS - 1, error)
    requests_built.clear()
    created = testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers, status=201)
    assert created.json["title"] == "Alien" and calls == ["Alien"] * ATTEMPTS
    assert len(requests_built) == ATTEMPTS and len({id(request) for request in requests_built}) == ATTEMPTS
    assert [m["title"] for m in testapp.get("/v1/movies", headers=manager.headers).json["movies"]] == ["Alien"]


def test_after_three_attempts_a_deadlock_is_409_and_nothing_is_written(testapp, manager, monkeypatch):
    calls = deadlocking(monkeypatch, ATTEMPTS)
    refused = testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers, status=409)
    assert refused.json["message"] == "The request conflicted with a concurrent one; retry" and refused.headers["Retry-After"]
    assert len(calls) == ATTEMPTS
    assert testapp.get("/v1/movies", headers=manager.headers).json["movies"] == []


def test_other_errors_are_not_retried(testapp, manager, monkeypatch):
    calls = deadlocking(monkeypatch, 1, psycopg2.errors.UndefinedTable)
    testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers, status=500)
    assert len(calls) == 1


def test_reads_and_refused_bodies_run_once(testapp, manager, requests_built):
    requests_built.clear()
    testapp.get("/v1/users", headers=manager.headers)
    assert len(requests_built) == 1
    requests_built.clear()
    testapp.post("/v1/movies", b"x" * (1024 * 1024 + 1), headers=dict(manager.headers, **{"Content-Type": "application/json"}), status=413)
    assert len(requests_built) == 1


def test_a_large_body_is_read_again_from_memory_on_a_retry(testapp, manager, monkeypatch):
    """A bulk create of a thousand movies (about 60 kB), deadlocked once: its body was copied for
    the retry in memory (a temporary file would be left unclosed) and read again whole."""
    calls = []
    create_many = Movies.create_many

    def deadlock_once(self, items, bulk=True):
        calls.append(len(items))
        if len(calls) == 1:
            raise PonyOperationalError(psycopg2.errors.DeadlockDetected("deadlock detected"))
        return create_many(self, items, bulk)

    monkeypatch.setattr(Movies, "create_many", deadlock_once)
    movies = [{"title": "Title %04d" % index, "ageRestriction": index % 22} for index in range(1000)]
    created = testapp.post_json("/v1/movies/bulk", {"movies": movies}, headers=manager.headers, status=201)
    assert len(created.json) == 1000 and calls == [1000, 1000]
