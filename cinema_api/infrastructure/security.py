"""The security policy: JWT bearer tokens in, principals and ACL decisions out.

An access token authenticates a request only while its user session (``sid``) is live:
not revoked (logout, refresh token reuse), not expired, and its user still exists. The
identity is computed once per request. Roles become principals here and nowhere else.
"""

import uuid

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


def live_session_role(db, user_id, session_id):
    """The user's role if the user session is live (one indexed query), else None."""
    now = utcnow()
    return select(
        s.user.role
        for s in db.UserSession
        if s.id == session_id and s.user.id == user_id and s.revoked_at is None and s.expires_at > now
    ).first()


class JWTSecurityPolicy:
    def __init__(self, tokens):
        self.tokens = tokens
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
        role = live_session_role(request.db, uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]))
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
    config.registry["cinema.access_tokens"] = tokens
    config.set_security_policy(JWTSecurityPolicy(tokens))
    config.set_root_factory(Root)
    config.set_default_permission(USE)
