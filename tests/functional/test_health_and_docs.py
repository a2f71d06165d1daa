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


def test_health_shows_a_cache_outage_as_200_with_cache_down(test_environ, db, tmp_path):
    # A Redis URL on a closed port: the cache is down, the service is not.
    environ = dict(test_environ, CACHE_URL="redis://127.0.0.1:9/0")
    settings = build_settings(environ)
    app = TestApp(make_app(settings, ini_settings()))
    body = app.get("/v1/health").json
    assert body["status"] == "ok"
    assert body["info"] == {"database": {"status": "up"}, "cache": {"status": "down"}}
