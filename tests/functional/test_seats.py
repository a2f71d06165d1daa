"""Seats: buying a chosen or the first free seat, the seat map, cancelling (docs/API.md sections 5 and 10)."""

import uuid
from datetime import datetime

import pytest
from pony.orm import db_session
from webtest import TestApp

from cinema_api.infrastructure.sql import on_sqlite
from cinema_api.rooms.entities import SeatPlan
from tests.conftest import register
from tests.functional.test_movies import UNKNOWN, run_parallel
from tests.functional.test_truth import in_thread, purchase_behind, race_behind_a_lock


@pytest.fixture
def movie(testapp, manager):
    return testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers).json


def session_in(testapp, manager, movie, room, rows=None, seats_per_row=None, date="2031-01-01T20:00:00Z"):
    """A session in ``room``; with ``rows`` the room is (re)defined first."""
    if rows is not None:
        testapp.put_json("/v1/rooms/%d" % room, {"rows": rows, "seatsPerRow": seats_per_row}, headers=manager.headers)
    body = {"date": date, "timeslot": "20:00-22:00", "roomNumber": room}
    return testapp.post_json("/v1/movies/%s/sessions" % movie["id"], body, headers=manager.headers, status=201).json


@pytest.fixture
def seated(testapp, manager, movie):
    """A session with 2 rows of 3 seats."""
    return session_in(testapp, manager, movie, 3, rows=2, seats_per_row=3)


@pytest.fixture
def unseated(testapp, manager, movie):
    """A session in a room without a Room: no seat plan."""
    return session_in(testapp, manager, movie, 4)


def buy(testapp, account, session, status=201, **extra):
    return testapp.post_json("/v1/tickets", dict({"sessionId": session["id"]}, **extra), headers=account.headers, status=status)


def seat_map(testapp, account, session, status=200):
    return testapp.get("/v1/movie-sessions/%s/seats" % session["id"], headers=account.headers, status=status)


def taken(testapp, account, session):
    return [s["seat"] for s in seat_map(testapp, account, session).json["seats"] if s["taken"]]


def customers(testapp, count, prefix="buyer"):
    return [register(testapp, "%s%d" % (prefix, i)) for i in range(count)]


def set_date(app, session, date):
    with db_session:
        app.registry["cinema.db"].Screening[session["id"]].date = date


# ---------------------------------------------------------------- buying


def test_a_chosen_seat_is_sold_and_shown_in_every_ticket_response(testapp, manager, customer, seated):
    ticket = buy(testapp, customer, seated, seat="B2").json
    assert ticket["seat"] == "B2"
    assert testapp.get("/v1/tickets/me", headers=customer.headers).json[0]["seat"] == "B2"
    assert testapp.get("/v1/tickets", headers=manager.headers).json[0]["seat"] == "B2"
    assert testapp.get("/v1/users/%s/tickets" % customer.id, headers=manager.headers).json[0]["seat"] == "B2"
    assert testapp.get("/v1/users/" + customer.id, headers=customer.headers).json["tickets"][0]["seat"] == "B2"
    used = testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers).json
    assert used["seat"] == "B2"
    assert testapp.get("/v1/tickets/me?filterByUse=used", headers=customer.headers).json[0]["seat"] == "B2"  # the watch history


def test_without_a_seat_the_lowest_row_then_the_lowest_number_is_assigned(testapp, seated):
    first, second, third, fourth, fifth = customers(testapp, 5)
    buy(testapp, first, seated, seat="A2")
    assert buy(testapp, second, seated).json["seat"] == "A1"
    assert buy(testapp, third, seated).json["seat"] == "A3"
    buy(testapp, fourth, seated, seat="B1")
    assert buy(testapp, fifth, seated).json["seat"] == "B2"


def test_the_first_free_seat_goes_by_the_seats_number_not_its_label(testapp, manager, movie):
    """A2 comes before A10 (as text it would not), on both databases: on PostgreSQL the
    purchase's statement picks the seat, on SQLite Python does."""
    session = session_in(testapp, manager, movie, 7, rows=2, seats_per_row=12)
    buyers = customers(testapp, 12)
    buy(testapp, buyers[0], session, seat="A1")
    assert buy(testapp, buyers[1], session).json["seat"] == "A2"
    for number, buyer in zip(range(3, 10), buyers[2:9], strict=True):
        buy(testapp, buyer, session, seat="A%d" % number)
    assert [buy(testapp, buyer, session).json["seat"] for buyer in buyers[9:12]] == ["A10", "A11", "A12"]
    assert buy(testapp, customers(testapp, 1, "late")[0], session).json["seat"] == "B1"


def test_a_session_sells_no_more_tickets_than_seats(testapp, seated):
    buyers = customers(testapp, 7)
    assert sorted(buy(testapp, buyer, seated).json["seat"] for buyer in buyers[:6]) == ["A1", "A2", "A3", "B1", "B2", "B3"]
    response = buy(testapp, buyers[6], seated, status=409)
    assert response.json == {"statusCode": 409, "error": "Conflict", "code": "SOLD_OUT", "message": "Movie session is sold out"}
    assert buy(testapp, buyers[6], seated, seat="A1", status=409).json["message"] == "Seat A1 is already taken"
    assert testapp.get("/v1/tickets/me", headers=buyers[6].headers).json == []


def test_a_taken_seat_is_409_and_changes_nothing(testapp, manager, seated):
    first, second = customers(testapp, 2)
    buy(testapp, first, seated, seat="A1")
    response = buy(testapp, second, seated, seat="A1", status=409)
    assert response.json["message"] == "Seat A1 is already taken"
    assert testapp.get("/v1/tickets", headers=manager.headers).headers["X-Total-Count"] == "1"
    assert buy(testapp, second, seated, seat="A2").json["seat"] == "A2"


def test_the_409s_come_in_order_already_purchased_then_seat_taken(testapp, seated):
    first, second = customers(testapp, 2)
    buy(testapp, first, seated, seat="A1")
    buy(testapp, second, seated, seat="A2")
    assert buy(testapp, first, seated, seat="A2", status=409).json["message"] == "Ticket already purchased for this session"
    assert buy(testapp, first, seated, seat="B3", status=409).json["message"] == "Ticket already purchased for this session"
    assert buy(testapp, first, seated, status=409).json["message"] == "Ticket already purchased for this session"


def test_already_purchased_comes_before_sold_out(testapp, manager, movie):
    full = session_in(testapp, manager, movie, 5, rows=1, seats_per_row=1)
    (buyer,) = customers(testapp, 1)
    buy(testapp, buyer, full)
    assert buy(testapp, buyer, full, status=409).json["message"] == "Ticket already purchased for this session"


def test_a_seat_outside_the_plan_is_400(testapp, manager, customer, seated):
    for label in ("C1", "A4", "Z50"):
        response = buy(testapp, customer, seated, seat=label, status=400)
        assert response.json["message"] == "Seat %s does not exist in this session" % label
    assert testapp.get("/v1/tickets", headers=manager.headers).json == []


def test_any_seat_for_a_session_without_a_plan_is_400_and_without_one_it_sells_without_limit(testapp, customer, unseated):
    assert buy(testapp, customer, unseated, seat="A1", status=400).json["message"] == "This session has no seat plan"
    buyers = customers(testapp, 3)
    assert [buy(testapp, buyer, unseated).json["seat"] for buyer in buyers] == [None, None, None]


@pytest.mark.parametrize("seat", ["a1", "A0", "A01", "A100", "AA1", "1A", "", "Ä1", "A１", 7, None, ["A1"]])
def test_a_seat_that_is_not_a_label_is_a_schema_400(testapp, manager, customer, seated, seat):
    response = testapp.post_json("/v1/tickets", {"sessionId": seated["id"], "seat": seat}, headers=customer.headers, status=400)
    assert len(response.json["message"]) == 1 and response.json["message"][0].startswith("seat ")
    assert response.json["errors"][0]["name"] == "seat"
    assert testapp.get("/v1/tickets", headers=manager.headers).json == []


def test_a_label_is_trimmed_like_every_string(testapp, customer, seated):
    assert buy(testapp, customer, seated, seat=" B3 ").json["seat"] == "B3"


def test_seat_checks_come_after_404_past_and_age_and_before_the_409s(app, testapp, manager, seated):
    adult, teen = register(testapp, "adult"), register(testapp, "teen", age=12)
    assert buy(testapp, adult, {"id": UNKNOWN}, seat="Z50", status=404).json["message"] == "Movie session not found"
    assert buy(testapp, teen, seated, seat="Z50", status=403).json["message"] == "You must be at least 16 years old to watch this movie"
    buy(testapp, adult, seated, seat="A1")
    # already purchased (409) comes after the seat's 400
    assert buy(testapp, adult, seated, seat="Z50", status=400).json["message"] == "Seat Z50 does not exist in this session"
    set_date(app, seated, datetime(2020, 1, 1, 20))
    assert buy(testapp, teen, seated, seat="Z50", status=400).json["message"] == "Cannot buy a ticket for a past session"


def test_a_seat_outside_the_plan_from_any_other_path_is_refused_by_the_database(testapp, manager, customer, seated, monkeypatch):
    """The domain's check switched off: the database's rule still answers, as a 400, and nothing is sold."""
    monkeypatch.setattr(SeatPlan, "__contains__", lambda plan, label: True)
    response = buy(testapp, customer, seated, seat="C1", status=400)
    assert response.json["message"] == "The seat does not exist in this session"
    monkeypatch.undo()
    assert testapp.get("/v1/tickets", headers=manager.headers).json == []


def test_parallel_buyers_of_one_seat_get_one_ticket(app, testapp, manager, seated):
    buyers = customers(testapp, 10)
    queue = list(buyers)
    results = run_parallel(
        app, 10, lambda client: client.post_json("/v1/tickets", {"sessionId": seated["id"], "seat": "B2"}, headers=queue.pop().headers, expect_errors=True)
    )
    assert results == [201] + [409] * 9
    assert taken(testapp, manager, seated) == ["B2"]


def test_one_buyer_racing_themself_for_a_seat_is_told_they_already_have_a_ticket(app, settings, testapp, manager, customer, seated):
    """Every request has seen no ticket before any writes (a write lock holds them back): the
    losers' seat is taken by the winner, who is the same buyer, and that 409 comes first."""
    attempt = lambda client: client.post_json("/v1/tickets", {"sessionId": seated["id"], "seat": "B2"}, headers=customer.headers, expect_errors=True)  # noqa: E731
    responses = race_behind_a_lock(app, settings, [attempt] * 4)
    assert sorted(r.status_int for r in responses) == [201, 409, 409, 409]
    assert {r.json["message"] for r in responses if r.status_int == 409} == {"Ticket already purchased for this session"}
    assert taken(testapp, manager, seated) == ["B2"]


def test_parallel_buyers_of_first_free_seats_never_overbook(app, testapp, manager, movie):
    session = session_in(testapp, manager, movie, 6, rows=1, seats_per_row=5)
    queue = customers(testapp, 12)
    results = run_parallel(
        app, 12, lambda client: client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=queue.pop().headers, expect_errors=True)
    )
    assert results == [201] * 5 + [409] * 7
    assert taken(testapp, manager, session) == ["A1", "A2", "A3", "A4", "A5"]


def test_a_first_free_seat_sold_meanwhile_makes_the_purchase_take_the_next(app, settings, testapp, manager, movie):
    """PostgreSQL: the purchase's one statement picks A1, which another transaction has inserted
    and not yet committed; the statement waits for that transaction on the unique key of session
    and seat, then sells nothing, and the purchase reads the seats again and sells A2. (On SQLite
    writers queue: a purchase never sees a seat that is being sold.)"""
    if on_sqlite(app.registry["cinema.db"]):
        pytest.skip("SQLite serialises writers: no sale is ever half-way for another to meet")
    session = session_in(testapp, manager, movie, 6, rows=1, seats_per_row=3)
    other, buyer = customers(testapp, 2)
    answer = purchase_behind(
        app, settings, buyer, session["id"],
        "INSERT INTO tickets (id, user_id, session_id, seat, purchased_at, is_used)"
        " VALUES (%s, %s, %s, 'A1', now() AT TIME ZONE 'UTC', false)",
        (str(uuid.uuid4()), other.id, session["id"]),
        "the purchase's statement did not wait for the seat's sale",
    )
    assert answer.status_int == 201 and answer.json["seat"] == "A2"
    assert taken(testapp, manager, session) == ["A1", "A2"]


# ---------------------------------------------------------------- the seat map


def test_the_seat_map_lists_every_seat_in_order_with_what_is_taken(testapp, customer, seated):
    buy(testapp, customer, seated, seat="B1")
    body = seat_map(testapp, customer, seated).json
    assert body == {
        "sessionId": seated["id"],
        "capacity": 6,
        "sold": 1,
        "available": 5,
        "seats": [
            {"seat": "A1", "row": "A", "number": 1, "taken": False},
            {"seat": "A2", "row": "A", "number": 2, "taken": False},
            {"seat": "A3", "row": "A", "number": 3, "taken": False},
            {"seat": "B1", "row": "B", "number": 1, "taken": True},
            {"seat": "B2", "row": "B", "number": 2, "taken": False},
            {"seat": "B3", "row": "B", "number": 3, "taken": False},
        ],
    }


def test_the_seat_map_is_exact_after_every_purchase_and_cancellation(testapp, seated):
    first, second = customers(testapp, 2)
    counts = lambda: {k: v for k, v in seat_map(testapp, first, seated).json.items() if k in ("sold", "available")}  # noqa: E731
    assert counts() == {"sold": 0, "available": 6}
    ticket = buy(testapp, first, seated).json
    assert counts() == {"sold": 1, "available": 5} and taken(testapp, first, seated) == ["A1"]
    buy(testapp, second, seated, seat="A3")
    assert counts() == {"sold": 2, "available": 4} and taken(testapp, first, seated) == ["A1", "A3"]
    testapp.delete("/v1/tickets/" + ticket["id"], headers=first.headers, status=204)
    assert counts() == {"sold": 1, "available": 5} and taken(testapp, first, seated) == ["A3"]
    response = seat_map(testapp, first, seated)
    assert "X-Cache" not in response.headers and "ETag" not in response.headers


def test_a_session_without_a_plan_has_an_empty_seat_map_that_still_counts_tickets(testapp, customer, unseated):
    buy(testapp, customer, unseated)
    assert seat_map(testapp, customer, unseated).json == {"sessionId": unseated["id"], "capacity": None, "sold": 1, "available": None, "seats": []}


def test_the_seat_map_of_an_unknown_or_malformed_session(testapp, customer):
    assert seat_map(testapp, customer, {"id": UNKNOWN}, status=404).json["message"] == "Movie session not found"
    assert seat_map(testapp, customer, {"id": "nope"}, status=400).json["message"] == ["sessionId must be a UUID"]
    testapp.get("/v1/movie-sessions/%s/seats" % UNKNOWN, status=401)


# ---------------------------------------------------------------- cancelling


def test_a_customer_cancels_their_own_unused_ticket_and_the_seat_is_free_at_once(testapp, manager, seated):
    owner, other = customers(testapp, 2)
    ticket = buy(testapp, owner, seated, seat="A1").json
    assert testapp.delete("/v1/tickets/" + ticket["id"], headers=owner.headers, status=204).body == b""
    assert testapp.get("/v1/tickets", headers=manager.headers).json == []
    assert buy(testapp, other, seated).json["seat"] == "A1"
    assert buy(testapp, owner, seated).json["seat"] == "A2"  # and may buy again


def test_a_customer_cannot_cancel_another_users_ticket(testapp, manager, seated):
    owner, other = customers(testapp, 2)
    ticket = buy(testapp, owner, seated).json
    response = testapp.delete("/v1/tickets/" + ticket["id"], headers=other.headers, status=403)
    assert response.json["message"] == "You can only cancel your own tickets"
    assert len(testapp.get("/v1/tickets", headers=manager.headers).json) == 1


def test_a_used_ticket_cannot_be_cancelled_by_its_owner(testapp, manager, customer, seated):
    ticket = buy(testapp, customer, seated).json
    testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers)
    response = testapp.delete("/v1/tickets/" + ticket["id"], headers=customer.headers, status=409)
    assert response.json["message"] == "Ticket has already been used"
    assert taken(testapp, customer, seated) == ["A1"]


def test_a_ticket_of_a_started_session_cannot_be_cancelled_by_its_owner(app, testapp, manager, customer, seated):
    ticket = buy(testapp, customer, seated).json
    set_date(app, seated, datetime(2020, 1, 1, 20))
    response = testapp.delete("/v1/tickets/" + ticket["id"], headers=customer.headers, status=400)
    assert response.json["message"] == "Cannot cancel a ticket for a past session"
    assert len(testapp.get("/v1/tickets", headers=manager.headers).json) == 1


def test_cancellation_checks_come_in_order_404_403_400_409(app, testapp, manager, seated):
    owner, other = customers(testapp, 2)
    assert testapp.delete("/v1/tickets/nope", headers=other.headers, status=400).json["message"] == ["ticketId must be a UUID"]
    assert testapp.delete("/v1/tickets/" + UNKNOWN, headers=other.headers, status=404).json["message"] == "Ticket not found"
    ticket = buy(testapp, owner, seated).json
    testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers)
    set_date(app, seated, datetime(2020, 1, 1, 20))
    # used and started, and another's: 403 first; the owner's: 400 (started) before 409 (used)
    testapp.delete("/v1/tickets/" + ticket["id"], headers=other.headers, status=403)
    testapp.delete("/v1/tickets/" + ticket["id"], headers=owner.headers, status=400)
    testapp.delete("/v1/tickets/" + ticket["id"].upper().replace("-", ""), headers=other.headers, status=400)  # not canonical: the schema's 400
    testapp.delete("/v1/tickets/" + ticket["id"], status=401)


def test_managers_delete_any_ticket_after_its_session_started_too(app, testapp, manager, customer, seated):
    ticket = buy(testapp, customer, seated).json
    testapp.post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers)
    set_date(app, seated, datetime(2020, 1, 1, 20))
    testapp.delete("/v1/tickets/" + ticket["id"], headers=manager.headers, status=204)
    assert seat_map(testapp, manager, seated).json["sold"] == 0


def test_a_ticket_used_at_the_door_while_its_cancellation_is_under_way_stays_used(app, testapp, manager, customer, seated, monkeypatch):
    """The cancellation has read the ticket as unused; the use commits before it deletes: 409."""
    ticket = buy(testapp, customer, seated).json
    Ticket = app.registry["cinema.db"].Ticket
    cancel_unused = Ticket.cancel_unused

    def used_meanwhile(ticket_id):
        in_thread(lambda: TestApp(app).post("/v1/tickets/%s/use" % ticket["id"], headers=manager.headers, status=200)).join(30)
        return cancel_unused(ticket_id)

    monkeypatch.setattr(Ticket, "cancel_unused", used_meanwhile)
    response = testapp.delete("/v1/tickets/" + ticket["id"], headers=customer.headers, status=409)
    assert response.json["message"] == "Ticket has already been used"
    monkeypatch.undo()
    listed = testapp.get("/v1/tickets", headers=manager.headers).json
    assert [(t["id"], t["isUsed"], t["seat"]) for t in listed] == [(ticket["id"], True, "A1")]
