"""cinema_api: the cinema back office API.

``main()`` reads like the table of contents: settings, then the shared core and
infrastructure, then one include per domain.
"""

import logging
from importlib.metadata import PackageNotFoundError, version

from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationExecutionError

from cinema_api.core.logs import configure_logging
from cinema_api.core.trace import trace_event
from cinema_api.infrastructure.storage_errors import unusable_database
from cinema_api.infrastructure.migrate import wrong_environment
from cinema_api.settings import SettingsError, load_settings

log = logging.getLogger(__name__)


def package_version():
    try:
        return version("cinema_api")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def main(global_config, **ini_settings):
    """Build the WSGI application (the ``paste.app_factory`` of the ini files)."""
    here = global_config.get("here") or ini_settings.get("here") or "."
    try:
        settings = load_settings(ini_settings, here)
        configure_logging(settings)
        app = make_app(settings, ini_settings)
    except SettingsError as exc:
        raise SystemExit("cinema_api: configuration error: %s" % exc) from None
    except ConfigurationExecutionError as exc:
        message = unusable_database(exc) or wrong_environment(exc)
        if message is None:
            raise
        raise SystemExit("cinema_api: " + message) from None
    log.info("cinema_api %s started: %s", package_version(), settings.summary())
    trace_event(settings, "start", version=package_version())
    return app


def make_app(settings, ini_settings):
    """The WSGI application for already loaded settings."""
    # cornice's own exception views would shadow ours (cinema_api.core.errors).
    ini_settings = dict(ini_settings, handle_exceptions=False)
    with Configurator(settings=ini_settings) as config:
        config.registry["cinema.settings"] = settings
        config.registry["cinema.version"] = package_version()
        config.include("cornice")
        config.include("cinema_api.runtime")  # the routes mapper, before any route
        config.include("cinema_api.core")
        config.include("cinema_api.infrastructure.db")
        config.include("cinema_api.infrastructure.cache")
        config.include("cinema_api.health")
        config.include("cinema_api.auth")
        config.include("cinema_api.users")
        config.include("cinema_api.rooms")
        config.include("cinema_api.movies")
        config.include("cinema_api.tickets")
        return config.make_wsgi_app()
