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

The gate is fair between clients (a hasher bound with :meth:`PasswordHasher.for_client`), and
leaves nothing idle that nobody else asks for. One client address may use the whole gate while
it is alone (clients behind one NAT, or a proxy not in ``TRUSTED_PROXIES``); once another
client asks, the first holds a ``share`` (a quarter, at least one) of the hashing places and of
the waiting places: the newest of its waiting requests beyond its share is refused (503) to make
room for the other's, which also takes the next place freed. So a flood from one address (valid
logins included) never keeps another address out. A waiting request whose client has gone away
(waitress's ``waitress.client_disconnected``) leaves at once and is never hashed.
"""

import copy
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from cinema_api.core.errors import ServiceUnavailable
from cinema_api.core.metrics import UNCOUNTED
from cinema_api.core.schemas import is_storable
from cinema_api.core.threads import parallel_thread

MAX_PASSWORD_BYTES = 72
GATE_WAIT_SEC = 5.0
YIELD_SEC = 0.005
#: How often a waiting request looks whether its client is still there.
GONE_POLL_SEC = 0.05
#: The part of the hashing places, and of the waiting places, one client address may hold.
CLIENT_SHARE = 0.25


class GateFull(ServiceUnavailable):
    """The hashing gate admits no more requests (or none from this client): retry later."""

    code = "BUSY"


class ClientGone(ServiceUnavailable):
    """The client went away while its password check waited: an answer nobody receives."""

    code = "CLIENT_GONE"


def _busy():
    return GateFull("Too many password checks in progress, retry later", {"Retry-After": "5"})


def _gone():
    return ClientGone("The client closed the connection before its password check", {"Retry-After": "5"})


class _Waiter:
    __slots__ = ("client", "evicted")

    def __init__(self, client):
        self.client = client
        self.evicted = False  # made way for another client's request: leaves with a 503


class HashingGate:
    """The hashing threads, shared by every ``PasswordHasher`` of an application."""

    #: cinema_login_gate_wait_seconds, cinema_login_gate_rejections_total and the two
    #: operations of cinema_bcrypt_hashes_total (see cinema_api.auth's includeme)
    waits = rejections = hashes = verifications = UNCOUNTED

    def __init__(self, concurrency, max_admitted=None, share=CLIENT_SHARE):
        self.concurrency = concurrency
        self.max_admitted = max_admitted or 2 * concurrency
        self.client_places = max(1, int(concurrency * share))
        self.client_queue = max(1, int((self.max_admitted - concurrency) * share))
        # the hashes run outside the interpreter lock: on every CPU, not the interpreter's alone
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bcrypt", initializer=parallel_thread)
        self.admitted = 0  # hashing or waiting
        self.hashing = 0  # places taken
        self.lock = threading.Lock()
        self.place_freed = threading.Condition(self.lock)
        self.waiting = deque()  # _Waiter, oldest first
        self.held = Counter()  # client -> requests at the gate
        self.placed = Counter()  # client -> places taken
        self.typical = None  # seconds per hash, smoothed

    def is_full(self, wait, client=None):
        """Whether a request arriving now would be refused: no room at the gate (or no start
        within ``wait`` seconds at the recent pace), unless a waiting request of a client beyond
        its share of the waiting places would make way for it. A cheap look, before any other
        work; it takes the lock, since the line it reads changes under other threads."""
        with self.lock:
            return self._crowded(wait) and self._evictable(client) is None

    def _crowded(self, wait):
        """No room at the gate for one more request, or no start within ``wait`` seconds."""
        return self.admitted >= self.max_admitted or self.predicted_start() > wait

    def _evictable(self, client):
        """The newest waiting request of another client that holds more than its share of the
        waiting places, which makes way for a request of ``client`` (within its own share), or
        None. Under the lock."""
        if client is None:
            return None
        waiting = Counter(waiter.client for waiter in self.waiting if not waiter.evicted)
        if waiting[client] >= self.client_queue:
            return None
        for waiter in reversed(self.waiting):
            if not waiter.evicted and waiter.client not in (None, client) and waiting[waiter.client] > self.client_queue:
                return waiter
        return None

    def predicted_start(self):
        waiting = max(0, self.admitted - self.concurrency)
        return (waiting // self.concurrency + 1) * self.typical if waiting else 0.0

    def run(self, wait, busy, func, *args, client=None, gone=None):
        """``func(*args)`` on a hashing thread, refused (503) unless it can start within ``wait`` s.

        While ``busy()`` says other requests are being served, it waits for no other hash to
        run (yet starts within ``wait`` s all the same). ``client`` (an address) holds at most
        its share of the gate; once ``gone()`` is true the request leaves it (503, never sent)."""
        arrived = time.monotonic()
        deadline = arrived + wait
        with self.lock:
            if self._crowded(wait):
                victim = self._evictable(client)
                if victim is None:
                    self.rejections.inc()
                    raise _busy()
                victim.evicted = True  # it leaves at once (503): this one takes its place in line
                self.place_freed.notify_all()
            self.admitted += 1
            self.held[client] += 1
            # in line in the same step as admitted: a request arriving meanwhile sees every waiter
            # it could make way for, and none that is not in line yet
            waiter = _Waiter(client)
            self.waiting.append(waiter)
        placed = False
        try:
            self._take_place(waiter, busy, gone, deadline)
            placed = True  # from now on the request leaves the gate with its place (_give_back_place)
            self.waits.observe(time.monotonic() - arrived)
            return self._hash(client, gone, deadline, func, args)
        except ServiceUnavailable:
            self.rejections.inc()
            raise
        finally:
            if not placed:
                with self.lock:
                    self._leave(client)

    def _take_place(self, waiter, busy, gone, deadline):
        """Wait in line (``waiter``, already in :attr:`waiting`) for a place, and take it."""
        with self.lock:
            try:
                while True:
                    if waiter.evicted:
                        raise _busy()
                    blocked = self._blocked(waiter, busy, deadline)
                    if not blocked:
                        break
                    if gone is not None and gone():
                        raise _gone()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise _busy()
                    self.place_freed.wait(min(remaining, YIELD_SEC if blocked == "busy" else GONE_POLL_SEC))
            finally:
                self.waiting.remove(waiter)
                self.place_freed.notify_all()  # a later waiter may be first in line now
            self.hashing += 1
            self.placed[waiter.client] += 1

    def _blocked(self, waiter, busy, deadline):
        """Why ``waiter`` may not take a place now (under the lock), or None: no place free, its
        client's share taken, an older waiter first in line, or other requests being served
        while a hash runs ("busy")."""
        if self.hashing >= self.concurrency or not self._may_place(waiter.client):
            return "full"
        for earlier in self.waiting:
            if earlier is waiter:
                break
            if not earlier.evicted and self._may_place(earlier.client):
                return "full"
        if busy is not None and self.hashing and time.monotonic() < deadline and busy():
            return "busy"
        return None

    def _may_place(self, client):
        """Whether ``client`` may take one more place: within its share, or beyond it while no
        other client waits for one (a place that nobody else asks for is not left idle; a
        client that arrives takes the next place freed, before the first one's next request)."""
        if client is None or self.placed[client] < self.client_places:
            return True
        return all(waiter.client == client or waiter.evicted for waiter in self.waiting)

    def _hash(self, client, gone, deadline, func, args):
        """``func(*args)`` on a hashing thread, in the place taken; the place is given back."""
        started = threading.Event()

        def job():
            started.set()
            try:
                if gone is not None and gone():
                    raise _gone()
                begin = time.perf_counter()
                result = func(*args)
                self.typical = 0.8 * self.typical + 0.2 * (time.perf_counter() - begin)
                return result
            finally:
                self._give_back_place(client)

        future = self.pool.submit(job)
        if not started.wait(max(deadline - time.monotonic(), GONE_POLL_SEC)) and future.cancel():
            self._give_back_place(client)
            raise _busy()
        return future.result()

    def _give_back_place(self, client):
        """The hash is done (or never started): the request leaves its place and the gate, whose
        room counts only what waits or hashes, not what is on its way out."""
        with self.lock:
            self.hashing -= 1
            self._forget(self.placed, client)
            self._leave(client)
            self.place_freed.notify_all()

    def _leave(self, client):
        self.admitted -= 1
        self._forget(self.held, client)

    @staticmethod
    def _forget(counter, client):
        counter[client] -= 1
        if not counter[client]:
            del counter[client]


class PasswordHasher:
    def __init__(self, rounds, concurrency, wait=GATE_WAIT_SEC, gate=None, dummy_hash=None, busy=None):
        self.rounds = rounds
        self.wait = wait
        self.busy = busy
        self.client = None
        self.gone = None
        self.gate = gate or HashingGate(concurrency)
        if dummy_hash is None:
            started = time.perf_counter()
            # Compared against when the user is unknown, so that costs one bcrypt check too.
            dummy_hash = bcrypt.hashpw(b"dummy-password-1", bcrypt.gensalt(rounds))
            self.gate.typical = time.perf_counter() - started
        self._dummy_hash = dummy_hash

    def for_client(self, client, gone=None):
        """This hasher on behalf of one client: ``client`` (its address) holds at most its share
        of the gate, and its request leaves the gate once ``gone()`` says it has disconnected."""
        bound = copy.copy(self)
        bound.client, bound.gone = client, gone
        return bound

    def refuse_if_full(self):
        """503 at once when the gate could not take one more check: a login flood then costs
        as little as possible before it is turned away."""
        if self.gate.is_full(self.wait, self.client):
            self.gate.rejections.inc()
            raise _busy()

    def _run(self, func, *args):
        return self.gate.run(self.wait, self.busy, func, *args, client=self.client, gone=self.gone)

    def hash(self, password):
        """The bcrypt hash (text) of ``password`` (at most 72 UTF-8 bytes, checked by the schema)."""
        hashed = self._run(bcrypt.hashpw, password.encode("utf-8"), bcrypt.gensalt(self.rounds))
        self.gate.hashes.inc()
        return hashed.decode("ascii")

    def verify(self, password, password_hash):
        """True when ``password`` matches; a missing hash or an impossible password still costs one check."""
        secret = password.encode("utf-8", "surrogatepass")  # a lone surrogate can never match
        usable = password_hash is not None and len(secret) <= MAX_PASSWORD_BYTES and is_storable(password)
        if not usable:
            secret = secret[:MAX_PASSWORD_BYTES]
        stored = password_hash.encode("ascii") if usable else self._dummy_hash
        matches = self._run(bcrypt.checkpw, secret, stored)
        self.gate.verifications.inc()
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
