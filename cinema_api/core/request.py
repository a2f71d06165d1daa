"""The application's request class: the services domains attach to it, built on first use.

Domains register them with ``config.add_request_service(factory, name)`` (``request.db``,
``request.movies``, ...). Pyramid's ``add_request_method(reify=True)`` would derive a new
class for every request to hold such properties, a cost every request pays (it showed in the
profiles of cached reads); here a missing attribute is looked up among the registered
factories, built once and kept on the request.
"""

from pyramid.request import Request

SERVICES_KEY = "cinema.request_services"

#: The one key of the WSGI environ through which the serving machinery passes on what it found
#: out about a request, so that nothing is done twice: the route (the routes mapper), the
#: authentication (the fast path of cached hits or the security policy, whichever came first),
#: the catalogue version read with it and the cache key the fast path missed (the cache tween).
STATE_KEY = "cinema.state"


class RequestState:
    """What the serving machinery found out about one request (``environ[STATE_KEY]``)."""

    __slots__ = ("route", "authenticated", "identity", "auth_error", "auth_failure", "catalog_version", "missed_key")

    def __init__(self):
        self.route = None  # (path, the routes mapper's answer for it)
        self.authenticated = False  # whether the token was checked (the fields below say how)
        self.identity = None
        self.auth_error = None  # why the token does not authenticate: the 401's message
        self.auth_failure = None  # what checking it raised (a database error): raised again to whoever asks
        self.catalog_version = None  # read with the login session
        self.missed_key = None  # the cache key looked up in vain


def request_state(environ):
    """The request's :class:`RequestState`, made on first use."""
    state = environ.get(STATE_KEY)
    if state is None:
        state = environ[STATE_KEY] = RequestState()
    return state


class CinemaRequest(Request):
    def __getattr__(self, name):
        # only called for attributes the request does not have
        if name.startswith("__") or name == "registry":
            raise AttributeError(name)
        factory = self.registry.get(SERVICES_KEY, {}).get(name)
        if factory is None:
            raise AttributeError(name)
        value = factory(self)
        setattr(self, name, value)
        return value


def add_request_service(config, factory, name):
    """Directive: ``request.<name>`` is ``factory(request)``, built on first use, once per request."""
    config.registry.setdefault(SERVICES_KEY, {})[name] = factory


def includeme(config):
    config.set_request_factory(CinemaRequest)
    config.add_directive("add_request_service", add_request_service)
