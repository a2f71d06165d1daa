"""Trace ids, W3C trace context and trace logs.

Every response carries ``X-Trace-Id`` and a W3C ``traceparent``. The request's trace id is, in
this order of precedence:

1. the trace-id of a valid incoming ``traceparent`` (version ``00``, 32 and 16 lower-case hex
   digits not all zeros, 2 hex digits of flags): the trace is continued, and the response's
   ``traceparent`` carries that trace-id, the request's own new span id and the flags received;
2. an incoming ``X-Trace-Id`` of 8-64 characters of ``[A-Za-z0-9-]`` (so a gateway's id flows
   through); the response's ``traceparent`` carries it as its trace-id when it is one (32 hex
   digits, or a UUID without its dashes), else a new trace-id;
3. a new UUID; the response's ``traceparent`` carries it without its dashes.

An invalid ``traceparent`` is ignored, never a 400. A trace started here has the flags ``00``
(nothing of it is recorded here).
Trace logs (``ENABLE_TRACE_LOGS``) are one line per error response and per important event.
"""

import itertools
import logging
import os
import re

TRACE_HEADER = "X-Trace-Id"
TRACEPARENT_HEADER = "traceparent"
_VALID_TRACE_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
#: An X-Trace-Id that is a W3C trace-id once its dashes are dropped: 32 hex digits, or a UUID.
_HEX_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ZERO_TRACE_ID, _ZERO_SPAN_ID = "0" * 32, "0" * 16

log = logging.getLogger("cinema_api.trace")


class TraceIds:
    """New trace ids, UUIDs of version 4's form: 74 random bits drawn once per process, then a
    counter. Unique across processes and restarts, and far cheaper per request than ``uuid4()``."""

    def __init__(self):
        r = os.urandom(10).hex()
        variant = "89ab"[int(r[15], 16) & 3]
        self.prefix = "%s-%s-4%s-%s%s-" % (r[:8], r[8:12], r[12:15], variant, r[16:19])
        self.counter = itertools.count(1)  # next() is atomic under the GIL

    def new(self):
        return "%s%012x" % (self.prefix, next(self.counter) & 0xFFFFFFFFFFFF)


new_trace_id = TraceIds().new


class SpanIds:
    """New span ids: 16 hex digits, 32 random bits drawn once per process (never all zeros),
    then a counter."""

    def __init__(self):
        self.prefix = "%08x" % (int.from_bytes(os.urandom(4), "big") or 1)
        self.counter = itertools.count(1)

    def new(self):
        return "%s%08x" % (self.prefix, next(self.counter) & 0xFFFFFFFF)


new_span_id = SpanIds().new


def trace_context(environ):
    """``(trace id, the response's traceparent)`` of a request (see the module's docstring)."""
    parent = environ.get("HTTP_TRACEPARENT")
    if parent:
        match = _TRACEPARENT.fullmatch(parent.strip(" \t"))
        if match is not None and match.group(1) != _ZERO_TRACE_ID and match.group(2) != _ZERO_SPAN_ID:
            trace_id = match.group(1)
            return trace_id, "00-%s-%s-%s" % (trace_id, new_span_id(), match.group(3))
    trace_id = environ.get("HTTP_X_TRACE_ID")
    if trace_id is None or not _VALID_TRACE_ID.fullmatch(trace_id):
        trace_id = new_trace_id()
        w3c_id = trace_id.replace("-", "")
    elif _HEX_TRACE_ID.fullmatch(trace_id) and trace_id.strip("0-"):
        w3c_id = trace_id.replace("-", "").lower()
    else:
        w3c_id = new_trace_id().replace("-", "")
    return trace_id, "00-%s-%s-00" % (w3c_id, new_span_id())


def safe_path(request):
    """The request path for messages and logs, even when it is not valid UTF-8."""
    raw = request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", "")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def trace(request, event, **fields):
    """Log one trace line for ``event`` when trace logs are on."""
    settings = request.registry.get("cinema.settings")
    if settings is None or not settings.enable_trace_logs:
        return
    trace_id = getattr(request, "trace_id", None)
    where = "%s %s [trace %s]" % (request.method, safe_path(request), trace_id or "-")
    trace_event(settings, event, where, extra={"trace_id": trace_id}, **fields)


def trace_event(settings, event, where="", extra=None, **fields):
    """Log one trace line (``event``, where it happened, ``key=value`` details) when trace logs are on."""
    if settings is None or not settings.enable_trace_logs:
        return
    words = [event, where] + ["%s=%s" % item for item in fields.items()]
    log.info(" ".join(word for word in words if word), extra=extra)


def trace_id_tween_factory(handler, registry):
    def trace_id_tween(request):
        request.trace_id, traceparent = trace_context(request.environ)
        response = handler(request)
        response.headers[TRACE_HEADER] = request.trace_id
        response.headers[TRACEPARENT_HEADER] = traceparent
        # every response, cached and 304 answers included: never sniff a JSON body as HTML
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return trace_id_tween
