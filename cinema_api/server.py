"""The server runner of the ini files (``[server:main] use = egg:cinema_api#main``).

It serves the application with waitress and lets ``HOST`` and ``PORT`` (OS environment,
then the ``.env`` next to the ini file) override where it listens: variables given on the
pserve command line cannot override an ini file's own values, so the runner reads them.
"""

import logging
import os

import waitress

from cinema_api.settings import read_dotenv

log = logging.getLogger(__name__)


def listen_address(global_conf, host, port):
    """``(host, port)`` after the ``HOST``/``PORT`` overrides."""
    dotenv = read_dotenv(global_conf.get("here", "."))
    host = os.environ.get("HOST") or dotenv.get("HOST") or host
    port = os.environ.get("PORT") or dotenv.get("PORT") or port
    try:
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError
    except (TypeError, ValueError):
        raise SystemExit("cinema_api: configuration error: PORT must be an integer between 0 and 65535") from None
    return host, port


def serve(app, global_conf, host="127.0.0.1", port="6543", **kwargs):
    """``paste.server_runner``: waitress on ``HOST``:``PORT``."""
    host, port = listen_address(global_conf, host, port)
    kwargs.pop("listen", None)
    try:
        waitress.serve(app, host=host, port=port, **kwargs)
    finally:
        log.info("cinema_api stopped")
