"""The application's request class: the services domains attach to it, built on first use.

Domains register them with ``config.add_request_service(factory, name)`` (``request.db``,
``request.movies``, ...). Pyramid's ``add_request_method(reify=True)`` would derive a new
class for every request to hold such properties, a cost every request pays (it showed in the
profiles of cached reads); here a missing attribute is looked up among the registered
factories, built once and kept on the request.
"""

from cornice.errors import Errors
from cornice.pyramidhook import wrap_request
from cornice.util import current_service
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IRequestExtensions, IRoutesMapper
from pyramid.request import Request
from pyramid.urldispatch import RoutesMapper

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
#: After every include: Cornice's own request property is registered by then.
_AFTER_INCLUDES = 200


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


class RoutingOnce(RoutesMapper):
    """Pyramid's routes mapper, which routes each request once: the fast path of cached hits
    and the cache tween route a GET to know whether it is a cached read, and Pyramid's router
    would route it again. The answer is kept in the request's state, with the path it is for."""

    def __call__(self, request):
        state = request_state(request.environ)
        path = request.environ.get("PATH_INFO")
        kept = state.route
        if kept is not None and kept[0] == path:
            return kept[1]
        info = super().__call__(request)
        state.route = (path, info)
        return info


def add_request_service(config, factory, name):
    """Directive: ``request.<name>`` is ``factory(request)``, built on first use, once per request."""
    config.registry.setdefault(SERVICES_KEY, {})[name] = factory


def _serve_cornice_property_ourselves(config):
    """Cornice registers ``request.current_service`` with ``add_request_method(reify=True)``,
    the only request property left, for which Pyramid derived a class per request: it is one
    of our request services instead (the same value, computed on first use)."""
    extensions = config.registry.queryUtility(IRequestExtensions)
    if extensions is not None and extensions.descriptors.pop("current_service", None) is not None:
        config.registry.setdefault(SERVICES_KEY, {})["current_service"] = current_service


def _serve_cornice_subscriber_ourselves(config):
    """Cornice's ``NewRequest`` subscriber gives every request ``validated``, ``errors`` and
    ``info`` and two response callbacks: its service filters and its CORS headers (we use
    neither: CORS is ours, :mod:`cinema_api.core.cors`) and ``X-Content-Type-Options`` (set
    by :mod:`cinema_api.core.trace`). Being the application's only subscriber, it also made
    Pyramid notify five events per request. The three attributes are request services instead
    (built on first use), and without a subscriber no event is sent."""
    registry = config.registry
    for service in registry.cornice_services.values():
        filtered = any(args.get("filters") for _, _, args in service.definitions)
        if filtered or service.cors_enabled:
            raise ConfigurationError("service %s: Cornice filters and CORS are not served (see cinema_api.core.cors)" % service.name)
    for registration in list(registry.registeredHandlers()):
        # Pyramid registers a wrapper of a subscriber that takes the event only
        if getattr(registration.handler, "__wrapped__", registration.handler) is wrap_request:
            registry.unregisterHandler(registration.handler, registration.required)
    services = registry.setdefault(SERVICES_KEY, {})
    services["validated"] = lambda request: {}
    services["errors"] = lambda request: Errors()
    services["info"] = lambda request: {}
    registry.has_listeners = any(True for _ in registry.registeredHandlers())


def includeme(config):
    config.set_request_factory(CinemaRequest)
    # before any route is added: Pyramid would register its own mapper with the first
    config.registry.registerUtility(RoutingOnce(), IRoutesMapper)
    config.add_directive("add_request_service", add_request_service)
    config.action(None, lambda: _serve_cornice_property_ourselves(config), order=_AFTER_INCLUDES)
    config.action(None, lambda: _serve_cornice_subscriber_ourselves(config), order=_AFTER_INCLUDES)
