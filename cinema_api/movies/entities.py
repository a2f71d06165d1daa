"""Movies and their screenings (movie sessions)."""

import unicodedata
import uuid
from datetime import date as calendar_date
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, Set

from cinema_api.core.clock import utcnow
from cinema_api.rooms.entities import SeatPlan

TIMESLOTS = (
    "10:00-12:00",
    "12:00-14:00",
    "14:00-16:00",
    "16:00-18:00",
    "18:00-20:00",
    "20:00-22:00",
    "22:00-00:00",
)


def normalise_title(title):
    """Titles are stored trimmed and NFC-normalised."""
    return unicodedata.normalize("NFC", title.strip())


def fold_title(title):
    """The case-folded copy the search compares against (the same on every database)."""
    return unicodedata.normalize("NFC", title.casefold())


def define_entities(db):
    class Movie(db.Entity):
        _table_ = "movies"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        title = Required(str, unique=True)
        title_folded = Required(str)
        age_restriction = Required(int)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        screenings = Set("Screening", cascade_delete=True)

        def __init__(self, title, **kwargs):
            super().__init__(title=title, title_folded=fold_title(title), **kwargs)

        def before_update(self):
            self.title_folded = fold_title(self.title)
            self.updated_at = utcnow()

    class Screening(db.Entity):
        _table_ = "movie_sessions"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        movie = Required(Movie, column="movie_id")
        date = Required(datetime)
        day = Required(calendar_date)
        timeslot = Required(str)
        room_number = Required(int)
        # the seat plan copied from the room when the session was created (both null: none)
        seat_rows = Optional(int)
        seats_per_row = Optional(int)
        # set when the screening is cancelled (docs/API.md section 11)
        cancelled_at = Optional(datetime)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        # volatile: tickets are also sold and cancelled by conditional SQL statements (Ticket.sell_seat)
        tickets = Set("Ticket", cascade_delete=False, volatile=True)
        # The room rule (room, timeslot, day) holds among the screenings that are on: a partial
        # unique index of the database (migration 0007), not a key of Pony's, which would refuse
        # to load a cancelled screening beside the one that took its place.

        def __init__(self, date, plan=None, **kwargs):
            # The booking day of the room rule: the UTC day the session starts on.
            if plan is not None:
                kwargs.update(seat_rows=plan.rows, seats_per_row=plan.seats_per_row)
            super().__init__(date=date, day=date.date(), **kwargs)

        @property
        def plan(self):
            """The session's own seat plan, or None (a room without a Room: no seats, no limit)."""
            return SeatPlan.of(self.seat_rows, self.seats_per_row)

        @property
        def capacity(self):
            plan = self.plan
            return plan.capacity if plan is not None else None

        @property
        def is_cancelled(self):
            return self.cancelled_at is not None

        def move(self, date=None, timeslot=None, room_number=None, plan=None):
            """Change when and where the screening is; a new room brings its own seat plan (or none)."""
            if date is not None:
                self.date, self.day = date, date.date()
            if timeslot is not None:
                self.timeslot = timeslot
            if room_number is not None and room_number != self.room_number:
                self.room_number = room_number
                self.seat_rows = plan.rows if plan is not None else None
                self.seats_per_row = plan.seats_per_row if plan is not None else None

        def before_update(self):
            self.updated_at = utcnow()

    return Movie, Screening
