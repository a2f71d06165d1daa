"""The application's request class: the services domains attach to it, built on first use.

Domains register them with ``config.add_request_service(factory, name)`` (``request.db``,
``request.movies``, ...). Pyramid's ``add_request_method(reify=True)`` would derive a new
class for every request to hold such properties, a cost every request pays (it showed in the
profiles of cached reads); here a missing attribute is looked up among the registered
factories, built once and kept on the request.
"""

from pyramid.request import Request

from cinema_api.core.body import MAX_BODY_BYTES

SERVICES_KEY = "cinema.request_services"

class CinemaRequest(Request):
    #: A body WebOb copies (a request that may be retried, see pyramid_retry) stays in memory: the
    #: body check refuses larger ones unread, and a temporary file would be left unclosed.
    request_body_tempfile_limit = MAX_BODY_BYTES

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
