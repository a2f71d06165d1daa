"""Login throttling: failed logins per client address and per username, in a moving window.

Counts live in the cache backend (Redis when configured, so every process shares one
budget; otherwise process memory). If that storage is unreachable, logins proceed and a
warning is logged: a throttle outage must not lock everybody out.
"""

import ipaddress
import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from cinema_api.infrastructure.breaker import CircuitBreaker

log = logging.getLogger(__name__)

WINDOW_MINUTES = 15
REDIS_TIMEOUT_SEC = 0.25


class LoginLimiter:
    def __init__(self, storage, per_address, per_username, breaker=None):
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.by_address = RateLimitItemPerMinute(per_address, WINDOW_MINUTES)
        self.by_username = RateLimitItemPerMinute(per_username, WINDOW_MINUTES)
        self.breaker = breaker or CircuitBreaker("login limiter storage")

    def _budgets(self, address, username):
        return ((self.by_address, "login:address", address), (self.by_username, "login:username", username))

    def _guarded(self, action, default):
        if self.breaker.is_open:
            return default
        try:
            result = action()
        except Exception as exc:  # storage outage: fail open
            self.breaker.failure(exc)
            return default
        self.breaker.success()
        return result

    def retry_after(self, address, username):
        """Seconds until a spent budget frees a slot, or None when the login may proceed."""

        def check():
            waits = []
            for item, namespace, key in self._budgets(address, username):
                if not self.limiter.test(item, namespace, key):
                    stats = self.limiter.get_window_stats(item, namespace, key)
                    waits.append(max(1, math.ceil(stats.reset_time - time.time())))
            return max(waits) if waits else None

        return self._guarded(check, None)

    def failed(self, address, username):
        def hit():
            for item, namespace, key in self._budgets(address, username):
                self.limiter.hit(item, namespace, key)

        self._guarded(hit, None)

    def succeeded(self, username):
        self._guarded(lambda: self.limiter.clear(self.by_username, "login:username", username), None)

    def reset(self):
        """Forget every count (tests)."""
        self._guarded(self.storage.reset, None)


def client_address(request, trusted_proxies):
    """The peer address, or the X-Forwarded-For hop added by a trusted proxy."""
    peer = request.remote_addr or ""
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address, networks):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def make_storage(redis_url):
    if redis_url:
        return RedisStorage(
            redis_url,
            socket_timeout=REDIS_TIMEOUT_SEC,
            socket_connect_timeout=REDIS_TIMEOUT_SEC,
        )
    return MemoryStorage()


def includeme(config):
    settings = config.registry["cinema.settings"]
    caches = config.registry["cinema.caches"]
    config.registry["cinema.login_limiter"] = LoginLimiter(
        make_storage(caches.redis_url),
        settings.login_limit_per_address,
        settings.login_limit_per_username,
    )
