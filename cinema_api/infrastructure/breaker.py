"""A circuit breaker for optional dependencies (the Redis cache and login limiter).

After a failure the dependency is bypassed for ``cooldown`` seconds before the next try,
so an outage degrades to uncached (or unthrottled) answers instead of errors or hangs.
"""

import logging
import threading
import time

log = logging.getLogger(__name__)


class CircuitBreaker:
    def __init__(self, name, cooldown=30.0, clock=time.monotonic, on_change=None):
        self.name = name
        self.cooldown = cooldown
        self.clock = clock
        self.on_change = on_change
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self):
        """True while the dependency is being bypassed."""
        return self.clock() < self._open_until

    def failure(self, exc):
        with self._lock:
            was_closed = not self._open_until
            self._open_until = self.clock() + self.cooldown
        if was_closed:
            log.warning("%s is unavailable (%s): bypassed for %.0f s", self.name, exc, self.cooldown)
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
