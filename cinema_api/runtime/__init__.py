"""The serving machinery: what adapts the libraries that serve a request beyond their public APIs,
in one wing (the waitress runner, the fast path of cached hits). Each module names the library
version it was written against, what it overrides and the measured figure that pays for it;
``tests/unit/test_library_contracts.py`` fails, naming the attribute, when an installed library no
longer has an internal one relies on."""


def includeme(config):
    from cinema_api.runtime.cached_hits import CachedHits

    config.set_execution_policy(CachedHits())
