"""Prometheus metrics: the application's own registry, the request tween and ``GET /metrics``.

Every application has a :class:`Metrics` of its own (``registry["cinema.metrics"]``), whose
``CollectorRegistry`` is not prometheus_client's global one, so that several applications in
one process (the tests build many) never count into each other. The infrastructure counts
through the objects it is handed (the database watchdog, the cache regions, the hashing gate,
the ticket service), with small hooks; the families are all declared here.

Requests are counted by the pattern of the route they matched (``/v1/movies/{movieId}``, never
the raw path: ids make no new series), with every request that matched none under
``route="unmatched"``, and by method (an unknown method under ``other``) and status. The fast
path of cached hits (``cinema_api.runtime.cached_hits.CachedHits``) counts its answers the
same way. The families a request touches (requests, their latency, those in flight, the
database calls' durations, the cache regions' hits and misses) are plain numbers under one lock
of the application's (:class:`RequestStats`, :class:`TalliedHistogram`,
:class:`TalliedCounter`), handed to prometheus_client as metric families when
scraped: what a request pays is a few additions, not prometheus_client's lock and checks per
value. The rare events (timeouts, tickets sold, the login gate) use prometheus_client's own.

``GET /metrics`` answers the text exposition (prometheus_client's own encoder, OpenMetrics when
asked for) to the client addresses in ``METRICS_ALLOW`` (the peer address, never a forwarded
one: behind a proxy the proxy must not pass ``/metrics`` on, see deploy/nginx.conf), the 404 of
an unknown route to others. It is kept out of the OpenAPI document: it is the operators'.
"""

import bisect
import ipaddress
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from prometheus_client.exposition import choose_encoder
from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED

METRICS_PATH = "/metrics"
#: Around the seed's 500 ms target for a request.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A database call or a wait at the login gate: finer at the low end.
SHORT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The route label of a request that matched no route (a 404 of an unknown path).
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Uncounted:
    """What the infrastructure counts into when it was built without metrics (scripts, units)."""

    def inc(self, amount=1):
        pass

    def dec(self, amount=1):
        pass

    def observe(self, amount):
        pass

    def labels(self, *values):
        return self


UNCOUNTED = Uncounted()


class InFlight:
    """A gauge of requests being answered."""

    __slots__ = ("stats",)

    def __init__(self, stats):
        self.stats = stats

    def inc(self, amount=1):
        with self.stats.lock:
            self.stats.running += amount

    def dec(self, amount=1):
        with self.stats.lock:
            self.stats.running -= amount


def cumulative(bounds, counts):
    """The ``(le, count)`` pairs of a histogram family from one count per bucket, +Inf last."""
    total, buckets = 0, []
    for bound, count in zip((*map(floatToGoString, bounds), "+Inf"), counts, strict=True):
        total += count
        buckets.append((bound, total))
    return buckets


class RequestStats:
    """``cinema_http_requests_total`` (by route template, method and status),
    ``cinema_http_request_duration_seconds`` (by route template) and
    ``cinema_http_requests_in_flight``. prometheus_client's own labelled children took a lock
    for each value, six per cached hit with the Python around them: profiled, a tenth of a hit's
    time; its histogram and counters of the database calls and cache look-ups, 1.6 % of the
    instructions of a search miss on PostgreSQL."""

    def __init__(self, buckets, lock=None):
        self.buckets = tuple(buckets)
        self.lock = lock or threading.Lock()
        self.series = {}  # (route, method, status) -> [count, sum of seconds, one count per bucket, +Inf last]
        self.running = 0
        self.in_flight = InFlight(self)

    def observe(self, route, method, status, seconds):
        index = bisect.bisect_left(self.buckets, seconds)
        key = (route, method, status)
        with self.lock:
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = [0, 0.0] + [0] * (len(self.buckets) + 1)
            series[0] += 1
            series[1] += seconds
            series[2 + index] += 1

    def describe(self):
        return []  # names are checked when collected: nothing to ask at registration

    def collect(self):
        with self.lock:
            series = {key: list(values) for key, values in self.series.items()}
            running = self.running
        requests = CounterMetricFamily(
            "cinema_http_requests", "HTTP requests answered, by route template, method and status",
            labels=["route", "method", "status"],
        )
        by_route = {}
        for (route, method, status), values in sorted(series.items(), key=lambda item: tuple(map(str, item[0]))):
            requests.add_metric([route, method, str(status)], values[0])
            total = by_route.setdefault(route, [0.0] + [0] * (len(self.buckets) + 1))
            total[0] += values[1]
            for index, count in enumerate(values[2:]):
                total[1 + index] += count
        duration = HistogramMetricFamily(
            "cinema_http_request_duration_seconds",
            "Time to answer a request (the application's part), by route template", labels=["route"],
        )
        for route, total in by_route.items():
            duration.add_metric([route], cumulative(self.buckets, total[1:]), total[0])
        in_flight = GaugeMetricFamily("cinema_http_requests_in_flight", "Requests being answered now", value=running)
        return [requests, duration, in_flight]


class TalliedHistogram:
    """An unlabelled histogram family in plain numbers, under ``lock``."""

    def __init__(self, name, documentation, buckets, lock):
        self.name, self.documentation, self.buckets = name, documentation, tuple(buckets)
        self.lock = lock
        self.counts = [0] * (len(self.buckets) + 1)  # +Inf last
        self.sum = 0.0

    def observe(self, seconds):
        index = bisect.bisect_left(self.buckets, seconds)
        with self.lock:
            self.counts[index] += 1
            self.sum += seconds

    def describe(self):
        return []

    def collect(self):
        with self.lock:
            counts, total = list(self.counts), self.sum
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative(self.buckets, counts), total)
        return [family]


class TalliedCounter:
    """A counter family with one label in plain numbers, under ``lock``; ``labels(value)`` is
    the child a hot path keeps and increments."""

    def __init__(self, name, documentation, label, lock):
        self.name, self.documentation, self.label = name, documentation, label
        self.lock = lock
        self.children = {}

    def labels(self, value):
        with self.lock:
            child = self.children.get(value)
            if child is None:
                child = self.children[value] = TalliedChild(self.lock)
            return child

    def describe(self):
        return []

    def collect(self):
        with self.lock:
            values = {label: child.value for label, child in self.children.items()}
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for label, value in sorted(values.items()):
            family.add_metric([label], value)
        return [family]


class TalliedChild:
    __slots__ = ("lock", "value")

    def __init__(self, lock):
        self.lock, self.value = lock, 0

    def inc(self, amount=1):
        with self.lock:
            self.value += amount


class Metrics:
    """The families of one application, in a registry of its own."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.registry = registry = CollectorRegistry()
        # what every request touches: plain numbers under one lock, handed to prometheus_client when scraped
        lock = threading.Lock()
        self.request_stats = RequestStats(LATENCY_BUCKETS, lock)
        self.requests_in_flight = self.request_stats.in_flight
        self.database_call_duration = TalliedHistogram(
            "cinema_database_call_duration_seconds",
            "One exchange with PostgreSQL (a statement, a commit, a rollback), as its watchdog times it",
            SHORT_BUCKETS, lock,
        )
        self.cache_hits = TalliedCounter("cinema_cache_hits", "Cache look-ups that found a body, by region", "region", lock)
        self.cache_misses = TalliedCounter(
            "cinema_cache_misses", "Cache look-ups that found nothing (or a failing backend), by region", "region", lock,
        )
        for collector in (self.request_stats, self.database_call_duration, self.cache_hits, self.cache_misses):
            registry.register(collector)
        self.database_timeouts = Counter(
            "cinema_database_timeouts",
            "Database calls broken off, and connections not made, within DATABASE_TIMEOUT_SEC", registry=registry,
        )
        self.database_unavailable = Counter(
            "cinema_database_unavailable_responses",
            "503 answers because the database failed, timed out or was known to be down (health checks included)",
            registry=registry,
        )
        self.database_breaker_open = Gauge(
            "cinema_database_breaker_open",
            "1 while the database is known to be down and requests answer 503 at once, else 0",
            registry=registry,
        )
        self.login_gate_wait = Histogram(
            "cinema_login_gate_wait_seconds", "Time a password check waited at the hashing gate for a place",
            buckets=SHORT_BUCKETS, registry=registry,
        )
        self.login_gate_rejections = Counter(
            "cinema_login_gate_rejections", "Password checks refused by the hashing gate (503)", registry=registry,
        )
        self.bcrypt_hashes = Counter(
            "cinema_bcrypt_hashes", "bcrypt computations: hash (a new password) or verify (a login)", ["operation"], registry=registry,
        )
        self.tickets_sold = Counter("cinema_tickets_sold", "Tickets sold", registry=registry)
        self.tickets_cancelled = Counter("cinema_tickets_cancelled", "Tickets cancelled by their buyer", registry=registry)
        ProcessCollector(registry=registry)

    def observe_request(self, route, method, status, seconds):
        """Count one answered request; ``route`` is its route pattern, None when none matched."""
        self.request_stats.observe(route or UNMATCHED, method if method in METHODS else "other", status, seconds)

    def watch_database_breaker(self, breaker):
        """Report ``breaker`` (the database's) as ``cinema_database_breaker_open``."""
        self.database_breaker_open.set_function(lambda: 1.0 if breaker.is_open else 0.0)

    def exposition(self, accept):
        """``(body, content type)`` of every family, in the format ``accept`` asks for."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def route_pattern(request):
    route = getattr(request, "matched_route", None)
    return route.pattern if route is not None else None


def allowed(address, networks):
    """Whether the client ``address`` (text) is in one of ``networks``."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def metrics_view(request):
    """The Prometheus exposition of this process's metrics, to the allowed addresses only."""
    metrics = request.registry["cinema.metrics"]
    settings = request.registry["cinema.settings"]
    if request.method not in ("GET", "HEAD") or not metrics.enabled or not allowed(
        request.environ.get("REMOTE_ADDR"), settings.metrics_allow
    ):
        raise HTTPNotFound()  # the answer of an unknown route: nothing says that it exists
    body, content_type = metrics.exposition(request.headers.get("Accept"))
    response = Response(body=body, headerlist=[("Content-Type", content_type)])
    response.cache_control = "no-store"
    return response


def includeme(config):
    settings = config.registry["cinema.settings"]
    config.registry["cinema.metrics"] = Metrics(settings.metrics_enabled)
    # no route predicate: the routes mapper keeps its answers by path where no route has one
    config.add_route("metrics", METRICS_PATH)
    config.add_view(metrics_view, route_name="metrics", permission=NO_PERMISSION_REQUIRED)
