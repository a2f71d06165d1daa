"""Console scripts: cinema-migrate, cinema-admin, cinema-seed, cinema-openapi."""

import os

from pyramid.paster import get_appsettings, setup_logging

from cinema_api.settings import SettingsError, load_settings


def load_script_settings(config_uri):
    """The checked settings of an ini file, its logging configured; exits with one line on error."""
    setup_logging(config_uri)
    ini = get_appsettings(config_uri)
    here = ini.global_conf.get("here") or os.path.dirname(os.path.abspath(config_uri))
    try:
        return load_settings(ini, here)
    except SettingsError as exc:
        raise SystemExit("cinema_api: configuration error: %s" % exc) from None
