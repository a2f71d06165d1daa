"""Authentication, the one home of it: a bearer token -> a live login session -> an identity.

Called by the security policy (the whole way) and by the fast path of cached hits
(``cinema_api.runtime.cached_hits``), whichever meets the request first; the other finds the answer
in the request's state (``cinema_api.core.request.RequestState``) and asks nothing again, so a frozen
database costs a request one timeout, not two. An access token authenticates only while the
database says its login session (``sid``) is live: not revoked, not expired, its user not deleted
(``cinema_api.infrastructure.db.live_login_session``); that read also brings the catalogue version
the cache keys on.

A route whose own statement checks the login session (a purchase on PostgreSQL: the check
travels with the sale, one round trip instead of two) has the check *deferred*: the identity is
the token's, unchecked, until that statement says whether the session is live
(:func:`login_checked`). Whatever the request ends with before that (a refused body, any error)
waits for the check first (:func:`check_deferred_login`, by :func:`deferred_login_tween_factory`):
a token that is no longer live gets its 401 before anything else, as without the deferral, and
nothing is sold on it.
"""

import uuid

from cinema_api.auth.errors import TokenRevoked
from cinema_api.core.state import request_state
from cinema_api.infrastructure.db import live_login_session_of, login_session_answer
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.infrastructure.tokens import InvalidToken, bearer_token

MALFORMED_HEADER = "Authorization header must be: Bearer <token>"
REVOKED = TokenRevoked.MESSAGE


class Identity:
    __slots__ = ("user_id", "role", "login_session_id")

    def __init__(self, user_id, role, login_session_id):
        self.user_id, self.role, self.login_session_id = user_id, role, login_session_id

    @property
    def is_manager(self):
        return self.role == "manager"


def authenticate(environ, tokens, db, select=select_rows, defer=False):
    """The :class:`Identity` of the request's bearer token, or None: no ``Authorization`` header, or
    one that does not authenticate (why, in the state's ``auth_error``). Checked once per request;
    what checking raised (the database unavailable) is raised again to every later caller.
    ``select`` reads the login session (the fast path reads outside any ``db_session``).
    ``defer``: a token that decodes gives its identity (role unknown: None) without reading its
    login session, which is left to the route's own statement (see the module's docstring)."""
    state = request_state(environ)
    if state.authenticated:
        if state.auth_failure is not None:
            raise state.auth_failure
        return state.identity
    state.authenticated = True
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, rest = header.partition(" ")
    if not rest and not scheme:
        return None
    token = bearer_token(header)
    if token is None:
        state.auth_error = MALFORMED_HEADER
        return None
    try:
        claims = tokens.decode(token)
    except InvalidToken as exc:
        state.auth_error = str(exc)
        return None
    if defer:
        state.unchecked_login = claims
        state.identity = Identity(claims["sub"], None, claims["sid"])
        return state.identity
    try:
        live = live_login_session_of(db, claims, select)
    except Exception as exc:
        state.auth_failure = exc
        raise
    if live is None:
        state.auth_error = REVOKED
        return None
    role, state.catalog_version = live
    state.identity = Identity(claims["sub"], role, claims["sid"])
    return state.identity


class DeferredLoginCheck:
    """A request's login-session check, left to a statement of its view: the session to check
    (``session_id``), where to say what the statement found (:meth:`checked`), and the check made
    apart (:meth:`check_now`) by a way that has no such statement."""

    __slots__ = ("environ", "db", "session_id")

    def __init__(self, environ, db, session_id):
        self.environ, self.db, self.session_id = environ, db, uuid.UUID(session_id)

    def checked(self, live):
        login_checked(self.environ, live)

    def check_now(self):
        check_deferred_login(self.environ, self.db)


def deferred_login_check(request):
    """The request's :class:`DeferredLoginCheck` while one is still to be made, else None."""
    claims = request_state(request.environ).unchecked_login
    return DeferredLoginCheck(request.environ, request.db, claims["sid"]) if claims is not None else None


def login_checked(environ, live):
    """A deferred check was made by the route's own statement: ``live`` is what the function
    ``live_login_session`` answered (``role:version``, or None). One no longer live raises the 401."""
    _settle(request_state(environ), login_session_answer(live))


def check_deferred_login(environ, db, select=select_rows):
    """Make a deferred check that is still to be made (a round trip), as :func:`authenticate` would
    have: the 401 of a login session no longer live; a database that cannot answer raises."""
    state = request_state(environ)
    if state.unchecked_login is not None:
        _settle(state, live_login_session_of(db, state.unchecked_login, select))


def _settle(state, live):
    state.unchecked_login = None
    if live is None:
        state.identity, state.auth_error = None, REVOKED
        raise TokenRevoked()
    state.identity.role, state.catalog_version = live


def deferred_login_tween_factory(handler, registry):
    """Whatever a request with a deferred check ends with, the check is made first: an error
    raised (a refused body, a 404) or answered, or, should a route forget its statement's
    check, a success. Inside the request's ``db_session``, under the exception views."""

    def deferred_login_tween(request):
        environ = request.environ
        state = request_state(environ)
        state.login_check_deferrable = True
        try:
            response, error = handler(request), None
        except Exception as exc:
            response, error = None, exc
        finally:
            state.login_check_deferrable = False  # not for an identity first asked outside (an exception view)
        # outside the except clause: a 401 raised here does not carry the error as its context
        # (whose driver error, a deadlock, would have the 401 retried)
        try:
            check_deferred_login(environ, request.db)  # its 401 (or 503) replaces the error
            if error is not None:
                raise error
        finally:
            error = None  # no cycle through this frame
        return response

    return deferred_login_tween
