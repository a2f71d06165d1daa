"""User sessions (one per login) and their rotating refresh tokens."""

import uuid
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, Set

from cinema_api.core.clock import utcnow


def define_entities(db):
    class UserSession(db.Entity):
        _table_ = "user_sessions"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        user = Required("User", column="user_id")
        created_at = Required(datetime, default=utcnow)
        expires_at = Required(datetime)
        revoked_at = Optional(datetime)
        refresh_tokens = Set("RefreshToken", cascade_delete=True)

    class RefreshToken(db.Entity):
        _table_ = "refresh_tokens"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        user_session = Required(UserSession, column="user_session_id")
        token_hash = Required(str, unique=True)
        created_at = Required(datetime, default=utcnow)
        used_at = Optional(datetime)

    return UserSession, RefreshToken
