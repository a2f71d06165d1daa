"""dogpile.cache regions as a Pyramid include: copies of read bodies that cannot outlive the truth.

Each region is configured from its own ini prefix::

    cinema.cache.regions = movies sessions
    cinema.cache.movies.backend = memory          # memory | redis | null
    cinema.cache.movies.expiration_time = 300
    cinema.cache.movies.arguments.max_entries = 10000
    cinema.cache.sessions.arguments.url = redis://127.0.0.1:6379/0

``CACHE_URL`` (``memory://``, ``redis://host:port/db``, ``null://``), when set, replaces
every region's backend. Every key starts with ``CACHE_KEY_PREFIX`` (default ``cinema``):
``<prefix>:<region>:<key>``, so that several applications (or a test run) can share one Redis
database and each can find and delete its own keys.

Freshness is the database's: every key starts with the catalogue's version, a value that the
database changes in the same transaction as any write to movies or sessions (triggers of the
migrations). A request reads that version before it reads any data (with its token check,
in one round trip), so a body is only ever stored under a version at most as old as its data,
and once a change has committed no later request can find the copies made before it. Nothing
has to be invalidated, so no write path can forget to, and a cache that stalls, forgets or
comes back with old entries can cost speed, never correctness.

A body is immutable under its key, so a Redis region also keeps process-local copies of
what it read (bounded, least recently used first): a repeated hit costs no Redis round trip.
New entries are kept locally at once and reach Redis from a thread of their own, a few at a
time in one round trip (:class:`RedisWriter`): a miss costs its request one Redis round trip,
the lookup, not two.
"""

import hashlib
import logging
import queue
import re
import threading
import time
import uuid
from collections import OrderedDict
from urllib.parse import parse_qsl

import redis
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from pyramid.interfaces import IRoutesMapper
from pyramid.response import Response
from pyramid.router import default_execution_policy
from redis.backoff import NoBackoff
from redis.retry import Retry

from cinema_api.core.logs import log_access
from cinema_api.core.threads import ProcessThread
from cinema_api.core.trace import TRACE_HEADER, incoming_trace_id
from cinema_api.infrastructure.breaker import CircuitBreaker
from cinema_api.infrastructure.db import live_login_session_of, read_catalog_version, select_without_session
from cinema_api.infrastructure.tokens import InvalidToken, bearer_token

log = logging.getLogger(__name__)
hit_log = logging.getLogger("cinema_api.cache")

REDIS_TIMEOUT_SEC = 0.25
#: After a Redis failure the cache is skipped for this long: an outage costs one timeout, not one per request.
OUTAGE_BYPASS_SEC = 5.0
#: What every key of the regions starts with, unless ``CACHE_KEY_PREFIX`` says otherwise.
KEY_PREFIX = "cinema"
#: Where the security policy leaves the catalogue version it read with the token check.
CATALOG_VERSION_KEY = "cinema.catalog_version"
#: Where the fast path of cached reads leaves ``(token, what the login-session check answered
#: or raised)`` for the security policy, when it hands the request on.
LOGIN_SESSION_KEY = "cinema.login_session"
#: The cache key the fast path of cached reads looked up in vain.
MISSED_KEY = "cinema.cache_missed"

BACKENDS = {
    "memory": "dogpile.cache.memory",
    "redis": "dogpile.cache.redis",
    "null": "dogpile.cache.null",
}


class LRUDict:
    """A thread-safe mapping bounded to ``max_entries``: the least recently used goes first.

    dogpile's memory backend keeps values in the mapping it is given; a plain dict
    would grow without bound.
    """

    def __init__(self, max_entries):
        self.max_entries = max_entries
        self._data = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            try:
                self._data.move_to_end(key)
            except KeyError:
                return default
            return self._data[key]

    def __setitem__(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def pop(self, key, default=None):
        with self._lock:
            return self._data.pop(key, default)

    def __len__(self):
        return len(self._data)


def redis_pool(url):
    """A connection pool with short timeouts and no retries: a slow Redis must not stall requests."""
    return redis.ConnectionPool.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SEC,
        socket_connect_timeout=REDIS_TIMEOUT_SEC,
        retry=Retry(NoBackoff(), 0),
    )


class RedisWriter:
    """Stores the new entries of Redis regions from a thread of its own, off the request
    threads: woken by an entry, it waits ``GATHER_SEC`` for more and sends what came, region
    by region, in one pipeline. At most ``MAX_PENDING`` entries wait; more are dropped (they
    are kept locally, and a cache can cost speed, never correctness), as are those a failing
    Redis refused (the region's breaker hears of it)."""

    GATHER_SEC = 0.005
    MAX_PENDING = 1000
    MAX_BATCH = 100

    def __init__(self):
        self.pending = None  # the queue of this process's thread
        self.thread = ProcessThread("cache-writer", self._run, on_start=self._new_queue)

    def store(self, region, key, value):
        self.thread.ensure()
        try:
            self.pending.put_nowait((region, key, value))
        except queue.Full:
            log.debug("cache region %s: %s not stored in Redis, too many pending", region.name, key)

    def _new_queue(self):
        self.pending = queue.Queue(self.MAX_PENDING)

    def _run(self):
        pending = self.pending
        while True:
            batch = [pending.get()]
            time.sleep(self.GATHER_SEC)
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            self.write(batch)

    @staticmethod
    def write(batch):
        """Store ``(region, key, value)`` entries, one round trip per region."""
        by_region = {}
        for region, key, value in batch:
            by_region.setdefault(region, {})[key] = value
        for region, mapping in by_region.items():
            region.store_many(mapping)


class Region:
    """One named dogpile region of immutable entries; a failing backend reads as a miss."""

    def __init__(self, config, pool=None, writer=None, key_prefix=KEY_PREFIX):
        self.name = config.name
        self.key_prefix = key_prefix
        self.enabled = config.backend != "null"
        self.local = None
        arguments = {}
        if config.backend == "memory":
            arguments = {"cache_dict": LRUDict(config.max_entries)}
        elif config.backend == "redis":
            arguments = {"connection_pool": pool, "redis_expiration_time": config.expiration_time}
            self.local = LRUDict(config.max_entries)
        self.writer = writer if config.backend == "redis" else None
        prefix = "%s:%s:" % (key_prefix, self.name)
        self.dogpile = make_region(name=self.name, key_mangler=lambda key: prefix + key)
        self.dogpile.configure(BACKENDS[config.backend], expiration_time=config.expiration_time, arguments=arguments)
        self.breaker = CircuitBreaker("cache region %s" % self.name, OUTAGE_BYPASS_SEC)

    def get(self, key):
        """The value stored under ``key``, or None (missing, expired, or the backend failing)."""
        if self.local is not None:
            value = self.local.get(key)
            if value is not None:
                return value
        if not self.enabled or self.breaker.is_open:
            return None
        try:
            value = self.dogpile.get(key)
        except redis.RedisError as exc:
            self.breaker.failure(exc)
            return None
        self.breaker.success()
        if value is NO_VALUE:
            return None
        if self.local is not None:
            self.local[key] = value
        return value

    def set(self, key, value):
        if self.local is not None:
            self.local[key] = value
        if not self.enabled or self.breaker.is_open:
            return
        if self.writer is not None:
            self.writer.store(self, key, value)
        else:
            self.store_many({key: value})

    def store_many(self, mapping):
        """Store ``mapping`` in the backend (Redis: in one round trip)."""
        if self.breaker.is_open:
            return
        try:
            self.dogpile.set_multi(mapping)
        except redis.RedisError as exc:
            self.breaker.failure(exc)
        else:
            self.breaker.success()

    def ping(self):
        """A real set and get on the backend itself (not the local copies); True when it answered."""
        if not self.enabled:
            return True
        backend = self.dogpile.backend
        key = "%s:health:%s" % (self.key_prefix, uuid.uuid4().hex)
        # dogpile's Redis backend stores bytes (set_serialized); the memory backend stores objects
        value = b"ok" if backend.serializer else "ok"
        set_, get = (backend.set_serialized, backend.get_serialized) if backend.serializer else (backend.set, backend.get)
        try:
            set_(key, value)
            ok = get(key) == value
            backend.delete(key)
        except redis.RedisError as exc:
            log.warning("cache health check failed: %s", exc)
            return False
        return ok


class Caches:
    """The application's regions, by name; one Redis pool per URL. Every key starts with
    ``key_prefix`` and a ``:`` (``CACHE_KEY_PREFIX``)."""

    def __init__(self, configs, key_prefix=KEY_PREFIX):
        pools = {config.url: redis_pool(config.url) for config in configs if config.backend == "redis"}
        writer = RedisWriter() if pools else None
        self.regions = {config.name: Region(config, pools.get(config.url), writer, key_prefix) for config in configs}
        self.default_config = configs[0]

    def region(self, name):
        return self.regions[name]

    def ping(self):
        return self.regions[self.default_config.name].ping()


# ---------------------------------------------------------------- HTTP caching of reads
#
# Cached reads are served by a tween, before routing to the view: on a hit a request costs the
# token check (which reads the catalogue version in the same query) and one cache read. The
# key is the version, the route and the raw query normalised (known parameters only, empty
# ones dropped, sorted); a key is only ever stored after the full path has validated that
# exact query and answered 200, so an invalid query always misses and gets its 400.


def etag_of(body):
    return '"%s"' % hashlib.sha256(body).hexdigest()[:32]


def etag_matches(header, etag):
    """Weak comparison (RFC 9110): ``W/`` prefixes are ignored; ``*`` matches anything."""
    if not header:
        return False
    opaque = etag[2:] if etag.startswith("W/") else etag
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if (candidate[2:] if candidate.startswith("W/") else candidate) == opaque:
            return True
    return False


def cached_answer(environ, body, etag, cache_status):
    """``(status, header list, body)`` of a cached body: 304 when the client holds ``etag``."""
    headers = [("ETag", etag), ("X-Cache", cache_status), ("Cache-Control", "private, no-cache")]
    if etag_matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
        return "304 Not Modified", headers, b""
    # the header list in full: what WebOb would derive from a content type, for less work per hit
    headers[:0] = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return "200 OK", headers, body


def json_response(request, body, etag, cache_status):
    status, headers, body = cached_answer(request.environ, body, etag, cache_status)
    return Response(status=status, headerlist=headers, app_iter=[body] if body else [])


class CachedRoute:
    """A GET route whose 200 bodies live in ``region``; ``params`` are its query parameters."""

    def __init__(self, route_name, region, params):
        self.route_name, self.region, self.params = route_name, region, frozenset(params)

    def key(self, version, match, query_items):
        """The key of this version and request, or None when the query repeats a parameter (a 400 to come)."""
        query = {}
        for name, value in query_items:
            if name not in self.params or value == "":
                continue
            if name in query:
                return None
            query[name] = value
        path = ",".join("%s=%s" % (name, match[name].lower()) for name in sorted(match))
        params = "&".join("%s=%s" % item for item in sorted(query.items()))
        return "%s:%s:%s?%s" % (version, self.route_name, path, params)


def add_cached_route(config, service, region):
    """Directive: serve the GET answers of a Cornice ``service`` from ``region``."""
    schema = next(args.get("schema") for method, _, args in service.definitions if method == "GET")
    params = [node.name for part in schema.children if part.name == "querystring" for node in part.children]
    config.registry.setdefault("cinema.cached_routes", {})[service.name] = CachedRoute(service.name, region, params)


def catalog_version(request):
    """The catalogue version this request reads under: the one read with its token, else a query."""
    version = request.environ.get(CATALOG_VERSION_KEY)
    return version if version is not None else read_catalog_version(request.db)


def cache_tween_factory(handler, registry):
    routes = registry.get("cinema.cached_routes", {})
    mapper = registry.getUtility(IRoutesMapper)
    caches = registry["cinema.caches"]
    trace_hits = registry["cinema.settings"].enable_cache_trace_logs

    def cache_tween(request):
        if request.method != "GET" or not routes:
            return handler(request)
        info = mapper(request)
        route = routes.get(info["route"].name) if info["route"] is not None else None
        # Authentication (against the database) runs before the cache: anonymous or invalid
        # tokens take the full path to their 401.
        if route is None or request.identity is None:
            return handler(request)
        # The version is read before any data is: a body can only be stored under a version
        # at most as old as the data in it.
        version = catalog_version(request)
        key = route.key(version, info["match"], request.GET.items()) if version else None
        region = caches.region(route.region)
        # a key the fast path of cached hits just missed is not looked up again (Redis: a round trip)
        missed = key is None or request.environ.get(MISSED_KEY) == key
        stored = None if missed else region.get(key)
        if stored is not None:
            if trace_hits:
                hit_log.info("cache hit %s [trace %s]", key, request.trace_id)
            return json_response(request, stored[1], stored[0], "HIT")
        response = handler(request)
        if response.status_code != 200 or response.content_type != "application/json":
            return response
        etag = etag_of(response.body)
        if key is not None:
            region.set(key, (etag, response.body))
        return json_response(request, response.body, etag, "MISS")

    return cache_tween


# ---------------------------------------------------------------- the fast path of cached hits
#
# A cached hit needs the token check (one database read) and one cache read; Pyramid would
# first build a request and pass it through every tween. The execution policy below answers
# such a hit before that, as the tweens would: the same headers (X-Trace-Id and nosniff of the
# trace tween, the cache's own), the same access log line, counted among the requests in
# flight, the cache's trace line when those are on, and ``Vary: Origin`` where CORS is configured.
# Whatever it is not sure of goes the whole way: another method, a body, a path or query beyond
# plain ASCII (their decoding is WebOb's), no bearer token or an invalid one, a route that is not
# cached, a miss, an Origin header where CORS is configured. The login-session check it
# made (its answer, or the error it raised) travels with the request: the security policy uses
# it instead of asking the database again, so a frozen database costs one timeout, not two.

_PLAIN = re.compile(r"[A-Za-z0-9/_.~=&-]*")


class _Path:
    """What the routes mapper reads of a request."""

    def __init__(self, environ, path):
        self.environ, self.path_info = environ, path


class _Answer:
    """A WSGI response of a status, a header list and a body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __call__(self, environ, start_response):
        start_response(self.status, self.headers)
        return [self.body] if self.body else []


class CachedHits:
    """Pyramid execution policy: cached hits answered before any request object is built;
    everything else through Pyramid (``default_execution_policy``)."""

    def __init__(self):
        self.registry = None

    def __call__(self, environ, router):
        if environ.get("REQUEST_METHOD") == "GET":
            if self.registry is not router.registry:
                self._prepare(router.registry)
            if self.enabled:
                answer = self.answer(environ, time.perf_counter())
                if answer is not None:
                    return answer
        return default_execution_policy(environ, router)

    def _prepare(self, registry):
        settings = registry["cinema.settings"]
        self.routes = registry.get("cinema.cached_routes", {})
        self.enabled = bool(self.routes)
        self.cors = bool(settings.cors_origins)  # see cinema_api.core.cors
        self.trace_hits = settings.enable_cache_trace_logs
        self.mapper = registry.getUtility(IRoutesMapper)
        self.caches = registry["cinema.caches"]
        self.tokens = registry["cinema.access_tokens"]
        self.db = registry["cinema.db"]
        self.in_flight = registry["cinema.requests_in_flight"]
        self.registry = registry

    def answer(self, environ, started):
        if environ.get("CONTENT_LENGTH") or environ.get("CONTENT_TYPE") or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if environ.get("SCRIPT_NAME") or not (_PLAIN.fullmatch(path) and _PLAIN.fullmatch(query)):
            return None
        if self.cors and environ.get("HTTP_ORIGIN"):
            return None
        token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
        if token is None:
            return None
        info = self.mapper(_Path(environ, path or "/"))
        route = self.routes.get(info["route"].name) if info["route"] is not None else None
        if route is None:
            return None
        try:
            claims = self.tokens.decode(token)
        except InvalidToken:
            return None
        self.in_flight.add(1)
        try:
            try:
                live = live_login_session_of(self.db, claims, select_without_session)
            except Exception as exc:
                environ[LOGIN_SESSION_KEY] = (token, exc)  # the whole way answers it (503)
                return None
            environ[LOGIN_SESSION_KEY] = (token, live)
            if live is None:
                return None
            key = route.key(live[1], info["match"], parse_qsl(query, keep_blank_values=True))
            stored = self.caches.region(route.region).get(key) if key is not None else None
            if stored is None:
                environ[MISSED_KEY] = key
                return None
        finally:
            self.in_flight.add(-1)
        trace_id = incoming_trace_id(environ)
        if self.trace_hits:
            hit_log.info("cache hit %s [trace %s]", key, trace_id, extra={"trace_id": trace_id, "method": "GET", "path": path})
        status, headers, body = cached_answer(environ, stored[1], stored[0], "HIT")
        if self.cors:
            headers.append(("Vary", "Origin"))  # the answer depends on Origin even when it grants nothing
        headers += [(TRACE_HEADER, trace_id), ("X-Content-Type-Options", "nosniff")]
        log_access("GET", path, int(status[:3]), started, trace_id)
        return _Answer(status, headers, body)


def includeme(config):
    settings = config.registry["cinema.settings"]
    config.registry["cinema.caches"] = Caches(settings.cache_regions, settings.cache_key_prefix)
    config.add_directive("add_cached_route", add_cached_route)
    config.set_execution_policy(CachedHits())
    config.add_tween(
        "cinema_api.infrastructure.cache.cache_tween_factory",
        under="cinema_api.infrastructure.db.db_session_tween_factory",
    )
