"""The `code` of error bodies through HTTP: one error of each kind, and the OpenAPI document
listing each code where it can be answered (docs/API.md section 11)."""

import json
import uuid
from datetime import datetime

import pytest
from webtest import TestApp

from cinema_api.core.body import MAX_BODY_BYTES
from cinema_api.core.error_codes import ERROR_CODES
from tests.conftest import PASSWORD, bearer, register
from tests.functional.test_auth import closed_signup, occupied_hasher  # noqa: F401 (a fixture)
from tests.functional.test_core import assert_error
from tests.functional.test_seats import buy, movie, seated, session_in, set_date, unseated  # noqa: F401 (fixtures)

UNKNOWN = str(uuid.UUID(int=7, version=4))


@pytest.fixture(scope="module")
def document(app):
    return TestApp(app).get("/v1/api-json").json


def listed(document, method, template, status):
    """The codes the document lists for one response of one operation."""
    answer = document["paths"][template][method]["responses"][str(status)]
    if "$ref" in answer:
        answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer["content"]["application/json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]


def check(document, response, status, code, operation=None):
    """The response is the error body with ``code``, and the document lists ``code`` for it."""
    assert_error(response, status, code=code)
    if operation is not None:
        method, template = operation
        assert code in listed(document, method, template, status), (operation, status, code)


# ---------------------------------------------------------------- the document


def test_the_document_lists_every_code_and_only_registered_ones_with_their_status(document):
    error_body = document["components"]["schemas"]["ErrorBody"]
    assert "code" in error_body["required"]
    assert error_body["properties"]["code"]["enum"] == list(ERROR_CODES)
    seen = set()
    for template, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if "$ref" in answer:
                    answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                if status.startswith(("2", "3")) or "allOf" not in schema:
                    assert status.startswith(("2", "3")) or (template, status) == ("/v1/health", "503"), (template, method, status)
                    continue
                codes = schema["allOf"][1]["properties"]["code"]["enum"]
                assert codes and answer["description"].endswith("Codes: " + ", ".join("`%s`" % c for c in codes))
                for code in codes:
                    assert ERROR_CODES[code].status in (None, int(status)), (template, method, status, code)
                seen.update(codes)
    # every code a domain error or a derived check can answer is listed for some operation
    elsewhere = {"MALFORMED_URL", "NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL_ERROR", "HTTP_ERROR", "CONFLICT",
                 "CLIENT_GONE", "SESSION_CANCELLED", "TICKET_CANCELLED", "VALIDATION_FAILED"}
    assert set(ERROR_CODES) - elsewhere <= seen, set(ERROR_CODES) - elsewhere - seen
    info = document["info"]["description"]
    assert all("`%s`" % code in info for code in ("MALFORMED_URL", "NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL_ERROR", "CONFLICT"))


# ---------------------------------------------------------------- any request


def test_an_unknown_route_is_not_found(testapp):
    assert_error(testapp.get("/v1/nothing-here", status=404), 404, code="NOT_FOUND")


def test_a_method_the_route_does_not_take_is_method_not_allowed(testapp):
    assert_error(testapp.delete("/v1/health", status=405), 405, code="METHOD_NOT_ALLOWED")


def test_a_body_over_the_limit_is_body_too_large(testapp, document):
    body = json.dumps({"x": "a" * MAX_BODY_BYTES})
    response = testapp.post("/v1/movies", body, headers={"Content-Type": "application/json"}, status=413)
    check(document, response, 413, "BODY_TOO_LARGE", ("post", "/v1/movies"))


def test_another_media_type_is_unsupported_media_type(testapp, manager, document):
    response = testapp.post("/v1/movies", "title=x", headers=dict(manager.headers, **{"Content-Type": "text/plain"}), status=415)
    check(document, response, 415, "UNSUPPORTED_MEDIA_TYPE", ("post", "/v1/movies"))


def test_a_url_that_is_not_utf8_is_malformed_url(testapp, customer):
    assert_error(testapp.get("/v1/movies?title=%FF", headers=customer.headers, status=400), 400, code="MALFORMED_URL")


def test_an_unexpected_error_is_internal_error(testapp, customer, monkeypatch):
    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr("cinema_api.rooms.services.Rooms.all", broken)
    assert_error(testapp.get("/v1/rooms", headers=customer.headers, status=500), 500, "Internal server error", code="INTERNAL_ERROR")


# ---------------------------------------------------------------- 400


def test_a_schema_failure_is_validation_failed(testapp, manager, document):
    response = testapp.post_json("/v1/movies", {"title": 42, "ageRestriction": 99}, headers=manager.headers, status=400)
    check(document, response, 400, "VALIDATION_FAILED", ("post", "/v1/movies"))
    assert response.json["errors"] and isinstance(response.json["message"], list)
    response = testapp.get("/v1/movies?page=0", headers=manager.headers, status=400)
    check(document, response, 400, "VALIDATION_FAILED", ("get", "/v1/movies"))


@pytest.mark.parametrize("body", ["{bad", "[1, 2]", "[" * 100 + "]" * 100, json.dumps({"x": [0] * 10_001})])
def test_malformed_json_of_every_kind_is_malformed_json(testapp, manager, document, body):
    response = testapp.post("/v1/movies", body, headers=dict(manager.headers, **{"Content-Type": "application/json"}), status=400)
    check(document, response, 400, "MALFORMED_JSON", ("post", "/v1/movies"))
    assert isinstance(response.json["message"], str)


def test_a_started_session_a_seat_outside_the_plan_and_no_plan_are_their_own_400s(testapp, app, customer, seated, unseated, document):
    operation = ("post", "/v1/tickets")
    check(document, buy(testapp, customer, seated, seat="Z9", status=400), 400, "SEAT_NOT_IN_PLAN", operation)
    check(document, buy(testapp, customer, unseated, seat="A1", status=400), 400, "NO_SEAT_PLAN", operation)
    set_date(app, seated, datetime(2020, 1, 1, 20, 0))
    check(document, buy(testapp, customer, seated, status=400), 400, "SESSION_STARTED", operation)


# ---------------------------------------------------------------- 401


def test_no_token_is_authentication_required_and_a_bad_one_invalid_token(testapp, customer, document):
    operation = ("get", "/v1/tickets/me")
    check(document, testapp.get("/v1/tickets/me", status=401), 401, "AUTHENTICATION_REQUIRED", operation)
    for headers in (bearer("not-a-jwt"), {"Authorization": "Basic abc"}, bearer(customer.access_token + "x")):
        check(document, testapp.get("/v1/tickets/me", headers=headers, status=401), 401, "INVALID_TOKEN", operation)
    testapp.post_json("/v1/auth/logout", {}, headers=customer.headers, status=204)
    check(document, testapp.get("/v1/tickets/me", headers=customer.headers, status=401), 401, "INVALID_TOKEN", operation)


def test_wrong_credentials_and_a_spent_refresh_token_have_their_codes(testapp, customer, document):
    response = testapp.post_json("/v1/auth/login", {"username": customer.username, "password": "wrong1234"}, status=401)
    check(document, response, 401, "INVALID_CREDENTIALS", ("post", "/v1/auth/login"))
    testapp.post_json("/v1/auth/refresh", {"refreshToken": customer.refresh_token})
    response = testapp.post_json("/v1/auth/refresh", {"refreshToken": customer.refresh_token}, status=401)
    check(document, response, 401, "INVALID_REFRESH_TOKEN", ("post", "/v1/auth/refresh"))


# ---------------------------------------------------------------- 403


def test_the_role_is_forbidden_and_ownership_not_owner(testapp, manager, customer, seated, document):
    check(document, testapp.get("/v1/users", headers=customer.headers, status=403), 403, "FORBIDDEN", ("get", "/v1/users"))
    response = testapp.get("/v1/users/" + manager.id, headers=customer.headers, status=403)
    check(document, response, 403, "NOT_OWNER", ("get", "/v1/users/{userId}"))
    response = buy(testapp, customer, seated, userId=manager.id, status=403)
    check(document, response, 403, "NOT_OWNER", ("post", "/v1/tickets"))
    ticket = buy(testapp, manager, seated).json
    other = register(testapp, "other")
    response = testapp.delete("/v1/tickets/" + ticket["id"], headers=other.headers, status=403)
    check(document, response, 403, "NOT_OWNER", ("delete", "/v1/tickets/{ticketId}"))


def test_an_underage_buyer_is_age_restricted(testapp, seated, document):
    child = register(testapp, "child", age=10)
    check(document, buy(testapp, child, seated, status=403), 403, "AGE_RESTRICTED", ("post", "/v1/tickets"))


def test_manager_signup_when_closed_is_manager_signup_closed(closed_signup, document):
    body = {"username": "boss", "password": PASSWORD, "age": 40, "role": "manager"}
    response = closed_signup.post_json("/v1/auth/register", body, status=403)
    check(document, response, 403, "MANAGER_SIGNUP_CLOSED", ("post", "/v1/auth/register"))


# ---------------------------------------------------------------- 404


def test_each_missing_resource_has_its_own_not_found(testapp, manager, movie, document):
    cases = [
        ("get", "/v1/movies/" + UNKNOWN, "/v1/movies/{movieId}", "MOVIE_NOT_FOUND"),
        ("delete", "/v1/movie-sessions/" + UNKNOWN, "/v1/movie-sessions/{sessionId}", "SESSION_NOT_FOUND"),
        ("post", "/v1/tickets/%s/use" % UNKNOWN, "/v1/tickets/{ticketId}/use", "TICKET_NOT_FOUND"),
        ("get", "/v1/users/" + UNKNOWN, "/v1/users/{userId}", "USER_NOT_FOUND"),
        ("get", "/v1/rooms/998", "/v1/rooms/{roomNumber}", "ROOM_NOT_FOUND"),
    ]
    for method, path, template, code in cases:
        response = getattr(testapp, method)(path, headers=manager.headers, status=404)
        check(document, response, 404, code, (method, template))
    response = testapp.get("/v1/movies/%s/sessions/%s" % (movie["id"], UNKNOWN), headers=manager.headers, status=404)
    check(document, response, 404, "SESSION_NOT_FOUND", ("get", "/v1/movies/{movieId}/sessions/{sessionId}"))


# ---------------------------------------------------------------- 409


def test_a_purchase_flow_can_switch_on_code_alone(testapp, manager, movie, document):
    """Already purchased, seat taken, sold out: three 409s told apart by `code`."""
    session = session_in(testapp, manager, movie, 5, rows=1, seats_per_row=2)
    alice, bob, carol = (register(testapp, name) for name in ("alice", "bob", "carol"))
    buy(testapp, alice, session, seat="A1")
    operation = ("post", "/v1/tickets")
    check(document, buy(testapp, alice, session, status=409), 409, "ALREADY_PURCHASED", operation)
    check(document, buy(testapp, bob, session, seat="A1", status=409), 409, "SEAT_TAKEN", operation)
    buy(testapp, bob, session)
    check(document, buy(testapp, carol, session, status=409), 409, "SOLD_OUT", operation)


def test_the_other_conflicts_have_their_codes(testapp, manager, customer, movie, seated, document):
    response = testapp.post_json("/v1/auth/register", {"username": customer.username, "password": PASSWORD, "age": 20}, status=409)
    check(document, response, 409, "USERNAME_TAKEN", ("post", "/v1/auth/register"))
    response = testapp.post_json("/v1/movies", {"title": movie["title"], "ageRestriction": 0}, headers=manager.headers, status=409)
    check(document, response, 409, "MOVIE_EXISTS", ("post", "/v1/movies"))
    body = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 3}
    response = testapp.post_json("/v1/movies/%s/sessions" % movie["id"], body, headers=manager.headers, status=409)
    check(document, response, 409, "ROOM_BOOKED", ("post", "/v1/movies/{movieId}/sessions"))
    ticket = buy(testapp, customer, seated).json
    response = testapp.delete("/v1/movie-sessions/" + seated["id"], headers=manager.headers, status=409)
    check(document, response, 409, "HAS_TICKETS", ("delete", "/v1/movie-sessions/{sessionId}"))
    testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers)
    response = testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers, status=409)
    check(document, response, 409, "TICKET_USED", ("post", "/v1/tickets/{ticketId}/use"))
    other = testapp.post_json("/v1/movies", {"title": "Other", "ageRestriction": 0}, headers=manager.headers).json
    response = testapp.get("/v1/movies/%s/sessions/%s" % (other["id"], seated["id"]), headers=manager.headers, status=409)
    check(document, response, 409, "SESSION_OF_ANOTHER_MOVIE", ("get", "/v1/movies/{movieId}/sessions/{sessionId}"))


# ---------------------------------------------------------------- 429 and 503


def test_throttled_logins_are_too_many_failed_logins(testapp, document):
    register(testapp, "alice")
    for index in range(10):
        testapp.post_json("/v1/auth/login", {"username": "alice", "password": "wrong1234"}, status=401,
                          extra_environ={"REMOTE_ADDR": "10.0.0.%d" % index})
    response = testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=429)
    check(document, response, 429, "TOO_MANY_FAILED_LOGINS", ("post", "/v1/auth/login"))


def test_a_full_hashing_gate_is_busy(testapp, app, monkeypatch, document):
    register(testapp, "alice")
    hasher, release = occupied_hasher(wait=0.05)
    monkeypatch.setitem(app.registry, "cinema.password_hasher", hasher)
    try:
        response = testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=503)
    finally:
        release.set()
    check(document, response, 503, "BUSY", ("post", "/v1/auth/login"))


def test_a_database_that_does_not_answer_is_database_unavailable(testapp, monkeypatch, document):
    def failing_ping(db):
        raise OSError("down")

    monkeypatch.setattr("cinema_api.health.services.ping", failing_ping)
    response = testapp.get("/v1/health/ready", status=503)
    check(document, response, 503, "DATABASE_UNAVAILABLE", ("get", "/v1/health/ready"))
