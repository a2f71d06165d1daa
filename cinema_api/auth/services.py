"""Use cases of authentication: register, login, refresh with rotation, logout, password change."""

import logging
import uuid
from datetime import timedelta

from pony.orm import commit, flush

from cinema_api.auth.errors import (
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    TooManyFailedLogins,
)
from cinema_api.core.clock import utcnow
from cinema_api.core.schemas import is_storable
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.infrastructure.sql import sql_datetime, sql_uuid
from cinema_api.infrastructure.tokens import hash_refresh_token, new_refresh_token
from cinema_api.users.errors import ManagerSignupClosed

log = logging.getLogger(__name__)

#: How long a successful login from an address spares it the per-username budget (docs/API.md section 11).
KNOWN_ADDRESS_TTL = timedelta(days=30)
#: The longest address ``known_login_addresses`` holds (an IPv6 address with a zone is far shorter).
MAX_ADDRESS_LENGTH = 100


class AuthResult:
    """What a successful register, login or refresh hands back."""

    def __init__(self, user, access_token, expires_at, refresh_token):
        self.user = user
        self.access_token = access_token
        self.expires_at = expires_at
        self.refresh_token = refresh_token


class Authentication:
    def __init__(self, db, users, hasher, access_tokens, limiter, session_ttl, allow_manager_signup):
        self.db = db
        self.users = users
        self.hasher = hasher
        self.access_tokens = access_tokens
        self.limiter = limiter
        self.session_ttl = timedelta(seconds=session_ttl)
        self.allow_manager_signup = allow_manager_signup

    # ------------------------------------------------------------ use cases

    def register(self, username, password, role, age, actor=None):
        """Create an account and sign it in. Managers only by policy or by a manager."""
        if role == "manager" and not self.allow_manager_signup and not (actor and actor.is_manager):
            raise ManagerSignupClosed()
        user = self.users.create(username, password, role, age)
        return self._start_session(user)

    def login(self, username, password, address):
        def check():
            user = self.users.by_username(username) if is_storable(username) else None
            return self.hasher.verify(password, user.password_hash if user else None), user

        user = self._password_checked(username, address, check)
        if not self._still_the_password(user):
            raise InvalidCredentials()  # changed while it was checked: what was checked is no longer the password
        self._remember_address(user, address)
        return self._start_session(user)

    def _password_checked(self, username, address, check):
        """``check()``, a password check ``(valid, result)``, under the login throttle and the
        hashing gate: 429 while a budget of ``address`` or ``username`` is spent, 401 when the
        password is wrong (a failed login), else ``result``. The failure is reserved before the
        password is hashed, so concurrent attempts cannot overshoot the budget; what the check
        raises (the gate's 503) is no failed login."""
        retry_after, reservation = self.limiter.reserve(address, username, lambda: self._is_known_address(username, address))
        if retry_after is not None:
            raise TooManyFailedLogins(retry_after)
        try:
            self.hasher.refuse_if_full()
            valid, result = check()
        except Exception:
            self.limiter.give_back(reservation)  # not a failed login: no 401 was answered
            raise
        if not valid:
            raise InvalidCredentials()
        self.limiter.succeeded(reservation)
        return result

    def refresh(self, presented):
        """Spend ``presented`` and return a new pair; a spent token revokes its user session."""
        if not is_storable(presented):
            raise InvalidRefreshToken()
        token = self.db.RefreshToken.get(token_hash=hash_refresh_token(presented))
        if token is None:
            raise InvalidRefreshToken()
        session = token.login_session
        if session.revoked_at is not None or session.expires_at <= utcnow():
            raise InvalidRefreshToken("Refresh token has expired or been revoked")
        if not self.db.RefreshToken.spend_once(token.id, utcnow()):
            # spent before, or by a concurrent refresh that won: either way two holders, so the session ends
            self._revoke_after_reuse(session.id)
        return self._issue(session.user, session)

    def logout(self, user_id, login_session_id, everywhere=False):
        """End the caller's login session, or with ``everywhere`` every session of the user: their
        access and refresh tokens stop working now (the bearer check reads the database on every
        request). The user's other sessions keep working after a plain logout."""
        if everywhere:
            self._revoke_sessions(user_id)
        else:
            self._revoke_sessions(user_id, only=login_session_id)

    def change_password(self, user_id, login_session_id, current_password, new_password, address):
        """Replace the password of the signed-in user, who proves it with the current one (a wrong
        one is a failed login for the throttle, as at login), and end every other login session of
        the user; the caller's goes on."""
        user = self.users.get(user_id)

        def check():
            valid = self.hasher.verify(current_password, user.password_hash)
            return valid, self.hasher.hash(new_password) if valid else None

        user.password_hash = self._password_checked(user.username, address, check)
        # The user's row first: concurrent changes of one password queue on it (the later one,
        # retried, finds its session revoked) instead of deadlocking on each other's sessions.
        flush()
        self._revoke_sessions(user_id, keep=login_session_id)

    # ------------------------------------------------------------ helpers

    def _still_the_password(self, user):
        """Whether the hash a login checked (read before bcrypt ran, a fifth of a second) is still
        the user's, with the user's row locked until the login commits: a password change that
        committed meanwhile would otherwise let the old password open a session after it (the
        change revokes only the sessions there are). The row is locked as the password change
        locks it first (an update that changes nothing), so a change that comes later waits for
        this login and then revokes its session too; on SQLite the update takes the write lock."""
        cursor = self.db.execute(
            'UPDATE "users" SET "password_hash" = "password_hash" WHERE "id" = $uid AND "password_hash" = $hash',
            {"uid": sql_uuid(self.db, user.id), "hash": user.password_hash},
        )
        return cursor.rowcount == 1

    def _remember_address(self, user, address):
        """Record that ``user`` signed in from ``address`` now: for 30 days the per-username login
        budget spares it. An address no column could hold (never a real peer's) is not recorded."""
        if not address or len(address) > MAX_ADDRESS_LENGTH or not is_storable(address):
            return
        self.db.execute(
            'INSERT INTO "known_login_addresses" ("user_id", "address", "last_success_at") VALUES ($uid, $address, $now) '
            'ON CONFLICT ("user_id", "address") DO UPDATE SET "last_success_at" = excluded."last_success_at"',
            {"uid": sql_uuid(self.db, user.id), "address": address, "now": sql_datetime(self.db, utcnow())},
        )

    def _is_known_address(self, username, address):
        """Whether ``username`` signed in successfully from ``address`` in the last 30 days."""
        if not (username and address and is_storable(username) and is_storable(address)) or len(address) > MAX_ADDRESS_LENGTH:
            return False
        rows = select_rows(
            self.db,
            'SELECT 1 FROM "known_login_addresses" "k" JOIN "users" "u" ON "u"."id" = "k"."user_id" '
            'WHERE "u"."username" = $username AND "k"."address" = $address AND "k"."last_success_at" > $since',
            {"username": username, "address": address, "since": sql_datetime(self.db, utcnow() - KNOWN_ADDRESS_TTL)},
        )
        return bool(rows)

    def _revoke_sessions(self, user_id, only=None, keep=None):
        """Revoke the live sessions of the user: all of them, ``only`` that one, or all but ``keep``."""
        sql = 'UPDATE "user_sessions" SET "revoked_at" = $now WHERE "user_id" = $uid AND "revoked_at" IS NULL'
        params = {"now": sql_datetime(self.db, utcnow()), "uid": sql_uuid(self.db, uuid.UUID(user_id))}
        if only is not None:
            sql += ' AND "id" = $sid'
            params["sid"] = sql_uuid(self.db, uuid.UUID(only))
        if keep is not None:
            sql += ' AND "id" <> $sid'
            params["sid"] = sql_uuid(self.db, uuid.UUID(keep))
        self.db.execute(sql, params)

    def _revoke_after_reuse(self, session_id):
        # The revocation must outlive the 401 this request answers: commit it now.
        self.db.execute(
            'UPDATE "user_sessions" SET "revoked_at" = $now WHERE "id" = $sid AND "revoked_at" IS NULL',
            {"now": sql_datetime(self.db, utcnow()), "sid": sql_uuid(self.db, session_id)},
        )
        commit()
        log.warning("refresh token reuse detected: user session %s revoked", session_id)
        raise RefreshTokenReused()

    def _start_session(self, user):
        session = self.db.LoginSession(user=user, expires_at=utcnow() + self.session_ttl)
        return self._issue(user, session)

    def _issue(self, user, session):
        refresh_token = new_refresh_token()
        self.db.RefreshToken(login_session=session, token_hash=hash_refresh_token(refresh_token))
        access_token, exp = self.access_tokens.issue(user.id, user.role, session.id)
        return AuthResult(user, access_token, exp, refresh_token)
