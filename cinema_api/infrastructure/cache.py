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
import threading
import time
import uuid
from collections import OrderedDict

import redis
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import IDefaultPermission, IRootFactory, IRoutesMapper
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.traversal import DefaultRootFactory
from redis.backoff import NoBackoff
from redis.retry import Retry

from cinema_api.core.metrics import UNCOUNTED
from cinema_api.core.state import request_state
from cinema_api.core.threads import ProcessThread
from cinema_api.infrastructure.breaker import CircuitBreaker
from cinema_api.infrastructure.db import read_catalog_version

log = logging.getLogger(__name__)
hit_log = logging.getLogger("cinema_api.cache")

REDIS_TIMEOUT_SEC = 0.25
#: After a Redis failure the cache is skipped for this long: an outage costs one timeout, not one per request.
OUTAGE_BYPASS_SEC = 5.0
#: What every key of the regions starts with, unless ``CACHE_KEY_PREFIX`` says otherwise.
KEY_PREFIX = "cinema"

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

    hits = misses = UNCOUNTED  # cinema_cache_hits and _misses of this region (see includeme)

    def get(self, key):
        """The value stored under ``key``, or None (missing, expired, or the backend failing)."""
        value = self._get(key)
        (self.misses if value is None else self.hits).inc()
        return value

    def _get(self, key):
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
    """A GET route whose 200 bodies live in ``region``; ``params`` are its query parameters. A copy
    is served only to a caller whom ``permission`` (the view's, else the default permission) admits
    in the root context, as the view itself would be: :meth:`admits`."""

    def __init__(self, route_name, region, params, permission=None, alike=None):
        self.route_name, self.region, self.params = route_name, region, frozenset(params)
        self.permission = permission
        self.context = None  # the root factory's context, built without a request (see add_cached_route)
        #: what tells, from a query and the catalogue version alone, that queries share one answer
        #: (:class:`AnswersAlike`), or None
        self.alike = alike

    def resolve(self, registry):
        """Once the configuration is complete: the default permission and the root context."""
        if self.context is None:
            self.permission = self.permission or registry.queryUtility(IDefaultPermission)
            if self.permission == NO_PERMISSION_REQUIRED:
                self.permission = None
            self.context = (registry.queryUtility(IRootFactory) or DefaultRootFactory)(None)

    def admits(self, request):
        """Whether the request's caller may read this route: the security policy and its ACL."""
        return self.permission is None or bool(request.has_permission(self.permission, self.context))

    def admits_identity(self, policy, identity):
        """:meth:`admits` for an identity known without a request (the fast path of cached hits;
        the policy keeps the answers of an ACL that grants by role)."""
        return self.permission is None or bool(policy.permits_identity(identity, self.context, self.permission))

    def key(self, version, match, query_items):
        """The key of this version and request, or None when the query repeats a parameter (a 400 to come).

        Queries that :attr:`alike` knows to share one answer share one key: ``<route>!<group>``
        in place of the route's name, which no route is named (so no other request's key can be
        the same), and the query without the parameters the group leaves out."""
        query = {}
        for name, value in query_items:
            if name not in self.params or value == "":
                continue
            if name in query:
                return None
            query[name] = value
        route_name = self.route_name
        if self.alike is not None:
            group, query = self.alike.group(version, query)
            if group is not None:
                route_name = "%s!%s" % (route_name, group)
        path = ",".join("%s=%s" % (name, match[name].lower()) for name in sorted(match))
        params = "&".join("%s=%s" % item for item in sorted(query.items()))
        return "%s:%s:%s?%s" % (version, route_name, path, params)


class AnswersAlike:
    """What a cached route may know of its answers beyond its key: that different queries have
    the same answer at one catalogue version (say, every title search that finds nothing), so
    that they share one copy. Learnt from the database by :meth:`learn`, which the cache tween
    calls on the way to a miss, within the request's ``db_session``; used by :meth:`group` for
    every key, the fast path's included, only at the catalogue version it was learnt at."""

    def learn(self, db, version, query):
        """Learn what :meth:`group` needs at ``version`` for requests like this one (``query``, a
        mapping of its query string), unless known already."""

    def group(self, version, query):
        """``(group, query)``: the name of the group of queries whose answer this one shares, and
        the query without the parameters that do not matter within it; ``(None, query)`` when
        not known."""
        return None, query


def add_cached_route(config, service, region, alike=None):
    """Directive: serve the GET answers of a Cornice ``service`` from ``region``; ``alike``, an
    :class:`AnswersAlike`, may let queries that share an answer share its copy.

    One copy serves every caller whom the view's permission admits: a route whose context is
    built from the request (an owner's ACL) may answer each caller differently, so it is refused
    here rather than served to the wrong one."""
    if getattr(service, "factory", None) is not None:
        raise ConfigurationError(
            "cached route %s: its context factory builds a context per request, so its answer may "
            "depend on who asks; a cached route must be readable alike by everyone its permission admits"
            % service.name
        )
    if "!" in service.name:
        raise ConfigurationError("cached route %s: a cached route's name has no '!' (the keys of AnswersAlike's groups)" % service.name)
    args = next(args for method, _, args in service.definitions if method == "GET")
    schema = args.get("schema")
    params = [node.name for part in schema.children if part.name == "querystring" for node in part.children]
    route = CachedRoute(service.name, region, params, args.get("permission"), alike)
    config.registry.setdefault("cinema.cached_routes", {})[service.name] = route


def catalog_version(request):
    """The catalogue version this request reads under: the one read with its token, else a query."""
    version = request_state(request.environ).catalog_version
    return version if version is not None else read_catalog_version(request.db)


def cache_tween_factory(handler, registry):
    routes = registry.get("cinema.cached_routes", {})
    for route in routes.values():
        route.resolve(registry)
    mapper = registry.getUtility(IRoutesMapper)
    caches = registry["cinema.caches"]
    trace_hits = registry["cinema.settings"].enable_cache_trace_logs

    def cache_tween(request):
        if request.method != "GET" or not routes:
            return handler(request)
        info = mapper(request)
        route = routes.get(info["route"].name) if info["route"] is not None else None
        # Authentication (against the database) and authorization run before the cache: anonymous
        # or invalid tokens take the full path to their 401, callers the permission refuses to their 403.
        if route is None or request.identity is None or not route.admits(request):
            return handler(request)
        # The version is read before any data is: a body can only be stored under a version
        # at most as old as the data in it.
        version = catalog_version(request)
        if route.alike is not None and version:
            route.alike.learn(request.db, version, request.GET)
        key = route.key(version, info["match"], request.GET.items()) if version else None
        region = caches.region(route.region)
        # a key the fast path of cached hits just missed is not looked up again (Redis: a round trip)
        missed = key is None or request_state(request.environ).missed_key == key
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


def includeme(config):
    settings = config.registry["cinema.settings"]
    caches = config.registry["cinema.caches"] = Caches(settings.cache_regions, settings.cache_key_prefix)
    metrics = config.registry["cinema.metrics"]
    for name, region in caches.regions.items():
        region.hits, region.misses = metrics.cache_hits.labels(name), metrics.cache_misses.labels(name)
    config.add_directive("add_cached_route", add_cached_route)
    config.add_tween(
        "cinema_api.infrastructure.cache.cache_tween_factory",
        under="cinema_api.infrastructure.db.db_session_tween_factory",
    )
