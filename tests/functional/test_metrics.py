"""GET /metrics (docs/API.md section 12): the Prometheus text exposition, read back with
prometheus_client's own parser, from a black-box run of the application."""

import re
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from cinema_api import make_app
from tests.conftest import build_settings, ini_settings, register

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def fresh_app(test_environ, **environ):
    """An application of its own, so its counters start at zero (it shares the test database)."""
    return TestApp(make_app(build_settings(dict(test_environ, **environ)), ini_settings()), extra_environ={"REMOTE_ADDR": "127.0.0.1"})


def families(client):
    response = client.get("/metrics")
    assert response.content_type == "text/plain" and "version=0.0.4" in response.headers["Content-Type"]
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def sample(found, family, name, **labels):
    """The value of the sample ``name`` of ``family`` whose labels include ``labels``, or 0."""
    values = [s.value for s in found[family].samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(values) <= 1, values
    return values[0] if values else 0


@pytest.fixture
def app_of_its_own(testapp, test_environ):
    return fresh_app(test_environ)


def test_reads_are_counted_by_route_template_and_status_with_the_process_metrics(testapp, app_of_its_own, manager, test_environ):
    client = app_of_its_own
    for title in ("Alien", "Heat"):
        client.post_json("/v1/movies", {"title": title, "ageRestriction": 16}, headers=manager.headers, status=201)
    for _ in range(20):
        assert client.get("/v1/movies", headers=manager.headers).status_code == 200
    unknown = [str(uuid.uuid4()) for _ in range(3)]
    for movie_id in unknown:
        client.get("/v1/movies/%s" % movie_id, headers=manager.headers, status=404)

    found = families(client)
    requests = "cinema_http_requests"
    assert found[requests].type == "counter"
    assert sample(found, requests, "cinema_http_requests_total", route="/v1/movies", method="GET", status="200") == 20
    assert sample(found, requests, "cinema_http_requests_total", route="/v1/movies", method="POST", status="201") == 2
    assert sample(found, requests, "cinema_http_requests_total", route="/v1/movies/{movieId}", method="GET", status="404") == 3
    # 19 of the 20 reads were cached hits, answered before Pyramid: counted all the same
    assert sample(found, "cinema_cache_hits", "cinema_cache_hits_total", region="movies") >= 19
    assert sample(found, "cinema_cache_misses", "cinema_cache_misses_total", region="movies") >= 1

    for family in found.values():
        for item in family.samples:
            for value in item.labels.values():
                assert not UUID_RE.search(value), (item.name, item.labels)
    duration = "cinema_http_request_duration_seconds"
    assert found[duration].type == "histogram"
    assert sample(found, duration, duration + "_bucket", route="/v1/movies", le="0.5") <= 22
    assert sample(found, duration, duration + "_bucket", route="/v1/movies", le="+Inf") == 22
    assert sample(found, duration, duration + "_count", route="/v1/movies/{movieId}") == 3
    assert {"0.005", "0.1", "0.5", "1.0", "10.0"} <= {s.labels["le"] for s in found[duration].samples if "le" in s.labels}
    assert sample(found, "cinema_http_requests_in_flight", "cinema_http_requests_in_flight") == 1  # this scrape
    calls = sample(found, "cinema_database_call_duration_seconds", "cinema_database_call_duration_seconds_count")
    if test_environ["DATABASE_URL"].startswith("postgresql"):  # timed by PostgreSQL's watchdog
        assert calls >= 4  # at least the two inserts, the 404s' reads and the first list
        assert sample(found, "cinema_database_call_duration_seconds", "cinema_database_call_duration_seconds_bucket", le="+Inf") == calls
    else:
        assert calls == 0
    for name in ("process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds", "process_start_time_seconds"):
        assert found[name].samples[0].value > 0, name


def test_unknown_paths_share_one_route_label(app_of_its_own):
    for path in ("/nowhere", "/v1/%s" % uuid.uuid4(), "/v1/movies/%s/nothing" % uuid.uuid4()):
        app_of_its_own.get(path, status=404)
    found = families(app_of_its_own)
    assert sample(found, "cinema_http_requests", "cinema_http_requests_total", route="unmatched", status="404") == 3


def test_metrics_from_an_address_not_allowed_is_the_404_of_an_unknown_route(app_of_its_own):
    for address in ("10.1.2.3", "192.0.2.7", "2001:db8::1"):
        refused = app_of_its_own.get("/metrics", extra_environ={"REMOTE_ADDR": address}, status=404)
        unknown = app_of_its_own.get("/nowhere", extra_environ={"REMOTE_ADDR": address}, status=404)
        assert refused.json == dict(unknown.json, message="Cannot GET /metrics")
        assert "cinema_http" not in refused.text
    for address in ("127.0.0.1", "127.8.9.10", "::1"):
        assert app_of_its_own.get("/metrics", extra_environ={"REMOTE_ADDR": address}).status_code == 200


def test_metrics_allow_names_the_scrapers(testapp, test_environ):
    client = fresh_app(test_environ, METRICS_ALLOW="10.0.0.0/8, 192.0.2.7")
    assert client.get("/metrics", extra_environ={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/metrics", extra_environ={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    client.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=404)  # loopback no longer listed
    client.get("/metrics", extra_environ={"REMOTE_ADDR": "192.0.2.8"}, status=404)


def test_metrics_enabled_false_answers_404_and_counts_nothing(testapp, test_environ, manager):
    client = fresh_app(test_environ, METRICS_ENABLED="false")
    client.get("/v1/movies", headers=manager.headers)
    client.get("/metrics", status=404)
    assert client.app.registry["cinema.metrics"].request_stats.collect()[0].samples == []


def test_each_application_counts_into_a_registry_of_its_own(testapp, test_environ):
    first, second = fresh_app(test_environ), fresh_app(test_environ)
    for _ in range(3):
        first.get("/")
    assert sample(families(first), "cinema_http_requests", "cinema_http_requests_total", route="/", status="200") == 3
    assert sample(families(second), "cinema_http_requests", "cinema_http_requests_total", route="/", status="200") == 0


def test_logins_tickets_and_the_hashing_gate_are_counted(testapp, test_environ, manager):
    client = fresh_app(test_environ)
    buyer = register(client, "buyer1")
    client.post_json("/v1/auth/login", {"username": "buyer1", "password": "secret123"}, status=200)
    movie = client.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json
    session = client.post_json(
        "/v1/movies/%s/sessions" % movie["id"],
        {"date": "2099-01-01T00:00:00Z", "timeslot": "10:00-12:00", "roomNumber": 1},
        headers=manager.headers,
    ).json
    ticket = client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=buyer.headers, status=201).json
    client.delete("/v1/tickets/%s" % ticket["id"], headers=buyer.headers, status=204)
    found = families(client)
    assert sample(found, "cinema_bcrypt_hashes", "cinema_bcrypt_hashes_total", operation="hash") == 1
    assert sample(found, "cinema_bcrypt_hashes", "cinema_bcrypt_hashes_total", operation="verify") == 1
    assert sample(found, "cinema_login_gate_wait_seconds", "cinema_login_gate_wait_seconds_count") == 2
    assert sample(found, "cinema_login_gate_rejections", "cinema_login_gate_rejections_total") == 0
    assert sample(found, "cinema_tickets_sold", "cinema_tickets_sold_total") == 1
    assert sample(found, "cinema_tickets_cancelled", "cinema_tickets_cancelled_total") == 1


def test_a_database_failure_counts_its_503(app_of_its_own, manager, monkeypatch):
    from pony.orm.dbapiprovider import OperationalError

    def failing_ping(db):
        raise OperationalError(Exception("could not connect to server"))

    monkeypatch.setattr("cinema_api.health.services.ping", failing_ping)
    app_of_its_own.get("/v1/health/ready", status=503)
    found = families(app_of_its_own)
    assert sample(found, "cinema_database_unavailable_responses", "cinema_database_unavailable_responses_total") == 1
    assert sample(found, "cinema_http_requests", "cinema_http_requests_total", route="/v1/health/ready", status="503") == 1


def test_metrics_is_not_in_the_openapi_document(testapp):
    assert not any("metrics" in path for path in testapp.get("/v1/api-json").json["paths"])
