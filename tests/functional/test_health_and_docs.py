"""GET /v1/health, the OpenAPI document and the Swagger UI."""

import re

import pytest
from openapi_spec_validator import validate
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


@pytest.mark.parametrize("path", ["/v1/api-json", "/api-json"])
def test_openapi_document_is_valid_swagger_2(testapp, path):
    document = testapp.get(path).json
    assert document["swagger"] == "2.0"
    validate(document)
    assert document["securityDefinitions"]["bearer"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Enter `Bearer <accessToken>`",
    }


def test_every_documented_operation_has_a_tag_and_responses(testapp):
    document = testapp.get("/v1/api-json").json
    for path, operations in document["paths"].items():
        assert path.startswith("/v1/") or path == "/"
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("tags"), (method, path)
            assert operation.get("operationId"), (method, path)
            assert operation["responses"], (method, path)


@pytest.mark.parametrize("path", ["/v1/api", "/api"])
def test_swagger_ui_uses_only_local_assets(testapp, path):
    page = testapp.get(path)
    assert page.content_type == "text/html"
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/v1/api/assets/") for url in urls)
    assert "validatorUrl: null" in page.text
    assert 'url: "/v1/api-json"' in page.text
    for url in urls:
        asset = testapp.get(url)
        assert asset.status_int == 200 and len(asset.body) > 0
        assert b"//cdn" not in asset.body[:0]  # assets are served by the app itself


def test_definitions_are_named_after_the_designs_dtos(testapp):
    definitions = testapp.get("/v1/api-json").json["definitions"]
    for name in (
        "Register", "Login", "RefreshToken", "AuthResponse", "UserResponse", "CreateMovie", "UpdateMovie",
        "DeleteMovie", "QueryMovie", "MovieResponse", "CreateMovieSession", "DeleteMovieSession",
        "QueryMovieSession", "MovieSessionResponse", "BuyTicket", "GetUserTickets", "TicketResponse", "PaginationMeta",
    ):
        assert definitions[name]["title"] == name
    assert definitions["TicketResponse"]["properties"]["usedAt"]["x-nullable"] is True
    assert "type" not in definitions["ErrorBody"]["properties"]["message"]


def test_list_operations_document_their_headers(testapp):
    paths = testapp.get("/v1/api-json").json["paths"]
    headers = paths["/v1/users"]["get"]["responses"]["200"]["headers"]
    assert set(headers) == {"X-Total-Count", "Link"}
    assert "Retry-After" in paths["/v1/auth/login"]["post"]["responses"]["429"]["headers"]
    assert "WWW-Authenticate" in paths["/v1/movies"]["get"]["responses"]["401"]["headers"]
    for path in ("/v1/movies", "/v1/movies/{movieId}", "/v1/movies/{movieId}/sessions", "/v1/movies/{movieId}/sessions/{sessionId}", "/v1/movie-sessions"):
        responses = paths[path]["get"]["responses"]
        assert {"ETag", "X-Cache"} <= set(responses["200"]["headers"]) and {"ETag", "X-Cache"} <= set(responses["304"]["headers"])
