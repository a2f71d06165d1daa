"""dogpile.cache regions registered as a Pyramid include.

Each region is configured from its own ini prefix::

    cinema.cache.regions = movies sessions
    cinema.cache.movies.backend = memory          # memory | redis | null
    cinema.cache.movies.expiration_time = 300
    cinema.cache.movies.arguments.max_entries = 10000
    cinema.cache.movies.arguments.url = redis://127.0.0.1:6379/0

``CACHE_URL`` (``memory://``, ``redis://host:port/db``, ``null://``), when set, replaces
every region's backend. Code asks ``request.cache_region("movies")``, never a backend.
"""

import logging
import threading
import uuid
from collections import OrderedDict

from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from pyramid.settings import aslist

from cinema_api.settings import SettingsError

log = logging.getLogger(__name__)

DEFAULT_REGIONS = ("movies", "sessions")
DEFAULT_EXPIRATION = 300
DEFAULT_MAX_ENTRIES = 10_000
REDIS_TIMEOUT_SEC = 0.25

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


class RegionConfig:
    """What one region is made of, read from ini and ``CACHE_URL``."""

    def __init__(self, name, backend, expiration_time, arguments):
        self.name, self.backend, self.expiration_time, self.arguments = name, backend, expiration_time, arguments

    @classmethod
    def from_settings(cls, name, ini, cache_url):
        prefix = "cinema.cache.%s." % name
        backend = ini.get(prefix + "backend", "memory").strip()
        arguments = {
            key[len(prefix + "arguments.") :]: value
            for key, value in ini.items()
            if key.startswith(prefix + "arguments.")
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
        except ValueError:
            raise SettingsError("cinema.cache.%s.expiration_time must be an integer" % name) from None
        return cls(name, backend, expiration, arguments)

    def dogpile_arguments(self):
        if self.backend == "memory":
            max_entries = int(self.arguments.get("max_entries", DEFAULT_MAX_ENTRIES))
            return {"cache_dict": LRUDict(max_entries)}
        if self.backend == "redis":
            return {
                "url": self.arguments.get("url", "redis://127.0.0.1:6379/0"),
                "socket_timeout": float(self.arguments.get("socket_timeout", REDIS_TIMEOUT_SEC)),
                "connection_kwargs": {
                    "socket_connect_timeout": float(self.arguments.get("socket_connect_timeout", REDIS_TIMEOUT_SEC))
                },
                "distributed_lock": True,
                "thread_local_lock": False,
                "redis_expiration_time": self.expiration_time + 30,
            }
        return {}


def build_region(config):
    region = make_region(name=config.name, key_mangler=lambda key, prefix="cinema:%s:" % config.name: prefix + key)
    region.configure(
        BACKENDS[config.backend],
        expiration_time=config.expiration_time,
        arguments=config.dogpile_arguments(),
    )
    return region


class Caches:
    """The application's regions, by name."""

    def __init__(self, configs):
        self.configs = {config.name: config for config in configs}
        self.regions = {config.name: build_region(config) for config in configs}

    def region(self, name):
        return self.regions[name]

    @property
    def redis_url(self):
        """The Redis URL of the default backend, or None when it is not Redis."""
        config = next(iter(self.configs.values()))
        return config.dogpile_arguments()["url"] if config.backend == "redis" else None

    @property
    def default(self):
        """The first region: the default backend that health checks."""
        return next(iter(self.regions.values()))

    def ping(self):
        """A real set and get on the default backend; True when it answered correctly."""
        name, region = next(iter(self.regions.items()))
        if self.configs[name].backend == "null":
            return True
        key = "health:" + uuid.uuid4().hex
        try:
            region.set(key, "ok")
            ok = region.get(key) == "ok"
            region.delete(key)
            return ok
        except Exception as exc:  # any backend failure means the cache is down
            log.warning("cache health check failed: %s", exc)
            return False


def includeme(config):
    settings = config.registry["cinema.settings"]
    ini = config.get_settings()
    names = aslist(ini.get("cinema.cache.regions", " ".join(DEFAULT_REGIONS)))
    configs = [RegionConfig.from_settings(name, ini, settings.cache_url) for name in names]
    caches = Caches(configs)
    config.registry["cinema.caches"] = caches
    config.add_request_method(lambda request, name: caches.region(name), "cache_region")
