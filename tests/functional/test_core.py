"""The shared behaviour of every response: error bodies, limits, trace ids, root."""

import json
import logging
import uuid

import pytest

from cinema_api.core.body import MAX_BODY_BYTES
from cinema_api.core.error_codes import ERROR_CODES


def assert_error(response, status, message=None, code=None):
    assert response.status_int == status
    assert response.content_type == "application/json"
    body = response.json
    assert body["statusCode"] == status
    assert body["error"] == response.status.split(" ", 1)[1]
    assert body["code"] in ERROR_CODES and ERROR_CODES[body["code"]].status in (None, status)
    if code is not None:
        assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    return body


def test_root_describes_the_service(testapp):
    body = testapp.get("/").json
    assert body == {
        "name": "cinema_api",
        "description": body["description"],
        "version": body["version"],
        "availableVersions": ["v1"],
        "docsUrl": "/v1/api",
        "openapiUrl": "/v1/api-json",
    }
    from importlib.metadata import version

    assert body["version"] == version("cinema_api")


def test_unknown_route_is_a_json_404(testapp):
    response = testapp.get("/v1/nothing-here", status=404)
    assert_error(response, 404, "Cannot GET /v1/nothing-here")


def test_wrong_method_is_a_json_405_with_allow(testapp):
    response = testapp.delete("/v1/health", status=405)
    assert_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_body_over_one_mebibyte_is_413_from_content_length(testapp):
    body = json.dumps({"x": "a" * MAX_BODY_BYTES})
    response = testapp.post("/v1/health", body, headers={"Content-Type": "application/json"}, status=413)
    assert_error(response, 413)


def test_chunked_body_over_one_mebibyte_is_413(app):
    chunks = [b"a" * 65536] * 20

    class Chunked:
        def __init__(self):
            self.data = b"".join(chunks)

        def read(self, size=-1):
            if size < 0:
                size = len(self.data)
            part, self.data = self.data[:size], self.data[size:]
            return part

    # WebTest always sets Content-Length; drive the WSGI app directly for a chunked body.
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/health",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        "wsgi.input": Chunked(),
        "wsgi.errors": None,
    }
    status_holder = {}

    def start_response(status, headers, exc_info=None):
        status_holder["status"], status_holder["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    assert status_holder["status"].startswith("413")
    assert json.loads(body)["statusCode"] == 413
    assert "X-Trace-Id" in status_holder["headers"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_body_that_is_not_json_is_415(testapp, content_type):
    response = testapp.post("/v1/health", "a=1", headers={"Content-Type": content_type}, status=415)
    assert_error(response, 415, "Content-Type must be application/json")


def test_415_comes_before_405(testapp):
    # The media type is checked before routing decides anything.
    testapp.post("/v1/health", "x", headers={"Content-Type": "text/plain"}, status=415)


@pytest.mark.parametrize("incoming", ["abcdefgh", "gateway-1234-5678", "A" * 64])
def test_a_valid_incoming_trace_id_is_reused(testapp, incoming):
    assert testapp.get("/", headers={"X-Trace-Id": incoming}).headers["X-Trace-Id"] == incoming


@pytest.mark.parametrize("incoming", ["short", "A" * 65, "has space in it", "semi;colon-1234", ""])
def test_an_invalid_incoming_trace_id_is_replaced(testapp, incoming):
    trace_id = testapp.get("/", headers={"X-Trace-Id": incoming}).headers["X-Trace-Id"]
    assert trace_id != incoming
    assert uuid.UUID(trace_id).version == 4


def test_every_response_carries_a_trace_id(testapp):
    for response in (
        testapp.get("/"),
        testapp.get("/nope", status=404),
        testapp.put("/v1/health", status=405),
        testapp.post("/v1/health", "x", headers={"Content-Type": "text/xml"}, status=415),
        testapp.get("/v1/api"),
    ):
        assert response.headers["X-Trace-Id"]


def test_an_unexpected_exception_is_a_generic_500_logged_with_the_trace_id(testapp, monkeypatch, caplog):
    def explode(db, caches):
        raise RuntimeError("secret internals: SELECT * FROM users")

    monkeypatch.setattr("cinema_api.health.views.check_health", explode)
    with caplog.at_level(logging.ERROR, logger="cinema_api"):
        response = testapp.get("/v1/health", headers={"X-Trace-Id": "trace-for-500-test"}, status=500)
    assert_error(response, 500, "Internal server error")
    assert b"SELECT" not in response.body and b"Traceback" not in response.body
    record = next(r for r in caplog.records if "trace-for-500-test" in r.getMessage())
    assert record.exc_info and "secret internals" in str(record.exc_info[1])


def test_error_responses_are_trace_logged(testapp, caplog):
    with caplog.at_level(logging.INFO, logger="cinema_api.trace"):
        testapp.get("/missing", headers={"X-Trace-Id": "trace-log-1234"}, status=404)
    lines = [r.getMessage() for r in caplog.records if r.name == "cinema_api.trace"]
    assert any("error GET /missing [trace trace-log-1234] status=404" in line for line in lines)


def test_no_cors_headers_without_cors_origins(testapp):
    response = testapp.get("/", headers={"Origin": "https://evil.example"})
    assert not any(h.lower().startswith("access-control-") for h in response.headers)


@pytest.fixture
def cors_app(test_environ):
    from webtest import TestApp

    from cinema_api import make_app
    from tests.conftest import build_settings, ini_settings

    settings = build_settings(dict(test_environ, CORS_ORIGINS="https://admin.example.com"))
    return TestApp(make_app(settings, ini_settings()))


def test_cors_headers_for_an_allowed_origin(cors_app):
    response = cors_app.get("/v1/movies", headers={"Origin": "https://admin.example.com"}, status=401)
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "X-Trace-Id" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]
    other = cors_app.get("/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_preflight_is_answered_before_authentication(cors_app):
    response = cors_app.options(
        "/v1/movies",
        headers={"Origin": "https://admin.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
        status=204,
    )
    assert response.headers["Access-Control-Allow-Origin"] == "https://admin.example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["X-Trace-Id"]


def test_no_request_property_makes_pyramid_derive_a_class_per_request(app):
    """Request properties registered with ``add_request_method(property=True or reify=True)``
    make Pyramid build a new request class for every request; the domains' services and
    Cornice's ``current_service`` are built on first use by the request class instead."""
    from pyramid.interfaces import IRequestExtensions
    from pyramid.scripting import prepare

    extensions = app.registry.queryUtility(IRequestExtensions)
    assert extensions is None or not extensions.descriptors
    env = prepare(registry=app.registry)
    try:
        request = env["request"]
        assert request.current_service is None  # no route matched
        assert request.movies is request.movies  # built once per request
    finally:
        env["closer"]()


def test_a_request_is_routed_once(testapp, manager, monkeypatch):
    """The fast path of cached hits and the cache tween route every GET to know whether it is a
    cached read; Pyramid's router uses that answer instead of routing again."""
    from pyramid.urldispatch import RoutesMapper

    routed = []
    route = RoutesMapper.__call__
    monkeypatch.setattr(RoutesMapper, "__call__", lambda mapper, request: routed.append(request.path_info) or route(mapper, request))
    movie = testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json
    paths = ["/", "/v1/movies/%s" % movie["id"], "/v1/movies/%s" % movie["id"], "/v1/nothing-here/%s" % movie["id"]]
    for path in paths:
        testapp.get(path, headers=manager.headers, status="*")
    # at most once per request; and a path routed before is answered from what the mapper keeps
    assert len(routed) <= 5 and len(set(routed)) == len(routed), routed
    assert routed.count(paths[1]) == 1 and paths[3] in routed


def test_the_routes_mapper_hands_out_a_copy_of_the_match_it_keeps(testapp, manager):
    from pyramid.interfaces import IRoutesMapper

    mapper = testapp.app.registry.getUtility(IRoutesMapper)

    class Request:
        def __init__(self, path):
            self.environ = {"PATH_INFO": path}
            self.path_info = path

    first = mapper(Request("/v1/movies/abc"))
    first["match"]["movieId"] = "changed by a request"
    second = mapper(Request("/v1/movies/abc"))
    assert second["route"] is first["route"] and second["match"] == {"movieId": "abc"}
