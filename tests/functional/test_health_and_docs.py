"""GET /v1/health (the OpenAPI document and the Swagger UI: test_openapi.py)."""

import pytest
from webtest import TestApp

from cinema_api import make_app
from tests.conftest import build_settings, ini_settings


@pytest.mark.parametrize("path", ["/v1/health", "/health"])
def test_health_is_up(testapp, path):
    body = testapp.get(path).json
    info = {"database": {"status": "up"}, "cache": {"status": "up"}}
    assert body == {"status": "ok", "info": info, "error": {}, "details": info}


def test_health_is_503_when_the_database_check_fails(testapp, monkeypatch):
    from pony.orm.dbapiprovider import OperationalError

    def failing_ping(db):
        raise OperationalError(Exception("could not connect to server"))

    monkeypatch.setattr("cinema_api.health.services.ping", failing_ping)
    body = testapp.get("/v1/health", status=503).json
    assert body["status"] == "error"
    assert body["error"]["database"]["status"] == "down"
    assert body["details"]["database"]["status"] == "down"
    assert body["details"]["cache"] == {"status": "up"}
    assert "could not connect" not in testapp.get("/v1/health", status=503).text


@pytest.fixture
def cacheless_app(test_environ, db):
    """The application with its cache on a Redis URL of a closed port: the cache is down, the
    service is not."""
    environ = dict(test_environ, CACHE_URL="redis://127.0.0.1:9/0")
    return TestApp(make_app(build_settings(environ), ini_settings()))


def test_health_names_a_cache_outage_under_error_and_stays_200(cacheless_app):
    body = cacheless_app.get("/v1/health").json
    assert body["status"] == "ok"
    assert body["info"] == {"database": {"status": "up"}}
    assert body["error"] == {"cache": {"status": "down"}}
    assert body["details"] == {"database": {"status": "up"}, "cache": {"status": "down"}}


def test_health_names_everything_that_is_down_under_error(cacheless_app, monkeypatch):
    from pony.orm.dbapiprovider import OperationalError

    def failing_ping(db):
        raise OperationalError(Exception("could not connect to server"))

    monkeypatch.setattr("cinema_api.health.services.ping", failing_ping)
    body = cacheless_app.get("/v1/health", status=503).json
    assert body["status"] == "error" and body["info"] == {}
    assert set(body["error"]) == {"database", "cache"}


def test_liveness_is_200_without_asking_the_database_or_the_cache(testapp, monkeypatch):
    def forbidden(*args):
        raise AssertionError("the liveness probe called a dependency")

    monkeypatch.setattr("cinema_api.health.services.ping", forbidden)
    monkeypatch.setattr("cinema_api.infrastructure.cache.Caches.ping", forbidden)
    monkeypatch.setattr("cinema_api.infrastructure.pony_internals.select_rows", forbidden)
    response = testapp.get("/v1/health/live")
    assert response.json == {"status": "ok"} and response.headers["X-Trace-Id"]


def test_readiness_is_200_when_the_database_answers(testapp):
    body = testapp.get("/v1/health/ready").json
    info = {"database": {"status": "up"}, "cache": {"status": "up"}}
    assert body == {"status": "ok", "info": info, "error": {}, "details": info}


def test_readiness_is_503_database_unavailable_with_retry_after_when_the_database_fails(testapp, monkeypatch):
    from pony.orm.dbapiprovider import OperationalError

    def failing_ping(db):
        raise OperationalError(Exception("could not connect to server"))

    monkeypatch.setattr("cinema_api.health.services.ping", failing_ping)
    response = testapp.get("/v1/health/ready", status=503)
    assert response.json == {"statusCode": 503, "error": "Service Unavailable", "code": "DATABASE_UNAVAILABLE", "message": "Database unavailable"}
    assert int(response.headers["Retry-After"]) > 0
    assert testapp.get("/v1/health/live").json == {"status": "ok"}  # alive all the same


def test_readiness_names_a_cache_outage_under_error_and_stays_200(cacheless_app):
    body = cacheless_app.get("/v1/health/ready").json
    assert body["status"] == "ok"
    assert body["error"] == {"cache": {"status": "down"}} and body["info"] == {"database": {"status": "up"}}
