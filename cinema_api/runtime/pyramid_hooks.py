"""Pyramid and Cornice, adapted beyond their public APIs where a request paid for what we do not use.

Written against Pyramid 2.1 and Cornice 6.1.0; ``tests/unit/test_library_contracts.py`` checks that
the internals named here are still there and of the shape used.

- :class:`RoutingOnce` replaces Pyramid's routes mapper (the ``IRoutesMapper`` utility, registered
  before the first route): the fast path of cached hits and the cache tween route a GET, and the
  router would route it again.
- Cornice's ``current_service`` request property (``add_request_method(reify=True)``, for which
  Pyramid derived a request class per request) becomes one of our request services: the
  ``descriptors`` of Pyramid's ``IRequestExtensions`` utility are edited.
- Cornice's ``NewRequest`` subscriber (``cornice.pyramidhook.wrap_request``) is unregistered: its
  attributes become request services, and without a subscriber Pyramid notifies no event. Both
  showed in the profiles of cached reads.
"""

from cornice.errors import Errors
from cornice.pyramidhook import wrap_request
from cornice.util import current_service
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IRequestExtensions, IRoutesMapper
from pyramid.urldispatch import RoutesMapper

from cinema_api.core.request import SERVICES_KEY
from cinema_api.core.state import request_state

#: After every include: Cornice's own request property is registered by then.
_AFTER_INCLUDES = 200


class RoutingOnce(RoutesMapper):
    """Pyramid's routes mapper, which routes each request once: the fast path of cached hits
    and the cache tween route a GET to know whether it is a cached read, and Pyramid's router
    would route it again. The answer is kept in the request's state, with the path it is for.

    And it remembers the answers by path: Pyramid tries every route's pattern in turn, about twenty
    regular expressions before the movie list, a tenth of a cached hit's time. Where no route has
    predicates (the answer then depends on the path alone), the answer for a path is kept (at most
    ``KNOWN_PATHS`` of them, forgotten all at once when full) and handed out with a copy of its
    match, which a request may change."""

    KNOWN_PATHS = 4096

    def __init__(self):
        super().__init__()
        self.known = None  # path -> the answer for it; None until the routes are known to allow it

    def connect(self, *args, **kwargs):
        self.known = None  # a route added after the first request: decide again
        return super().connect(*args, **kwargs)

    def __call__(self, request):
        state = request_state(request.environ)
        path = request.environ.get("PATH_INFO")
        kept = state.route
        if kept is not None and kept[0] == path:
            return kept[1]
        known = self.known
        if known is None:
            known = self.known = {} if not any(route.predicates for route in self.get_routes()) else False
        info = known.get(path) if known is not False else None
        if info is None:
            info = super().__call__(request)
            if known is not False:
                if len(known) >= self.KNOWN_PATHS:
                    known.clear()
                known[path] = info
        if info["match"] is not None:
            info = {"route": info["route"], "match": dict(info["match"])}
        state.route = (path, info)
        return info


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
    # before any route is added: Pyramid would register its own mapper with the first
    config.registry.registerUtility(RoutingOnce(), IRoutesMapper)
    config.action(None, lambda: _serve_cornice_property_ourselves(config), order=_AFTER_INCLUDES)
    config.action(None, lambda: _serve_cornice_subscriber_ourselves(config), order=_AFTER_INCLUDES)
