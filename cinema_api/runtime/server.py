"""The server runner of the ini files (``[server:main] use = egg:cinema_api#main``).

It serves the application with waitress and adds what waitress lacks:

- ``HOST`` and ``PORT`` (OS environment, then the ``.env`` next to the ini file) override
  where it listens: variables given on the pserve command line cannot override an ini
  file's own values, so the runner reads them (``cinema_api.settings.load_server_settings``,
  where every setting is read). ``listen`` is refused in one line: ``host`` and ``port`` say it.
- Graceful shutdown: on SIGTERM (or SIGINT) it stops accepting connections, lets the
  requests in progress finish and their responses go out, closes idle connections, and
  exits; after ``SHUTDOWN_TIMEOUT`` seconds (default 10) it exits anyway.
- A higher open-file limit, so that waitress's ``connection_limit`` is reached first.
- The threads that run Python on one CPU (``cpu_affinity``, ``CPU_AFFINITY``; ``auto`` by
  default), bcrypt's and SQLite's checkpoint thread on every CPU: ``cinema_api.runtime.affinity``.
- One send per response where waitress makes two: the header goes out with the body.
- Keep-alive after a 204 or a 304: waitress closes the connection after any HTTP/1.1
  response without ``Content-Length``, which those two must not carry (RFC 9110); their end
  is known without it, so the connection stays open unless the client asked otherwise.
- An I/O loop that does not spin while request threads write their responses (``Channel``).
- At most ``busy_threads`` requests compute at once (``auto``, the default: 2 on SQLite, half
  the threads on PostgreSQL, whose requests spend part of their time waiting on the server): a
  request running longer than 0.1 s is waiting (a slow database, a slow Redis) and gives its
  place to the next, so a stalled dependency still gets every thread, as before.
- A client that does not read cannot hold a thread: a connection whose unsent output passed
  ``outbuf_high_watermark`` is not served its next (pipelined) request until the client has
  taken it below; its thread goes back to the pool at once, where waitress would wait for the
  client. So the output a client leaves unread is bounded per connection (the watermark plus one
  response), and a connection that takes none of it for ``channel_timeout`` seconds is closed,
  a request in progress or not (waitress closes only connections without one).
- At most ``connections_per_address`` connections from one client address (default 128):
  waitress's ``connection_limit`` is for the whole process, and one address could take it all.
  Behind a proxy its address is the one counted: its own ``limit_conn`` caps each client.
- Requests that need no database (GETs of ``quick_paths``: the root, the documentation, the
  liveness check, the metrics) run on ``quick_threads`` threads of their own (default 2), never
  queued behind requests that wait on a frozen database.
- Requests that wait for password hashing (``slow_paths``: login and registration) are served
  on at most ``slow_threads`` threads at once (default: half of them). The others wait in a
  queue of their own, holding no thread, so a flood of logins never takes the threads that
  reads need and costs no CPU while it waits; one that could not start within the hashing
  gate's 5 s goes through at once, and the gate answers it 503.
- A connection is read one request ahead (``channel_request_lookahead``) only while a request of
  the slow paths runs, whose client's going away the hashing gate must see (``Channel.readable``):
  reading ahead under every request cost the title search 7 %.

It drives waitress through ``create_server`` (with a socket map of ours, so every listening
configuration is served and drained) and its thread pool through ``add_task`` and
``shutdown``; nothing of waitress is re-implemented.
"""

import logging
import os
import signal
import sys
import threading
import time
from collections import deque

import waitress
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

from cinema_api.core.logs import flush_logs
from cinema_api.infrastructure.passwords import GATE_WAIT_SEC
from cinema_api.runtime.affinity import InterpreterCpu, check_cpu_affinity, supported
from cinema_api.settings import SettingsError, load_server_settings

log = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
LOOP_TIMEOUT = 0.2
DEFAULT_SLOW_PATHS = "/v1/auth/login /v1/auth/register"
#: GETs that need no database; a trailing ``*`` matches any rest of the path.
DEFAULT_QUICK_PATHS = (
    "/ /v1/api /api /v1/api/assets/* /v1/api-json /api-json /v1/api-yaml /api-yaml /v1/health/live /metrics"
)
DEFAULT_QUICK_THREADS = 2
#: A request running longer than this is waiting, not computing (``FairTaskDispatcher``).
YOUNG_SEC = 0.1
#: ``busy_threads = auto`` on SQLite (:func:`read_busy_threads`).
SQLITE_BUSY_THREADS = 2
#: ``connections_per_address`` when ``[server:main]`` does not set it.
DEFAULT_CONNECTIONS_PER_ADDRESS = 128
#: How often the I/O loop looks for connections whose client takes none of their output.
STALL_CHECK_SEC = 1.0


def _checked(raw, convert, minimum, message):
    """``convert(raw)`` when it is at least ``minimum``; else stop with one configuration line."""
    try:
        value = convert(raw)
        if value < minimum:
            raise ValueError
    except (TypeError, ValueError):
        raise SystemExit("cinema_api: configuration error: " + message) from None
    return value


def read_busy_threads(app, value, threads):
    """``busy_threads`` of ``[server:main]``: a positive integer, or ``auto`` (also when unset):
    :data:`SQLITE_BUSY_THREADS` where the application's database is SQLite, whose calls run in
    the process and hold the interpreter lock most of their time, else half the threads. A
    PostgreSQL request waits on the server's round trips, without the lock; a place held while
    waiting is one the computing could have used."""
    if value is not None and str(value).strip() != "auto":
        return _checked(value, int, 1, "busy_threads must be a positive integer or auto")
    settings = getattr(app, "registry", {}).get("cinema.settings")
    if settings is not None and settings.database_url.is_sqlite:
        return min(SQLITE_BUSY_THREADS, max(1, threads // 2))
    return max(1, threads // 2)


class FairTaskDispatcher(ThreadedTaskDispatcher):
    """waitress's thread pool, with two limits of ours in front of it.

    - POSTs to ``slow_paths`` are served on at most ``slow_threads`` threads at once. waitress
      hands the pool a connection with its parsed requests; a slow one beyond that number
      waits in a queue of ours, and joins waitress's queue when a slow one ends. One predicted
      (from the recent duration of slow requests) to wait longer than ``max_wait`` joins at
      once: the hashing gate then refuses it with a 503, as it must.
    - Any other request runs on at most ``busy_threads`` threads at once while it is young
      (at most ``young_sec`` old). Python runs one thread at a time: more requests computing at
      once only hand the interpreter lock to each other more often, each at a cost. A request
      older than that is waiting on something (a frozen database, a slow Redis) and computing
      nothing: its place goes to the next one (``tick``, called by the I/O loop), so a stalled
      dependency still gets every thread of the pool, as before, after ``young_sec``.
    """

    def __init__(self, slow_paths, slow_threads, max_wait=GATE_WAIT_SEC, clock=time.monotonic, busy_threads=None,
                 young_sec=YOUNG_SEC, quick_paths=(), quick_threads=DEFAULT_QUICK_THREADS):
        super().__init__()
        self.quick_exact = frozenset(path for path in quick_paths if not path.endswith("*"))
        self.quick_prefixes = tuple(path[:-1] for path in quick_paths if path.endswith("*"))
        self.quick = None
        if quick_paths:
            self.quick = ThreadedTaskDispatcher()
            self.quick.set_thread_count(quick_threads)
        self.slow_paths = frozenset(slow_paths)
        self.slow_threads = slow_threads
        self.max_wait = max_wait
        self.clock = clock
        self.slow_lock = threading.Lock()
        self.slow_queue = deque()
        self.slow_running = 0
        self.slow_duration = 0.0  # seconds per slow request, smoothed
        self.busy_threads = busy_threads
        self.young_sec = young_sec
        self.busy_lock = threading.Lock()
        self.busy_queue = deque()
        self.young = {}  # the running turns that count against busy_threads: turn -> start, oldest first

    @staticmethod
    def next_request(task):
        """``(method, path)`` of the request a connection is queued for (``(None, "")`` for a run of ours)."""
        requests = getattr(task, "requests", None)
        request = requests[0] if requests else None
        return getattr(request, "command", None), getattr(request, "path", None) or ""

    def is_slow(self, task):
        method, path = self.next_request(task)
        return method == "POST" and path in self.slow_paths

    def is_quick(self, task):
        method, path = self.next_request(task)
        return method in ("GET", "HEAD") and (path in self.quick_exact or path.startswith(self.quick_prefixes))

    def add_task(self, task):
        if isinstance(task, Channel) and task.wait_for_client():
            return  # the I/O loop queues it again once the client has read enough
        if self.quick is not None and self.is_quick(task):
            return self.quick.add_task(task)
        if not self.is_slow(task):
            return self._add_busy(task)
        with self.slow_lock:
            if self.slow_running < self.slow_threads:
                self.slow_running += 1
            elif len(self.slow_queue) // self.slow_threads * self.slow_duration > self.max_wait:
                return super().add_task(task)  # refused at once by the hashing gate
            else:
                self.slow_queue.append(task)
                return
        self._serve_in_turn(task)

    def _serve_in_turn(self, task):
        super().add_task(_SlowRun(task, self))

    def _finished(self, duration):
        with self.slow_lock:
            self.slow_duration = 0.8 * self.slow_duration + 0.2 * duration
            following = self.slow_queue.popleft() if self.slow_queue else None
            if following is None:
                self.slow_running -= 1
        if following is not None:
            self._serve_in_turn(following)

    # -------------------------------------------------------- the busy limit

    def _add_busy(self, task):
        if self.busy_threads is None:
            return super().add_task(task)
        with self.busy_lock:
            if len(self.young) >= self.busy_threads:
                self.busy_queue.append(task)
                return
            turn = self._young_turn(task)
        super().add_task(turn)

    def _young_turn(self, task):
        """One run of ``task``, counted as young from now (under ``busy_lock``)."""
        turn = _Turn(task, self)
        self.young[turn] = self.clock()
        return turn

    def _turn_ended(self, turn):
        """The next queued request, as a young turn, if ``turn`` was still counted (under the
        lock): the thread that served ``turn`` serves it next, as a pool of ``busy_threads``
        threads would, without waking another."""
        with self.busy_lock:
            # a request that outlived young_sec has already given its place away
            if self.young.pop(turn, None) is None or not self.busy_queue:
                return None
            return self._young_turn(self.busy_queue.popleft())

    def _pool_add(self, task):
        super().add_task(task)

    def tick(self):
        """Give the places of requests older than ``young_sec`` to queued ones."""
        if not self.busy_queue:
            return
        started = []
        with self.busy_lock:
            now = self.clock()
            for turn, began in list(self.young.items()):
                if now - began < self.young_sec or not self.busy_queue:
                    break  # oldest first: the others are younger
                del self.young[turn]
                started.append(self._young_turn(self.busy_queue.popleft()))
        for turn in started:
            super().add_task(turn)

    def shutdown(self, cancel_pending=True, timeout=5):
        with self.slow_lock:
            waiting, self.slow_queue = list(self.slow_queue), deque()
        with self.busy_lock:
            waiting, self.busy_queue = waiting + list(self.busy_queue), deque()
        for task in waiting:
            task.cancel()
        if self.quick is not None:
            self.quick.shutdown(cancel_pending, timeout)
        return super().shutdown(cancel_pending, timeout)


class _Run:
    """What the pool runs for one request of a connection that waited for a limit of ours. A
    connection may queue itself again while it is served (its next request, already read):
    each run is an object of its own, so the connection itself is never rewrapped."""

    __slots__ = ("task", "dispatcher")

    def __init__(self, task, dispatcher):
        self.task, self.dispatcher = task, dispatcher

    def cancel(self):
        self.task.cancel()


class _SlowRun(_Run):
    """A slow request: the connection's ``service``, then the next slow request's turn."""

    __slots__ = ()

    def service(self):
        began = self.dispatcher.clock()
        try:
            self.task.service()
        finally:
            self.dispatcher._finished(self.dispatcher.clock() - began)


class _Turn(_Run):
    """A request of the busy limit: the connection's ``service``, then the next request waiting
    for a place, on the same thread."""

    __slots__ = ()

    def service(self):
        turn = self
        while turn is not None:
            try:
                turn.task.service()
            except BaseException:
                following = self.dispatcher._turn_ended(turn)
                if following is not None:
                    self.dispatcher._pool_add(following)
                raise
            turn = self.dispatcher._turn_ended(turn)


class KeepAliveTask(WSGITask):
    """A request's task that keeps the connection open after a response without a body."""

    _bodiless = False

    def build_response_header(self):
        self._bodiless = (
            self.version == "1.1"
            and not self.has_body
            and not self.close_on_finish
            and self.request.headers.get("CONNECTION", "").lower() != "close"
        )
        try:
            return super().build_response_header()
        finally:
            self._bodiless = False

    def set_close_on_finish(self):
        # while the header is built, waitress closes for want of a Content-Length only
        if not self._bodiless:
            super().set_close_on_finish()

    def write(self, data):
        """The response's header goes out with its first body bytes, in one send: waitress
        writes (and flushes) them one after the other, two sends per response."""
        if self.wrote_header:
            return super().write(data)
        channel = self.channel
        channel.gathered = []
        try:
            super().write(data)
            gathered = b"".join(channel.gathered)
        except BaseException:
            self.wrote_header = False  # nothing was sent: waitress may still answer 500
            raise
        finally:
            channel.gathered = None
        if gathered:
            channel.write_soon(gathered)


class Channel(HTTPChannel):
    """A connection: its tasks keep the connection open after a response without a body, the
    I/O loop leaves its output to the task's thread while a task runs, a client that does not
    read its answers holds no thread, and one address holds a bounded number of connections.

    waitress asks the loop to poll for writability whenever a connection has output, also
    while its task runs on a request thread. That thread writes and flushes the response
    itself, holding the output lock; the loop then finds it locked, flushes nothing and polls
    again at once. Under load (the request threads waiting for the GIL with the lock held) the
    loop spun like that about 60 times per request, each time walking every connection with
    the GIL held, and throughput at 64 connections fell to a quarter of that at 8. When the
    task ends its thread wakes the loop, which then sends whatever is left; a task whose output
    passed the high watermark waits for the loop to flush it, so it is polled then, as before.

    Between two pipelined requests waitress's thread waits, without a bound, until the
    client has taken the output below ``outbuf_high_watermark``: eight clients that pipeline
    requests for a large asset and read nothing held eight threads, and every other request
    waited. Here the connection is set aside instead (:meth:`wait_for_client`, asked by the
    dispatcher) and queued again by the loop once the client has read enough (:meth:`handle_write`).
    """

    task_class = KeepAliveTask
    #: While a task writes its header, what it writes is gathered here (``KeepAliveTask.write``).
    gathered = None
    #: Set aside until the client takes its output below the watermark (under ``outbuf_lock``).
    waiting_for_client = False
    #: The client address counted against ``connections_per_address``, once admitted.
    counted_address = None
    #: The request :meth:`readable` last decided for, and whether its connection is read ahead.
    read_ahead_for = None
    read_ahead = False

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        counter = getattr(server, "connections_per_address", None)
        address = addr[0] if isinstance(addr, tuple) else None  # a Unix socket has no address
        if counter is None or address is None:
            return
        if counter.admit(address):
            self.counted_address = address
        else:
            self.handle_close()

    def del_channel(self, map=None):
        if self.counted_address is not None:
            self.server.connections_per_address.release(self.counted_address)
            self.counted_address = None
        super().del_channel(map)

    def write_soon(self, data):
        if self.gathered is not None:
            self.gathered.append(data)
            return len(data)
        if data:
            # within one response a task still waits for the client (bounded by channel_timeout:
            # the loop closes a connection whose client takes nothing, which wakes it)
            HTTPChannel._flush_outbufs_below_high_watermark(self)
        return super().write_soon(data)

    def _flush_outbufs_below_high_watermark(self):
        """Between two requests (``service``): no wait on a request thread, see :meth:`wait_for_client`."""

    def wait_for_client(self):
        """True (and set aside) when the client has not taken the output below the watermark:
        the connection's next request waits without a thread. Asked by the dispatcher when the
        connection is queued for it."""
        if self.total_outbufs_len <= self.adj.outbuf_high_watermark:
            return False
        with self.outbuf_lock:
            self.waiting_for_client = self.connected and self.total_outbufs_len > self.adj.outbuf_high_watermark
            return self.waiting_for_client

    def handle_write(self):
        super().handle_write()
        if self.waiting_for_client:
            with self.outbuf_lock:
                resume = self.connected and self.total_outbufs_len <= self.adj.outbuf_high_watermark
                self.waiting_for_client = self.waiting_for_client and not resume
            if resume and self.requests:
                self.server.add_task(self)

    def readable(self):
        """waitress reads one request ahead (``channel_request_lookahead = 1``) so that a client
        that went away is seen while its request runs (``waitress.client_disconnected``). Only a
        request of the slow paths (login, register) needs that, while it may wait for the hashing
        gate; reading ahead under every other request cost the title search 7 % (bench/NOTES.md),
        so under those the connection is read again once its request is done (waitress's
        default). The loop asks every connection at every turn: the answer is worked out once
        per request."""
        requests = self.requests
        if requests:
            if requests[0] is not self.read_ahead_for:
                is_slow = getattr(self.server.task_dispatcher, "is_slow", None)
                self.read_ahead_for, self.read_ahead = requests[0], is_slow is not None and is_slow(self)
            if not self.read_ahead:
                return False
        return super().readable()

    def writable(self):
        if self.requests and not (self.will_close or self.close_when_flushed):
            return self.total_outbufs_len > self.adj.outbuf_high_watermark
        return super().writable()

    def stalled(self, now):
        """True when the client has taken none of the output waiting for it for ``channel_timeout``."""
        return self.total_outbufs_len > 0 and now - self.last_activity > self.adj.channel_timeout


class ConnectionsPerAddress:
    """How many connections each client address holds, at most ``limit`` each. Used by the
    I/O loop and, when a connection ends, by whichever thread closes it. The first refusal of
    an address is logged, not each one: a flood would write a line per connection."""

    def __init__(self, limit):
        self.limit = limit
        self.lock = threading.Lock()
        self.counts = {}
        self.refusing = set()  # addresses refused since they last held no connection

    def admit(self, address):
        with self.lock:
            count = self.counts.get(address, 0)
            if count < self.limit:
                self.counts[address] = count + 1
                return True
            first = address not in self.refusing
            self.refusing.add(address)
        if first:
            log.warning("%s holds %d connections, the most one address may (connections_per_address): "
                        "more are closed at once", address, self.limit)
        return False

    def release(self, address):
        with self.lock:
            count = self.counts.get(address, 0) - 1
            if count > 0:
                self.counts[address] = count
            else:
                self.counts.pop(address, None)
                self.refusing.discard(address)


class GracefulServer:
    """A waitress server whose loop we drive, so that a stop can drain it first."""

    def __init__(self, app, timeout, slow_paths=(), slow_threads=None, busy_threads=None,
                 connections_per_address=DEFAULT_CONNECTIONS_PER_ADDRESS, quick_paths=(),
                 quick_threads=DEFAULT_QUICK_THREADS, **kwargs):
        threads = Adjustments(**kwargs).threads
        dispatcher = FairTaskDispatcher(
            slow_paths, slow_threads or max(1, threads // 2), busy_threads=read_busy_threads(app, busy_threads, threads),
            quick_paths=quick_paths, quick_threads=quick_threads,
        )
        dispatcher.set_thread_count(threads)
        self.dispatcher = dispatcher
        # the socket map is ours (create_server's map parameter), whatever it listens on:
        # one address, several (``localhost`` as ::1 and 127.0.0.1), ``listen``, IPv6
        self.map = {}
        self.server = waitress.create_server(app, map=self.map, _dispatcher=dispatcher, **kwargs)
        connections = ConnectionsPerAddress(connections_per_address)
        for listener in self.listeners():
            listener.channel_class = Channel
            listener.connections_per_address = connections
        self.timeout = timeout
        self.next_stall_check = 0.0
        self.stopping = threading.Event()

    def listeners(self):
        return [d for d in list(self.map.values()) if isinstance(d, BaseWSGIServer)]

    def request_stop(self, signum=None, frame=None):
        self.stopping.set()

    def _loop_once(self):
        wasyncore.loop(timeout=LOOP_TIMEOUT, map=self.map, use_poll=True, count=1)
        self.dispatcher.tick()
        now = time.monotonic()
        if now >= self.next_stall_check:
            self.next_stall_check = now + STALL_CHECK_SEC
            self.close_stalled()

    def close_stalled(self):
        """Close the connections whose client took none of their output for ``channel_timeout``,
        a request in progress or not: a task waiting for that client wakes and ends."""
        now = time.time()  # waitress's clock for last_activity
        for channel in [d for d in list(self.map.values()) if isinstance(d, Channel)]:
            if channel.stalled(now):
                log.info("closing the connection of %s: it took none of its answers for %d s",
                         channel.addr[0] if isinstance(channel.addr, tuple) else channel.addr, channel.adj.channel_timeout)
                channel.handle_close()

    def serve_forever(self):
        self.server.print_listen("Serving on http://{}:{}")
        while not self.stopping.is_set():
            self._loop_once()
        self.drain()

    def drain(self):
        started = time.monotonic()
        for listener in self.listeners():
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


#: glibc's mallopt parameters: the number of malloc arenas, the size from which a block is mapped
#: on its own.
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
#: Arenas for the whole process: glibc's default gives each request thread one of its own, up to
#: eight per core, and memory freed in one is never reused by the others.
MALLOC_ARENAS = 2
#: glibc's default, fixed: once a large block (a request body of a megabyte) was freed, glibc
#: would raise its threshold to that size and serve the next ones from the heap, where a block
#: freed below one still in use stays resident: the scale case's server ended 8.6 MiB higher.
MMAP_THRESHOLD = 128 * 1024


def tune_malloc(arenas=MALLOC_ARENAS, mmap_threshold=MMAP_THRESHOLD):
    """Before the request threads start, bound glibc's malloc arenas (as ``MALLOC_ARENA_MAX``
    would) and fix the size from which blocks are mapped on their own, so that freeing one
    gives its memory back at once (as ``MALLOC_MMAP_THRESHOLD_`` would). True when the C library
    took both settings (glibc), False elsewhere."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_ARENA_MAX, arenas)) and bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold))
    except (AttributeError, OSError):  # not glibc (musl, macOS, Windows)
        return False


def serve(app, global_conf, **kwargs):
    """``paste.server_runner``: waitress on ``HOST``:``PORT``, stopped gracefully.

    A server that cannot start (a setting of ``[server:main]``, a port already taken) says why
    in one line on stderr and exits with status 1. pserve would turn the ``SystemExit`` into
    "Exiting ..." on stdout with status 0 (and print nothing at all with ``-q``), which a
    service manager takes for a clean stop."""
    try:
        run_server(app, global_conf, **kwargs)
    except SystemExit as exc:
        if not isinstance(exc.code, str):
            raise
        flush_logs()
        sys.stderr.write(exc.code + "\n")
        sys.stderr.flush()
        os._exit(1)


def run_server(
    app,
    global_conf,
    host="127.0.0.1",
    port="6543",
    shutdown_timeout=DEFAULT_SHUTDOWN_TIMEOUT,
    slow_paths=DEFAULT_SLOW_PATHS,
    slow_threads=None,
    busy_threads=None,
    connections_per_address=DEFAULT_CONNECTIONS_PER_ADDRESS,
    quick_paths=DEFAULT_QUICK_PATHS,
    quick_threads=DEFAULT_QUICK_THREADS,
    cpu_affinity="auto",
    **kwargs,
):
    """Serve until SIGTERM or SIGINT; ``SystemExit`` with one line if the server cannot start."""
    if "listen" in kwargs:
        raise SystemExit("cinema_api: configuration error: listen is not supported in [server:main]: use host and port (or HOST and PORT)")
    try:
        where = load_server_settings(global_conf.get("here", "."), host, port, shutdown_timeout, cpu_affinity=cpu_affinity)
    except SettingsError as exc:
        raise SystemExit("cinema_api: configuration error: %s" % exc) from None
    host, port, timeout = where.host, where.port, where.shutdown_timeout
    affinity = check_cpu_affinity(where.cpu_affinity)  # a CPU that cannot be had stops here, in one line
    interpreter_cpu = InterpreterCpu(affinity) if supported() else None
    if slow_threads is not None:
        slow_threads = _checked(slow_threads, int, 1, "slow_threads must be a positive integer")
    connections_per_address = _checked(
        connections_per_address, int, 1, "connections_per_address must be a positive integer"
    )
    quick_threads = _checked(quick_threads, int, 1, "quick_threads must be a positive integer")
    raise_open_file_limit()
    tune_malloc()
    try:
        server = GracefulServer(
            app, timeout, slow_paths.split(), slow_threads, busy_threads, connections_per_address,
            quick_paths.split(), quick_threads, host=host, port=port, **kwargs
        )
    except OSError as exc:  # the port is taken, the address is not this machine's, a name unknown
        raise SystemExit("cinema_api: cannot listen on %s:%d: %s" % (host, port, exc.strerror or exc)) from None
    if interpreter_cpu is not None:
        interpreter_cpu.start()
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    try:
        server.serve_forever()
    finally:
        log.info("cinema_api stopped")
