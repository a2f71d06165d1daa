"""User sessions (one per login) and their rotating refresh tokens."""

import uuid
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, Set

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.sql import sql_datetime, sql_uuid


def define_entities(db):
    class LoginSession(db.Entity):
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
        login_session = Required(LoginSession, column="user_session_id")
        token_hash = Required(str, unique=True)
        created_at = Required(datetime, default=utcnow)
        used_at = Optional(datetime)

        @classmethod
        def spend_once(cls, token_id, now):
            """Mark the token used, in one conditional update that only an unused token matches:
            of concurrent refreshes with one token exactly one changes a row. True for that one."""
            cursor = db.execute(
                'UPDATE "refresh_tokens" SET "used_at" = $now WHERE "id" = $tid AND "used_at" IS NULL',
                {"now": sql_datetime(db, now), "tid": sql_uuid(db, token_id)},
            )
            return cursor.rowcount == 1

    return LoginSession, RefreshToken
