"""Rooms and their seat plans.

A room has ``rows`` rows lettered ``A``.. and ``seatsPerRow`` seats in each, numbered from 1;
a seat's label is its row letter and its number (``C7``). A movie session copies its room's plan
when it is created and keeps it (``cinema_api.movies.entities``), so a room changed or deleted
later only affects sessions created afterwards.
"""

import re
import string
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.sql import sql_datetime
from cinema_api.rooms.errors import InvalidSeatPlan

ROW_LETTERS = string.ascii_uppercase
MAX_ROWS = len(ROW_LETTERS)
MAX_SEATS_PER_ROW = 50
MIN_ROOM_NUMBER, MAX_ROOM_NUMBER = 1, 999
MAX_NAME_LENGTH = 100
#: The form of a seat label in a request: a row letter, then a number from 1 without leading zero.
SEAT_LABEL_PATTERN = r"[A-Z][1-9][0-9]?"
SEAT_LABEL_RE = re.compile(SEAT_LABEL_PATTERN)


def default_room_name(number):
    return "Room %d" % number


class SeatPlan:
    """``rows`` rows of ``seats_per_row`` seats: an immutable value, checked when it is made."""

    __slots__ = ("rows", "seats_per_row")

    def __init__(self, rows, seats_per_row):
        if not (isinstance(rows, int) and 1 <= rows <= MAX_ROWS):
            raise InvalidSeatPlan("rows must be between 1 and %d" % MAX_ROWS)
        if not (isinstance(seats_per_row, int) and 1 <= seats_per_row <= MAX_SEATS_PER_ROW):
            raise InvalidSeatPlan("seatsPerRow must be between 1 and %d" % MAX_SEATS_PER_ROW)
        self.rows = rows
        self.seats_per_row = seats_per_row

    @classmethod
    def of(cls, rows, seats_per_row):
        """The plan of stored columns, or None when there is none (both null)."""
        return None if rows is None else cls(rows, seats_per_row)

    @property
    def capacity(self):
        return self.rows * self.seats_per_row

    def seats(self):
        """``(label, row letter, number)`` of every seat: by row, then by number."""
        for letter in ROW_LETTERS[: self.rows]:
            for number in range(1, self.seats_per_row + 1):
                yield "%s%d" % (letter, number), letter, number

    def __contains__(self, label):
        """True when ``label`` (in the request form, ``C7``) names a seat of this plan."""
        if not isinstance(label, str) or SEAT_LABEL_RE.fullmatch(label) is None:
            return False
        return ROW_LETTERS.index(label[0]) < self.rows and int(label[1:]) <= self.seats_per_row

    def first_free(self, taken):
        """The free seat with the lowest row, then the lowest number; None when every seat is taken."""
        if len(taken) >= self.capacity:
            return None
        return next((label for label, _, _ in self.seats() if label not in taken), None)

    def __repr__(self):
        return "SeatPlan(%d, %d)" % (self.rows, self.seats_per_row)


def define_entities(db):
    class Room(db.Entity):
        _table_ = "rooms"
        number = PrimaryKey(int)
        name = Optional(str, max_len=MAX_NAME_LENGTH)  # may be empty
        seat_rows = Required(int)
        seats_per_row = Required(int)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)

        @property
        def plan(self):
            return SeatPlan(self.seat_rows, self.seats_per_row)

        @classmethod
        def put(cls, number, name, plan, now):
            """Create the room, or replace it if it exists: True when this call created it.

            A conditional insert, then an update: of two concurrent creates one inserts and the
            other (which waits for it on the primary key) replaces, as two PUTs in a row would."""
            values = {
                "number": number,
                "name": name,
                "rows": plan.rows,
                "seats": plan.seats_per_row,
                "now": sql_datetime(db, now),
            }
            while True:
                inserted = db.execute(
                    'INSERT INTO "rooms" ("number", "name", "seat_rows", "seats_per_row", "created_at", "updated_at") '
                    "VALUES ($number, $name, $rows, $seats, $now, $now) ON CONFLICT (\"number\") DO NOTHING",
                    values,
                )
                if inserted.rowcount == 1:
                    return True
                updated = db.execute(
                    'UPDATE "rooms" SET "name" = $name, "seat_rows" = $rows, "seats_per_row" = $seats, '
                    '"updated_at" = $now WHERE "number" = $number',
                    values,
                )
                if updated.rowcount == 1:
                    return False
                # deleted between the two statements: create it after all

        @classmethod
        def remove(cls, number):
            """Delete the room; False when there was none (also when a concurrent delete won)."""
            return db.execute('DELETE FROM "rooms" WHERE "number" = $number', {"number": number}).rowcount == 1

    return Room
