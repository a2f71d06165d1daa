"""The scale suite's rows keep the database's rules (bench/scale.py). Fast, no database."""

import os
import sys
from collections import Counter
from datetime import date

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))

import scale  # noqa: E402

from cinema_api.movies.entities import fold_title  # noqa: E402
from cinema_api.rooms.entities import SeatPlan  # noqa: E402

TODAY = date(2026, 1, 1)
SHAPES = [scale.Shape("small", 1000, 1000, 1), scale.Shape("tenth", 2000, 1000, 10), scale.Shape("wide", 5000, 4000, 40, tickets_each=50)]


def rows(shape):
    ids = scale.Ids()
    users = list(scale.user_rows(shape, ids, "bench1234"))
    movies = list(scale.movie_rows(shape, ids))
    sessions = list(scale.session_rows(shape, ids, TODAY))
    tickets = list(scale.ticket_rows(shape, ids))
    return ids, users, movies, sessions, tickets


@pytest.fixture(scope="module", params=SHAPES, ids=lambda shape: shape.name)
def seeded(request):
    request.param.check()
    return request.param, rows(request.param)


def test_the_full_shapes_fit():
    for shape in scale.shapes() + scale.shapes(100):
        shape.check()


def test_movies_titles_unique_folded_and_rare(seeded):
    shape, (ids, _, movies, _, _) = seeded
    titles = [movie[1] for movie in movies]
    assert len(movies) == shape.movies == len(set(titles))
    assert all(folded == fold_title(title) for _, title, folded, *_ in movies)
    assert sum(scale.RARE_WORD.lower() in movie[2] for movie in movies) == shape.rare
    assert all(0 <= movie[3] <= 21 for movie in movies)
    assert len(ids.movies) == shape.screenings


def test_screenings_keep_the_room_rule_and_plans(seeded):
    shape, (ids, _, _, sessions, _) = seeded
    slots = Counter((room, timeslot, day) for _, _, start, day, timeslot, room, *_ in sessions)
    assert len(slots) == shape.screenings  # no (room, timeslot, day) twice
    for _, _, start, day, timeslot, room, rows_, seats, *_ in sessions:
        assert day == start.date() and start.date() > TODAY and timeslot in scale.TIMESLOTS
        assert start.hour == int(timeslot[:2])
        assert (rows_ is not None) == (seats is not None) == (room in scale.SEATED_ROOMS)
    assert sum(session[6] is not None for session in sessions) == (shape.screenings + 1) // 2
    measured = ids.movies[0]
    assert sum(session[1] == measured for session in sessions) == shape.measured_sessions


def test_tickets_one_per_pair_and_seat_in_plan(seeded):
    shape, (ids, users, _, sessions, tickets) = seeded
    plans = {session[0]: SeatPlan.of(session[6], session[7]) for session in sessions}
    assert len(tickets) == shape.tickets
    assert len({(t[1], t[2]) for t in tickets}) == len(tickets)  # (user, session)
    seated = [(t[2], t[3]) for t in tickets if t[3] is not None]
    assert len(set(seated)) == len(seated)  # (session, seat)
    for _, _, session, seat, *_ in tickets:
        plan = plans[session]
        assert (seat in plan) if plan is not None else seat is None
    mine = Counter(t[1] for t in tickets)
    assert mine[ids.users[0]] == shape.tickets_each
    buyers = ids.users[shape.customers:]
    assert len(buyers) == len(scale.BUYERS) and not any(mine[buyer] for buyer in buyers)
    assert len({user[1] for user in users}) == len(users)
