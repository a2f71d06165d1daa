"""Password hashing with bcrypt, behind a concurrency gate.

bcrypt is deliberately slow. It runs on ``BCRYPT_CONCURRENCY`` dedicated threads at a lower
CPU priority (Linux: the niceness of those threads only), so that a flood of logins cannot
starve every other request of CPU. A hash that cannot start within ``wait`` seconds is
refused with a 503 and ``Retry-After``; when the queue ahead of it already means it could
not start in time (from the recent duration of a hash), it is refused at once rather than
holding a server thread for nothing. The 5 s count from the request's arrival: a request that
waited for a server thread (see ``cinema_api.server``) has that much less.
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from cinema_api.core.errors import ServiceUnavailable

MAX_PASSWORD_BYTES = 72
GATE_WAIT_SEC = 5.0
HASHING_NICENESS = 10


def _lower_priority():
    """Run this thread (a hashing worker) at a lower priority; Linux applies it per thread."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
    except (AttributeError, OSError):  # other platforms: normal priority
        pass


def _busy():
    return ServiceUnavailable("Too many password checks in progress, retry later", {"Retry-After": "5"})


class HashingGate:
    """The hashing threads, shared by every ``PasswordHasher`` of an application."""

    def __init__(self, concurrency):
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="bcrypt", initializer=_lower_priority)
        self.admitted = 0  # hashing or waiting
        self.lock = threading.Lock()
        self.typical = None  # seconds per hash, smoothed

    def predicted_start(self):
        waiting = max(0, self.admitted - self.concurrency)
        return (waiting // self.concurrency + 1) * self.typical if waiting else 0.0

    def run(self, wait, func, *args):
        """``func(*args)`` on a hashing thread, refused (503) unless it can start within ``wait`` s."""
        with self.lock:
            if wait <= 0 or self.predicted_start() > wait:
                raise _busy()
            self.admitted += 1
        try:
            started = threading.Event()

            def job():
                started.set()
                begin = time.perf_counter()
                try:
                    return func(*args)
                finally:
                    self.typical = 0.8 * self.typical + 0.2 * (time.perf_counter() - begin)

            future = self.pool.submit(job)
            if not started.wait(wait) and future.cancel():
                raise _busy()
            return future.result()
        finally:
            with self.lock:
                self.admitted -= 1


class PasswordHasher:
    def __init__(self, rounds, concurrency, wait=GATE_WAIT_SEC, gate=None, dummy_hash=None):
        self.rounds = rounds
        self.wait = wait
        self.gate = gate or HashingGate(concurrency)
        if dummy_hash is None:
            started = time.perf_counter()
            # Compared against when the user is unknown, so that costs one bcrypt check too.
            dummy_hash = bcrypt.hashpw(b"dummy-password-1", bcrypt.gensalt(rounds))
            self.gate.typical = time.perf_counter() - started
        self._dummy_hash = dummy_hash

    def queued(self, seconds):
        """This hasher for a request that already waited ``seconds`` for a server thread: the
        5 s within which hashing must start count from the request's arrival."""
        if seconds <= 0:
            return self
        return PasswordHasher(self.rounds, None, self.wait - seconds, self.gate, self._dummy_hash)

    def hash(self, password):
        """The bcrypt hash (text) of ``password`` (at most 72 UTF-8 bytes, checked by the schema)."""
        hashed = self.gate.run(self.wait, bcrypt.hashpw, password.encode("utf-8"), bcrypt.gensalt(self.rounds))
        return hashed.decode("ascii")

    def verify(self, password, password_hash):
        """True when ``password`` matches; a missing hash or an impossible password still costs one check."""
        secret = password.encode("utf-8")
        usable = password_hash is not None and len(secret) <= MAX_PASSWORD_BYTES
        if not usable:
            secret = secret[:MAX_PASSWORD_BYTES]
        stored = password_hash.encode("ascii") if usable else self._dummy_hash
        matches = self.gate.run(self.wait, bcrypt.checkpw, secret, stored)
        return usable and matches
