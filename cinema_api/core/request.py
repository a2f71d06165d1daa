"""The application's request class: the services domains attach to it, built on first use.

Domains register them with ``config.add_request_service(factory, name)`` (``request.db``,
``request.movies``, ...). Pyramid's ``add_request_method(reify=True)`` would derive a new
class for every request to hold such properties, a cost every request pays (it showed in the
profiles of cached reads); here a missing attribute is looked up among the registered
factories, built once and kept on the request.
"""

from cornice.util import current_service
from pyramid.interfaces import IRequestExtensions
from pyramid.request import Request

SERVICES_KEY = "cinema.request_services"
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


def includeme(config):
    config.set_request_factory(CinemaRequest)
    config.add_directive("add_request_service", add_request_service)
    config.action(None, lambda: _serve_cornice_property_ourselves(config), order=_AFTER_INCLUDES)
