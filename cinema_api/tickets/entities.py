"""Tickets: one per user and movie session, used at most once."""

import uuid
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, composite_key

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.db import sql_datetime, sql_uuid


def define_entities(db):
    class Ticket(db.Entity):
        _table_ = "tickets"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        user = Required("User", column="user_id")
        screening = Required("Screening", column="session_id")
        purchased_at = Required(datetime, default=utcnow)
        is_used = Required(bool, default=False)
        used_at = Optional(datetime)
        composite_key(user, screening)

        @classmethod
        def use_once(cls, ticket_id, now):
            """Mark the ticket used, in one conditional update that only an unused ticket matches:
            of concurrent uses exactly one changes a row. True when this call used it."""
            cursor = db.execute(
                'UPDATE "tickets" SET "is_used" = $true, "used_at" = $now WHERE "id" = $tid AND "is_used" = $false',
                {"true": True, "false": False, "now": sql_datetime(db, now), "tid": sql_uuid(db, ticket_id)},
            )
            return cursor.rowcount == 1

    return Ticket
