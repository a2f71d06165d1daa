"""Movie sessions: the room rule, time rules, bulk, lists and filters (docs/API.md sections 3-5)."""

from datetime import datetime, timedelta, timezone

import pytest
from pony.orm import db_session

from tests.functional.test_movies import UNKNOWN, run_parallel


@pytest.fixture
def movie(testapp, manager):
    return testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json


def sessions_url(movie):
    return "/v1/movies/%s/sessions" % movie["id"]


def new_session(testapp, manager, movie, date="2031-01-01T20:00:00Z", timeslot="20:00-22:00", room=1, status=201):
    body = {"date": date, "timeslot": timeslot, "roomNumber": room}
    return testapp.post_json(sessions_url(movie), body, headers=manager.headers, status=status)


def total_sessions(testapp, manager):
    return testapp.get("/v1/movie-sessions", headers=manager.headers).json["meta"]["totalItems"]


def test_create_session(testapp, manager, movie):
    body = new_session(testapp, manager, movie, date="2031-01-01T22:30:00+02:00").json
    assert set(body) == {"id", "movieId", "date", "timeslot", "roomNumber", "capacity", "cancelledAt", "createdAt", "updatedAt"}
    assert body["cancelledAt"] is None
    assert body["movieId"] == movie["id"] and body["capacity"] is None  # room 1 has no Room
    assert body["date"] == "2031-01-01T20:30:00.000Z"
    assert body["timeslot"] == "20:00-22:00" and body["roomNumber"] == 1


def test_timeslot_and_date_are_not_cross_checked(testapp, manager, movie):
    assert new_session(testapp, manager, movie, date="2031-01-01T20:00:00Z", timeslot="16:00-18:00").json["timeslot"] == "16:00-18:00"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"date": "2020-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}, "date must be in the future"),
        ({"date": "2031-01-01 20:00", "timeslot": "20:00-22:00", "roomNumber": 1}, "date must be a valid ISO 8601 date string"),
        ({"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-21:00", "roomNumber": 1}, "timeslot must be one of the following values: 10:00-12:00, 12:00-14:00, 14:00-16:00, 16:00-18:00, 18:00-20:00, 20:00-22:00, 22:00-00:00"),
        ({"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 0}, "roomNumber must not be less than 1"),
        ({"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1000}, "roomNumber must not be greater than 999"),
        ({"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": "1a"}, "roomNumber must be an integer number"),
        ({"timeslot": "20:00-22:00", "roomNumber": 1}, "date should not be empty"),
    ],
)
def test_create_session_validation(testapp, manager, movie, body, message):
    assert testapp.post_json(sessions_url(movie), body, headers=manager.headers, status=400).json["message"] == [message]
    assert total_sessions(testapp, manager) == 0


def test_schema_errors_come_before_the_missing_movie(testapp, manager):
    url = "/v1/movies/%s/sessions" % UNKNOWN
    body = {"date": "2020-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}
    testapp.post_json(url, body, headers=manager.headers, status=400)
    body["date"] = "2031-01-01T20:00:00Z"
    assert testapp.post_json(url, body, headers=manager.headers, status=404).json["message"] == "Movie not found"


def test_a_room_is_booked_once_per_timeslot_and_utc_day(testapp, manager, movie):
    new_session(testapp, manager, movie, date="2031-01-01T20:00:00Z")
    # same UTC day, written with another offset
    response = new_session(testapp, manager, movie, date="2031-01-02T01:00:00+05:00", status=409)
    assert response.json["message"] == "Room 1 is already booked for 2031-01-01 20:00-22:00"
    new_session(testapp, manager, movie, date="2031-01-01T20:00:00Z", room=2)
    new_session(testapp, manager, movie, date="2031-01-01T18:00:00Z", timeslot="18:00-20:00")
    new_session(testapp, manager, movie, date="2031-01-02T20:00:00Z")


def test_the_late_slot_belongs_to_the_day_it_starts_on(testapp, manager, movie):
    new_session(testapp, manager, movie, date="2031-01-01T22:00:00Z", timeslot="22:00-00:00")
    response = new_session(testapp, manager, movie, date="2031-01-01T23:30:00Z", timeslot="22:00-00:00", status=409)
    assert response.json["message"] == "Room 1 is already booked for 2031-01-01 22:00-00:00"
    # 00:30 local at +01:00 is 23:30Z on the 1st: still the 1st
    new_session(testapp, manager, movie, date="2031-01-02T00:30:00+01:00", timeslot="22:00-00:00", status=409)
    new_session(testapp, manager, movie, date="2031-01-02T22:00:00Z", timeslot="22:00-00:00")


def test_get_session_of_a_movie(testapp, manager, customer, movie):
    session = new_session(testapp, manager, movie).json
    assert testapp.get("%s/%s" % (sessions_url(movie), session["id"]), headers=customer.headers).json == session
    other = testapp.post_json("/v1/movies", {"title": "Other", "ageRestriction": 0}, headers=manager.headers).json
    response = testapp.get("%s/%s" % (sessions_url(other), session["id"]), headers=customer.headers, status=409)
    assert response.json["message"] == "Movie session does not belong to the movie"
    assert testapp.get("%s/%s" % (sessions_url(movie), UNKNOWN), headers=customer.headers, status=404).json["message"] == "Movie session not found"
    assert testapp.get("/v1/movies/%s/sessions/%s" % (UNKNOWN, session["id"]), headers=customer.headers, status=404).json["message"] == "Movie not found"


def test_sessions_of_a_movie_paginate_and_404_for_unknown_movie(testapp, manager, customer, movie):
    for room in range(1, 8):
        new_session(testapp, manager, movie, room=room)
    page = testapp.get(sessions_url(movie) + "?perPage=3&page=3", headers=customer.headers).json
    assert [s["roomNumber"] for s in page["sessions"]] == [7]
    assert page["meta"] == {"currentPage": 3, "totalPages": 3, "totalItems": 7, "perPage": 3}
    assert testapp.get("/v1/movies/%s/sessions" % UNKNOWN, headers=customer.headers, status=404).json["message"] == "Movie not found"


def test_past_sessions_stay_readable(testapp, app, manager, customer, movie):
    session = new_session(testapp, manager, movie).json
    db = app.registry["cinema.db"]
    with db_session:
        past = datetime(2020, 5, 1, 20)
        row = db.Screening[session["id"]]
        row.date, row.day = past, past.date()
    assert testapp.get("/v1/movies/" + movie["id"], headers=customer.headers).json["sessions"][0]["date"] == "2020-05-01T20:00:00.000Z"
    assert testapp.get("/v1/movie-sessions", headers=customer.headers).json["meta"]["totalItems"] == 1
    testapp.get("%s/%s" % (sessions_url(movie), session["id"]), headers=customer.headers)


# ---------------------------------------------------------------- bulk


def bulk(testapp, manager, movie, items, status=201):
    return testapp.post_json(sessions_url(movie) + "/bulk", {"sessions": items}, headers=manager.headers, status=status)


def item(room, date="2031-01-01T20:00:00Z", timeslot="20:00-22:00"):
    return {"date": date, "timeslot": timeslot, "roomNumber": room}


def test_bulk_create_sessions_in_request_order(testapp, manager, movie):
    body = bulk(testapp, manager, movie, [item(3), item(1), item(2)]).json
    assert [s["roomNumber"] for s in body] == [3, 1, 2]


def test_bulk_sessions_are_all_or_nothing(testapp, manager, movie):
    response = bulk(testapp, manager, movie, [item(1), item(2, date="2020-01-01T00:00:00Z")], status=400)
    assert response.json["message"] == ["sessions.1.date must be in the future"]
    response = bulk(testapp, manager, movie, [item(1), item(2), item(1, date="2031-01-01T21:00:00Z")], status=409)
    assert response.json["message"] == "Room 1 is already booked for 2031-01-01 20:00-22:00"
    new_session(testapp, manager, movie, room=5)
    response = bulk(testapp, manager, movie, [item(4), item(5)], status=409)
    assert response.json["message"] == "Room 5 is already booked for 2031-01-01 20:00-22:00"
    assert total_sessions(testapp, manager) == 1
    response = testapp.post_json("/v1/movies/%s/sessions/bulk" % UNKNOWN, {"sessions": [item(9)]}, headers=manager.headers, status=404)
    assert response.json["message"] == "Movie not found"
    bulk(testapp, manager, movie, [], status=400)


def test_bulk_delete_sessions(testapp, manager, movie):
    ids = [s["id"] for s in bulk(testapp, manager, movie, [item(1), item(2), item(3)]).json]
    response = testapp.delete_json("/v1/movie-sessions/bulk", {"sessionIds": [ids[0], UNKNOWN]}, headers=manager.headers, status=404)
    assert response.json["message"] == "Movie session with ID %s not found" % UNKNOWN
    assert total_sessions(testapp, manager) == 3
    testapp.delete_json("/v1/movie-sessions/bulk", {"sessionIds": [ids[0], ids[1], ids[0]]}, headers=manager.headers, status=204)
    assert total_sessions(testapp, manager) == 1
    testapp.delete("/v1/movie-sessions/" + ids[2], headers=manager.headers, status=204)
    testapp.delete("/v1/movie-sessions/" + ids[2], headers=manager.headers, status=404)
    assert total_sessions(testapp, manager) == 0


# ---------------------------------------------------------------- lists and filters


@pytest.fixture
def programme(testapp, manager, movie):
    other = testapp.post_json("/v1/movies", {"title": "Heat", "ageRestriction": 12}, headers=manager.headers).json
    bulk(testapp, manager, movie, [item(2, "2031-01-02T10:00:00Z", "10:00-12:00"), item(1, "2031-01-01T20:00:00Z"), item(3, "2031-01-01T23:00:00Z", "22:00-00:00")])
    bulk(testapp, manager, other, [item(1, "2031-01-02T12:00:00Z", "12:00-14:00"), item(2, "2031-01-01T20:00:00Z")])
    return movie, other


def rooms_and_dates(response):
    return [(s["date"][:16], s["roomNumber"]) for s in response.json["sessions"]]


def test_default_order_is_date_timeslot_room(testapp, customer, programme):
    assert rooms_and_dates(testapp.get("/v1/movie-sessions", headers=customer.headers)) == [
        ("2031-01-01T20:00", 1),
        ("2031-01-01T20:00", 2),
        ("2031-01-01T23:00", 3),
        ("2031-01-02T10:00", 2),
        ("2031-01-02T12:00", 1),
    ]
    assert rooms_and_dates(testapp.get("/v1/movie-sessions?order=desc", headers=customer.headers))[0] == ("2031-01-02T12:00", 1)


def test_sort_by_room_and_timeslot(testapp, customer, programme):
    rooms = [s["roomNumber"] for s in testapp.get("/v1/movie-sessions?sort=roomNumber&order=desc", headers=customer.headers).json["sessions"]]
    assert rooms == [3, 2, 2, 1, 1]
    slots = [s["timeslot"] for s in testapp.get("/v1/movie-sessions?sort=timeslot", headers=customer.headers).json["sessions"]]
    assert slots == ["10:00-12:00", "12:00-14:00", "20:00-22:00", "20:00-22:00", "22:00-00:00"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("date=2031-01-01", [("2031-01-01T20:00", 1), ("2031-01-01T20:00", 2), ("2031-01-01T23:00", 3)]),
        ("date=2031-01-02T03:00:00%2B05:00", [("2031-01-01T20:00", 1), ("2031-01-01T20:00", 2), ("2031-01-01T23:00", 3)]),
        ("date=2031-01-01T22:00:00-03:00", [("2031-01-02T10:00", 2), ("2031-01-02T12:00", 1)]),
        ("timeslot=20:00-22:00", [("2031-01-01T20:00", 1), ("2031-01-01T20:00", 2)]),
        ("roomNumber=2", [("2031-01-01T20:00", 2), ("2031-01-02T10:00", 2)]),
        ("roomNumber=2&timeslot=10:00-12:00", [("2031-01-02T10:00", 2)]),
        ("date=2040-01-01", []),
    ],
)
def test_filters(testapp, customer, programme, query, expected):
    assert rooms_and_dates(testapp.get("/v1/movie-sessions?" + query, headers=customer.headers)) == expected


def test_movie_id_filter(testapp, customer, programme):
    movie, other = programme
    listed = testapp.get("/v1/movie-sessions?movieId=" + other["id"], headers=customer.headers).json
    assert {s["movieId"] for s in listed["sessions"]} == {other["id"]} and listed["meta"]["totalItems"] == 2
    assert testapp.get("/v1/movie-sessions?movieId=" + UNKNOWN, headers=customer.headers).json["sessions"] == []
    per_movie = testapp.get(sessions_url(movie) + "?roomNumber=1", headers=customer.headers).json
    assert [s["roomNumber"] for s in per_movie["sessions"]] == [1]


@pytest.mark.parametrize(
    "query, message",
    [
        ("movieId=abc", "movieId must be a UUID"),
        ("date=tomorrow", "date must be a valid ISO 8601 date string"),
        ("sort=movie", "sort must be one of the following values: date, timeslot, roomNumber"),
        ("roomNumber=0", "roomNumber must not be less than 1"),
    ],
)
def test_session_list_validation(testapp, customer, query, message):
    assert testapp.get("/v1/movie-sessions?" + query, headers=customer.headers, status=400).json["message"] == [message]


# ---------------------------------------------------------------- concurrency


def test_parallel_creates_of_one_room_slot_and_day_give_one_201(app, testapp, manager, movie):
    body = {"date": "2031-03-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 7}
    results = run_parallel(app, 20, lambda client: client.post_json(sessions_url(movie), body, headers=manager.headers, expect_errors=True))
    assert results == [201] + [409] * 19
    assert total_sessions(testapp, manager) == 1


def test_session_dates_must_be_in_the_future_now(testapp, manager, movie):
    soon = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    new_session(testapp, manager, movie, date=soon, room=9)


@pytest.mark.parametrize("bulk", [False, True])
def test_a_session_created_while_its_movie_is_deleted_is_404(testapp, manager, movie, settings, monkeypatch, bulk):
    from cinema_api.movies.services import Movies
    from tests.conftest import commit_elsewhere

    get = Movies.get

    def deleted_meanwhile(self, movie_id):
        found = get(self, movie_id)  # the movie is there when the request looks...
        commit_elsewhere(settings, 'DELETE FROM "movies" WHERE "id" = %s', movie["id"])  # ...and gone before it writes
        return found

    monkeypatch.setattr(Movies, "get", deleted_meanwhile)
    item = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}
    if bulk:
        response = testapp.post_json(sessions_url(movie) + "/bulk", {"sessions": [item]}, headers=manager.headers, status=404)
    else:
        response = testapp.post_json(sessions_url(movie), item, headers=manager.headers, status=404)
    assert response.json["message"] == "Movie not found"
    monkeypatch.undo()
    assert total_sessions(testapp, manager) == 0
