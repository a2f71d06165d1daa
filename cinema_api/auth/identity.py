"""Authentication, the one home of it: a bearer token -> a live login session -> an identity.

Called by the security policy (the whole way) and by the fast path of cached hits
(``cinema_api.runtime.cached_hits``), whichever meets the request first; the other finds the answer
in the request's state (``cinema_api.core.request.RequestState``) and asks nothing again, so a frozen
database costs a request one timeout, not two. An access token authenticates only while the
database says its login session (``sid``) is live: not revoked, not expired, its user not deleted
(``cinema_api.infrastructure.db.live_login_session``); that read also brings the catalogue version
the cache keys on.
"""

from cinema_api.core.state import request_state
from cinema_api.infrastructure.db import live_login_session_of
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.infrastructure.tokens import InvalidToken, bearer_token

MALFORMED_HEADER = "Authorization header must be: Bearer <token>"
REVOKED = "Token has been revoked"


class Identity:
    __slots__ = ("user_id", "role", "login_session_id")

    def __init__(self, user_id, role, login_session_id):
        self.user_id, self.role, self.login_session_id = user_id, role, login_session_id

    @property
    def is_manager(self):
        return self.role == "manager"


def authenticate(environ, tokens, db, select=select_rows):
    """The :class:`Identity` of the request's bearer token, or None: no ``Authorization`` header, or
    one that does not authenticate (why, in the state's ``auth_error``). Checked once per request;
    what checking raised (the database unavailable) is raised again to every later caller.
    ``select`` reads the login session (the fast path reads outside any ``db_session``)."""
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
