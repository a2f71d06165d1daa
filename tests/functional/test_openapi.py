"""The OpenAPI 3.1 document (/v1/api-json, /v1/api-yaml), its committed copy and the Swagger UI."""

import base64
import hashlib
import json
import os
import re
from urllib.parse import quote

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cinema_api.scripts.openapi import difference
from tests.conftest import HERE, register

COMMITTED_COPY = os.path.join(HERE, "docs", "openapi.yaml")
METHODS = ("get", "put", "post", "patch", "delete")

#: The design's DTOs (docs/API.md section 8) that exist so far.
DTOS = (
    "Register", "Login", "RefreshToken", "AuthResponse", "UserResponse", "CreateMovie", "UpdateMovie", "DeleteMovie",
    "MovieResponse", "CreateMovieSession", "DeleteMovieSession", "MovieSessionResponse", "BuyTicket", "TicketResponse",
    "PaginationMeta", "Room", "PutRoom", "SeatMap",
)


@pytest.fixture(scope="module")
def document(app):
    from webtest import TestApp

    return TestApp(app).get("/v1/api-json").json


def operations(document):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document, node):
    """Follow a local ``$ref`` (responses, headers) to what it names."""
    while "$ref" in node:
        target = document
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


# ---------------------------------------------------------------- served and valid


@pytest.mark.parametrize("path", ["/v1/api-json", "/api-json"])
def test_the_document_is_valid_openapi_3_1(testapp, path):
    response = testapp.get(path)
    assert response.content_type == "application/json"
    document = response.json
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    validate(document, cls=OpenAPIV31SpecValidator)
    assert "swagger" not in document and "definitions" not in document


@pytest.mark.parametrize("path", ["/v1/api-yaml", "/api-yaml"])
def test_the_yaml_document_is_the_same_document(testapp, path):
    response = testapp.get(path)
    assert response.content_type == "application/yaml"  # RFC 9512: YAML is UTF-8, no charset parameter
    assert yaml.safe_load(response.text) == testapp.get("/v1/api-json").json


def test_the_documentation_routes_and_aliases_are_not_operations(document):
    for path in ("/api-json", "/v1/api-json", "/v1/api-yaml", "/api-yaml", "/v1/api", "/api", "/health"):
        assert path not in document["paths"]
    assert {"/", "/v1/health", "/v1/movies", "/v1/tickets/me"} <= set(document["paths"])


def test_the_committed_copy_is_the_generated_document(testapp):
    """docs/openapi.yaml shows every contract change in review: regenerate it with
    `cinema-openapi --output docs/openapi.yaml`."""
    generated = testapp.get("/v1/api-yaml").text
    with open(COMMITTED_COPY, encoding="utf-8") as committed:
        diff = difference(committed.read(), generated, "docs/openapi.yaml")
    if diff:
        pytest.fail(
            "docs/openapi.yaml differs from the generated document; run `cinema-openapi --output docs/openapi.yaml` "
            "and review the diff:\n" + diff,
            pytrace=False,
        )


# ---------------------------------------------------------------- every operation explained


def test_every_operation_has_a_tag_a_summary_a_description_and_a_unique_id(document):
    tags = {tag["name"] for tag in document["tags"]}
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids)) >= 28
    for path, method, operation in operations(document):
        where = "%s %s" % (method, path)
        assert operation["tags"] and set(operation["tags"]) <= tags, where
        assert operation["summary"] and len(operation["summary"]) <= 80, where
        assert operation["description"].startswith("**Who may call:** "), where
        assert operation["responses"], where


@pytest.mark.parametrize(
    "method, path, who, security",
    [
        ("get", "/", "Anyone", []),
        ("post", "/v1/auth/login", "Anyone", []),
        ("post", "/v1/auth/register", "Anyone", [{}, {"bearer": []}]),
        ("get", "/v1/movies", "Any authenticated user", [{"bearer": []}]),
        ("post", "/v1/tickets", "Any authenticated user", [{"bearer": []}]),
        ("get", "/v1/users", "Managers only", [{"bearer": []}]),
        ("delete", "/v1/movies/{movieId}", "Managers only", [{"bearer": []}]),
        ("get", "/v1/users/{userId}", "the user themself", [{"bearer": []}]),
    ],
)
def test_the_description_says_who_may_call_as_the_acl_does(document, method, path, who, security):
    operation = document["paths"][path][method]
    assert who in operation["description"].split("\n\n")[0]
    assert operation["security"] == security


def test_the_rules_a_client_must_know_are_explained(document):
    paths = document["paths"]
    buy = paths["/v1/tickets"]["post"]
    assert "ageRestriction" in buy["description"] and "one ticket per user and session" in buy["description"]
    assert "years old" in buy["responses"]["403"]["description"]
    assert "already purchased" in buy["responses"]["409"]["description"]
    assert "Room <n> is already booked" in paths["/v1/movies/{movieId}/sessions"]["post"]["responses"]["409"]["description"]
    assert "All or nothing" in paths["/v1/movies/bulk"]["post"]["description"]
    assert "**Caching.**" in paths["/v1/movies"]["get"]["description"]
    assert "**Caching.**" not in paths["/v1/tickets"]["get"]["description"]


def test_every_request_body_has_an_example_valid_against_its_schema(document):
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(document, DRAFT202012))
    bodies = 0
    for path, method, operation in operations(document):
        if "requestBody" in operation:
            media = operation["requestBody"]["content"]["application/json"]
            pointer = "/paths/%s/%s/requestBody/content/application~1json/schema" % (path.replace("/", "~1"), method)
            validator = Draft202012Validator(
                {"$ref": "urn:openapi#" + quote(pointer)}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            assert list(validator.iter_errors(media["example"])) == [], (method, path)
            bodies += 1
    assert bodies >= 10


# ---------------------------------------------------------------- types and components


def test_the_security_scheme_is_http_bearer(document):
    assert document["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": document["components"]["securitySchemes"]["bearer"]["description"],
        }
    }


def test_schemas_are_named_after_the_designs_dtos_with_unique_titles(document):
    schemas = document["components"]["schemas"]
    for name in DTOS:
        assert schemas[name]["title"] == name
    titles = [schema["title"] for schema in schemas.values()]
    assert len(titles) == len(set(titles)) and set(titles) == set(schemas)


def referenced(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from referenced(value)
    elif isinstance(node, list):
        for value in node:
            yield from referenced(value)


def test_no_component_is_unused(document):
    reached, todo = set(), list(referenced(document["paths"]))
    while todo:
        ref = todo.pop()
        if ref not in reached:
            reached.add(ref)
            todo.extend(referenced(resolve(document, {"$ref": ref})))
    for kind in ("schemas", "responses", "headers"):
        for name in document["components"][kind]:
            assert "#/components/%s/%s" % (kind, name) in reached, (kind, name)
    for name in document["components"]["securitySchemes"]:
        assert any({name: []} in operation["security"] for _, _, operation in operations(document))


def test_types_are_json_schema_2020_12_with_formats_bounds_and_patterns(document):
    schemas = document["components"]["schemas"]
    text = json.dumps(document)
    assert '"nullable"' not in text and '"x-nullable"' not in text and '"example": {"$ref"' not in text
    assert schemas["TicketResponse"]["properties"]["usedAt"]["type"] == ["string", "null"]
    assert schemas["TicketResponse"]["properties"]["usedAt"]["format"] == "date-time"
    assert schemas["TicketResponse"]["properties"]["id"] == {"type": "string", "format": "uuid"}
    assert schemas["ErrorBody"]["properties"]["message"]["type"] == ["string", "array"]
    title = schemas["CreateMovie"]["properties"]["title"]
    assert (title["minLength"], title["maxLength"], title["examples"]) == (1, 200, ["Alien"])
    age = schemas["CreateMovie"]["properties"]["ageRestriction"]
    assert (age["type"], age["minimum"], age["maximum"]) == ("integer", 0, 21)
    assert schemas["Register"]["properties"]["username"]["pattern"] == "^(?:[A-Za-z0-9._-]+)$"
    assert schemas["Register"]["properties"]["role"]["default"] == "customer"
    assert schemas["Register"]["required"] == ["username", "password", "age"]
    movies = schemas["CreateMovies"]["properties"]["movies"]
    assert (movies["minItems"], movies["maxItems"], movies["items"]) == (1, 1000, {"$ref": "#/components/schemas/CreateMovie"})
    assert schemas["UpdateMovie"].get("required") is None
    per_page = next(p for p in document["paths"]["/v1/movies"]["get"]["parameters"] if p["name"] == "perPage")
    assert per_page["schema"] == {"type": "integer", "minimum": 1, "maximum": 100} and per_page["required"] is False
    movie_id = document["paths"]["/v1/movies/{movieId}"]["get"]["parameters"][0]
    assert movie_id == {"name": "movieId", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


# ---------------------------------------------------------------- statuses and headers


def response_of(document, path, method, status):
    return resolve(document, document["paths"][path][method]["responses"][status])


def header_names(document, path, method, status):
    return set(response_of(document, path, method, status)["headers"])


def test_every_response_carries_the_trace_id(document):
    for path, method, operation in operations(document):
        for status in operation["responses"]:
            assert "X-Trace-Id" in header_names(document, path, method, status), (method, path, status)


def test_statuses_follow_the_permission_the_request_and_the_rules(document):
    def statuses(path, method):
        return set(document["paths"][path][method]["responses"])

    assert statuses("/", "get") == {"200", "413", "415"}  # a body is checked on every request
    assert statuses("/v1/health", "get") == {"200", "413", "415", "503"}
    assert statuses("/v1/movies", "post") == {"201", "400", "401", "403", "409", "413", "415", "503"}
    assert statuses("/v1/movies", "get") == {"200", "304", "400", "401", "413", "415", "503"}
    assert statuses("/v1/auth/login", "post") == {"200", "400", "401", "413", "415", "429", "503"}
    assert statuses("/v1/tickets", "post") == {"201", "400", "401", "403", "404", "409", "413", "415", "503"}
    assert statuses("/v1/movies/{movieId}", "delete") == {"204", "400", "401", "403", "404", "409", "413", "415", "503"}


def test_lists_caches_creations_and_errors_document_their_headers(document):
    paths = document["paths"]
    for path in ("/v1/users", "/v1/tickets", "/v1/tickets/me", "/v1/users/{userId}/tickets"):
        assert {"X-Total-Count", "Link"} <= header_names(document, path, "get", "200")
    for path in ("/v1/movies", "/v1/movies/{movieId}", "/v1/movies/{movieId}/sessions", "/v1/movies/{movieId}/sessions/{sessionId}", "/v1/movie-sessions"):
        for status in ("200", "304"):
            assert {"ETag", "X-Cache"} <= header_names(document, path, "get", status)
        assert "content" not in response_of(document, path, "get", "304")
    for path in ("/v1/movies", "/v1/movies/{movieId}/sessions", "/v1/tickets", "/v1/auth/register"):
        assert response_of(document, path, "post", "201")["headers"]["Location"]["required"] is True
    assert "Location" not in header_names(document, "/v1/movies/bulk", "post", "201")
    assert "WWW-Authenticate" in header_names(document, "/v1/movies", "get", "401")
    assert "Retry-After" in header_names(document, "/v1/auth/login", "post", "429")
    assert "Retry-After" in header_names(document, "/v1/movies", "get", "503")
    assert "Cache-Control" in header_names(document, "/v1/auth/refresh", "post", "200")
    assert "content" not in response_of(document, "/v1/movies/{movieId}", "delete", "204")
    assert paths["/v1/movies/{movieId}"]["delete"]["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}


# ---------------------------------------------------------------- the document tells the truth


class Conformance:
    """Checks real responses against the documented status, headers and body schema."""

    def __init__(self, document):
        self.document = document
        self.registry = Registry().with_resource("urn:openapi", Resource.from_contents(document, DRAFT202012))
        self.checked = set()

    def validator(self, pointer):
        return Draft202012Validator(
            {"$ref": "urn:openapi#" + quote(pointer)}, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )

    def check(self, method, path, response):
        status = str(response.status_int)
        responses = self.document["paths"][path][method]["responses"]
        assert status in responses, "%s %s answered an undocumented %s: %s" % (method, path, status, response.text)
        pointer = "/paths/%s/%s/responses/%s" % (path.replace("/", "~1"), method, status)
        if "$ref" in responses[status]:
            pointer = responses[status]["$ref"][1:]
        documented = resolve(self.document, responses[status])
        for name, header in documented["headers"].items():
            header = resolve(self.document, header)
            if header.get("required"):
                assert name in response.headers, (method, path, status, name)
        if "content" in documented:
            body_errors = list(self.validator(pointer + "/content/application~1json/schema").iter_errors(response.json))
            assert body_errors == [], (method, path, status, [error.message for error in body_errors])
        else:
            assert response.body == b"", (method, path, status)
        self.checked.add((method, path, status))
        return response


def test_real_responses_match_what_the_document_says(testapp, document):
    conformance = Conformance(document)

    def call(method, template, url=None, status=None, **kwargs):
        send = getattr(testapp, method + ("_json" if "params" in kwargs and method != "get" else ""))
        response = send(url or template, status=status or "*", **kwargs)
        return conformance.check(method, template, response)

    call("get", "/")
    call("get", "/v1/health")
    body = {"username": "boss", "password": "secret123", "age": 40, "role": "manager"}
    manager_auth = call("post", "/v1/auth/register", params=body, status=201).json
    manager = {"Authorization": "Bearer " + manager_auth["accessToken"]}
    customer = register(testapp, "kid", age=12)
    call("post", "/v1/auth/register", params=body, status=409)
    call("post", "/v1/auth/register", params={"username": "x"}, status=400)
    call("post", "/v1/auth/login", params={"username": "boss", "password": "secret123"}, status=200)
    call("post", "/v1/auth/login", params={"username": "boss", "password": "wrong1234"}, status=401)
    refreshed = call("post", "/v1/auth/refresh", params={"refreshToken": customer.refresh_token}, status=200).json
    call("post", "/v1/auth/refresh", params={"refreshToken": customer.refresh_token}, status=401)
    kid = {"Authorization": "Bearer " + register(testapp, "kid2", age=12).access_token}
    del refreshed

    call("get", "/v1/users", headers=manager, status=200)
    call("get", "/v1/users", headers=kid, status=403)
    call("get", "/v1/users", status=401)
    call("get", "/v1/users", url="/v1/users?perPage=0", headers=manager, status=400)
    user_id = manager_auth["user"]["id"]
    call("get", "/v1/users/{userId}", url="/v1/users/" + user_id, headers=manager, status=200)
    call("get", "/v1/users/{userId}", url="/v1/users/" + user_id, headers=kid, status=403)

    movie = call("post", "/v1/movies", params={"title": "Alien", "ageRestriction": 16}, headers=manager, status=201).json
    call("post", "/v1/movies", params={"title": "Alien", "ageRestriction": 16}, headers=manager, status=409)
    call("post", "/v1/movies", params={"title": 42}, headers=manager, status=400)
    testapp_415 = testapp.post("/v1/movies", "title=x", headers=dict(manager, **{"Content-Type": "text/plain"}), status=415)
    conformance.check("post", "/v1/movies", testapp_415)
    too_large = testapp.post("/v1/movies", b"{" + b" " * (1024 * 1024 + 1) + b"}", headers=dict(manager, **{"Content-Type": "application/json"}), status=413)
    conformance.check("post", "/v1/movies", too_large)
    others = call("post", "/v1/movies/bulk", params={"movies": [{"title": "Heat", "ageRestriction": 0}]}, headers=manager, status=201).json
    listing = call("get", "/v1/movies", headers=manager, status=200)
    call("get", "/v1/movies", headers=dict(manager, **{"If-None-Match": listing.headers["ETag"]}), status=304)
    movie_url = "/v1/movies/" + movie["id"]
    call("get", "/v1/movies/{movieId}", url=movie_url, headers=manager, status=200)
    call("get", "/v1/movies/{movieId}", url="/v1/movies/not-a-uuid", headers=manager, status=400)
    call("get", "/v1/movies/{movieId}", url="/v1/movies/" + user_id, headers=manager, status=404)
    call("patch", "/v1/movies/{movieId}", url=movie_url, params={"ageRestriction": 18}, headers=manager, status=200)

    session_body = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}
    sessions_url = movie_url + "/sessions"
    session = call("post", "/v1/movies/{movieId}/sessions", url=sessions_url, params=session_body, headers=manager, status=201).json
    call("post", "/v1/movies/{movieId}/sessions", url=sessions_url, params=session_body, headers=manager, status=409)
    bulk = {"sessions": [dict(session_body, roomNumber=2), dict(session_body, roomNumber=3)]}
    extra = call("post", "/v1/movies/{movieId}/sessions/bulk", url=sessions_url + "/bulk", params=bulk, headers=manager, status=201).json
    call("get", "/v1/movies/{movieId}/sessions", url=sessions_url, headers=manager, status=200)
    call("get", "/v1/movies/{movieId}/sessions/{sessionId}", url=sessions_url + "/" + session["id"], headers=manager, status=200)
    other_movie = "/v1/movies/%s/sessions/%s" % (others[0]["id"], session["id"])
    call("get", "/v1/movies/{movieId}/sessions/{sessionId}", url=other_movie, headers=manager, status=409)
    call("get", "/v1/movie-sessions", headers=manager, status=200)

    call("post", "/v1/tickets", params={"sessionId": session["id"]}, headers=kid, status=403)
    ticket = call("post", "/v1/tickets", params={"sessionId": session["id"]}, headers=manager, status=201).json
    call("post", "/v1/tickets", params={"sessionId": session["id"]}, headers=manager, status=409)
    call("post", "/v1/tickets", params={"sessionId": user_id}, headers=manager, status=404)
    call("get", "/v1/tickets", headers=manager, status=200)
    call("get", "/v1/tickets/me", headers=manager, status=200)
    call("get", "/v1/users/{userId}/tickets", url="/v1/users/%s/tickets" % user_id, headers=manager, status=200)
    call("post", "/v1/tickets/{ticketId}/use", url="/v1/tickets/%s/use" % ticket["id"], headers=manager, status=200)
    call("post", "/v1/tickets/{ticketId}/use", url="/v1/tickets/%s/use" % ticket["id"], headers=manager, status=409)
    call("get", "/v1/users/{userId}", url="/v1/users/" + user_id, headers=manager, status=200)
    call("delete", "/v1/movie-sessions/{sessionId}", url="/v1/movie-sessions/" + session["id"], headers=manager, status=409)
    call("delete", "/v1/tickets/{ticketId}", url="/v1/tickets/" + ticket["id"], headers=manager, status=204)

    call("delete", "/v1/movie-sessions/{sessionId}", url="/v1/movie-sessions/" + session["id"], headers=manager, status=204)
    ids = {"sessionIds": [extra[0]["id"]]}
    call("delete", "/v1/movie-sessions/bulk", params=ids, headers=manager, status=204)
    call("delete", "/v1/movies/{movieId}", url=movie_url, headers=manager, status=204)
    call("delete", "/v1/movies/bulk", params={"movieIds": [others[0]["id"]]}, headers=manager, status=204)
    call("delete", "/v1/movies/bulk", params={"movieIds": [others[0]["id"]]}, headers=manager, status=404)
    call("post", "/v1/auth/logout", headers=manager, status=204)
    call("get", "/v1/movies", headers=manager, status=401)
    assert len({(method, path) for method, path, _ in conformance.checked}) >= 25


# ---------------------------------------------------------------- Swagger UI


@pytest.mark.parametrize("path", ["/v1/api", "/api"])
def test_swagger_ui_uses_only_local_assets(testapp, path):
    page = testapp.get(path)
    assert page.content_type == "text/html"
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/v1/api/assets/") for url in urls)
    assert "validatorUrl: null" in page.text and 'url: "/v1/api-json"' in page.text
    for url in urls:
        asset = testapp.get(url)
        assert asset.status_int == 200 and len(asset.body) > 0


def test_the_page_runs_only_its_own_inline_script_by_hash(testapp):
    page = testapp.get("/v1/api")
    (inline,) = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    script_src = page.headers["Content-Security-Policy"].split("script-src", 1)[1].split(";", 1)[0]
    assert script_src.split() == ["'self'", "'sha256-%s'" % digest]


def test_the_swagger_ui_assets_render_openapi_3_1(testapp):
    """Swagger UI renders OpenAPI 3.1 from version 5 on."""
    bundle = testapp.get("/v1/api/assets/swagger-ui-bundle.js").text
    versions = {int(major) for major in re.findall(r'"([0-9]+)\.[0-9]+\.[0-9]+"', bundle[:2_000_000]) if 3 <= int(major) <= 9}
    assert max(versions) >= 5
