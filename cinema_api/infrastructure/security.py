"""The security policy: JWT bearer tokens in, principals and ACL decisions out.

An access token authenticates a request only while its user session (``sid``) is live:
not revoked (logout, refresh token reuse), not expired, and its user still exists. The
identity is computed once per request. Roles become principals here and nowhere else.
"""

import time
import uuid
from datetime import timezone

from pony.orm import select
from pyramid.authorization import ALL_PERMISSIONS, ACLHelper, Allow, Authenticated, Everyone
from pyramid.request import RequestLocalCache

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.tokens import AccessTokens, InvalidToken

#: Permissions: any signed-in user may "use" the API; managers may "manage" it.
USE = "use"
MANAGE = "manage"

ROLE_PRINCIPALS = {
    "manager": ("role:manager",),
    "customer": ("role:customer",),
}

AUTH_ERROR_KEY = "cinema.auth_error"


class Root:
    """The context of every API route: deny by default, grant by role."""

    __acl__ = [
        (Allow, "role:manager", ALL_PERMISSIONS),
        (Allow, Authenticated, USE),
    ]

    def __init__(self, request):
        self.request = request


class Identity:
    __slots__ = ("user_id", "role", "session_id")

    def __init__(self, user_id, role, session_id):
        self.user_id, self.role, self.session_id = user_id, role, session_id

    @property
    def is_manager(self):
        return self.role == "manager"


class SessionCache:
    """Live user sessions mirrored in the ``auth`` cache region, the database behind it.

    A live entry is trusted for ``LIVE_FOR`` seconds at most; a revocation writes a marker
    that outlives any entry written meanwhile (the region keeps values longer than access
    tokens live), so a logout holds in every process sharing the backend. Without an
    ``auth`` region every check asks the database.
    """

    LIVE_FOR = 30.0

    def __init__(self, region=None):
        self.region = region

    def live_role(self, db, user_id, session_id):
        """The user's role if the user session is live, else None."""
        now = time.time()
        if self.region is not None:
            live, revoked = self.region.read(["session:" + session_id, "revoked:" + session_id])
            if revoked:
                return None
            if live and live[0] == user_id and live[2] > now and live[3] > now:
                return live[1]
        current = utcnow()
        uid, sid = uuid.UUID(user_id), uuid.UUID(session_id)
        found = select(
            (s.user.role, s.expires_at)
            for s in db.UserSession
            if s.id == sid and s.user.id == uid and s.revoked_at is None and s.expires_at > current
        ).first()
        if found is None:
            return None
        role, expires_at = found
        if self.region is not None:
            expires = expires_at.replace(tzinfo=timezone.utc).timestamp()
            self.region.write("session:" + session_id, (user_id, role, now + self.LIVE_FOR, expires))
        return role

    def revoke(self, session_ids):
        """Call after the revocation has committed."""
        if self.region is not None:
            for session_id in session_ids:
                self.region.write("revoked:" + str(session_id), True)


class JWTSecurityPolicy:
    def __init__(self, tokens, sessions):
        self.tokens = tokens
        self.sessions = sessions
        self.helper = ACLHelper()
        self._identity = RequestLocalCache(self._load_identity)

    def _load_identity(self, request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not token and not scheme:
            return None
        if scheme.lower() != "bearer" or not token.strip():
            request.environ[AUTH_ERROR_KEY] = "Authorization header must be: Bearer <token>"
            return None
        try:
            claims = self.tokens.decode(token.strip())
        except InvalidToken as exc:
            request.environ[AUTH_ERROR_KEY] = str(exc)
            return None
        role = self.sessions.live_role(request.db, claims["sub"], claims["sid"])
        if role is None:
            request.environ[AUTH_ERROR_KEY] = "Token has been revoked"
            return None
        return Identity(claims["sub"], role, claims["sid"])

    def identity(self, request):
        return self._identity.get_or_create(request)

    def authenticated_userid(self, request):
        identity = request.identity
        return identity.user_id if identity else None

    def effective_principals(self, request):
        principals = [Everyone]
        identity = request.identity
        if identity is not None:
            principals += [Authenticated, "user:" + identity.user_id, *ROLE_PRINCIPALS.get(identity.role, ())]
        return principals

    def permits(self, request, context, permission):
        return self.helper.permits(context, self.effective_principals(request), permission)

    def remember(self, request, userid, **kw):
        return []  # tokens travel in response bodies, not cookies

    def forget(self, request, **kw):
        return []


def includeme(config):
    settings = config.registry["cinema.settings"]
    tokens = AccessTokens(settings.jwt_secret, settings.jwt_expires_in_sec)
    sessions = SessionCache(config.registry["cinema.caches"].regions.get("auth"))
    config.registry["cinema.access_tokens"] = tokens
    config.registry["cinema.session_cache"] = sessions
    config.set_security_policy(JWTSecurityPolicy(tokens, sessions))
    config.set_root_factory(Root)
    config.set_default_permission(USE)
