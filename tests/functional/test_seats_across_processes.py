"""Never oversold, never sold twice, the seat map exact: against real server processes (docs/API.md section 10).

Buyers are real threads released together by a barrier, each with its own connection, against
``pserve`` processes: one process on a SQLite file or on PostgreSQL, and two processes sharing
PostgreSQL and a Redis of the test's own, the buyers split between them.
"""


import pytest

from cinema_api.testing import ServerProcess, at_once
from tests.conftest import PASSWORD, bearer
from tests.functional.test_truth_across_processes import private_redis, register_manager, server_environ  # noqa: F401 (a fixture)

SESSION = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 7}


def environ(database_url, cache_url):
    # a cheap bcrypt cost: the test registers two dozen buyers
    return dict(server_environ(database_url, cache_url), BCRYPT_ROUNDS="4")


def register_buyers(server, count, prefix):
    """``count`` new customers: their bearer headers by user id."""
    buyers = {}
    for index in range(count):
        body = {"username": "%s%d" % (prefix, index), "password": PASSWORD, "age": 30}
        status, _, answer = server.request("POST", "/v1/auth/register", body)
        assert status == 201, answer
        buyers[answer["user"]["id"]] = bearer(answer["accessToken"])
    return buyers


def seated_session(server, auth, rows, seats_per_row, title):
    """A new movie with one session in room 7, defined as ``rows`` x ``seats_per_row`` first."""
    status, _, _ = server.request("PUT", "/v1/rooms/7", {"rows": rows, "seatsPerRow": seats_per_row}, auth)
    assert status in (200, 201)
    status, _, movie = server.request("POST", "/v1/movies", {"title": title, "ageRestriction": 0}, auth)
    assert status == 201, movie
    session = dict(SESSION, date="2031-01-%02dT20:00:00Z" % (1 + len(title)))
    status, _, created = server.request("POST", "/v1/movies/%s/sessions" % movie["id"], session, auth)
    assert status == 201 and created["capacity"] == rows * seats_per_row, created
    return created


def race(servers, buyers, body):
    """Every buyer posts ``body`` at once, through the servers in turn: ``[(status, answer)]``."""

    def buy(index):
        status, _, answer = servers[index % len(servers)].request("POST", "/v1/tickets", body, buyers[index])
        return status, answer

    return at_once(len(buyers), buy)


def seat_map(server, auth, session):
    status, headers, body = server.request("GET", "/v1/movie-sessions/%s/seats" % session["id"], headers=auth)
    assert status == 200, body
    return body


def check_races(servers, auth):
    """The two races of the issue, through ``servers``; the seat map is then read through each."""
    # 12 buyers for 5 seats, each taking the first free one: exactly 5 tickets, 7 sold out
    five = seated_session(servers[0], auth, 1, 5, "Five seats")
    for server in servers:
        assert seat_map(server, auth, five)["available"] == 5  # a copy of it, if any were kept, is warm
    results = race(servers, list(register_buyers(servers[0], 12, "five").values()), {"sessionId": five["id"]})
    assert sorted(status for status, _ in results) == [201] * 5 + [409] * 7, results
    assert sorted(answer["seat"] for status, answer in results if status == 201) == ["A1", "A2", "A3", "A4", "A5"]
    assert {answer["message"] for status, answer in results if status == 409} == {"Movie session is sold out"}
    for server in servers:
        body = seat_map(server, auth, five)
        assert (body["sold"], body["available"], [s["taken"] for s in body["seats"]]) == (5, 0, [True] * 5)

    # 10 buyers for one chosen seat: one ticket, 9 told the seat is taken
    one = seated_session(servers[0], auth, 3, 4, "One seat wanted")
    buyers = register_buyers(servers[0], 10, "one")
    results = race(servers, list(buyers.values()), {"sessionId": one["id"], "seat": "B3"})
    assert sorted(status for status, _ in results) == [201] + [409] * 9, results
    assert {answer["message"] for status, answer in results if status == 409} == {"Seat B3 is already taken"}
    winner = next(answer for status, answer in results if status == 201)
    for server in servers:
        body = seat_map(server, auth, one)
        assert (body["sold"], body["available"]) == (1, 11)
        assert [s["seat"] for s in body["seats"] if s["taken"]] == ["B3"]
    return one, winner, buyers[winner["userId"]]


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_racing_buyers_against_a_server_process_never_overbook(request, database):
    url = request.getfixturevalue("fresh_sqlite_url" if database == "sqlite" else "fresh_postgres_url")
    with ServerProcess(**environ(url, "memory://")) as server:
        check_races([server], register_manager(server))


@pytest.mark.slow
def test_racing_buyers_split_across_two_processes_never_overbook_and_every_process_sees_the_seats(fresh_postgres_url, private_redis):
    settings = environ(fresh_postgres_url, private_redis.url)
    with ServerProcess(**settings) as first, ServerProcess(**settings) as second:
        auth = register_manager(first)
        one, winner, winner_auth = check_races([first, second], auth)
        # the winner cancels through one process; the other sees the seat free at once, and sells it
        status, _, _ = first.request("DELETE", "/v1/tickets/" + winner["id"], headers=winner_auth)
        assert status == 204
        body = seat_map(second, auth, one)
        assert (body["sold"], [s["seat"] for s in body["seats"] if s["taken"]]) == (0, [])
        status, _, resold = second.request("POST", "/v1/tickets", {"sessionId": one["id"], "seat": "B3"}, auth)
        assert status == 201 and resold["seat"] == "B3"
        assert [s["seat"] for s in seat_map(first, auth, one)["seats"] if s["taken"]] == ["B3"]

