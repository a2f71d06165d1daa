"""The server runner of the ini files (``[server:main] use = egg:cinema_api#main``).

It serves the application with waitress and adds what waitress lacks:

- ``HOST`` and ``PORT`` (OS environment, then the ``.env`` next to the ini file) override
  where it listens: variables given on the pserve command line cannot override an ini
  file's own values, so the runner reads them.
- Graceful shutdown: on SIGTERM (or SIGINT) it stops accepting connections, lets the
  requests in progress finish and their responses go out, closes idle connections, and
  exits; after ``SHUTDOWN_TIMEOUT`` seconds (default 10) it exits anyway.
- A higher open-file limit, so that waitress's ``connection_limit`` is reached first.

It only drives waitress's public API (``create_server`` with a socket map of ours); a login
flood is held back by the application's hashing gate, not here.
"""

import logging
import os
import signal
import threading
import time

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer

from cinema_api.settings import read_dotenv

log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
LOOP_TIMEOUT = 0.2


def _override(global_conf, name, value):
    dotenv = read_dotenv(global_conf.get("here", "."))
    return os.environ.get(name) or dotenv.get(name) or value


def listen_address(global_conf, host, port):
    """``(host, port)`` after the ``HOST``/``PORT`` overrides."""
    host = _override(global_conf, "HOST", host)
    port = _override(global_conf, "PORT", port)
    try:
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError
    except (TypeError, ValueError):
        raise SystemExit("cinema_api: configuration error: PORT must be an integer between 0 and 65535") from None
    return host, port


def _checked(raw, convert, minimum, message):
    """``convert(raw)`` when it is at least ``minimum``; else stop with one configuration line."""
    try:
        value = convert(raw)
        if value < minimum:
            raise ValueError
    except (TypeError, ValueError):
        raise SystemExit("cinema_api: configuration error: " + message) from None
    return value


def read_shutdown_timeout(global_conf, value):
    raw = _override(global_conf, "SHUTDOWN_TIMEOUT", value)
    return _checked(raw, float, 0, "SHUTDOWN_TIMEOUT must be a number of seconds")


class GracefulServer:
    """A waitress server whose loop we drive, so that a stop can drain it first."""

    def __init__(self, app, timeout, **kwargs):
        # the socket map is ours (create_server's map parameter), whatever it listens on:
        # one address, several (``localhost`` as ::1 and 127.0.0.1), ``listen``, IPv6
        self.map = {}
        self.server = waitress.create_server(app, map=self.map, **kwargs)
        self.timeout = timeout
        self.stopping = threading.Event()

    def request_stop(self, signum=None, frame=None):
        self.stopping.set()

    def _loop_once(self):
        wasyncore.loop(timeout=LOOP_TIMEOUT, map=self.map, use_poll=True, count=1)

    def serve_forever(self):
        self.server.print_listen("Serving on http://{}:{}")
        while not self.stopping.is_set():
            self._loop_once()
        self.drain()

    def drain(self):
        started = time.monotonic()
        for listener in [d for d in list(self.map.values()) if isinstance(d, BaseWSGIServer)]:
            wasyncore.dispatcher.close(listener)  # stop accepting; keep the trigger that wakes the loop
        log.info("stopping: no new connections, waiting up to %.0f s for requests in progress", self.timeout)
        while time.monotonic() - started < self.timeout:
            channels = [d for d in list(self.map.values()) if isinstance(d, HTTPChannel)]
            busy = [c for c in channels if c.requests or c.total_outbufs_len]
            for channel in channels:
                if channel not in busy:
                    channel.will_close = True
            if not channels:
                break
            self._loop_once()
        else:
            log.warning("stopping: requests still in progress after %.0f s are cut off", self.timeout)
        self.server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(self.map)


#: Open files wanted: connection_limit sockets, plus database, Redis and log files.
WANTED_OPEN_FILES = 4096


def raise_open_file_limit(wanted=WANTED_OPEN_FILES):
    """Raise the soft limit on open files towards ``wanted`` where the hard limit allows, so
    that ``connection_limit`` is reached before the process runs out of descriptors."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def serve(
    app,
    global_conf,
    host="127.0.0.1",
    port="6543",
    shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT,
    **kwargs,
):
    """``paste.server_runner``: waitress on ``HOST``:``PORT``, stopped gracefully."""
    host, port = listen_address(global_conf, host, port)
    kwargs.pop("listen", None)
    timeout = read_shutdown_timeout(global_conf, shutdown_timeout)
    raise_open_file_limit()
    server = GracefulServer(app, timeout, host=host, port=port, **kwargs)
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    try:
        server.serve_forever()
    finally:
        log.info("cinema_api stopped")
