"""Login throttling: failed logins per client address and per username, in a moving window.

A login first *reserves* one failure in both budgets, atomically (check and add in one step),
and only then checks the password: of 30 simultaneous wrong passwords from one address at
most 10 are checked, in every process sharing the storage. A login that the per-username budget
alone refuses, from an address that username signed in from lately (the caller says which), is
reserved against the address's budget only, atomically too. A successful login gives its
reservation back and clears the username's count. The counts live in Redis when the cache is
Redis (a sorted set of attempt times per key, changed by one Lua script), otherwise in process
memory. If the storage is unreachable, logins proceed and a warning is logged: a throttle
outage must not lock everybody out. Only a storage failure counts as one (:data:`STORAGE_FAILURES`):
keys are digests, so no username or address a client sends can fail to make a key.
"""

import hashlib
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict, defaultdict

import redis

from cinema_api.infrastructure.breaker import CircuitBreaker
from cinema_api.infrastructure.cache import redis_pool

log = logging.getLogger(__name__)

WINDOW_SEC = 15 * 60
KEY_PREFIX = "cinema:login:"
#: While the storage fails, one login tries it this often: the throttle is back within a second
#: of the storage answering again (a try costs at most the Redis timeout, 0.25 s).
PROBE_SEC = 0.5
#: What the storage raises when it cannot answer (down, frozen, loading, refusing writes). Any
#: other exception is a bug of ours: raised, never taken for an outage that bypasses the throttle.
STORAGE_FAILURES = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, redis.exceptions.OutOfMemoryError, OSError)

#: KEYS: the budgets' keys; ARGV: now, window, member, then each key's limit. Returns, per key, the
#: seconds until the oldest failure of that budget leaves the window when it is spent, else 0; the
#: attempt is added to every key only when none is spent.
RESERVE_SCRIPT = """
local now, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local waits, spent = {}, false
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local wait = 0
    if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        wait = tonumber(oldest[2]) + window - now
        spent = true
    end
    waits[i] = tostring(wait)
end
if spent then return waits end
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, member)
    redis.call('EXPIRE', key, math.ceil(window))
end
return waits
"""


class MemoryAttempts:
    """Attempt times per key in this process, under one lock; oldest first, so that leaving the
    window costs nothing per attempt still in it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times = defaultdict(OrderedDict)  # key -> {member: time}, in the order of time

    def reserve(self, keys, limits, now, member):
        """Per key, the seconds until its oldest failure leaves the window when that budget is
        spent, else 0; the attempt is added to every key only when none is spent."""
        with self.lock:
            waits = []
            for key, limit in zip(keys, limits, strict=True):
                attempts = self.times[key]
                while attempts and next(iter(attempts.values())) <= now - WINDOW_SEC:
                    attempts.popitem(last=False)
                spent = len(attempts) >= limit
                waits.append(next(iter(attempts.values())) + WINDOW_SEC - now if spent else 0.0)
            if not any(wait > 0 for wait in waits):
                for key in keys:
                    self.times[key][member] = now
            return waits

    def release(self, keys, member):
        with self.lock:
            for key in keys:
                self.times[key].pop(member, None)

    def clear(self, key):
        with self.lock:
            self.times.pop(key, None)

    def reset(self):
        with self.lock:
            count = len(self.times)
            self.times.clear()
        return count


class RedisAttempts:
    """Attempt times per key in Redis sorted sets, shared by every process."""

    def __init__(self, url, key_prefix=KEY_PREFIX):
        self.client = redis.Redis(connection_pool=redis_pool(url))
        self.script = self.client.register_script(RESERVE_SCRIPT)
        self.key_prefix = key_prefix

    def reserve(self, keys, limits, now, member):
        return [float(wait) for wait in self.script(keys=list(keys), args=[now, WINDOW_SEC, member, *limits])]

    def release(self, keys, member):
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.zrem(key, member)
        pipeline.execute()

    def clear(self, key):
        self.client.delete(key)

    def reset(self):
        keys = list(self.client.scan_iter(self.key_prefix + "*"))
        if keys:
            self.client.delete(*keys)
        return len(keys)


class LoginLimiter:
    def __init__(self, attempts, per_address, per_username, clock=time.time, key_prefix=KEY_PREFIX):
        self.attempts = attempts
        self.key_prefix = key_prefix
        self.limits = (per_address, per_username)
        self.clock = clock
        self.breaker = CircuitBreaker("login limiter storage", PROBE_SEC)

    def _keys(self, address, username):
        """The keys of both budgets: SHA-256 digests, so any text (a lone surrogate, a NUL,
        a megabyte) makes a short key every storage can hold."""
        return (self.key_prefix + "address:" + _digest(address), self.key_prefix + "username:" + _digest(username))

    def _guarded(self, action, default):
        if not self.breaker.allows():
            return default
        try:
            result = action()
        except STORAGE_FAILURES as exc:  # storage outage: fail open
            self.breaker.failure(exc)
            return default
        self.breaker.success()
        return result

    def reserve(self, address, username, spared=None):
        """``(retry_after, reservation)``: seconds to wait while a budget is spent (and no
        reservation), else None and a reservation, which counts as a failure unless it is
        given back (:meth:`give_back`, :meth:`succeeded`).

        ``spared()`` says whether the per-username budget spares this address (one the user
        signed in from lately); it is asked only when that budget alone would refuse. A spared
        attempt is reserved against the address's budget only, which still applies."""
        keys, member = self._keys(address, username), uuid.uuid4().hex
        waits = self._guarded(lambda: self.attempts.reserve(keys, self.limits, self.clock(), member), None)
        if waits is None or not any(wait > 0 for wait in waits):
            return None, (keys, member, keys[1])
        address_wait, username_wait = waits
        if address_wait <= 0 and spared is not None and spared():
            address_key = keys[:1]
            waits = self._guarded(lambda: self.attempts.reserve(address_key, self.limits[:1], self.clock(), member), None)
            if waits is None or waits[0] <= 0:
                return None, (address_key, member, keys[1])
            address_wait, username_wait = waits[0], 0
        return max(1, math.ceil(max(address_wait, username_wait))), None

    def give_back(self, reservation):
        """The attempt was not a failure after all (it was answered otherwise than 401)."""
        if reservation is not None:
            keys, member, _ = reservation
            self._guarded(lambda: self.attempts.release(keys, member), None)

    def succeeded(self, reservation):
        """The login succeeded: it was no failure, and the username's count starts again."""
        self.give_back(reservation)
        if reservation is not None:
            self._guarded(lambda: self.attempts.clear(reservation[2]), None)

    def reset(self):
        """Forget every count (tests)."""
        self._guarded(self.attempts.reset, None)

    @property
    def is_shared(self):
        """True when the counts live in Redis, where every process (and cinema-admin) sees them."""
        return isinstance(self.attempts, RedisAttempts)

    def forget_all(self):
        """Forget every count now and say how many there were; a storage failure is raised
        (an operator's command must not report a reset that did not happen)."""
        return self.attempts.reset()


def _digest(text):
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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


def login_limiter(settings):
    """The limiter of these settings: its counts live in Redis when the default (first) cache
    region is Redis, shared by every process, otherwise in this process's memory."""
    region, key_prefix = settings.cache_regions[0], settings.cache_key_prefix + ":login:"
    return LoginLimiter(
        RedisAttempts(region.url, key_prefix) if region.backend == "redis" else MemoryAttempts(),
        settings.login_limit_per_address,
        settings.login_limit_per_username,
        key_prefix=key_prefix,
    )


def includeme(config):
    config.registry["cinema.login_limiter"] = login_limiter(config.registry["cinema.settings"])
