"""Movies and their screenings (movie sessions)."""

import unicodedata
import uuid
from datetime import date as calendar_date
from datetime import datetime

from pony.orm import PrimaryKey, Required, Set, composite_key

from cinema_api.core.clock import utcnow

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
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        tickets = Set("Ticket", cascade_delete=False)
        composite_key(room_number, timeslot, day)

        def __init__(self, date, **kwargs):
            # The booking day of the room rule: the UTC day the session starts on.
            super().__init__(date=date, day=date.date(), **kwargs)

        def before_update(self):
            self.updated_at = utcnow()

    return Movie, Screening
