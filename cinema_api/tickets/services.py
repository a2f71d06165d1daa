"""Use cases of tickets."""

import uuid

from pony.orm import desc


class Tickets:
    def __init__(self, db):
        self.db = db

    def page(self, page, use_filter="all", user_id=None, session_id=None):
        """``(tickets, total)``, newest purchase first, sessions and movies loaded in bulk."""
        Ticket = self.db.Ticket
        query = Ticket.select()
        if user_id is not None:
            uid = uuid.UUID(user_id)
            query = query.filter(lambda t: t.user.id == uid)
        if session_id is not None:
            sid = uuid.UUID(session_id)
            query = query.filter(lambda t: t.session.id == sid)
        if use_filter == "used":
            query = query.filter(lambda t: t.is_used)
        elif use_filter == "unused":
            query = query.filter(lambda t: not t.is_used)
        total = query.count()
        ordered = query.order_by(lambda t: (desc(t.purchased_at), desc(t.id)))
        ordered = ordered.prefetch(Ticket.session, self.db.MovieSession.movie)
        return list(ordered.page(page.number, page.size)), total

    def of_user(self, user_id):
        """Every ticket of a user, newest first."""
        Ticket = self.db.Ticket
        uid = uuid.UUID(user_id)
        query = Ticket.select(lambda t: t.user.id == uid).order_by(lambda t: (desc(t.purchased_at), desc(t.id)))
        return list(query.prefetch(Ticket.session, self.db.MovieSession.movie))
