"""cinema-seed <ini>: load demo data (idempotent).

A manager and a customer (their credentials are printed), a few dozen movies, five rooms with
their seat plans, a week of sessions in them starting tomorrow, and some tickets (with seats),
one of them already used. Running it again adds only what is missing: a room a manager has
changed is left as it is. The demo passwords are public: it refuses a production configuration,
and a database made for production whatever the ini file, ``.env`` or the environment say (the
database records the environment it was made for), before it writes anything.
"""

import argparse
import sys
from datetime import datetime, time, timedelta

from pony.orm import db_session, select

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure import migrate
from cinema_api.movies.entities import TIMESLOTS
from cinema_api.movies.services import Movies, Screenings
from cinema_api.rooms.services import Rooms
from cinema_api.scripts import build_registry, exit_on_storage_failure, load_script_settings
from cinema_api.tickets.services import Tickets
from cinema_api.users.services import Users

DEMO_USERS = (
    ("manager", "manager123", "manager", 40),
    ("customer", "customer123", "customer", 25),
)

MOVIES = (
    ("The Grand Budapest Hotel", 12), ("Spirited Away", 0), ("Alien", 16), ("Paddington 2", 0),
    ("Heat", 16), ("Amélie", 12), ("Parasite", 16), ("Up", 0), ("The Matrix", 16), ("Coco", 0),
    ("Arrival", 12), ("Mad Max: Fury Road", 16), ("Inside Out", 0), ("Whiplash", 12), ("Roma", 12),
    ("Her", 12), ("The Lion King", 0), ("Moonlight", 12), ("Drive", 18), ("Ratatouille", 0),
    ("Oldboy", 18), ("Get Out", 16), ("Frozen", 0), ("Interstellar", 12), ("La La Land", 0),
    ("No Country for Old Men", 18), ("Toy Story", 0), ("Gravity", 12), ("The Shining", 18), ("Zootopia", 0),
)

ROOMS = (1, 2, 3, 4, 5)
#: name, rows, seats per row
ROOM_PLANS = {1: ("Grand", 12, 20), 2: ("Studio", 8, 12), 3: ("Salon", 6, 10), 4: ("Balcony", 5, 8), 5: ("Screening room", 3, 6)}
DAYS = 7


def slot_start(day, timeslot):
    hour = int(timeslot[:2])
    return datetime.combine(day, time(hour))


def seed(registry, out=print):
    db = registry["cinema.db"]
    with db_session:
        users = Users(db, registry["cinema.password_hasher"])
        accounts = {}
        for username, password, role, age in DEMO_USERS:
            accounts[username] = users.by_username(username) or users.create(username, password, role, age)
            out("%-8s username=%s password=%s" % (role, username, password))

        movies = Movies(db)
        existing = set(select(m.title for m in db.Movie))
        missing = [{"title": title, "ageRestriction": age} for title, age in MOVIES if title not in existing]
        if missing:
            movies.create_many(missing)
        titles = [title for title, _ in MOVIES]
        catalogue = {m.title: m for m in select(m for m in db.Movie if m.title in titles)}

        rooms = Rooms(db)
        defined = set(select(r.number for r in db.Room))
        added_rooms = [number for number in ROOMS if number not in defined]
        for number in added_rooms:
            name, rows, seats_per_row = ROOM_PLANS[number]
            rooms.put(number, rows, seats_per_row, name)
        out("rooms: %d added" % len(added_rooms))

        screenings = Screenings(db, movies)
        first_day = (utcnow() + timedelta(days=1)).date()
        booked = set(select((s.room_number, s.timeslot, s.day) for s in db.Screening if s.day >= first_day))
        created = 0
        index = 0
        for offset in range(DAYS):
            day = first_day + timedelta(days=offset)
            for room in ROOMS:
                for timeslot in TIMESLOTS[1::2]:  # three screenings a day per room
                    index += 1
                    if (room, timeslot, day) in booked:
                        continue
                    movie = catalogue[MOVIES[index % len(MOVIES)][0]]
                    item = {"date": slot_start(day, timeslot), "timeslot": timeslot, "roomNumber": room}
                    screenings.create_many(str(movie.id), [item])
                    created += 1

        customer = accounts["customer"]
        tickets = Tickets(db)
        upcoming = list(
            select(s for s in db.Screening if s.day >= first_day and s.movie.age_restriction <= customer.age)
            .order_by(db.Screening.date, db.Screening.room_number)[:4]
        )
        bought = 0
        for session in upcoming:
            if not db.Ticket.exists(user=customer, screening=session):
                tickets.buy(str(customer.id), str(session.id))
                bought += 1
        first = select(t for t in db.Ticket if t.user == customer).order_by(db.Ticket.purchased_at).first()
        if first is not None and not first.is_used:
            tickets.use(str(first.id))
        out("movies: %d added, sessions: %d added, tickets: %d bought" % (len(missing), created, bought))


PROG = "cinema-seed"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_uri", help="the ini file, e.g. development.ini")
    args = parser.parse_args(argv)
    settings, ini = load_script_settings(args.config_uri, PROG)
    if settings.is_production:
        raise SystemExit("%s: refusing to load public demo accounts into production" % PROG)
    try:
        made_for = migrate.recorded_environment(settings.database_url)
    except Exception as exc:
        exit_on_storage_failure(exc, PROG)
    if made_for == "production":
        raise SystemExit(
            "%s: the database %s was made for production: the public demo accounts never go there"
            % (PROG, settings.database_url.display)
        )
    registry = build_registry(settings, ini, PROG)
    print("demo data in %s:" % settings.database_url.display)
    try:
        seed(registry)
    except Exception as exc:
        exit_on_storage_failure(exc, PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
