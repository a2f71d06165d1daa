"""Rooms: create or replace, read, list, delete; sessions copy a room's seat plan (docs/API.md section 10)."""

import pytest

from tests.conftest import register
from tests.functional.test_movies import run_parallel


def put_room(testapp, account, number, status=None, **body):
    body = body or {"rows": 5, "seatsPerRow": 8}
    return testapp.put_json("/v1/rooms/%s" % number, body, headers=account.headers, status=status)


def rooms(testapp, account):
    return testapp.get("/v1/rooms", headers=account.headers).json


@pytest.fixture
def movie(testapp, manager):
    return testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 0}, headers=manager.headers).json


def new_session(testapp, manager, movie, room, date="2031-01-01T20:00:00Z"):
    body = {"date": date, "timeslot": "20:00-22:00", "roomNumber": room}
    return testapp.post_json("/v1/movies/%s/sessions" % movie["id"], body, headers=manager.headers, status=201).json


def test_put_creates_a_room_with_201_and_its_location(testapp, manager):
    response = put_room(testapp, manager, 3, status=201, name="  Main hall ", rows=10, seatsPerRow=12)
    body = response.json
    assert set(body) == {"number", "name", "rows", "seatsPerRow", "capacity", "createdAt", "updatedAt"}
    assert (body["number"], body["name"], body["rows"], body["seatsPerRow"], body["capacity"]) == (3, "Main hall", 10, 12, 120)
    assert body["createdAt"] == body["updatedAt"] and body["createdAt"].endswith("Z")
    assert response.headers["Location"] == "http://localhost/v1/rooms/3"
    assert testapp.get("/v1/rooms/3", headers=manager.headers).json == body


def test_put_replaces_a_room_with_200_and_keeps_its_creation_time(testapp, manager):
    first = put_room(testapp, manager, 3, status=201, name="Old", rows=10, seatsPerRow=12).json
    second = put_room(testapp, manager, 3, status=200, rows=2, seatsPerRow=3)
    assert "Location" not in second.headers
    body = second.json
    assert (body["name"], body["rows"], body["seatsPerRow"], body["capacity"]) == ("Room 3", 2, 3, 6)  # a PUT replaces: default name
    assert body["createdAt"] == first["createdAt"] and body["updatedAt"] >= first["updatedAt"]
    assert rooms(testapp, manager) == [body]


def test_the_name_defaults_to_room_and_number_and_may_be_empty(testapp, manager):
    assert put_room(testapp, manager, 7, status=201, rows=1, seatsPerRow=1).json["name"] == "Room 7"
    assert put_room(testapp, manager, 8, status=201, name="", rows=1, seatsPerRow=1).json["name"] == ""
    assert put_room(testapp, manager, 9, status=201, name="x" * 100, rows=26, seatsPerRow=50).json["capacity"] == 1300


def test_rooms_are_listed_by_number_to_any_authenticated_user(testapp, manager, customer):
    for number in (12, 2, 999, 1):
        put_room(testapp, manager, number, status=201)
    assert [room["number"] for room in rooms(testapp, customer)] == [1, 2, 12, 999]
    assert testapp.get("/v1/rooms/12", headers=customer.headers).json["number"] == 12
    testapp.get("/v1/rooms", status=401)
    testapp.get("/v1/rooms/12", status=401)


def test_only_managers_write_rooms_and_role_comes_before_the_schema(testapp, manager, customer):
    put_room(testapp, customer, 3, status=403)
    put_room(testapp, customer, 3, status=403, rows=99, seatsPerRow=0)
    put_room(testapp, manager, 3, status=201)
    assert testapp.delete("/v1/rooms/3", headers=customer.headers, status=403).json["message"] == "You are not allowed to do this"
    testapp.put_json("/v1/rooms/3", {"rows": 1, "seatsPerRow": 1}, status=401)
    assert rooms(testapp, manager)[0]["capacity"] == 40


def test_delete_a_room(testapp, manager):
    put_room(testapp, manager, 3, status=201)
    assert testapp.delete("/v1/rooms/3", headers=manager.headers, status=204).body == b""
    assert testapp.get("/v1/rooms/3", headers=manager.headers, status=404).json["message"] == "Room not found"
    assert testapp.delete("/v1/rooms/3", headers=manager.headers, status=404).json["message"] == "Room not found"
    assert rooms(testapp, manager) == []


@pytest.mark.parametrize(
    "body, message",
    [
        ({"seatsPerRow": 8}, "rows should not be empty"),
        ({"rows": 5}, "seatsPerRow should not be empty"),
        ({"rows": 0, "seatsPerRow": 8}, "rows must not be less than 1"),
        ({"rows": 27, "seatsPerRow": 8}, "rows must not be greater than 26"),
        ({"rows": 5, "seatsPerRow": 0}, "seatsPerRow must not be less than 1"),
        ({"rows": 5, "seatsPerRow": 51}, "seatsPerRow must not be greater than 50"),
        ({"rows": 5.0, "seatsPerRow": 8}, "rows must be an integer number"),
        ({"rows": 5, "seatsPerRow": 8, "name": "x" * 101}, "name must be shorter than or equal to 100 characters"),
        ({"rows": 5, "seatsPerRow": 8, "name": None}, "name must be a string"),
        ({"rows": 5, "seatsPerRow": 8, "name": 42}, "name must be a string"),
    ],
)
def test_put_validation_changes_nothing(testapp, manager, body, message):
    put_room(testapp, manager, 3, status=201, name="Kept", rows=2, seatsPerRow=2)
    response = testapp.put_json("/v1/rooms/3", body, headers=manager.headers, status=400)
    assert response.json["message"] == [message]
    assert response.json["errors"][0]["location"] == "body"
    room = testapp.get("/v1/rooms/3", headers=manager.headers).json
    assert (room["name"], room["capacity"]) == ("Kept", 4)


@pytest.mark.parametrize(
    "number, message",
    [("0", "roomNumber must not be less than 1"), ("1000", "roomNumber must not be greater than 999"), ("x", "roomNumber must be an integer number")],
)
def test_the_room_number_is_checked_in_every_method(testapp, manager, number, message):
    for method in ("get", "delete"):
        response = getattr(testapp, method)("/v1/rooms/" + number, headers=manager.headers, status=400)
        assert response.json["message"] == [message] and response.json["errors"][0]["location"] == "path"
    assert put_room(testapp, manager, number, status=400).json["message"] == [message]
    assert rooms(testapp, manager) == []


def test_concurrent_creates_of_one_room_give_one_201_and_replacements(app, testapp, manager):
    results = run_parallel(
        app, 10, lambda client: client.put_json("/v1/rooms/4", {"rows": 3, "seatsPerRow": 3}, headers=manager.headers, expect_errors=True)
    )
    assert results == [200] * 9 + [201]
    assert [room["number"] for room in rooms(testapp, manager)] == [4]


# ---------------------------------------------------------------- sessions copy the plan


def test_a_session_copies_its_rooms_plan_and_one_without_a_room_has_none(testapp, manager, movie):
    put_room(testapp, manager, 3, status=201, rows=4, seatsPerRow=5)
    assert new_session(testapp, manager, movie, 3)["capacity"] == 20
    assert new_session(testapp, manager, movie, 4)["capacity"] is None


def test_bulk_created_sessions_copy_their_rooms_plans(testapp, manager, movie):
    put_room(testapp, manager, 1, status=201, rows=2, seatsPerRow=5)
    put_room(testapp, manager, 2, status=201, rows=3, seatsPerRow=5)
    items = [{"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": room} for room in (2, 5, 1)]
    created = testapp.post_json("/v1/movies/%s/sessions/bulk" % movie["id"], {"sessions": items}, headers=manager.headers, status=201).json
    assert [s["capacity"] for s in created] == [15, None, 10]


def test_a_room_changed_or_deleted_later_changes_only_sessions_created_afterwards(testapp, manager, customer, movie):
    put_room(testapp, manager, 3, status=201, rows=2, seatsPerRow=2)
    before = new_session(testapp, manager, movie, 3, date="2031-01-01T20:00:00Z")
    put_room(testapp, manager, 3, status=200, rows=1, seatsPerRow=1)
    after = new_session(testapp, manager, movie, 3, date="2031-01-02T20:00:00Z")
    testapp.delete("/v1/rooms/3", headers=manager.headers, status=204)
    without = new_session(testapp, manager, movie, 3, date="2031-01-03T20:00:00Z")
    assert (before["capacity"], after["capacity"], without["capacity"]) == (4, 1, None)
    # every read says the same, and the seats are those of the session's own plan
    listed = testapp.get("/v1/movie-sessions", headers=customer.headers).json["sessions"]
    assert [s["capacity"] for s in listed] == [4, 1, None]
    detail = testapp.get("/v1/movies/%s/sessions/%s" % (movie["id"], before["id"]), headers=customer.headers).json
    assert detail["capacity"] == 4
    assert [s["capacity"] for s in testapp.get("/v1/movies/" + movie["id"], headers=customer.headers).json["sessions"]] == [4, 1, None]
    seats = testapp.get("/v1/movie-sessions/%s/seats" % before["id"], headers=customer.headers).json["seats"]
    assert [s["seat"] for s in seats] == ["A1", "A2", "B1", "B2"]
    bought = testapp.post_json("/v1/tickets", {"sessionId": before["id"], "seat": "B2"}, headers=customer.headers, status=201).json
    assert bought["seat"] == "B2"
    other = register(testapp, "other")
    testapp.post_json("/v1/tickets", {"sessionId": after["id"], "seat": "A2"}, headers=other.headers, status=400)
    assert testapp.post_json("/v1/tickets", {"sessionId": without["id"]}, headers=other.headers, status=201).json["seat"] is None


# ---------------------------------------------------------------- the API document


def test_the_document_describes_rooms_seats_and_cancelling(testapp):
    document = testapp.get("/v1/api-json").json
    schemas = document.get("definitions") or document["components"]["schemas"]
    for name in ("Room", "PutRoom", "SeatMap"):
        assert schemas[name]["title"] == name
    assert {"name", "rows", "seatsPerRow"} == set(schemas["PutRoom"]["properties"])
    assert {"sessionId", "capacity", "sold", "available", "seats"} == set(schemas["SeatMap"]["properties"])
    assert "seat" in schemas["BuyTicket"]["properties"] and "seat" in schemas["TicketResponse"]["properties"]
    assert "capacity" in schemas["MovieSessionResponse"]["properties"]
    paths = document["paths"]
    assert {"get", "put", "delete"} <= set(paths["/v1/rooms/{roomNumber}"])
    assert {"200", "201"} <= set(paths["/v1/rooms/{roomNumber}"]["put"]["responses"])
    assert "get" in paths["/v1/rooms"] and "get" in paths["/v1/movie-sessions/{sessionId}/seats"]
    assert {"204", "403", "404", "409"} <= set(paths["/v1/tickets/{ticketId}"]["delete"]["responses"])
