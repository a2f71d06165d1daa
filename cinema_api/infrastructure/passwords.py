"""Password hashing with bcrypt, behind a gate that admits only what it can serve.

bcrypt is deliberately slow. It runs on ``BCRYPT_CONCURRENCY`` dedicated threads (bcrypt
releases the GIL while it hashes), so that a flood of logins takes at most that many cores.
They keep the normal CPU priority on purpose: a lower-priority thread that is preempted while
it holds the GIL (between two hashes) stalls every request thread of the process with it,
which measured worse for reads under a login flood than no priority change at all. Instead,
while other requests are in progress (``busy``) a hash starts only when no other hash runs, so
a login flood takes one core and leaves the others to the rest; an idle server hashes on every
slot.

Admission control keeps a flood from holding the server's threads: at most ``max_admitted``
requests are at the gate (hashing or waiting, by default twice the hashing threads), and a
request that finds it full, or that could not start hashing within ``wait`` seconds (from the
recent duration of a hash), is refused at once with a 503 and ``Retry-After``. The other
request threads stay free for everything else.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from cinema_api.core.errors import ServiceUnavailable
from cinema_api.core.schemas import is_storable

MAX_PASSWORD_BYTES = 72
GATE_WAIT_SEC = 5.0
YIELD_SEC = 0.005


def _busy():
    return ServiceUnavailable("Too many password checks in progress, retry later", {"Retry-After": "5"})


class HashingGate:
    """The hashing threads, shared by every ``PasswordHasher`` of an application."""

    def __init__(self, concurrency, max_admitted=None):
        self.concurrency = concurrency
        self.max_admitted = max_admitted or 2 * concurrency
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bcrypt")
        self.admitted = 0  # hashing or waiting
        self.hashing = 0
        self.lock = threading.Lock()
        self.typical = None  # seconds per hash, smoothed

    def is_full(self, wait):
        """Whether a request arriving now would be refused: no room at the gate, or no start
        within ``wait`` seconds at the recent pace. A cheap look, before any other work."""
        return self.admitted >= self.max_admitted or self.predicted_start() > wait

    def predicted_start(self):
        waiting = max(0, self.admitted - self.concurrency)
        return (waiting // self.concurrency + 1) * self.typical if waiting else 0.0

    def run(self, wait, busy, func, *args):
        """``func(*args)`` on a hashing thread, refused (503) unless it can start within ``wait`` s.

        While ``busy()`` says other requests are being served, it waits for no other hash to
        run (yet starts within ``wait`` s all the same)."""
        deadline = time.monotonic() + wait
        with self.lock:
            if self.is_full(wait):
                raise _busy()
            self.admitted += 1
        try:
            started = threading.Event()

            def job():
                started.set()
                while True:
                    with self.lock:
                        if not (busy is not None and self.hashing and busy() and time.monotonic() < deadline):
                            self.hashing += 1
                            break
                    time.sleep(YIELD_SEC)
                begin = time.perf_counter()
                try:
                    return func(*args)
                finally:
                    self.typical = 0.8 * self.typical + 0.2 * (time.perf_counter() - begin)
                    with self.lock:
                        self.hashing -= 1

            future = self.pool.submit(job)
            if not started.wait(wait) and future.cancel():
                raise _busy()
            return future.result()
        finally:
            with self.lock:
                self.admitted -= 1


class PasswordHasher:
    def __init__(self, rounds, concurrency, wait=GATE_WAIT_SEC, gate=None, dummy_hash=None, busy=None):
        self.rounds = rounds
        self.wait = wait
        self.busy = busy
        self.gate = gate or HashingGate(concurrency)
        if dummy_hash is None:
            started = time.perf_counter()
            # Compared against when the user is unknown, so that costs one bcrypt check too.
            dummy_hash = bcrypt.hashpw(b"dummy-password-1", bcrypt.gensalt(rounds))
            self.gate.typical = time.perf_counter() - started
        self._dummy_hash = dummy_hash

    def refuse_if_full(self):
        """503 at once when the gate could not take one more check: a login flood then costs
        as little as possible before it is turned away."""
        if self.gate.is_full(self.wait):
            raise _busy()

    def hash(self, password):
        """The bcrypt hash (text) of ``password`` (at most 72 UTF-8 bytes, checked by the schema)."""
        hashed = self.gate.run(self.wait, self.busy, bcrypt.hashpw, password.encode("utf-8"), bcrypt.gensalt(self.rounds))
        return hashed.decode("ascii")

    def verify(self, password, password_hash):
        """True when ``password`` matches; a missing hash or an impossible password still costs one check."""
        secret = password.encode("utf-8", "surrogatepass")  # a lone surrogate can never match
        usable = password_hash is not None and len(secret) <= MAX_PASSWORD_BYTES and is_storable(password)
        if not usable:
            secret = secret[:MAX_PASSWORD_BYTES]
        stored = password_hash.encode("ascii") if usable else self._dummy_hash
        matches = self.gate.run(self.wait, self.busy, bcrypt.checkpw, secret, stored)
        return usable and matches


class RequestsInFlight:
    """How many requests other than password checks (POSTs to ``credential_paths``: login,
    registration) the application is handling now: the gate's ``busy``."""

    def __init__(self, credential_paths=()):
        self.credential_paths = frozenset(credential_paths)
        self.count = 0
        self.lock = threading.Lock()

    def busy(self):
        return self.count > 0

    def counts(self, request):
        return not (request.method == "POST" and request.path_info in self.credential_paths)

    def add(self, delta):
        with self.lock:
            self.count += delta


def requests_in_flight_tween_factory(handler, registry):
    """Counts the requests in progress for the hashing gate (``cinema.requests_in_flight``)."""
    in_flight = registry["cinema.requests_in_flight"]

    def requests_in_flight_tween(request):
        if not in_flight.counts(request):
            return handler(request)
        in_flight.add(1)
        try:
            return handler(request)
        finally:
            in_flight.add(-1)

    return requests_in_flight_tween
