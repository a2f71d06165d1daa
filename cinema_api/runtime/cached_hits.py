"""The fast path of cached hits: a Pyramid execution policy that answers a cached read before a
request object is built (written against Pyramid 2.1's ``IExecutionPolicy``, a public hook).

A cached hit needs the token check (one database read), the route's permission and one cache read;
Pyramid would first build a request and pass it through every tween, which cost a cached read about
half its throughput. This policy answers such a hit as the tweens would: the same authentication
(:func:`cinema_api.auth.identity.authenticate`), the same authorization (the security policy's
ACL, :meth:`~cinema_api.auth.security_policy.JWTSecurityPolicy.permits_identity`), the same headers
(X-Trace-Id and nosniff of the trace tween, the cache's own), the same access log line, counted
among the requests in flight, the cache's trace line when those are on, and ``Vary: Origin`` where
CORS is configured. Whatever it is not sure of goes the whole way: another method, a body, a path
or query beyond plain ASCII (their decoding is WebOb's), no bearer token or one that does not
authenticate, a caller the permission refuses, a route that is not cached, a miss, an Origin header
where CORS is configured. What it found out travels with the request's state
(:class:`cinema_api.core.request.RequestState`), so the whole way asks the database nothing again:
a frozen database costs one timeout, not two.
"""

import re
import time
from urllib.parse import parse_qsl

from pyramid.interfaces import IRoutesMapper, ISecurityPolicy
from pyramid_retry import RetryableExecutionPolicy

from cinema_api.auth.identity import authenticate
from cinema_api.core.logs import log_access
from cinema_api.core.metrics import UNCOUNTED
from cinema_api.core.state import request_state
from cinema_api.core.trace import TRACE_HEADER, TRACEPARENT_HEADER, trace_context
from cinema_api.infrastructure.cache import cached_answer, hit_log
from cinema_api.infrastructure.db import ATTEMPTS, retry_attempts
from cinema_api.infrastructure.pony_internals import select_without_session
from cinema_api.infrastructure.tokens import bearer_token

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
    everything else through ``pyramid_retry``'s policy, which runs a request whose transaction
    deadlocked again, on a new request object (:func:`cinema_api.infrastructure.db.retry_attempts`)."""

    def __init__(self):
        self.registry = None
        self.whole_way = RetryableExecutionPolicy(ATTEMPTS, activate_hook=retry_attempts)

    def __call__(self, environ, router):
        if environ.get("REQUEST_METHOD") == "GET":
            if self.registry is not router.registry:
                self._prepare(router.registry)
            if self.enabled:
                answer = self.answer(environ, time.perf_counter())
                if answer is not None:
                    return answer
        return self.whole_way(environ, router)

    def _prepare(self, registry):
        settings = registry["cinema.settings"]
        self.routes = registry.get("cinema.cached_routes", {})
        for route in self.routes.values():
            route.resolve(registry)
        self.enabled = bool(self.routes)
        self.cors = bool(settings.cors_origins)  # see cinema_api.core.cors
        self.trace_hits = settings.enable_cache_trace_logs
        self.mapper = registry.getUtility(IRoutesMapper)
        self.policy = registry.getUtility(ISecurityPolicy)
        self.caches = registry["cinema.caches"]
        self.tokens = registry["cinema.access_tokens"]
        self.db = registry["cinema.db"]
        self.in_flight = registry["cinema.requests_in_flight"]
        metrics = registry["cinema.metrics"]
        self.metrics = metrics if metrics.enabled else None
        self.requests_in_flight = metrics.requests_in_flight if metrics.enabled else UNCOUNTED
        self.registry = registry

    def answer(self, environ, started):
        if environ.get("CONTENT_LENGTH") or environ.get("CONTENT_TYPE") or "HTTP_TRANSFER_ENCODING" in environ:
            return None
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if environ.get("SCRIPT_NAME") or not (_PLAIN.fullmatch(path) and _PLAIN.fullmatch(query)):
            return None
        if self.cors and environ.get("HTTP_ORIGIN"):
            return None
        if bearer_token(environ.get("HTTP_AUTHORIZATION", "")) is None:
            return None
        info = self.mapper(_Path(environ, path or "/"))
        route = self.routes.get(info["route"].name) if info["route"] is not None else None
        if route is None:
            return None
        self.in_flight.add(1)
        self.requests_in_flight.inc()
        try:
            try:
                identity = authenticate(environ, self.tokens, self.db, select_without_session)
            except Exception:
                return None  # the whole way answers it (503), from the state: without asking again
            if identity is None or not route.admits_identity(self.policy, identity):
                return None  # the whole way answers its 401 or 403
            state = request_state(environ)
            key = route.key(state.catalog_version, info["match"], parse_qsl(query, keep_blank_values=True))
            stored = self.caches.region(route.region).get(key) if key is not None else None
            if stored is None:
                state.missed_key = key
                return None
        finally:
            self.in_flight.add(-1)
            self.requests_in_flight.dec()
        trace_id, traceparent = trace_context(environ)
        if self.trace_hits:
            hit_log.info("cache hit %s [trace %s]", key, trace_id, extra={"trace_id": trace_id, "method": "GET", "path": path})
        status, headers, body = cached_answer(environ, stored[1], stored[0], "HIT")
        if self.cors:
            headers.append(("Vary", "Origin"))  # the answer depends on Origin even when it grants nothing
        headers += [(TRACE_HEADER, trace_id), (TRACEPARENT_HEADER, traceparent), ("X-Content-Type-Options", "nosniff")]
        log_access("GET", path, int(status[:3]), started, trace_id)
        if self.metrics is not None:  # counted as the request-context tween counts the others
            self.metrics.observe_request(info["route"].pattern, "GET", int(status[:3]), time.perf_counter() - started)
        return _Answer(status, headers, body)
