"""Tickets: buying, age limits, one-time use, cancellation, lists, watch history."""

from datetime import datetime

import pytest
from pony.orm import db_session

from tests.conftest import register
from tests.functional.test_movies import UNKNOWN, run_parallel


@pytest.fixture
def show(testapp, manager):
    """A 16+ movie with two future sessions."""
    movie = testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json
    items = [
        {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1},
        {"date": "2031-01-02T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1},
    ]
    sessions = testapp.post_json("/v1/movies/%s/sessions/bulk" % movie["id"], {"sessions": items}, headers=manager.headers).json
    return movie, sessions


def buy(testapp, account, session_id=None, status=201, **extra):
    body = dict({"sessionId": session_id}, **extra) if session_id is not None else extra
    return testapp.post_json("/v1/tickets", body, headers=account.headers, status=status)


def test_buy_a_ticket(testapp, customer, show):
    movie, sessions = show
    body = buy(testapp, customer, sessions[0]["id"]).json
    assert set(body) == {"id", "userId", "sessionId", "seat", "purchasedAt", "isUsed", "usedAt", "cancelledAt", "session"}
    assert body["cancelledAt"] is None
    assert body["userId"] == customer.id and body["sessionId"] == sessions[0]["id"]
    assert body["isUsed"] is False and body["usedAt"] is None
    assert body["seat"] is None  # room 1 has no Room: no seat plan
    assert body["session"] == {
        "id": sessions[0]["id"],
        "date": "2031-01-01T20:00:00.000Z",
        "timeslot": "20:00-22:00",
        "roomNumber": 1,
        "movie": {"id": movie["id"], "title": "Alien", "ageRestriction": 16},
    }


def test_own_user_id_is_accepted_and_another_is_403_for_managers_too(testapp, customer, manager, show):
    _, sessions = show
    buy(testapp, customer, sessions[0]["id"], userId=customer.id.upper())
    response = buy(testapp, manager, sessions[1]["id"], userId=customer.id, status=403)
    assert response.json["message"] == "You can only buy tickets for yourself"
    # ownership is checked before the session's existence
    buy(testapp, customer, UNKNOWN, userId=manager.id, status=403)


def test_one_ticket_per_user_and_session(testapp, customer, show):
    _, sessions = show
    buy(testapp, customer, sessions[0]["id"])
    assert buy(testapp, customer, sessions[0]["id"], status=409).json["message"] == "Ticket already purchased for this session"
    buy(testapp, customer, sessions[1]["id"])


def test_unknown_session_is_404(testapp, customer):
    assert buy(testapp, customer, UNKNOWN, status=404).json["message"] == "Movie session not found"


@pytest.mark.parametrize("body, message", [({}, "sessionId should not be empty"), ({"sessionId": "x"}, "sessionId must be a UUID"), ({"sessionId": UNKNOWN, "userId": 5}, "userId must be a UUID")])
def test_buy_validation(testapp, customer, body, message):
    assert testapp.post_json("/v1/tickets", body, headers=customer.headers, status=400).json["message"] == [message]


def test_a_session_that_started_cannot_be_bought(testapp, app, customer, show):
    _, sessions = show
    with db_session:
        app.registry["cinema.db"].Screening[sessions[0]["id"]].date = datetime(2020, 1, 1, 20)
    assert buy(testapp, customer, sessions[0]["id"], status=400).json["message"] == "Cannot buy a ticket for a past session"


def test_underage_buyers_are_refused(testapp, show):
    _, sessions = show
    teen = register(testapp, "teen", age=15)
    response = buy(testapp, teen, sessions[0]["id"], status=403)
    assert response.json["message"] == "You must be at least 16 years old to watch this movie"
    buy(testapp, register(testapp, "sixteen", age=16), sessions[0]["id"])


def test_check_order_past_before_age_before_duplicate(testapp, app, show):
    _, sessions = show
    teen = register(testapp, "teen", age=10)
    with db_session:
        app.registry["cinema.db"].Screening[sessions[0]["id"]].date = datetime(2020, 1, 1, 20)
    buy(testapp, teen, sessions[0]["id"], status=400)  # already started wins over age


@pytest.mark.parametrize("refusal", ["started", "too young", "cancelled", "unknown session"])
def test_a_refused_purchase_sells_nothing(testapp, app, manager, show, refusal):
    """Each check that refuses a purchase leaves the buyer without a ticket: on PostgreSQL a
    purchase without a seat reads and sells in one statement, which must not sell where a check
    then refuses."""
    _, sessions = show
    session_id = sessions[0]["id"]
    buyer = register(testapp, "buyer1", age=15 if refusal == "too young" else 30)
    if refusal == "started":
        with db_session:
            app.registry["cinema.db"].Screening[session_id].date = datetime(2020, 1, 1, 20)
    elif refusal == "cancelled":
        testapp.post("/v1/movie-sessions/%s/cancel" % session_id, headers=manager.headers)
    elif refusal == "unknown session":
        session_id = UNKNOWN
    status = {"started": 400, "too young": 403, "cancelled": 409, "unknown session": 404}[refusal]
    buy(testapp, buyer, session_id, status=status)
    assert testapp.get("/v1/tickets/me", headers=buyer.headers).json == []


def test_tokens_are_required(testapp, show):
    _, sessions = show
    testapp.post_json("/v1/tickets", {"sessionId": sessions[0]["id"]}, status=401)


#: Purchases, each with the answer a live token gets: (name, body given the show's sessions,
#: a session with a seat plan and another user's id, status).
PURCHASES_ANSWERED = [
    ("sold", lambda sessions, seated, other: {"sessionId": sessions[0]["id"]}, 201),
    ("first free seat", lambda sessions, seated, other: {"sessionId": seated}, 201),
    ("chosen seat", lambda sessions, seated, other: {"sessionId": seated, "seat": "B2"}, 201),
    ("second ticket", lambda sessions, seated, other: {"sessionId": sessions[1]["id"]}, 409),
    ("refused body", lambda sessions, seated, other: {"sessionId": "not-an-id"}, 400),
    ("no such session", lambda sessions, seated, other: {"sessionId": UNKNOWN}, 404),
    ("another buyer", lambda sessions, seated, other: {"sessionId": sessions[0]["id"], "userId": other}, 403),
    ("a seat without a plan", lambda sessions, seated, other: {"sessionId": sessions[0]["id"], "seat": "A1"}, 400),
]


@pytest.mark.parametrize("name, body, live_status", PURCHASES_ANSWERED, ids=[case[0] for case in PURCHASES_ANSWERED])
def test_a_revoked_token_gets_its_401_before_any_other_answer_and_buys_nothing(testapp, manager, show, name, body, live_status):
    """On PostgreSQL the security policy leaves a purchase's login-session check to the purchase's
    own statement (cinema_api.auth.identity): whatever else the purchase would answer, a token
    whose login session has ended (logout) gets the policy's 401, and no ticket is sold. With a
    live token the same purchase gets its own answer (the case is the one it names)."""
    movie, sessions = show
    testapp.put_json("/v1/rooms/2", {"rows": 2, "seatsPerRow": 3}, headers=manager.headers)
    seated = {"date": "2031-01-03T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 2}
    seated = testapp.post_json("/v1/movies/%s/sessions" % movie["id"], seated, headers=manager.headers).json["id"]
    live, revoked = register(testapp, "live_" + name.replace(" ", "_")[:20]), register(testapp, "gone_" + name.replace(" ", "_")[:20])
    for account in (live, revoked):
        buy(testapp, account, sessions[1]["id"])  # the ticket a second purchase of it collides with
    testapp.post("/v1/auth/logout", headers=revoked.headers, status=204)
    response = buy(testapp, revoked, status=401, **body(sessions, seated, manager.id))
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["message"] == "Token has been revoked" and response.json["code"] == "INVALID_TOKEN"
    sold = testapp.get("/v1/tickets", {"userId": revoked.id}, headers=manager.headers).json
    assert [ticket["sessionId"] for ticket in sold] == [sessions[1]["id"]]
    # the same purchase with a live token, after: its seat is still free
    assert buy(testapp, live, status=live_status, **body(sessions, seated, manager.id)).status_int == live_status



def test_only_a_purchase_on_postgresql_defers_its_login_check_and_only_inside_the_tween_that_makes_it(registry):
    """The security policy leaves the check to the view only where the view's statement makes it
    (POST /v1/tickets, PostgreSQL), and only while the request is inside the tween that makes a
    deferred check in the end: an identity first asked outside it (an exception view) is checked
    at once, or the check would never be made."""
    from types import SimpleNamespace

    from cinema_api.auth.security_policy import defers_login_check
    from cinema_api.core.state import request_state

    def asks(route, method="POST", inside=True, dialect="PostgreSQL"):
        environ = {}
        request_state(environ).login_check_deferrable = inside
        return defers_login_check(SimpleNamespace(
            matched_route=SimpleNamespace(name=route) if route else None, method=method, registry=registry,
            db=SimpleNamespace(provider=SimpleNamespace(dialect=dialect)), environ=environ,
        ))

    assert asks("tickets")
    assert not asks("tickets", inside=False)
    assert not asks("tickets", dialect="SQLite")
    assert not asks("tickets", method="GET")
    assert not asks("my_tickets")
    assert not asks(None)


# ---------------------------------------------------------------- use and delete


# ---------------------------------------------------------------- one ticket (docs/API.md section 11)


def test_the_purchase_location_answers_the_body_the_purchase_answered(testapp, customer, show):
    _, sessions = show
    response = buy(testapp, customer, sessions[0]["id"])
    location = response.headers["Location"]
    assert location.endswith("/v1/tickets/" + response.json["id"])
    assert testapp.get(location, headers=customer.headers, status=200).json == response.json


def test_a_ticket_reads_as_in_the_lists_for_its_owner_and_managers(testapp, customer, manager, show):
    _, sessions = show
    ticket = buy(testapp, customer, sessions[0]["id"]).json
    used = testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers).json
    listed = testapp.get("/v1/tickets/me", headers=customer.headers).json
    assert testapp.get("/v1/tickets/" + ticket["id"], headers=customer.headers).json == used == listed[0]
    assert testapp.get("/v1/tickets/" + ticket["id"].upper(), headers=manager.headers).json == used


def test_another_customers_ticket_is_403_and_the_checks_come_400_404_403(testapp, customer, show):
    _, sessions = show
    ticket = buy(testapp, customer, sessions[0]["id"]).json
    other = register(testapp, "other1")
    response = testapp.get("/v1/tickets/" + ticket["id"], headers=other.headers, status=403)
    assert response.json["message"] == "You can only view your own tickets"
    assert testapp.get("/v1/tickets/" + UNKNOWN, headers=other.headers, status=404).json["message"] == "Ticket not found"
    testapp.get("/v1/tickets/not-a-uuid", headers=other.headers, status=400)
    testapp.get("/v1/tickets/" + ticket["id"], status=401)


def test_use_a_ticket_once(testapp, customer, manager, show):
    _, sessions = show
    ticket = buy(testapp, customer, sessions[0]["id"]).json
    testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=customer.headers, status=403)
    used = testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers).json
    assert used["isUsed"] is True and used["usedAt"].endswith("Z")
    response = testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers, status=409)
    assert response.json["message"] == "Ticket has already been used"
    assert testapp.post("/v1/tickets/%s/use" % UNKNOWN, headers=manager.headers, status=404).json["message"] == "Ticket not found"


def test_managers_delete_any_ticket_used_ones_too(testapp, customer, manager, show):
    _, sessions = show
    ticket = buy(testapp, customer, sessions[0]["id"]).json
    testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers)
    testapp.delete("/v1/tickets/" + ticket["id"], headers=customer.headers, status=409)  # the owner may not: used
    assert testapp.delete("/v1/tickets/" + ticket["id"], headers=manager.headers, status=204).body == b""
    testapp.delete("/v1/tickets/" + ticket["id"], headers=manager.headers, status=404)
    buy(testapp, customer, sessions[0]["id"])  # may buy again after cancellation


def test_movies_and_sessions_with_tickets_cannot_be_deleted(testapp, customer, manager, show):
    movie, sessions = show
    buy(testapp, customer, sessions[0]["id"])
    assert testapp.delete("/v1/movie-sessions/" + sessions[0]["id"], headers=manager.headers, status=409).json["message"] == (
        "Movie session has tickets and cannot be deleted"
    )
    response = testapp.delete_json("/v1/movie-sessions/bulk", {"sessionIds": [sessions[1]["id"], sessions[0]["id"]]}, headers=manager.headers, status=409)
    assert response.json["message"] == "Movie session with ID %s has tickets and cannot be deleted" % sessions[0]["id"]
    assert testapp.delete("/v1/movies/" + movie["id"], headers=manager.headers, status=409).json["message"] == (
        "Movie has sessions with tickets and cannot be deleted"
    )
    response = testapp.delete_json("/v1/movies/bulk", {"movieIds": [movie["id"]]}, headers=manager.headers, status=409)
    assert response.json["message"] == "Movie with ID %s has sessions with tickets and cannot be deleted" % movie["id"]
    # nothing was deleted
    assert len(testapp.get("/v1/movies/" + movie["id"], headers=manager.headers).json["sessions"]) == 2


# ---------------------------------------------------------------- lists


@pytest.fixture
def history(testapp, customer, manager, show):
    _, sessions = show
    first = buy(testapp, customer, sessions[0]["id"]).json
    second = buy(testapp, customer, sessions[1]["id"]).json
    testapp.post("/v1/tickets/%s/use" % first["id"], headers=manager.headers)
    other = register(testapp, "other", age=40)
    third = buy(testapp, other, sessions[0]["id"]).json
    return first, second, third, other


def ids(response):
    return [t["id"] for t in response.json]


def test_my_tickets_newest_first_and_the_watch_history(testapp, customer, history):
    first, second, _, _ = history
    response = testapp.get("/v1/tickets/me", headers=customer.headers)
    assert ids(response) == [second["id"], first["id"]]
    assert response.headers["X-Total-Count"] == "2" and 'rel="first"' in response.headers["Link"]
    watched = testapp.get("/v1/tickets/me?filterByUse=used", headers=customer.headers).json
    assert [t["id"] for t in watched] == [first["id"]]
    assert watched[0]["session"]["movie"]["title"] == "Alien"
    assert ids(testapp.get("/v1/tickets/me?filterByUse=unused", headers=customer.headers)) == [second["id"]]


def test_managers_list_every_ticket_with_filters(testapp, manager, customer, history, show):
    first, second, third, other = history
    _, sessions = show
    assert ids(testapp.get("/v1/tickets", headers=manager.headers)) == [third["id"], second["id"], first["id"]]
    assert ids(testapp.get("/v1/tickets?userId=" + other.id, headers=manager.headers)) == [third["id"]]
    assert ids(testapp.get("/v1/tickets?sessionId=" + sessions[0]["id"], headers=manager.headers)) == [third["id"], first["id"]]
    assert ids(testapp.get("/v1/tickets?filterByUse=used", headers=manager.headers)) == [first["id"]]
    assert ids(testapp.get("/v1/tickets?userId=" + UNKNOWN, headers=manager.headers)) == []
    page = testapp.get("/v1/tickets?perPage=2&page=2", headers=manager.headers)
    assert ids(page) == [first["id"]] and page.headers["X-Total-Count"] == "3"
    testapp.get("/v1/tickets", headers=customer.headers, status=403)


def test_user_with_tickets_and_user_tickets(testapp, manager, customer, history):
    first, second, _, _ = history
    body = testapp.get("/v1/users/" + customer.id, headers=customer.headers).json
    assert [t["id"] for t in body["tickets"]] == [second["id"], first["id"]]
    listed = testapp.get("/v1/users/%s/tickets?filterByUse=used" % customer.id, headers=manager.headers)
    assert ids(listed) == [first["id"]] and listed.headers["X-Total-Count"] == "1"


# ---------------------------------------------------------------- concurrency


def test_parallel_purchases_of_one_session_by_one_user_give_one_201(app, testapp, customer, manager, show):
    _, sessions = show
    body = {"sessionId": sessions[0]["id"]}
    results = run_parallel(app, 20, lambda client: client.post_json("/v1/tickets", body, headers=customer.headers, expect_errors=True))
    assert results == [201] + [409] * 19
    assert testapp.get("/v1/tickets", headers=manager.headers).headers["X-Total-Count"] == "1"


def test_parallel_uses_of_one_ticket_give_one_200(app, testapp, customer, manager, show):
    _, sessions = show
    ticket = buy(testapp, customer, sessions[0]["id"]).json
    url = "/v1/tickets/%s/use" % ticket["id"]
    results = run_parallel(app, 20, lambda client: client.post(url, headers=manager.headers, expect_errors=True))
    assert results == [200] + [409] * 19


def test_a_cancellation_racing_a_managers_delete_of_the_ticket_is_404(testapp, customer, show, settings, db, monkeypatch):
    from tests.conftest import commit_elsewhere

    ticket = buy(testapp, customer, show[1][0]["id"]).json
    cancel_unused = db.Ticket.cancel_unused

    def deleted_meanwhile(ticket_id):
        commit_elsewhere(settings, 'DELETE FROM "tickets" WHERE "id" = %s', ticket["id"])  # the manager's delete
        return cancel_unused(ticket_id)

    monkeypatch.setattr(db.Ticket, "cancel_unused", deleted_meanwhile)
    body = testapp.delete("/v1/tickets/%s" % ticket["id"], headers=customer.headers, status=404).json
    assert body["message"] == "Ticket not found"


def test_a_cancellation_racing_a_use_at_the_door_is_409_and_the_ticket_stays_used(testapp, customer, manager, show, settings, db, monkeypatch):
    from tests.conftest import commit_elsewhere

    ticket = buy(testapp, customer, show[1][0]["id"]).json
    cancel_unused = db.Ticket.cancel_unused

    def used_meanwhile(ticket_id):
        commit_elsewhere(settings, 'UPDATE "tickets" SET "is_used" = %s WHERE "id" = %s', True, ticket["id"])
        return cancel_unused(ticket_id)

    monkeypatch.setattr(db.Ticket, "cancel_unused", used_meanwhile)
    body = testapp.delete("/v1/tickets/%s" % ticket["id"], headers=customer.headers, status=409).json
    assert body["message"] == "Ticket has already been used"
    monkeypatch.undo()
    assert testapp.get("/v1/tickets/me", headers=customer.headers).json[0]["isUsed"] is True
