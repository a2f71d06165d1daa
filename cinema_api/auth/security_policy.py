"""The security policy: JWT bearer tokens in, principals and ACL decisions out.

An access token authenticates a request only while the database says its login session
(``sid``) is live: not revoked (logout, refresh token reuse), not expired, and its user not
deleted. That is one indexed read per authenticated request, made whichever process or
script changed the session, so a revocation holds from the next request on with any cache
backend. The same read brings the catalogue version the cache keys on. The identity is
computed once per request; roles become principals here and nowhere else.
"""

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.request import RequestLocalCache

from cinema_api.core.acl import ROLE_PRINCIPALS, USE, Root, user_principal
from cinema_api.infrastructure.cache import CATALOG_VERSION_KEY, LOGIN_SESSION_KEY
from cinema_api.infrastructure.db import live_login_session_of
from cinema_api.infrastructure.tokens import AccessTokens, InvalidToken, bearer_token

AUTH_ERROR_KEY = "cinema.auth_error"


class Identity:
    __slots__ = ("user_id", "role", "login_session_id")

    def __init__(self, user_id, role, login_session_id):
        self.user_id, self.role, self.login_session_id = user_id, role, login_session_id

    @property
    def is_manager(self):
        return self.role == "manager"


class JWTSecurityPolicy:
    def __init__(self, tokens):
        self.tokens = tokens
        self.helper = ACLHelper()
        self._identity = RequestLocalCache(self._load_identity)

    def _load_identity(self, request):
        header = request.environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, rest = header.partition(" ")
        if not rest and not scheme:
            return None
        token = bearer_token(header)
        if token is None:
            request.environ[AUTH_ERROR_KEY] = "Authorization header must be: Bearer <token>"
            return None
        try:
            claims = self.tokens.decode(token)
        except InvalidToken as exc:
            request.environ[AUTH_ERROR_KEY] = str(exc)
            return None
        checked = request.environ.pop(LOGIN_SESSION_KEY, None)
        if checked is not None and checked[0] == token:  # read by the cached reads' fast path
            live = checked[1]
            if isinstance(live, Exception):
                raise live
        else:
            live = live_login_session_of(request.db, claims)
        if live is None:
            request.environ[AUTH_ERROR_KEY] = "Token has been revoked"
            return None
        role, catalog_version = live
        request.environ[CATALOG_VERSION_KEY] = catalog_version
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
            principals += [Authenticated, user_principal(identity.user_id), *ROLE_PRINCIPALS.get(identity.role, ())]
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
