"""The serving machinery: what adapts the libraries that serve a request beyond their public APIs,
in one wing: the waitress runner (``server``), the fast path of cached hits (``cached_hits``), the
routing and Cornice adaptations (``pyramid_hooks``); Pony's are in
``cinema_api.infrastructure.pony_internals``. Each module names the library
version it was written against, what it overrides and the measured figure that pays for it;
``tests/unit/test_library_contracts.py`` fails, naming the attribute, when an installed library no
longer has an internal one relies on."""


def includeme(config):
    """Before any route: the routes mapper is ours (:mod:`cinema_api.runtime.pyramid_hooks`)."""
    from cinema_api.runtime.cached_hits import CachedHits

    config.include("cinema_api.runtime.pyramid_hooks")
    config.set_execution_policy(CachedHits())
