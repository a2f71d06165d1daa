"""Tickets: one per user and movie session, used at most once."""

import uuid
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, composite_key

from cinema_api.core.clock import utcnow
from cinema_api.tickets.errors import TicketAlreadyUsed


def define_entities(db):
    class Ticket(db.Entity):
        _table_ = "tickets"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        user = Required("User", column="user_id")
        session = Required("MovieSession", column="session_id")
        purchased_at = Required(datetime, default=utcnow)
        is_used = Required(bool, default=False)
        used_at = Optional(datetime)
        composite_key(user, session)

        def mark_used(self):
            """Check the ticket at the door: once only."""
            if self.is_used:
                raise TicketAlreadyUsed()
            self.is_used = True
            self.used_at = utcnow()

    return Ticket
