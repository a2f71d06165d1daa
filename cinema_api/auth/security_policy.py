"""The security policy: JWT bearer tokens in, principals and ACL decisions out.

An access token authenticates a request only while the database says its login session
(``sid``) is live: not revoked (logout, refresh token reuse), not expired, and its user not
deleted. That is one indexed read per authenticated request, made whichever process or
script changed the session, so a revocation holds from the next request on with any cache
backend. The same read brings the catalogue version the cache keys on; both live in
:mod:`cinema_api.auth.identity`. A view that makes the check in its own statement (a purchase on
PostgreSQL: ``add_login_checking_view``) has it deferred to that statement, a round trip saved;
whatever else the request answers waits for the check. The identity is computed once per
request; roles become principals here and nowhere else, and the fast path of cached hits asks
:meth:`JWTSecurityPolicy.permits_identity` as the whole way asks ``permits``.
"""

from pyramid.authorization import ACLHelper, Authenticated, Everyone

from cinema_api.auth.identity import Identity, authenticate
from cinema_api.core.acl import ROLE_PRINCIPALS, USE, Root, user_principal
from cinema_api.core.state import request_state
from cinema_api.infrastructure.sql import on_sqlite
from cinema_api.infrastructure.tokens import AccessTokens

__all__ = ["Identity", "JWTSecurityPolicy"]


class JWTSecurityPolicy:
    def __init__(self, tokens):
        self.tokens = tokens
        self.helper = ACLHelper()
        self._root_answers = {}  # (authenticated, role or None, permission) -> the ACL's answer for Root

    def identity(self, request):
        """The request's identity, computed once (:func:`authenticate` keeps it in the request's
        state, which also says when a deferred check found the token revoked: None from then on)."""
        state = request_state(request.environ)
        # authenticate() answers the same from the state; asked here first, Pyramid's several
        # calls per request skip it and the deferral question (a search miss: 2 % of its instructions)
        if state.authenticated and state.auth_failure is None:
            return state.identity
        return authenticate(request.environ, self.tokens, request.db, defer=defers_login_check(request))

    def authenticated_userid(self, request):
        identity = request.identity
        return identity.user_id if identity else None

    def effective_principals(self, request):
        return principals_of(request.identity)

    def permits(self, request, context, permission):
        return self.permits_identity(request.identity, context, permission)

    def permits_identity(self, identity, context, permission):
        """:meth:`permits` for an identity known without a request (the fast path of cached hits).

        :class:`Root`'s ACL grants by authentication and role alone, so its answers are kept per
        both and the permission (a handful): the fast path and the whole way of a cache miss
        would otherwise walk it twice per request. An identity whose role is not known yet (a
        deferred login-session check) is not anonymous: the key says which it is. Other
        contexts (ownership) are asked every time."""
        if type(context) is Root:
            key = (identity is not None, identity.role if identity is not None else None, permission)
            answer = self._root_answers.get(key)
            if answer is None:
                answer = self._root_answers[key] = self.helper.permits(context, principals_of(identity), permission)
            return answer
        return self.helper.permits(context, principals_of(identity), permission)

    def remember(self, request, userid, **kw):
        return []  # tokens travel in response bodies, not cookies

    def forget(self, request, **kw):
        return []


#: The registry's set of ``(route name, method)`` whose views check the login session in their
#: own statement on PostgreSQL (``add_login_checking_view``; ``cinema_api.auth.identity``).
LOGIN_CHECKING_VIEWS = "cinema.login_checking_views"


def defers_login_check(request):
    """Whether the request's login-session check is left to its view's own statement: a view
    that said so (``config.add_login_checking_view``), on PostgreSQL, where it saves a round
    trip. Asked outside the tween that makes a deferred check in the end (before the route is
    known, or by an exception view), the answer is no: the check is made now."""
    route = request.matched_route
    return (
        request_state(request.environ).login_check_deferrable
        and route is not None
        and (route.name, request.method) in request.registry.get(LOGIN_CHECKING_VIEWS, ())
        and not on_sqlite(request.db)
    )


def add_login_checking_view(config, route_name, method):
    """Declare that the view of ``route_name`` and ``method`` checks the caller's login session in
    its own statement when the security policy defers it (``cinema_api.auth.identity``)."""
    config.registry.setdefault(LOGIN_CHECKING_VIEWS, set()).add((route_name, method))


def principals_of(identity):
    """Everyone's principal, and those of the identity's user and role."""
    if identity is None:
        return [Everyone]
    return [Everyone, Authenticated, user_principal(identity.user_id), *ROLE_PRINCIPALS.get(identity.role, ())]


def includeme(config):
    settings = config.registry["cinema.settings"]
    tokens = AccessTokens(settings.jwt_secret, settings.jwt_expires_in_sec)
    config.registry["cinema.access_tokens"] = tokens
    config.set_security_policy(JWTSecurityPolicy(tokens))
    config.set_root_factory(Root)
    config.set_default_permission(USE)
    config.add_directive("add_login_checking_view", add_login_checking_view)
    # inside the request's db_session (a deferred check reads the database), above the cache
    config.add_tween(
        "cinema_api.auth.identity.deferred_login_tween_factory",
        under="cinema_api.infrastructure.db.db_session_tween_factory",
        over="cinema_api.infrastructure.cache.cache_tween_factory",
    )
