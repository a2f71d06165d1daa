"""Use cases of tickets: buy, check at the door, cancel, list."""

import uuid

from pony.orm import desc, flush

from cinema_api.core.clock import utcnow
from cinema_api.movies.errors import ScreeningNotFound
from cinema_api.tickets.errors import (
    UserNotFound,
    NotYourTicket,
    ScreeningAlreadyStarted,
    TicketAlreadyPurchased,
    TicketAlreadyUsed,
    TicketNotFound,
    TooYoung,
)


class Tickets:
    def __init__(self, db):
        self.db = db

    def get(self, ticket_id):
        ticket = self.db.Ticket.get(id=uuid.UUID(ticket_id))
        if ticket is None:
            raise TicketNotFound()
        return ticket

    def buy(self, buyer_id, screening_id, user_id=None):
        """A ticket for the buyer; the checks run in the order of docs/API.md section 1."""
        if user_id is not None and user_id != buyer_id:
            raise NotYourTicket()
        screening = self.db.Screening.get(id=uuid.UUID(screening_id))
        if screening is None:
            raise ScreeningNotFound()
        if screening.date <= utcnow():  # started: the instant, not the calendar day
            raise ScreeningAlreadyStarted()
        user = self.db.User.get(id=uuid.UUID(buyer_id))
        if user is None:
            raise UserNotFound()
        restriction = screening.movie.age_restriction
        if user.age < restriction:
            raise TooYoung(restriction)
        Ticket = self.db.Ticket
        if Ticket.exists(user=user, screening=screening):
            raise TicketAlreadyPurchased()
        ticket = Ticket(user=user, screening=screening)
        # a concurrent purchase, or the screening deleted meanwhile: the 409 or 404 of the
        # constraint that fired (cinema_api.infrastructure.db)
        flush()
        return ticket

    def use(self, ticket_id):
        """Check a ticket at the door: once only, also under concurrent calls."""
        used = self.db.Ticket.use_once(uuid.UUID(ticket_id), utcnow())
        ticket = self.get(ticket_id)  # read after the update: 404 before 409
        if not used:
            raise TicketAlreadyUsed()
        return ticket

    def delete(self, ticket_id):
        self.get(ticket_id).delete()

    def page(self, page, use_filter="all", user_id=None, session_id=None):
        """``(tickets, total)``, newest purchase first, sessions and movies loaded in bulk."""
        Ticket = self.db.Ticket
        query = Ticket.select()
        if user_id is not None:
            uid = uuid.UUID(user_id)
            query = query.filter(lambda t: t.user.id == uid)
        if session_id is not None:
            sid = uuid.UUID(session_id)
            query = query.filter(lambda t: t.screening.id == sid)
        if use_filter == "used":
            query = query.filter(lambda t: t.is_used)
        elif use_filter == "unused":
            query = query.filter(lambda t: not t.is_used)
        total = query.count()
        return list(self._newest_first(query).page(page.number, page.size)), total

    def require_user(self, user_id):
        """404 unless the user exists."""
        if not self.db.User.exists(id=uuid.UUID(user_id)):
            raise UserNotFound()

    def of_user(self, user_id):
        """Every ticket of a user, newest first."""
        uid = uuid.UUID(user_id)
        return list(self._newest_first(self.db.Ticket.select(lambda t: t.user.id == uid)))

    def _newest_first(self, query):
        Ticket = self.db.Ticket
        query = query.order_by(desc(Ticket.purchased_at), desc(Ticket.id))
        return query.prefetch(Ticket.screening, self.db.Screening.movie)
