"""Trace ids and trace logs.

Every response carries ``X-Trace-Id``: an incoming id of 8-64 characters of
``[A-Za-z0-9-]`` is reused (so a gateway's id flows through), otherwise a new UUID.
Trace logs (``ENABLE_TRACE_LOGS``) are one line per error response and per important event.
"""

import itertools
import logging
import os
import re

TRACE_HEADER = "X-Trace-Id"
_VALID_TRACE_ID = re.compile(r"[A-Za-z0-9-]{8,64}")

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


def incoming_trace_id(environ):
    value = environ.get("HTTP_X_TRACE_ID", "")
    return value if _VALID_TRACE_ID.fullmatch(value) else new_trace_id()


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
        request.trace_id = incoming_trace_id(request.environ)
        response = handler(request)
        response.headers[TRACE_HEADER] = request.trace_id
        # every response, cached and 304 answers included: never sniff a JSON body as HTML
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return trace_id_tween
