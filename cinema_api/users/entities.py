"""User accounts."""

import uuid
from datetime import datetime

from pony.orm import PrimaryKey, Required, Set

from cinema_api.core.clock import utcnow

ROLES = ("manager", "customer")


def define_entities(db):
    class User(db.Entity):
        _table_ = "users"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        username = Required(str, unique=True)
        password_hash = Required(str)
        role = Required(str)
        age = Required(int)
        created_at = Required(datetime, default=utcnow)
        updated_at = Required(datetime, default=utcnow)
        login_sessions = Set("LoginSession", cascade_delete=True)
        # volatile: tickets are also sold and cancelled by conditional SQL statements (Ticket.sell_seat)
        tickets = Set("Ticket", cascade_delete=True, volatile=True)

        def before_update(self):
            self.updated_at = utcnow()

    return User
