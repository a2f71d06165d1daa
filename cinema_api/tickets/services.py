"""Use cases of tickets: buy (with a seat where the session has a seat plan), check at the door,
cancel, list, and the seat map of a session.

Never oversold, never sold twice: a seat is sold by one conditional insert
(``Ticket.sell_seat``) that the unique index on ``(session_id, seat)`` decides, and the database
refuses a ticket without a seat, or with a seat outside the plan, for a session that has a plan
(migration 0003). A session's tickets are therefore distinct seats of its plan: never more than
its capacity, whichever process or path sells them. Nothing is cached: the seat map is read from
the database on every request.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from pony.orm.dbapiprovider import IntegrityError

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.db import after_commit
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.infrastructure.sql import on_sqlite, sql_uuid, sqlite_datetime
from cinema_api.movies.errors import ScreeningCancelled, ScreeningNotFound
from cinema_api.rooms.entities import SeatPlan
from cinema_api.tickets.errors import (
    CancelAfterStart,
    NoSeatPlan,
    NotYourTicket,
    ScreeningAlreadyStarted,
    SeatAlreadyTaken,
    SeatNotInPlan,
    SeatsChangedMeanwhile,
    SoldOut,
    TicketAlreadyPurchased,
    TicketAlreadyUsed,
    TicketCancelled,
    TicketNotFound,
    TooYoung,
    UserNotFound,
)


@dataclass(frozen=True)
class MovieFacts:
    id: uuid.UUID
    title: str
    age_restriction: int


@dataclass(frozen=True)
class ScreeningFacts:
    id: uuid.UUID
    date: datetime
    timeslot: str
    room_number: int
    movie: MovieFacts


@dataclass(frozen=True)
class Buyer:
    id: uuid.UUID


@dataclass(frozen=True)
class SoldTicket:
    """A ticket with the attributes of a ``Ticket`` that its answer shows, as plain values: those
    a purchase read and wrote, or a row of a ticket list. No entity is loaded for it."""

    id: uuid.UUID
    user: Buyer
    screening: ScreeningFacts
    seat: str | None
    purchased_at: datetime
    is_used: bool = False
    used_at: datetime | None = None
    cancelled_at: datetime | None = None


class SeatMap:
    """The seats of a session as sold right now."""

    def __init__(self, screening, sold_seats):
        self.session_id = screening.id
        self.plan = screening.plan
        self.sold = len(sold_seats)
        self.taken = {seat for seat in sold_seats if seat is not None}
        self.cancelled = screening.is_cancelled

    @property
    def capacity(self):
        return self.plan.capacity if self.plan is not None else None

    @property
    def available(self):
        if self.plan is None:
            return None
        return 0 if self.cancelled else self.plan.capacity - len(self.taken)

    def seats(self):
        """``(label, row letter, number, taken)`` of every seat, by row, then number."""
        if self.plan is None:
            return []
        return [(label, row, number, label in self.taken) for label, row, number in self.plan.seats()]


#: A ticket with its session and movie, as :meth:`Tickets._newest_first` reads them.
_TICKETS = (
    'SELECT "t"."id", "t"."user_id", "t"."seat", "t"."purchased_at", "t"."is_used", "t"."used_at", "t"."cancelled_at", '
    '"s"."id", "s"."date", "s"."timeslot", "s"."room_number", "m"."id", "m"."title", "m"."age_restriction" '
    'FROM "tickets" "t" JOIN "movie_sessions" "s" ON "s"."id" = "t"."session_id" JOIN "movies" "m" ON "m"."id" = "s"."movie_id"'
)


class Tickets:
    def __init__(self, db, metrics=None):
        self.db = db
        self.metrics = metrics  # cinema_tickets_sold_total and _cancelled_total, when given

    def get(self, ticket_id):
        ticket = self.db.Ticket.get(id=uuid.UUID(ticket_id))
        if ticket is None:
            raise TicketNotFound()
        return ticket

    def owner_of(self, ticket_id):
        """The id of the ticket's buyer, or None when there is no such ticket."""
        ticket = self.db.Ticket.get(id=ticket_id)
        return ticket.user.id if ticket is not None else None

    def buy(self, buyer_id, screening_id, user_id=None, seat=None, login_check=None):
        """The ticket sold to the buyer (a :class:`SoldTicket`); the checks run in the order of
        docs/API.md sections 1 and 10.

        One read brings the session, its movie and the buyer's age; one insert sells (on
        PostgreSQL a purchase without a chosen seat is one statement: the read, and the insert,
        of the first free seat with a seat plan, made only where every check passes on what it
        read), and the database refuses what the checks
        cannot see: the buyer's second ticket (the unique key on user and session), a seat sold
        meanwhile, a session deleted or cancelled meanwhile.

        ``seat`` is a label such as ``C7``; without it a session with a seat plan gives the free
        seat with the lowest row, then the lowest number.

        ``login_check``: the buyer's login session, when the security policy left its check to
        the purchase (``cinema_api.auth.identity.DeferredLoginCheck``): checked in the same
        statement on PostgreSQL without a chosen seat, else at once; either way before anything
        is sold, and a session no longer live raises the 401 before any other answer."""
        if user_id is not None and user_id != buyer_id:
            raise NotYourTicket()
        buyer, session_id = uuid.UUID(buyer_id), uuid.UUID(screening_id)
        Ticket = self.db.Ticket
        ticket_id, now = uuid.uuid4(), utcnow()
        one_statement = seat is None and not on_sqlite(self.db)
        if login_check is not None and not one_statement:
            login_check.check_now()
        if one_statement:
            # one round trip: the read, and the sale where every check below passes on it
            if login_check is None:
                facts, sold, sold_seat = Ticket.read_and_sell(ticket_id, buyer, session_id, now)
            else:  # the login session's check too
                facts, sold, sold_seat, live = Ticket.read_and_sell(ticket_id, buyer, session_id, now, login_check.session_id)
                login_check.checked(live)
        else:
            facts, sold, sold_seat = Ticket.purchase_facts(buyer, session_id), False, None
        if facts is None:
            raise ScreeningNotFound()
        date, timeslot, room_number, seat_rows, seats_per_row, movie_id, title, restriction, age, cancelled_at = facts
        if date <= now:  # started: the instant, not the calendar day
            raise ScreeningAlreadyStarted()
        if age is None:
            raise UserNotFound()
        if age < restriction:
            raise TooYoung(restriction)
        plan = SeatPlan.of(seat_rows, seats_per_row)
        if seat is not None:
            if plan is None:
                raise NoSeatPlan()
            if seat not in plan:
                raise SeatNotInPlan(seat)
        if cancelled_at is not None:
            raise ScreeningCancelled()
        if sold:
            seat = sold_seat
        else:
            # also where the statement's first free seat was taken meanwhile: the seats are read again
            seat = self._sell(ticket_id, buyer, session_id, plan, seat, now)
        if self.metrics is not None:
            after_commit(self.metrics.tickets_sold.inc)
        movie = MovieFacts(movie_id, title, restriction)
        screening = ScreeningFacts(session_id, date, timeslot, room_number, movie)
        return SoldTicket(ticket_id, Buyer(buyer), screening, seat, now)

    def _sell(self, ticket_id, buyer, session_id, plan, seat, now):
        """Sell the ticket once the checks passed: the seat sold (None without a seat plan)."""
        try:
            if plan is None:
                # no seat: nothing to conflict on; only a screening cancelled or deleted meanwhile refuses it
                if not self.db.Ticket.sell_seat(ticket_id, buyer, session_id, None, now):
                    self._refuse_screening_gone(session_id)
                return None
            return self._sell_seat(ticket_id, buyer, session_id, plan, seat, now)
        except IntegrityError as exc:
            # SQLite names no foreign key: the session was deleted since it was read (the buyer's
            # own deletion revokes the token this request came with)
            if on_sqlite(self.db) and "FOREIGN KEY constraint failed" in str(exc):
                raise ScreeningNotFound() from exc
            raise  # the 409 of the constraint that fired (cinema_api.infrastructure.db)

    def _sell_seat(self, ticket_id, user_id, session_id, plan, seat, now):
        """Sell ``seat``, or the first free seat, to the user: the seat sold.

        A seat someone else bought meanwhile is seen when the conditional insert finds it sold
        (PostgreSQL: after waiting for that purchase to commit; SQLite: under the write lock the
        insert took); the free seats are then read again. A concurrent purchase by the same
        buyer wins over both: 409 already purchased."""
        Ticket = self.db.Ticket
        if seat is not None:
            if Ticket.sell_seat(ticket_id, user_id, session_id, seat, now):
                return seat
            self._refuse_screening_gone(session_id)
            self._refuse_second_ticket(user_id, session_id)
            raise SeatAlreadyTaken(seat)
        # each round that loses a seat sees one more seat sold: at most capacity rounds
        for _ in range(plan.capacity + 1):
            free = plan.first_free(set(Ticket.seats_sold(session_id)))
            if free is None:
                self._refuse_second_ticket(user_id, session_id)
                raise SoldOut()
            if Ticket.sell_seat(ticket_id, user_id, session_id, free, now):
                return free
            self._refuse_screening_gone(session_id)
            self._refuse_second_ticket(user_id, session_id)
        raise SeatsChangedMeanwhile()

    def _refuse_screening_gone(self, screening_id):
        """A sale that inserted nothing: 409 if the screening was cancelled meanwhile, 404 if deleted."""
        state = self.db.Ticket.screening_state(screening_id)
        if state == "cancelled":
            raise ScreeningCancelled()
        if state == "gone":
            raise ScreeningNotFound()

    def _refuse_second_ticket(self, user_id, screening_id):
        if self.db.Ticket.holds(user_id, screening_id):
            raise TicketAlreadyPurchased()

    def seat_map(self, screening_id):
        """The session's seats and which are taken, read from the database now."""
        screening = self.db.Screening.get(id=uuid.UUID(screening_id))
        if screening is None:
            raise ScreeningNotFound()
        return SeatMap(screening, self.db.Ticket.seats_sold(screening.id))

    def use(self, ticket_id):
        """Check a ticket at the door: once only, also under concurrent calls."""
        used = self.db.Ticket.use_once(uuid.UUID(ticket_id), utcnow())
        ticket = self.get(ticket_id)  # read after the update: 404 before 409
        if not used:
            raise TicketCancelled() if ticket.cancelled_at is not None else TicketAlreadyUsed()
        return ticket

    def delete(self, ticket_id):
        """A manager's delete: any ticket, used or not, before or after its session."""
        self.get(ticket_id).delete()

    def cancel(self, ticket_id):
        """The buyer's cancellation (ownership is the route's ACL): only an unused ticket of a
        session that has not started; its seat is free once this commits."""
        ticket = self.get(ticket_id)
        if ticket.screening.date <= utcnow():
            raise CancelAfterStart()
        if ticket.is_used:
            raise TicketAlreadyUsed()
        if not self.db.Ticket.cancel_unused(ticket.id):
            # used at the door meanwhile, or deleted by a manager: what is there now decides
            if not self.db.Ticket.exists_now(ticket.id):
                raise TicketNotFound()
            raise TicketAlreadyUsed()
        if self.metrics is not None:
            after_commit(self.metrics.tickets_cancelled.inc)

    def page(self, page, use_filter="all", user_id=None, session_id=None):
        """``(tickets, total)``, newest purchase first: one query for the page's tickets with
        their sessions and movies, as plain values (:class:`SoldTicket`; no entity is loaded,
        whose every datetime Pony would parse on SQLite), and one count."""
        conditions, params = [], {}
        if user_id is not None:
            conditions.append('"t"."user_id" = $uid')
            params["uid"] = sql_uuid(self.db, uuid.UUID(user_id))
        if session_id is not None:
            conditions.append('"t"."session_id" = $sid')
            params["sid"] = sql_uuid(self.db, uuid.UUID(session_id))
        if use_filter in ("used", "unused"):
            conditions.append('"t"."is_used" = $used')
            params["used"] = use_filter == "used"
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        total = select_rows(self.db, 'SELECT COUNT(*) FROM "tickets" "t"' + where, params)[0][0]
        params.update(limit=page.size, offset=(page.number - 1) * page.size)
        return self._newest_first(where, params, " LIMIT $limit OFFSET $offset"), total

    def of_user(self, user_id):
        """Every ticket of a user, newest first."""
        return self._newest_first(' WHERE "t"."user_id" = $uid', {"uid": sql_uuid(self.db, uuid.UUID(user_id))})

    def _newest_first(self, where, params, limit=""):
        """The tickets ``where`` keeps, newest purchase first (then by id), within ``limit``, each
        with its session and movie, as :class:`SoldTicket`."""
        rows = select_rows(self.db, _TICKETS + where + ' ORDER BY "t"."purchased_at" DESC, "t"."id" DESC' + limit, params)
        sqlite = on_sqlite(self.db)
        tickets = []
        for (ticket_id, user_id, seat, purchased_at, is_used, used_at, cancelled_at,
             session_id, date, timeslot, room_number, movie_id, title, restriction) in rows:
            if sqlite:  # UUIDs as 16-byte blobs, datetimes as the text Pony stores
                ticket_id, user_id, session_id, movie_id = (uuid.UUID(bytes=value) for value in (ticket_id, user_id, session_id, movie_id))
                purchased_at, date, used_at, cancelled_at = map(sqlite_datetime, (purchased_at, date, used_at, cancelled_at))
            movie = MovieFacts(movie_id, title, restriction)
            screening = ScreeningFacts(session_id, date, timeslot, room_number, movie)
            tickets.append(SoldTicket(ticket_id, Buyer(user_id), screening, seat, purchased_at, bool(is_used), used_at, cancelled_at))
        return tickets

    def require_user(self, user_id):
        """404 unless the user exists."""
        if not self.db.User.exists(id=uuid.UUID(user_id)):
            raise UserNotFound()

