"""dogpile.cache regions registered as a Pyramid include.

Each region is configured from its own ini prefix::

    cinema.cache.regions = movies sessions
    cinema.cache.movies.backend = memory          # memory | redis | null
    cinema.cache.movies.expiration_time = 300
    cinema.cache.movies.arguments.max_entries = 10000
    cinema.cache.sessions.arguments.url = redis://127.0.0.1:6379/0
    cinema.cache.sessions.arguments.near_cache = true   # Redis only: exact local copies

``CACHE_URL`` (``memory://``, ``redis://host:port/db``, ``null://``), when set, replaces
every region's backend. Domains register cached GET routes with
``config.add_cached_route(service, region)``; mutations call
``request.invalidate_cache(*regions)``. Invalidation is a generation per region, kept in the
backend (so every process sharing Redis sees it) and stored with every entry: a reader takes
the generation before it queries the database, so data read before a commit can only be
stored under the old generation.

Redis calls have 0.25 s timeouts; after a failure the cache is bypassed for 30 s, so an
outage degrades to uncached answers, never an error or a hang. A Redis region keeps exact
copies of what it read in process memory, invalidated by Redis's tracking pushes
(``nearcache``), so a hit costs no round trip; ``near_cache = false`` turns that off.
"""

import hashlib
import logging
import threading
import uuid
from collections import OrderedDict

import redis
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from pyramid.interfaces import IRoutesMapper
from pyramid.response import Response
from pyramid.settings import aslist, asbool
from redis.backoff import NoBackoff
from redis.retry import Retry

from cinema_api.core.trace import trace_event
from cinema_api.infrastructure.breaker import CircuitBreaker
from cinema_api.infrastructure.nearcache import NearCacheProxy, Tracker
from cinema_api.settings import SettingsError

log = logging.getLogger(__name__)
hit_log = logging.getLogger("cinema_api.cache")

DEFAULT_REGIONS = ("movies", "sessions", "auth")
DEFAULT_EXPIRATION = 300
DEFAULT_MAX_ENTRIES = 10_000
REDIS_TIMEOUT_SEC = 0.25
OUTAGE_BYPASS_SEC = 30.0
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

    def __init__(self, max_entries=DEFAULT_MAX_ENTRIES):
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

    def __getitem__(self, key):
        value = self.get(key, NO_VALUE)
        if value is NO_VALUE:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def pop(self, key, default=None):
        with self._lock:
            return self._data.pop(key, default)

    def __delitem__(self, key):
        with self._lock:
            del self._data[key]

    def __contains__(self, key):
        with self._lock:
            return key in self._data

    def __len__(self):
        return len(self._data)

    def clear(self):
        with self._lock:
            self._data.clear()


def redis_pool(url):
    """A connection pool with short timeouts and no retries: a slow Redis must not stall requests."""
    return redis.ConnectionPool.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SEC,
        socket_connect_timeout=REDIS_TIMEOUT_SEC,
        retry=Retry(NoBackoff(), 0),
    )


class RegionConfig:
    """What one region is made of, read from ini and ``CACHE_URL``."""

    def __init__(self, name, backend, expiration_time, arguments):
        self.name, self.backend, self.expiration_time, self.arguments = name, backend, expiration_time, arguments

    @classmethod
    def from_settings(cls, name, ini, cache_url):
        prefix = "cinema.cache.%s." % name
        backend = ini.get(prefix + "backend", "memory").strip()
        arguments = {
            key[len(prefix + "arguments.") :]: value for key, value in ini.items() if key.startswith(prefix + "arguments.")
        }
        if cache_url:
            backend = cache_url.split("://", 1)[0]
            backend = "redis" if backend.startswith("redis") else backend
            if backend == "redis":
                arguments["url"] = cache_url
        if backend not in BACKENDS:
            raise SettingsError("cinema.cache.%s.backend must be one of %s" % (name, ", ".join(BACKENDS)))
        try:
            expiration = int(ini.get(prefix + "expiration_time", DEFAULT_EXPIRATION))
            max_entries = int(arguments.get("max_entries", DEFAULT_MAX_ENTRIES))
        except ValueError:
            raise SettingsError("cinema.cache.%s.expiration_time and max_entries must be integers" % name) from None
        arguments["max_entries"] = max_entries
        arguments["near_cache"] = asbool(arguments.get("near_cache", True))
        if backend == "redis":
            arguments.setdefault("url", "redis://127.0.0.1:6379/0")
        return cls(name, backend, expiration, arguments)

    @property
    def url(self):
        return self.arguments.get("url")


class Region:
    """One named region: a dogpile region whose entries belong to a generation.

    The generation is a random token stored in the region itself; invalidating writes a new
    one. A cached body is stored with the token read before its data was: one read fetches
    both, and a body of an older generation is a miss, in every process sharing the backend.
    """

    GENERATION_KEY = "generation"
    FIRST_GENERATION = "first"

    def __init__(self, config, pools, trackers, breaker):
        self.config = config
        self.name = config.name
        self.breaker = breaker
        self.enabled = config.backend != "null"
        prefix = "%s:%s:" % (KEY_PREFIX, self.name)
        self.dogpile = make_region(name=self.name, key_mangler=lambda key: prefix + key)
        arguments, wrap = {}, []
        if config.backend == "memory":
            arguments = {"cache_dict": LRUDict(config.arguments["max_entries"])}
        elif config.backend == "redis":
            arguments = {
                "connection_pool": pools[config.url],
                "redis_expiration_time": config.expiration_time + 30,
            }
            if config.url in trackers:
                wrap = [NearCacheProxy(trackers[config.url], prefix, LRUDict(config.arguments["max_entries"]))]
        self.dogpile.configure(
            BACKENDS[config.backend], expiration_time=config.expiration_time, arguments=arguments, wrap=wrap
        )

    def _guarded(self, action, default):
        if not self.enabled or self.breaker.is_open:
            return default
        try:
            result = action()
        except redis.RedisError as exc:
            self.breaker.failure(exc)
            return default
        self.breaker.success()
        return result

    def read(self, keys):
        """The values of ``keys`` (None where missing), in one backend round trip."""
        values = self._guarded(lambda: self.dogpile.get_multi(keys), None) or [NO_VALUE] * len(keys)
        return [None if value is NO_VALUE else value for value in values]

    def write(self, key, value):
        """Store ``value``; False when the backend could not be reached."""
        return self._guarded(lambda: self.dogpile.set(key, value) or True, False)

    def lookup(self, key):
        """``(generation, body)``: the current generation and the body of ``key`` in it, or None.

        The generation is None when the cache cannot be used now (null backend, outage).
        """
        if not self.enabled or self.breaker.is_open:
            return None, None
        values = self._guarded(lambda: self.dogpile.get_multi([self.GENERATION_KEY, key]), None)
        if values is None:
            return None, None
        generation, stored = (None if value is NO_VALUE else value for value in values)
        generation = generation or self.FIRST_GENERATION
        if stored is not None and stored[0] == generation:
            return generation, stored[1]
        return generation, None

    def store(self, generation, key, body):
        self.write(key, (generation, body))

    def invalidate(self):
        """Start a new generation: every process sharing the backend stops using older entries."""
        if self.enabled and not self.write(self.GENERATION_KEY, uuid.uuid4().hex):
            log.warning("cache region %s could not be invalidated: its entries expire by TTL", self.name)


class Caches:
    """The application's regions, by name, sharing one Redis pool per URL and one breaker."""

    def __init__(self, configs, settings=None):
        self.settings = settings
        pools = {config.url: redis_pool(config.url) for config in configs if config.backend == "redis"}
        self.breaker = CircuitBreaker("redis cache", OUTAGE_BYPASS_SEC, on_change=self._outage_changed)
        self.trackers = {
            config.url: Tracker(pools[config.url].connection_kwargs, self.breaker, REDIS_TIMEOUT_SEC)
            for config in configs
            if config.backend == "redis" and config.arguments["near_cache"]
            # plain TCP only: TLS and Unix socket URLs read Redis on every hit
            and pools[config.url].connection_class is redis.Connection
        }
        self.regions = {config.name: Region(config, pools, self.trackers, self.breaker) for config in configs}
        self.default_config = configs[0]

    def _outage_changed(self, event, name):
        trace_event(self.settings, "cache " + event, backend=name)

    def region(self, name):
        return self.regions[name]

    @property
    def redis_url(self):
        """The Redis URL of the default backend, or None when it is not Redis."""
        return self.default_config.url if self.default_config.backend == "redis" else None

    def invalidate(self, *names):
        for name in names:
            self.regions[name].invalidate()

    def ping(self):
        """A real set and get on the default backend; True when it answered correctly."""
        region = self.regions[self.default_config.name]
        if not region.enabled:
            return True
        # the backend itself, not the local copies in front of it, and a key outside every
        # region's keys, so that no process gets an invalidation push for it
        backend = getattr(region.dogpile.backend, "proxied", region.dogpile.backend)
        key = "%s:health:%s" % (KEY_PREFIX, uuid.uuid4().hex)
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


# ---------------------------------------------------------------- HTTP caching of reads
#
# Cached reads are served by a tween, before routing to the view: on a hit it costs the
# identity check and one cache read, no validation and no database query. The key is the
# route plus the raw query normalised (known parameters only, empty ones dropped, sorted);
# a key is only ever stored after the full path has validated that exact query and answered
# 200, so an invalid query always misses and gets its 400 from the view.


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


def json_response(request, body, cache_status):
    etag = etag_of(body)
    headers = {"ETag": etag, "X-Cache": cache_status, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=headers)
    response = Response(body=body, content_type="application/json", charset="utf-8")
    response.headers.update(headers)
    return response


class CachedRoute:
    """A GET route whose 200 bodies live in ``region``; ``params`` are its query parameters."""

    def __init__(self, route_name, region, params):
        self.route_name, self.region, self.params = route_name, region, frozenset(params)

    def key(self, match, query_items):
        """The normalised key, or None when the query repeats a parameter (a 400 to come)."""
        query = {}
        for name, value in query_items:
            if name not in self.params or value == "":
                continue
            if name in query:
                return None
            query[name] = value
        path = ",".join("%s=%s" % (name, match[name].lower()) for name in sorted(match))
        return "%s:%s?%s" % (self.route_name, path, "&".join("%s=%s" % item for item in sorted(query.items())))


def add_cached_route(config, service, region):
    """Directive: serve the GET answers of a Cornice ``service`` from ``region``."""
    schema = next(args.get("schema") for method, _, args in service.definitions if method == "GET")
    params = [node.name for part in schema.children if part.name == "querystring" for node in part.children]
    config.registry.setdefault("cinema.cached_routes", {})[service.name] = CachedRoute(service.name, region, params)


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
        # Authentication runs before the cache: anonymous or invalid tokens take the full path.
        if route is None or request.identity is None:
            return handler(request)
        key = route.key(info["match"], request.GET.items())
        region = caches.region(route.region)
        # The generation is read before the database is: a body read before a commit can
        # only be stored under the generation that commit retires.
        generation, body = region.lookup(key) if key is not None else (None, None)
        if body is not None:
            if trace_hits:
                hit_log.info("cache hit %s [trace %s]", key, request.trace_id)
            return json_response(request, body, "HIT")
        response = handler(request)
        if response.status_code != 200 or response.content_type != "application/json":
            return response
        if generation is not None:
            region.store(generation, key, response.body)
        return json_response(request, response.body, "MISS")

    return cache_tween


def invalidate_cache(request, *names):
    """Invalidate ``names`` once this request's transaction has committed."""
    request.environ.setdefault("cinema.invalidate", set()).update(names)


def invalidation_tween_factory(handler, registry):
    """Runs outside the db_session tween: after the commit, before the response is written."""

    def invalidation_tween(request):
        response = handler(request)
        names = request.environ.get("cinema.invalidate")
        if names and response.status_code < 400:
            registry["cinema.caches"].invalidate(*sorted(names))
        return response

    return invalidation_tween


def includeme(config):
    settings = config.registry["cinema.settings"]
    ini = config.get_settings()
    names = aslist(ini.get("cinema.cache.regions", " ".join(DEFAULT_REGIONS)))
    if not names:
        raise SettingsError("cinema.cache.regions names no region")
    configs = [RegionConfig.from_settings(name, ini, settings.cache_url) for name in names]
    config.registry["cinema.caches"] = Caches(configs, settings)
    config.add_request_method(invalidate_cache, "invalidate_cache")
    config.add_directive("add_cached_route", add_cached_route)
    config.add_tween(
        "cinema_api.infrastructure.cache.cache_tween_factory",
        under="cinema_api.infrastructure.db.db_session_tween_factory",
    )
    config.add_tween(
        "cinema_api.infrastructure.cache.invalidation_tween_factory",
        over="cinema_api.infrastructure.db.db_session_tween_factory",
        under="cinema_api.core.body.body_limits_tween_factory",
    )
