"""What the serving machinery learns about a request, passed on in one key of the WSGI environ."""

#: The one key of the WSGI environ through which the serving machinery passes on what it found
#: out about a request, so that nothing is done twice: the route (the routes mapper), the
#: authentication (the fast path of cached hits or the security policy, whichever came first),
#: the catalogue version read with it and the cache key the fast path missed (the cache tween).
STATE_KEY = "cinema.state"


class RequestState:
    """What the serving machinery found out about one request (``environ[STATE_KEY]``)."""

    __slots__ = (
        "route", "authenticated", "identity", "auth_error", "auth_failure", "catalog_version", "missed_key", "unchecked_login",
        "login_check_deferrable",
    )

    def __init__(self):
        self.route = None  # (path, the routes mapper's answer for it)
        self.authenticated = False  # whether the token was checked (the fields below say how)
        self.identity = None
        self.auth_error = None  # why the token does not authenticate: the 401's message
        self.auth_failure = None  # what checking it raised (a database error): raised again to whoever asks
        self.catalog_version = None  # read with the login session
        self.missed_key = None  # the cache key looked up in vain
        # the token's claims while its login session is still to be checked (a deferred check:
        # cinema_api.auth.identity), else None
        self.unchecked_login = None
        self.login_check_deferrable = False  # inside the tween that makes a deferred check in the end


def request_state(environ):
    """The request's :class:`RequestState`, made on first use."""
    state = environ.get(STATE_KEY)
    if state is None:
        state = environ[STATE_KEY] = RequestState()
    return state
