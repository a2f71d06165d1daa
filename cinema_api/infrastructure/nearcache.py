"""Process-local copies of Redis cache entries, kept exact by Redis's invalidation pushes.

This is Redis client-side caching in broadcasting mode (Redis 6 or later). Each process opens
one connection per Redis URL, speaks RESP3 on it and asks::

    CLIENT TRACKING ON BCAST PREFIX cinema:movies: PREFIX cinema:sessions: ...

From then on Redis pushes, on that connection, the name of every key under those prefixes that
is written, deleted, expired or flushed, by any client. It queues the push while it executes
the change, before it answers the client that made it. A region read through ``NearCacheProxy``
first reads the pushes that have arrived (a non-blocking ``recv``), drops the copies they name,
and only then answers from its copies; a key it has no copy of is read from Redis and kept.
So a write (a new generation, a revocation marker) reaches every process's copies before the
writer's response is sent, and a cached hit costs no round trip to Redis.

A push can only be missed if the tracking connection itself stalls, so the copies are trusted
only while Redis answers a ``PING`` on that connection: one is sent every ``HEARTBEAT_SEC``
while requests come, and its answer is due within the cache's 0.25 s timeout. A lost or late
answer, a closed connection or a protocol error drops every copy, and reads go to Redis
(where the cache's circuit breaker handles an outage) until the connection is opened again,
``RECONNECT_SEC`` later. So no copy is served more than ``HEARTBEAT_SEC`` + 0.25 s after Redis
last proved the connection live.
"""

import logging
import socket
import threading
import time
import weakref

import hiredis
from dogpile.cache.proxy import ProxyBackend

log = logging.getLogger(__name__)

HEARTBEAT_SEC = 0.5
RECONNECT_SEC = 1.0


class TrackingUnsupported(Exception):
    """Redis refused client-side tracking (older than 6, or an ACL forbids it)."""


def command(*args):
    """One command in the Redis protocol."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Tracker:
    """One tracking connection to a Redis server and the local copies it keeps exact.

    ``copies(prefix, mapping)`` registers a key prefix and the bounded mapping of its copies
    before the first use; the connection opens on first use, and again ``RECONNECT_SEC`` after
    a failure, unless the cache's circuit breaker is open. Every method is thread-safe.
    """

    def __init__(self, connection_kwargs, breaker, timeout, clock=time.monotonic):
        self.address = (connection_kwargs.get("host", "localhost"), int(connection_kwargs.get("port", 6379)))
        self.username = connection_kwargs.get("username")
        self.password = connection_kwargs.get("password")
        self.breaker = breaker
        self.timeout = timeout
        self.clock = clock
        self._prefixes = {}
        self._lock = threading.Lock()
        self._sock = None
        self._reader = None
        self._closer = None
        self._buffer = bytearray(65536)
        self._epoch = 0
        self._confirmed = 0.0  # when the newest answered PING was sent
        self._ping_sent = None
        self._retry_at = 0.0
        self._unsupported = False
        self._draining = False

    def copies(self, prefix, mapping):
        self._prefixes[prefix] = mapping
        return mapping

    # ------------------------------------------------------------------ reads and writes

    def cached(self, mapping, keys):
        """``(values, epoch)``: the local copies of ``keys`` (None where there is none), or None
        when the copies cannot be trusted now (then the caller reads Redis as usual)."""
        if not self._sync():
            return None
        epoch = self._epoch
        return [mapping.get(key) for key in keys], epoch

    def keep(self, mapping, values, epoch):
        """Keep ``values`` read from Redis, unless a push arrived since ``epoch`` was taken:
        the value read may be older than that push, and the push has already been applied."""
        if not self._sync():
            return
        with self._lock:
            if self._sock is not None and self._epoch == epoch:
                for key, value in values.items():
                    mapping[key] = value

    def forget(self, mapping, keys):
        """Drop ``keys`` at once after this process wrote them (Redis's push follows)."""
        with self._lock:
            self._epoch += 1
            for key in keys:
                mapping.pop(key, None)

    def close(self):
        with self._lock:
            self._disconnect()

    # ------------------------------------------------------------------ connection
    #
    # The lock guards the connection, the reader and the copies' consistency with the pushes.
    # It is never held while the hot path asks the socket whether a push is waiting: that
    # system call releases the GIL, and a lock held across it would queue every request
    # thread behind the one waiting to get the GIL back.

    def _sync(self):
        """True when the copies are exact now: connected, pushes applied, heartbeat on time."""
        if self._unsupported or self.breaker.is_open:
            if self._sock is not None:
                self.close()
            return False
        sock = self._sock
        # the flag is read after the socket: a thread that took the bytes before our look
        # raised it before, and lowers it only once they are applied
        if sock is None or self._pending(sock) or self._draining:
            with self._lock:
                if self._sock is None and not self._connect():
                    return False
                self._drain()
        now = self.clock()
        if self._ping_sent is not None and now - self._ping_sent > self.timeout:
            with self._lock:
                if self._ping_sent is not None and now - self._ping_sent > self.timeout:
                    self._fail(TimeoutError("no answer to PING within %.2f s" % self.timeout))
        elif self._ping_sent is None and now - self._confirmed >= HEARTBEAT_SEC:
            with self._lock:
                if self._sock is not None and self._ping_sent is None:
                    self._send(command("PING"), now)
        return self._sock is not None and now - self._confirmed <= HEARTBEAT_SEC + self.timeout

    @staticmethod
    def _pending(sock):
        """Whether the connection has something to read (a push, a PONG, or its end)."""
        try:
            sock.recv(1, socket.MSG_PEEK)  # data, or b"" at its end: both need a drain
            return True
        except BlockingIOError:
            return False
        except OSError:  # closed meanwhile: the caller finds out under the lock
            return True

    def _connect(self):
        started = self.clock()
        if started < self._retry_at:
            return False
        try:
            sock = socket.create_connection(self.address, timeout=self.timeout)
        except OSError as exc:
            self._fail(exc)
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._reader = sock, hiredis.Reader()
        self._closer = weakref.finalize(self, sock.close)  # closed with the application too
        hello = ["HELLO", 3]
        if self.password:
            hello += ["AUTH", self.username or "default", self.password]
        tracking = ["CLIENT", "TRACKING", "ON", "BCAST"]
        for prefix in sorted(self._prefixes):
            tracking += ["PREFIX", prefix]
        try:
            sock.sendall(command(*hello) + command(*tracking))
            self._read_reply()
            if self._read_reply() != b"OK":
                raise TrackingUnsupported("CLIENT TRACKING was not accepted")
        except (OSError, hiredis.ProtocolError) as exc:
            self._fail(exc)
            return False
        except (hiredis.ReplyError, TrackingUnsupported) as exc:
            self._disconnect()
            self._unsupported = True
            log.warning("Redis refused client-side tracking (%s): every cached read asks Redis", exc)
            return False
        sock.setblocking(False)
        self._confirmed, self._ping_sent = started, None
        return True

    def _read_reply(self):
        """One reply during the handshake (blocking, within the timeout)."""
        while True:
            reply = self._reader.gets()
            if reply is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise reply
                return reply
            received = self._sock.recv_into(self._buffer)
            if not received:
                raise ConnectionError("Redis closed the connection")
            self._reader.feed(self._buffer, 0, received)

    def _send(self, data, now):
        try:
            self._sock.send(data)
        except OSError as exc:
            self._fail(exc)
            return
        self._ping_sent = now

    def _drain(self):
        """Apply every push and answer that has arrived, without waiting (lock held)."""
        if self._sock is None:
            return
        self._draining = True  # from before the read until applied: see _sync
        try:
            while True:
                try:
                    received = self._sock.recv_into(self._buffer)
                except BlockingIOError:
                    break
                if not received:
                    raise ConnectionError("Redis closed the connection")
                self._reader.feed(self._buffer, 0, received)
                if received < len(self._buffer):
                    break
            while (message := self._reader.gets()) is not False:
                self._apply(message)
        except (OSError, hiredis.ProtocolError, UnicodeDecodeError, hiredis.ReplyError) as exc:
            self._fail(exc)
        finally:
            self._draining = False

    def _apply(self, message):
        if isinstance(message, hiredis.PushNotification):
            if message[0] == b"invalidate":
                self._invalidate(message[1])
        elif message == b"PONG":
            self._confirmed, self._ping_sent = self._ping_sent or self._confirmed, None
        elif isinstance(message, hiredis.ReplyError):
            raise message

    def _invalidate(self, keys):
        self._epoch += 1
        if keys is None:  # FLUSHDB, FLUSHALL
            self._clear()
            return
        for key in keys:
            name = key.decode()
            for prefix, mapping in self._prefixes.items():
                if name.startswith(prefix):
                    mapping.pop(name, None)

    def _fail(self, exc):
        """Drop every copy; Redis is read directly until the connection is opened again."""
        self._disconnect()
        self._retry_at = self.clock() + RECONNECT_SEC
        log.warning("Redis tracking connection lost (%s): cached reads ask Redis until it is back", exc)

    def _disconnect(self):
        if self._sock is not None:
            self._closer()
        self._sock = self._reader = self._ping_sent = None
        self._clear()

    def _clear(self):
        self._epoch += 1
        for mapping in self._prefixes.values():
            mapping.clear()


class NearCacheProxy(ProxyBackend):
    """Wraps a region's Redis backend: reads are answered from the tracker's exact copies."""

    def __init__(self, tracker, prefix, mapping):
        super().__init__()
        self.tracker = tracker
        self.mapping = tracker.copies(prefix, mapping)

    def get_serialized(self, key):
        return self.get_serialized_multi([key])[0]

    def get_serialized_multi(self, keys):
        found = self.tracker.cached(self.mapping, keys)
        if found is None:
            return self.proxied.get_serialized_multi(keys)
        values, epoch = found
        missing = [key for key, value in zip(keys, values) if value is None]
        if not missing:
            return values
        fetched = self.proxied.get_serialized_multi(missing)
        self.tracker.keep(self.mapping, dict(zip(missing, fetched)), epoch)
        fetched = iter(fetched)
        return [next(fetched) if value is None else value for value in values]

    def set_serialized(self, key, value):
        self._write(self.proxied.set_serialized, [key], key, value)

    def set_serialized_multi(self, mapping):
        self._write(self.proxied.set_serialized_multi, list(mapping), mapping)

    def delete(self, key):
        self._write(self.proxied.delete, [key], key)

    def delete_multi(self, keys):
        keys = list(keys)
        self._write(self.proxied.delete_multi, keys, keys)

    def _write(self, action, keys, *args):
        try:
            action(*args)
        finally:  # a failed write may still have reached Redis
            self.tracker.forget(self.mapping, keys)
