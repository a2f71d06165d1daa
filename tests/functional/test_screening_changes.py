"""A box office's working day: one screening read, moved and cancelled (docs/API.md section 11)."""

from datetime import datetime, timedelta, timezone

import pytest
from pony.orm import db_session
from webtest import TestApp

from cinema_api import make_app
from tests.conftest import build_settings, ini_settings, register
from tests.functional.test_movies import UNKNOWN
from tests.functional.test_truth import (
    after_the_purchase_reads,
    in_thread,
    one_statement_purchase,
    purchase_behind,
    race_behind_a_lock,
)

FUTURE = "2031-01-01T20:00:00Z"


@pytest.fixture
def movie(testapp, manager):
    return testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 0}, headers=manager.headers).json


def schedule(testapp, manager, movie, date=FUTURE, timeslot="20:00-22:00", room=1, status=201):
    body = {"date": date, "timeslot": timeslot, "roomNumber": room}
    return testapp.post_json("/v1/movies/%s/sessions" % movie["id"], body, headers=manager.headers, status=status)


def room(testapp, manager, number, rows, seats_per_row):
    testapp.put_json("/v1/rooms/%d" % number, {"rows": rows, "seatsPerRow": seats_per_row}, headers=manager.headers)


def url(session, suffix=""):
    return "/v1/movie-sessions/%s%s" % (session["id"], suffix)


def cancel(testapp, manager, session, status=200):
    return testapp.post(url(session, "/cancel"), headers=manager.headers, status=status)


def patch(testapp, manager, session, body, status=200):
    return testapp.patch_json(url(session), body, headers=manager.headers, status=status)


def buy(testapp, account, session, status=201, **extra):
    return testapp.post_json("/v1/tickets", dict({"sessionId": session["id"]}, **extra), headers=account.headers, status=status)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def set_date(app, session, date):
    """Move a session's start behind the API's back (a session cannot be created in the past)."""
    with db_session:
        app.registry["cinema.db"].Screening[session["id"]].date = date


def today_later_and_earlier():
    """Two instants of today's UTC date: one a little ahead, one a little behind (a check by
    calendar day cannot tell either from now)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    midnight = datetime(now.year, now.month, now.day) + timedelta(days=1)
    if midnight - now < timedelta(seconds=30) or now - (midnight - timedelta(days=1)) < timedelta(seconds=30):
        pytest.skip("too close to midnight UTC for two instants of today")
    ahead = now + min(timedelta(hours=1), (midnight - now) / 2)
    behind = now - min(timedelta(hours=1), (now - (midnight - timedelta(days=1))) / 2)
    return ahead, behind


# ---------------------------------------------------------------- one screening


def test_any_user_reads_one_session(testapp, manager, customer, movie):
    session = schedule(testapp, manager, movie).json
    assert testapp.get(url(session), headers=customer.headers).json == session
    assert testapp.get(url(session), headers=manager.headers).json["cancelledAt"] is None
    assert testapp.get("/v1/movie-sessions/" + UNKNOWN, headers=customer.headers, status=404).json["message"] == "Movie session not found"
    testapp.get("/v1/movie-sessions/nope", headers=customer.headers, status=400)
    testapp.get(url(session), status=401)


# ---------------------------------------------------------------- moving a screening


def test_a_manager_moves_a_session_and_only_the_fields_sent_change(testapp, manager, movie):
    session = schedule(testapp, manager, movie).json
    moved = patch(testapp, manager, session, {"date": "2031-02-01T18:00:00+02:00"}).json
    assert moved["date"] == "2031-02-01T16:00:00.000Z" and moved["timeslot"] == "20:00-22:00" and moved["roomNumber"] == 1
    moved = patch(testapp, manager, session, {"timeslot": "16:00-18:00", "roomNumber": 7}).json
    assert (moved["date"], moved["timeslot"], moved["roomNumber"]) == ("2031-02-01T16:00:00.000Z", "16:00-18:00", 7)
    assert testapp.get(url(session), headers=manager.headers).json == moved
    # the room it left is free again
    schedule(testapp, manager, movie, date="2031-01-01T20:00:00Z", room=1)


def test_an_empty_patch_is_200_and_changes_nothing(testapp, manager, movie):
    session = schedule(testapp, manager, movie).json
    assert patch(testapp, manager, session, {}).json == session


@pytest.mark.parametrize(
    "body, message",
    [
        ({"date": None}, "date"),
        ({"timeslot": None}, "timeslot"),
        ({"roomNumber": None}, "roomNumber"),
        ({"date": "2020-01-01T20:00:00Z"}, "date must be in the future"),
        ({"timeslot": "20:00-21:00"}, "timeslot must be one of the following values"),
        ({"roomNumber": 0}, "roomNumber must not be less than 1"),
        ({"roomNumber": 1000}, "roomNumber must not be greater than 999"),
    ],
)
def test_a_patch_takes_the_create_rules_and_null_is_400(testapp, manager, movie, body, message):
    session = schedule(testapp, manager, movie).json
    response = patch(testapp, manager, session, body, status=400)
    assert response.json["message"][0].startswith(message)
    assert testapp.get(url(session), headers=manager.headers).json == session


def test_only_managers_move_sessions(testapp, manager, customer, movie):
    session = schedule(testapp, manager, movie).json
    patch(testapp, customer, session, {"roomNumber": 2}, status=403)
    testapp.patch_json("/v1/movie-sessions/" + UNKNOWN, {}, headers=manager.headers, status=404)


def test_a_move_into_a_booked_room_is_409(testapp, manager, movie):
    schedule(testapp, manager, movie, room=2)
    session = schedule(testapp, manager, movie, room=1).json
    response = patch(testapp, manager, session, {"roomNumber": 2}, status=409)
    assert response.json["message"] == "Room 2 is already booked for 2031-01-01 20:00-22:00"
    # a session's own slot is no clash
    assert patch(testapp, manager, session, {"roomNumber": 1, "date": "2031-01-01T21:00:00Z"}).json["roomNumber"] == 1


def test_a_session_with_tickets_is_not_moved(testapp, manager, customer, movie):
    session = schedule(testapp, manager, movie).json
    buy(testapp, customer, session)
    response = patch(testapp, manager, session, {"date": "2031-03-01T20:00:00Z"}, status=409)
    assert response.json["message"] == "Movie session has tickets"
    assert testapp.get(url(session), headers=manager.headers).json["date"] == session["date"]


def test_a_started_session_is_not_moved_by_the_instant_not_the_calendar_day(app, testapp, manager, movie):
    ahead, behind = today_later_and_earlier()
    later = schedule(testapp, manager, movie, date=iso(ahead), room=1).json
    started = schedule(testapp, manager, movie, date=FUTURE, room=2).json
    set_date(app, started, behind)
    response = patch(testapp, manager, started, {"roomNumber": 3}, status=400)
    assert response.json["message"] == "Cannot change a past session"
    assert patch(testapp, manager, later, {"roomNumber": 3}).json["roomNumber"] == 3


def test_a_moved_session_keeps_its_plan_unless_its_room_changes(testapp, manager, customer, movie):
    room(testapp, manager, 1, 2, 3)
    room(testapp, manager, 2, 1, 4)
    session = schedule(testapp, manager, movie, room=1).json
    assert session["capacity"] == 6
    room(testapp, manager, 1, 3, 3)  # a later change of the room does not reach the session
    assert patch(testapp, manager, session, {"date": "2031-01-05T20:00:00Z"}).json["capacity"] == 6
    assert patch(testapp, manager, session, {"roomNumber": 2}).json["capacity"] == 4
    assert patch(testapp, manager, session, {"roomNumber": 9}).json["capacity"] is None  # no Room: no plan
    assert testapp.get(url(session, "/seats"), headers=customer.headers).json["seats"] == []


def test_a_move_is_seen_by_the_cached_lists_at_once(testapp, manager, movie):
    session = schedule(testapp, manager, movie).json
    lists = ["/v1/movie-sessions", "/v1/movies/%s/sessions" % movie["id"]]
    one = "/v1/movies/%s/sessions/%s" % (movie["id"], session["id"])
    for path in lists + [one]:
        testapp.get(path, headers=manager.headers)
        assert testapp.get(path, headers=manager.headers).headers["X-Cache"] == "HIT"
    patch(testapp, manager, session, {"roomNumber": 5})
    for path in lists:
        assert testapp.get(path, headers=manager.headers).json["sessions"][0]["roomNumber"] == 5
    assert testapp.get(one, headers=manager.headers).json["roomNumber"] == 5
    cancel(testapp, manager, session)
    for path in lists:
        assert testapp.get(path, headers=manager.headers).json["sessions"][0]["cancelledAt"] is not None
    assert testapp.get(one, headers=manager.headers).json["cancelledAt"] is not None


# ---------------------------------------------------------------- cancelling a screening


def test_cancelling_marks_the_session_and_its_unused_tickets(testapp, manager, customer, movie):
    session = schedule(testapp, manager, movie).json
    mine = buy(testapp, customer, session).json
    other = register(testapp, "other1")
    used = buy(testapp, other, session).json
    testapp.post("/v1/tickets/%s/use" % used["id"], headers=manager.headers)
    cancelled = cancel(testapp, manager, session).json
    assert cancelled["cancelledAt"].endswith("Z") and cancelled["id"] == session["id"]
    assert testapp.get(url(session), headers=customer.headers).json == cancelled
    # the buyer learns it from their own ticket
    mine_now = testapp.get("/v1/tickets/" + mine["id"], headers=customer.headers).json
    assert mine_now["cancelledAt"] == cancelled["cancelledAt"]
    assert testapp.get("/v1/tickets/me", headers=customer.headers).json == [mine_now]
    # a ticket used before keeps no cancellation
    assert testapp.get("/v1/tickets/" + used["id"], headers=other.headers).json["cancelledAt"] is None


def test_after_a_cancellation_buying_using_and_cancelling_again_are_refused(testapp, manager, customer, movie):
    room(testapp, manager, 1, 1, 2)
    session = schedule(testapp, manager, movie).json
    ticket = buy(testapp, customer, session, seat="A1").json
    cancel(testapp, manager, session)
    # before the seat 409 (A1 is taken) and the sold-out 409
    buyer = register(testapp, "late1")
    assert buy(testapp, buyer, session, status=409, seat="A1").json["message"] == "Movie session is cancelled"
    assert buy(testapp, buyer, session, status=409).json["message"] == "Movie session is cancelled"
    response = testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers, status=409)
    assert response.json["message"] == "Ticket is cancelled"
    assert cancel(testapp, manager, session, status=409).json["message"] == "Movie session is already cancelled"
    seats = testapp.get(url(session, "/seats"), headers=customer.headers).json
    assert (seats["capacity"], seats["sold"], seats["available"]) == (2, 1, 0)
    assert testapp.get("/v1/tickets", headers=manager.headers).json[0]["isUsed"] is False
    # a cancelled screening is not moved either
    assert patch(testapp, manager, session, {"roomNumber": 2}, status=409).json["message"] == "Movie session is cancelled"


def test_the_cancellation_409_comes_before_already_purchased_and_sold_out(testapp, manager, customer, movie):
    room(testapp, manager, 1, 1, 1)
    session = schedule(testapp, manager, movie).json
    buy(testapp, customer, session)  # the only seat: sold out
    cancel(testapp, manager, session)
    assert buy(testapp, customer, session, status=409).json["message"] == "Movie session is cancelled"
    assert buy(testapp, register(testapp, "late1"), session, status=409).json["message"] == "Movie session is cancelled"


def test_only_managers_cancel_and_an_unknown_session_is_404(testapp, manager, customer, movie):
    session = schedule(testapp, manager, movie).json
    cancel(testapp, customer, session, status=403)
    assert testapp.get(url(session), headers=manager.headers).json["cancelledAt"] is None
    testapp.post("/v1/movie-sessions/%s/cancel" % UNKNOWN, headers=manager.headers, status=404)
    testapp.post("/v1/movie-sessions/nope/cancel", headers=manager.headers, status=400)


def test_a_started_session_is_not_cancelled_by_the_instant_not_the_calendar_day(app, testapp, manager, movie):
    ahead, behind = today_later_and_earlier()
    later = schedule(testapp, manager, movie, date=iso(ahead), room=1).json
    started = schedule(testapp, manager, movie, date=FUTURE, room=2).json
    set_date(app, started, behind)
    assert cancel(testapp, manager, started, status=400).json["message"] == "Cannot cancel a past session"
    assert testapp.get(url(started), headers=manager.headers).json["cancelledAt"] is None
    assert cancel(testapp, manager, later).json["cancelledAt"] is not None


def test_a_cancelled_screening_frees_its_room_timeslot_and_day(testapp, manager, movie):
    session = schedule(testapp, manager, movie).json
    assert schedule(testapp, manager, movie, status=409).json["message"] == "Room 1 is already booked for 2031-01-01 20:00-22:00"
    cancel(testapp, manager, session)
    replacement = schedule(testapp, manager, movie).json
    items = [{"date": FUTURE, "timeslot": "20:00-22:00", "roomNumber": 1}]
    testapp.post_json("/v1/movies/%s/sessions/bulk" % movie["id"], {"sessions": items}, headers=manager.headers, status=409)
    cancel(testapp, manager, replacement)
    testapp.post_json("/v1/movies/%s/sessions/bulk" % movie["id"], {"sessions": items}, headers=manager.headers, status=201)


def test_the_session_lists_filter_by_cancelled(testapp, manager, customer, movie):
    on = schedule(testapp, manager, movie, room=1).json
    off = schedule(testapp, manager, movie, room=2).json
    cancel(testapp, manager, off)
    for path in ("/v1/movie-sessions", "/v1/movies/%s/sessions" % movie["id"]):
        every = testapp.get(path, headers=customer.headers).json
        assert [s["id"] for s in every["sessions"]] == [on["id"], off["id"]]
        assert every["sessions"][1]["cancelledAt"] is not None
        cancelled = testapp.get(path + "?cancelled=true", headers=customer.headers).json
        assert [s["id"] for s in cancelled["sessions"]] == [off["id"]] and cancelled["meta"]["totalItems"] == 1
        live = testapp.get(path + "?cancelled=false", headers=customer.headers).json
        assert [s["id"] for s in live["sessions"]] == [on["id"]] and live["meta"]["totalItems"] == 1
        testapp.get(path + "?cancelled=yes", headers=customer.headers, status=400)


def test_a_cancelled_screening_is_deleted_only_without_tickets(testapp, manager, customer, movie):
    ticketed = schedule(testapp, manager, movie, room=1).json
    empty = schedule(testapp, manager, movie, room=2).json
    buy(testapp, customer, ticketed)
    cancel(testapp, manager, ticketed)
    cancel(testapp, manager, empty)
    testapp.delete(url(ticketed), headers=manager.headers, status=409)
    testapp.delete(url(empty), headers=manager.headers, status=204)


# ---------------------------------------------------------------- a purchase racing a cancellation


def live_tickets_of_cancelled_sessions(testapp, manager):
    return [
        t for t in testapp.get("/v1/tickets", headers=manager.headers).json
        if t["cancelledAt"] is None and testapp.get("/v1/movie-sessions/" + t["sessionId"], headers=manager.headers).json["cancelledAt"]
    ]


@pytest.mark.parametrize("seated", [False, True])
def test_a_purchase_that_read_the_session_before_its_cancellation_sells_nothing(app, testapp, manager, customer, movie, monkeypatch, seated):
    """The purchase has read the screening as on; the cancellation commits before it inserts:
    the database refuses the ticket, and the answer is the cancellation's 409."""
    if seated:
        room(testapp, manager, 1, 2, 2)
    session = schedule(testapp, manager, movie).json
    db = app.registry["cinema.db"]
    if one_statement_purchase(db):
        pytest.skip("read and sold in one statement: raced inside it by the test below")

    def cancel():
        in_thread(lambda: TestApp(app).post(url(session, "/cancel"), headers=manager.headers, status=200)).join(30)

    after_the_purchase_reads(monkeypatch, db, cancel)
    assert buy(testapp, customer, session, status=409).json["message"] == "Movie session is cancelled"
    monkeypatch.undo()
    assert testapp.get("/v1/tickets", headers=manager.headers).json == []


@pytest.mark.parametrize("seated", [False, True])
@pytest.mark.parametrize("change, status, message", [
    ("cancelled", 409, "Movie session is cancelled"),
    ("deleted", 404, "Movie session not found"),
])
def test_a_one_statement_purchase_waits_for_its_sessions_change_and_sells_nothing(
    app, settings, testapp, manager, customer, movie, change, status, message, seated
):
    """PostgreSQL: a purchase without a chosen seat reads and sells in one statement (with a
    seat plan, of its first free seat), which locks the session's row for share. A cancellation
    or a deletion that holds the row when the statement starts makes it wait; once that
    commits, nothing is sold and the answer is what the session has become, though the
    statement's read still saw it on sale."""
    db = app.registry["cinema.db"]
    if not one_statement_purchase(db):
        pytest.skip("on SQLite a purchase reads, then sells: raced between the two above")
    if seated:
        room(testapp, manager, 1, 2, 2)
    session = schedule(testapp, manager, movie).json
    change_sql = {
        "cancelled": "UPDATE movie_sessions SET cancelled_at = now() AT TIME ZONE 'UTC' WHERE id = %s",
        "deleted": "DELETE FROM movie_sessions WHERE id = %s",
    }[change]
    # the row stays locked until the change commits
    answer = purchase_behind(app, settings, customer, session["id"], change_sql, (session["id"],),
                             "the purchase did not wait for the session's row")
    assert answer.status_int == status and answer.json["message"] == message
    assert testapp.get("/v1/tickets", headers=manager.headers).json == []


def test_a_purchase_racing_a_cancellation_is_sold_then_cancelled_or_refused(app, settings, testapp, manager, movie):
    """Both requests start at once behind a write lock (a barrier), in several rounds: each ends
    with the ticket sold and then cancelled, or with 409 `Movie session is cancelled`; never a
    live ticket for a cancelled screening."""
    room(testapp, manager, 1, 2, 2)
    outcomes = set()
    for round_ in range(6):
        session = schedule(testapp, manager, movie, date="2031-01-%02dT20:00:00Z" % (round_ + 1)).json
        buyer = register(testapp, "racer%d" % round_)
        attempts = [
            lambda client, session=session, buyer=buyer: client.post_json(
                "/v1/tickets", {"sessionId": session["id"]}, headers=buyer.headers, expect_errors=True
            ),
            lambda client, session=session: client.post(url(session, "/cancel"), headers=manager.headers, expect_errors=True),
        ]
        if round_ % 2:
            attempts.reverse()
        responses = race_behind_a_lock(app, settings, attempts)
        purchase = responses[round_ % 2]
        assert responses[1 - round_ % 2].status_int == 200
        sold = testapp.get("/v1/tickets?sessionId=" + session["id"], headers=manager.headers).json
        if purchase.status_int == 201:
            assert [t["cancelledAt"] for t in sold] != [None] and len(sold) == 1
            outcomes.add("sold then cancelled")
        else:
            assert (purchase.status_int, purchase.json["message"]) == (409, "Movie session is cancelled")
            assert sold == []
            outcomes.add("refused")
    assert live_tickets_of_cancelled_sessions(testapp, manager) == []
    assert outcomes  # which ones occur depends on the scheduler; both are correct


# ---------------------------------------------------------------- ROOMS_REQUIRED


@pytest.fixture
def rooms_required(testapp, test_environ):
    """An application of its own, on the suite's database, with ROOMS_REQUIRED=true."""
    settings = build_settings(dict(test_environ, ROOMS_REQUIRED="true"))
    return TestApp(make_app(settings, ini_settings()), extra_environ={"REMOTE_ADDR": "127.0.0.1"})


def test_rooms_are_optional_by_default(testapp, manager, movie):
    assert schedule(testapp, manager, movie, room=42).json["capacity"] is None


def test_with_rooms_required_a_screening_goes_only_into_a_room_that_exists(manager, movie, rooms_required):
    testapp = rooms_required
    response = schedule(testapp, manager, movie, room=42, status=404)
    assert response.json["message"] == "Room 42 not found"
    items = [{"date": FUTURE, "timeslot": "20:00-22:00", "roomNumber": 1}, {"date": FUTURE, "timeslot": "20:00-22:00", "roomNumber": 43}]
    room(testapp, manager, 1, 2, 2)
    response = testapp.post_json("/v1/movies/%s/sessions/bulk" % movie["id"], {"sessions": items}, headers=manager.headers, status=404)
    assert response.json["message"] == "Room 43 not found"
    assert testapp.get("/v1/movie-sessions", headers=manager.headers).json["sessions"] == []
    session = schedule(testapp, manager, movie, room=1).json
    assert patch(testapp, manager, session, {"roomNumber": 44}, status=404).json["message"] == "Room 44 not found"
    room(testapp, manager, 44, 1, 1)
    assert patch(testapp, manager, session, {"roomNumber": 44}).json["capacity"] == 1


def test_the_rooms_required_setting_is_off_by_default_and_read_from_the_environment():
    from cinema_api.settings import SCHEMA

    assert SCHEMA["rooms_required"][1] is False
    assert build_settings({}).rooms_required is False
    assert build_settings({"ROOMS_REQUIRED": "true"}).rooms_required is True
