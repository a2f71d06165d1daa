"""The server runner of the ini files (``[server:main] use = egg:cinema_api#main``).

It serves the application with waitress and adds what waitress lacks:

- ``HOST`` and ``PORT`` (OS environment, then the ``.env`` next to the ini file) override
  where it listens: variables given on the pserve command line cannot override an ini
  file's own values, so the runner reads them.
- Graceful shutdown: on SIGTERM (or SIGINT) it stops accepting connections, lets the
  requests in progress finish and their responses go out, closes idle connections, and
  exits; after ``SHUTDOWN_TIMEOUT`` seconds (default 10) it exits anyway.
- Requests that wait for password hashing (``slow_paths``: login and registration) run on at
  most ``slow_threads`` of the threads at once (default: half of them); the others take every
  other request first. A flood of logins then waits in its own queue, holding no thread and no
  database connection, and never leaves reads without a thread.
"""

import logging
import os
import signal
import threading
import time
from collections import deque

import waitress
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

from cinema_api.infrastructure.passwords import GATE_WAIT_SEC, QUEUED_SEC, SERVER_BUSY
from cinema_api.settings import read_dotenv

log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
LOOP_TIMEOUT = 0.2
DEFAULT_SLOW_PATHS = "/v1/auth/login /v1/auth/register"
BUSY_WINDOW_SEC = 0.05


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


class FairTaskDispatcher(ThreadedTaskDispatcher):
    """waitress's thread pool with a second queue, for POSTs to ``slow_paths``.

    A thread takes an ordinary request first; it takes a slow one only while fewer than
    ``slow_threads`` threads serve slow requests. waitress's own queue and accounting are
    kept as they are; only the choice of the next task differs. A slow request that would
    wait longer than ``max_wait`` (from the recent duration of slow requests) is served at
    once instead, told it waited that long, so the hashing gate refuses it with a 503 now.
    """

    def __init__(self, slow_paths, slow_threads, max_wait=GATE_WAIT_SEC, clock=time.monotonic):
        super().__init__()
        self.slow_paths = frozenset(slow_paths)
        self.slow_threads = slow_threads
        self.max_wait = max_wait
        self.clock = clock
        self.slow_queue = deque()
        self.slow_running = 0
        self.slow_duration = 0.0  # seconds per slow request, smoothed
        self.ordinary_seen = float("-inf")  # when an ordinary request last started or ended

    @staticmethod
    def request_of(task):
        """The request a queued task will serve: waitress queues a channel, which serves the
        first of its parsed requests."""
        requests = getattr(task, "requests", None)
        return requests[0] if requests else getattr(task, "request", None)

    def is_slow(self, task):
        request = self.request_of(task)
        return getattr(request, "command", None) == "POST" and getattr(request, "path", None) in self.slow_paths

    def add_task(self, task):
        if not self.is_slow(task):
            return super().add_task(task)
        task.queued_at = self.clock()
        with self.lock:
            ahead = len(self.slow_queue) + self.slow_running
            predicted = ahead // self.slow_threads * self.slow_duration
            if predicted > self.max_wait:
                task.queued_at -= predicted
                self.queue.append(task)
            else:
                self.slow_queue.append(task)
            self.queue_cv.notify()

    def ordinary_work(self):
        """Whether other requests than slow ones were served within ``BUSY_WINDOW_SEC``."""
        return self.clock() - self.ordinary_seen < BUSY_WINDOW_SEC

    def _has_work(self):
        return self.queue or (self.slow_queue and self.slow_running < self.slow_threads)

    def handler_thread(self, thread_no):
        while True:
            with self.lock:
                while not self._has_work() and self.stop_count == 0:
                    self.active_count -= 1
                    self.queue_cv.wait()
                    self.active_count += 1
                if self.stop_count > 0:
                    self.active_count -= 1
                    self.stop_count -= 1
                    self.threads.discard(thread_no)
                    self.thread_exit_cv.notify()
                    break
                slow = not self.queue
                task = self.slow_queue.popleft() if slow else self.queue.popleft()
                self.slow_running += slow
            began = self.clock()
            stamped = hasattr(task, "queued_at")  # a slow request, served in turn or refused at once
            ordinary = not (slow or stamped)
            if ordinary:
                self.ordinary_seen = began
            try:
                if stamped:
                    # read by StampedTask when it builds the request's WSGI environ
                    self.request_of(task).cinema_environ = {QUEUED_SEC: began - task.queued_at, SERVER_BUSY: self.ordinary_work}
                    del task.queued_at
                task.service()
            except BaseException:
                self.logger.exception("Exception when servicing %r", task)
            finally:
                if ordinary:
                    self.ordinary_seen = self.clock()
                if slow:
                    with self.lock:
                        self.slow_running -= 1
                        self.slow_duration = 0.8 * self.slow_duration + 0.2 * (self.clock() - began)
                        if self.slow_queue:
                            self.queue_cv.notify()

    def shutdown(self, cancel_pending=True, timeout=5):
        with self.lock:
            self.queue.extend(self.slow_queue)
            self.slow_queue.clear()
        return super().shutdown(cancel_pending, timeout)


class StampedTask(WSGITask):
    """waitress's WSGI task, with what the dispatcher noted on the request in its environ."""

    def get_environment(self):
        environ = super().get_environment()
        environ.update(getattr(self.request, "cinema_environ", ()))
        return environ


class StampedChannel(HTTPChannel):
    task_class = StampedTask


class GracefulServer:
    """A waitress server whose loop we drive, so that a stop can drain it first."""

    def __init__(self, app, timeout, slow_paths=(), slow_threads=None, **kwargs):
        threads = Adjustments(**kwargs).threads
        dispatcher = FairTaskDispatcher(slow_paths, slow_threads or max(1, threads // 2))
        dispatcher.set_thread_count(threads)
        # create_server's _dispatcher parameter takes the place of its own thread pool
        self.server = waitress.create_server(app, _dispatcher=dispatcher, **kwargs)
        self.server.channel_class = StampedChannel
        self.map = getattr(self.server, "map", None) or self.server._map
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
    slow_paths=DEFAULT_SLOW_PATHS,
    slow_threads=None,
    **kwargs,
):
    """``paste.server_runner``: waitress on ``HOST``:``PORT``, stopped gracefully."""
    host, port = listen_address(global_conf, host, port)
    kwargs.pop("listen", None)
    timeout = read_shutdown_timeout(global_conf, shutdown_timeout)
    if slow_threads is not None:
        slow_threads = _checked(slow_threads, int, 1, "slow_threads must be a positive integer")
    raise_open_file_limit()
    server = GracefulServer(app, timeout, slow_paths.split(), slow_threads, host=host, port=port, **kwargs)
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    try:
        server.serve_forever()
    finally:
        log.info("cinema_api stopped")
