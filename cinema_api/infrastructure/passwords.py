"""Password hashing with bcrypt, behind a concurrency gate.

bcrypt is deliberately slow; at most ``BCRYPT_CONCURRENCY`` hashes run at once so that a
flood of logins cannot starve every other request. A hash that cannot start within
``wait`` seconds is refused with a 503 and ``Retry-After``; so is one that finds as many
requests already waiting as may hash at once: each waiter holds a server thread, and
reads must keep finding free threads while logins are hammered.
"""

import threading

import bcrypt

from cinema_api.core.errors import ServiceUnavailable

MAX_PASSWORD_BYTES = 72
GATE_WAIT_SEC = 5.0


def _busy():
    return ServiceUnavailable("Too many password checks in progress, retry later", {"Retry-After": "5"})


class PasswordHasher:
    def __init__(self, rounds, concurrency, wait=GATE_WAIT_SEC):
        self.rounds = rounds
        self.wait = wait
        self._gate = threading.BoundedSemaphore(concurrency)
        self._max_waiting = concurrency
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        # Compared against when the user is unknown, so that costs one bcrypt check too.
        self._dummy_hash = bcrypt.hashpw(b"dummy-password-1", bcrypt.gensalt(rounds))

    def _gated(self, func, *args):
        if not self._gate.acquire(blocking=False):
            with self._waiting_lock:
                full = self._waiting >= self._max_waiting
                if not full:
                    self._waiting += 1
            if full:
                raise _busy()
            try:
                acquired = self._gate.acquire(timeout=self.wait)
            finally:
                with self._waiting_lock:
                    self._waiting -= 1
            if not acquired:
                raise _busy()
        try:
            return func(*args)
        finally:
            self._gate.release()

    def hash(self, password):
        """The bcrypt hash (text) of ``password`` (at most 72 UTF-8 bytes, checked by the schema)."""
        hashed = self._gated(bcrypt.hashpw, password.encode("utf-8"), bcrypt.gensalt(self.rounds))
        return hashed.decode("ascii")

    def verify(self, password, password_hash):
        """True when ``password`` matches; a missing hash or an impossible password still costs one check."""
        secret = password.encode("utf-8")
        usable = password_hash is not None and len(secret) <= MAX_PASSWORD_BYTES
        if not usable:
            secret = secret[:MAX_PASSWORD_BYTES]
        stored = password_hash.encode("ascii") if password_hash else self._dummy_hash
        matches = self._gated(bcrypt.checkpw, secret, stored if usable else self._dummy_hash)
        return usable and matches
