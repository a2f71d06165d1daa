"""A circuit breaker for optional dependencies (the Redis cache and login limiter).

After a failure the dependency is bypassed for ``cooldown`` seconds before the next try,
so an outage degrades to uncached (or unthrottled) answers instead of errors or hangs.
Callers that ask :meth:`CircuitBreaker.allows` send one caller at a time to try (a half-open
probe) once the cooldown has passed; the others keep bypassing until it has answered.
"""

import logging
import threading
import time

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, name, cooldown=30.0, clock=time.monotonic, on_change=None, while_open="bypassed"):
        self.name = name
        self.while_open = while_open
        self.cooldown = cooldown
        self.clock = clock
        self.on_change = on_change
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self):
        """True while the dependency is being bypassed."""
        return self.clock() < self._open_until

    def allows(self):
        """Whether to call the dependency now: while closed, yes; while open, only the one
        caller that finds the cooldown over (the probe), which holds the others off for another
        cooldown. Its success closes the breaker; its failure keeps it open."""
        if not self._open_until:
            return True
        with self._lock:
            now = self.clock()
            if not self._open_until:
                return True
            if now < self._open_until:
                return False
            self._open_until = now + self.cooldown
            return True

    def failure(self, exc):
        with self._lock:
            was_closed = not self._open_until
            self._open_until = self.clock() + self.cooldown
        if was_closed:
            log.warning("%s is unavailable (%s): %s, tried again every %g s", self.name, exc, self.while_open, self.cooldown)
            if self.on_change:
                self.on_change("outage", self.name)

    def success(self):
        if self._open_until:
            with self._lock:
                recovered = bool(self._open_until)
                self._open_until = 0.0
            if recovered:
                log.warning("%s is available again", self.name)
                if self.on_change:
                    self.on_change("recovery", self.name)
