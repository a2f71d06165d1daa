"""Response headers of docs/API.md section 1: no sniffing, no stored tokens, no framing, Location, Vary."""

import pytest

from tests.conftest import PASSWORD, register
from tests.functional.test_core import cors_app  # noqa: F401 (fixture)

SESSION = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}


def test_every_response_carries_nosniff(testapp, manager):
    hit_and_miss = [testapp.get("/v1/movies", headers=manager.headers) for _ in range(2)]
    etag = hit_and_miss[1].headers["ETag"]
    not_modified = testapp.get("/v1/movies", headers=dict(manager.headers, **{"If-None-Match": etag}), status=304)
    others = [testapp.get("/"), testapp.get("/v1/nowhere", status=404), testapp.get("/v1/movies", status=401), testapp.get("/v1/api")]
    for response in [*hit_and_miss, not_modified, *others]:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.url
    assert [r.headers["X-Cache"] for r in hit_and_miss] == ["MISS", "HIT"]


def test_responses_carrying_tokens_are_never_stored(testapp):
    account = register(testapp, "alice")
    login = testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD})
    refreshed = testapp.post_json("/v1/auth/refresh", {"refreshToken": account.refresh_token})
    register_response = testapp.post_json("/v1/auth/register", {"username": "bob", "password": PASSWORD, "age": 20}, status=201)
    for response in (register_response, login, refreshed):
        assert response.headers["Cache-Control"] == "no-store"


def test_a_201_says_where_the_new_resource_is(testapp, manager, customer):
    registered = testapp.post_json("/v1/auth/register", {"username": "carol", "password": PASSWORD, "age": 20}, status=201)
    assert registered.headers["Location"] == "http://localhost/v1/users/" + registered.json["user"]["id"]
    movie = testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 0}, headers=manager.headers, status=201)
    assert movie.headers["Location"] == "http://localhost/v1/movies/" + movie.json["id"]
    testapp.get(movie.headers["Location"], headers=manager.headers, status=200)
    session = testapp.post_json("/v1/movies/%s/sessions" % movie.json["id"], SESSION, headers=manager.headers, status=201)
    assert session.headers["Location"] == "http://localhost/v1/movies/%s/sessions/%s" % (movie.json["id"], session.json["id"])
    testapp.get(session.headers["Location"], headers=manager.headers, status=200)
    ticket = testapp.post_json("/v1/tickets", {"sessionId": session.json["id"]}, headers=customer.headers, status=201)
    assert ticket.headers["Location"] == "http://localhost/v1/tickets/" + ticket.json["id"]
    bulk = testapp.post_json("/v1/movies/bulk", {"movies": [{"title": "Heat", "ageRestriction": 1}]}, headers=manager.headers, status=201)
    assert "Location" not in bulk.headers


def test_the_swagger_page_cannot_be_framed_and_allows_only_its_own_origin(testapp):
    page = testapp.get("/v1/api")
    assert page.headers["X-Frame-Options"] == "DENY"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "persistAuthorization" not in page.text and "localStorage" not in page.text


@pytest.mark.parametrize("name", ["", "index.html", "swagger-initializer.js", "oauth2-redirect.html", "../__init__.py"])
def test_the_asset_folder_serves_only_the_assets_of_the_page(testapp, name):
    testapp.get("/v1/api/assets/" + name, status=404)


def test_the_assets_of_the_page_are_served(testapp):
    for name, media_type in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")):
        response = testapp.get("/v1/api/assets/" + name)
        assert response.content_type == media_type and response.content_length > 1000
        assert len(response.body) == response.content_length  # read to the end: the file is closed
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_with_cors_on_every_response_varies_by_origin(cors_app):  # noqa: F811
    for headers in ({"Origin": "https://admin.example.com"}, {"Origin": "https://evil.example"}, {}):
        response = cors_app.get("/", headers=headers)
        assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in cors_app.get("/", headers={"Origin": "https://evil.example"}).headers
