"""Console scripts: cinema-migrate, cinema-admin, cinema-seed, cinema-openapi.

They share how they start: read the ini file, load the settings (without ``JWT_SECRET``:
no script signs a token), and, for those that need the application's services, build it
without serving it. Whatever stops them before they can work (an unreadable ini file, a
wrong setting, a database that cannot be reached or is not migrated) ends the script with
one line on stderr and exit status 1, never a traceback.
"""

import configparser
import os

from pyramid.exceptions import ConfigurationExecutionError
from pyramid.paster import get_appsettings, setup_logging

from cinema_api.core.logs import configure_logging
from cinema_api.infrastructure.storage_errors import unusable_database
from cinema_api.infrastructure.migrate import wrong_environment
from cinema_api.settings import SettingsError, load_settings


def one_line(text):
    """``text`` with its whitespace (line breaks included) collapsed."""
    return " ".join(str(text).split())


def read_ini(config_uri, prog):
    """``(ini settings, here)`` of ``config_uri``, its logging configured; one line if unreadable."""
    try:
        setup_logging(config_uri)
        ini = get_appsettings(config_uri)
    except OSError as exc:
        raise SystemExit("%s: cannot read %s: %s" % (prog, config_uri, exc.strerror or one_line(exc))) from None
    except (configparser.Error, LookupError, ValueError) as exc:
        raise SystemExit("%s: cannot read %s: %s" % (prog, config_uri, one_line(exc))) from None
    here = ini.global_conf.get("here") or os.path.dirname(os.path.abspath(config_uri))
    return ini, here


def load_script_settings(config_uri, prog):
    """``(settings, ini settings)`` of ``config_uri``; exits with one line on any error."""
    ini, here = read_ini(config_uri, prog)
    try:
        settings = load_settings(ini, here, require_secret=False)
    except SettingsError as exc:
        raise SystemExit("%s: configuration error: %s" % (prog, exc)) from None
    configure_logging(settings)
    return settings, ini


def exit_on_storage_failure(exc, prog):
    """Exit with the one line of a database that cannot be used (unreachable, or made for another
    environment); any other error goes on."""
    message = unusable_database(exc) or wrong_environment(exc)
    if message is None:
        raise exc
    raise SystemExit("%s: %s" % (prog, message)) from None


def build_registry(settings, ini, prog):
    """The registry of the application of these settings (from :func:`load_script_settings`),
    built but not served: development applies pending migrations, production refuses a
    database that has some; each refuses a database made for another environment."""
    from cinema_api import make_app

    try:
        return make_app(settings, ini).registry
    except SystemExit as exc:
        raise SystemExit(str(exc).replace("cinema_api:", prog + ":", 1)) from None
    except ConfigurationExecutionError as exc:
        exit_on_storage_failure(exc, prog)
