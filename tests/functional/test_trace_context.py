"""W3C trace context (docs/API.md section 12): a valid incoming traceparent is continued, on the
whole pipeline, on the fast path of cached hits and on error responses; an invalid one is
ignored; every response carries a traceparent."""

import logging
import re
import uuid

import pytest

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = "00-%s-%s-01" % (TRACE_ID, PARENT_ID)
OUTGOING = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parts(response):
    match = OUTGOING.fullmatch(response.headers["traceparent"])
    assert match, response.headers["traceparent"]
    trace_id, span_id, flags = match.groups()
    assert trace_id != "0" * 32 and span_id != "0" * 16
    return trace_id, span_id, flags


def assert_continued(response, flags="01"):
    trace_id, span_id, received_flags = parts(response)
    assert trace_id == TRACE_ID and response.headers["X-Trace-Id"] == TRACE_ID
    assert span_id != PARENT_ID and received_flags == flags
    return span_id


@pytest.fixture
def movie(testapp, manager):
    return testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json


def test_a_valid_traceparent_is_continued_with_a_new_span_id(testapp):
    first = assert_continued(testapp.get("/", headers={"traceparent": TRACEPARENT}))
    second = assert_continued(testapp.get("/", headers={"traceparent": TRACEPARENT}))
    assert first != second  # each request is a span of its own


def test_a_cached_hit_continues_the_trace_too(testapp, customer, movie):
    path = "/v1/movies/%s" % movie["id"]
    testapp.get(path, headers=customer.headers)
    hit = testapp.get(path, headers=dict(customer.headers, traceparent=TRACEPARENT[:-2] + "00"))
    assert hit.headers["X-Cache"] == "HIT"
    assert_continued(hit, flags="00")


def test_error_responses_continue_the_trace(testapp, customer, caplog):
    with caplog.at_level(logging.INFO, logger="cinema_api.trace"):
        assert_continued(testapp.get("/nowhere", headers={"traceparent": TRACEPARENT}, status=404))
    assert_continued(testapp.get("/v1/movies", headers={"traceparent": TRACEPARENT}, status=401))
    assert_continued(testapp.get("/v1/movies/not-a-uuid", headers=dict(customer.headers, traceparent=TRACEPARENT), status=400))
    assert any("[trace %s]" % TRACE_ID in record.getMessage() for record in caplog.records)  # the log lines' trace id


def test_traceparent_wins_over_x_trace_id(testapp):
    response = testapp.get("/", headers={"traceparent": TRACEPARENT, "X-Trace-Id": "gateway-trace-0001"})
    assert_continued(response)


@pytest.mark.parametrize(
    "incoming",
    [
        "00-%s-%s-01" % ("0" * 32, PARENT_ID),  # trace-id all zeros
        "00-%s-%s-01" % (TRACE_ID, "0" * 16),  # parent-id all zeros
        "00-%s-%s-01" % (TRACE_ID.upper(), PARENT_ID),  # upper case
        "ff-%s-%s-01" % (TRACE_ID, PARENT_ID),  # version ff
        "01-%s-%s-01" % (TRACE_ID, PARENT_ID),  # a version this service does not know
        "00-%s-%s-1" % (TRACE_ID, PARENT_ID),  # flags of one digit
        "00-%s-%s-01-extra" % (TRACE_ID, PARENT_ID),
        "00-%s-%s" % (TRACE_ID, PARENT_ID),
        "00-%s-%s-01" % (TRACE_ID[:-1], PARENT_ID),
        "garbage",
        "00-%s-%s-0g" % (TRACE_ID, PARENT_ID),
    ],
)
def test_an_invalid_traceparent_is_ignored_and_a_new_trace_starts(testapp, incoming):
    response = testapp.get("/", headers={"traceparent": incoming})
    trace_id, span_id, flags = parts(response)
    assert trace_id != TRACE_ID.lower() and span_id != PARENT_ID and flags == "00"
    assert uuid.UUID(response.headers["X-Trace-Id"]).version == 4
    assert trace_id == response.headers["X-Trace-Id"].replace("-", "")


def test_without_traceparent_the_response_still_carries_one(testapp):
    response = testapp.get("/v1/health")
    trace_id, _, _ = parts(response)
    assert trace_id == uuid.UUID(response.headers["X-Trace-Id"]).hex


def test_an_x_trace_id_is_still_reused_and_a_hex_one_becomes_the_trace_id(testapp):
    assert testapp.get("/", headers={"X-Trace-Id": "gateway-trace-0001"}).headers["X-Trace-Id"] == "gateway-trace-0001"
    response = testapp.get("/", headers={"X-Trace-Id": TRACE_ID})  # nginx's $request_id is 32 hex digits
    assert response.headers["X-Trace-Id"] == TRACE_ID and parts(response)[0] == TRACE_ID
