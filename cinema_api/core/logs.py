"""Logging: LOG_LEVEL, LOG_FORMAT (text or one JSON object per line), the access log.

Every record logged while a request is handled carries its trace id, method and path
(a filter reads them from a context variable the trace tween sets), so a log shipper can
join the lines of one request.
"""

import atexit
import contextvars
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from datetime import datetime, timezone

from cinema_api.core.metrics import route_pattern
from cinema_api.core.trace import safe_path

#: (trace id, method, path) of the request this thread is handling.
current_request = contextvars.ContextVar("cinema_current_request", default=None)

access_log = logging.getLogger("cinema_api.access")

_FIELDS = ("trace_id", "method", "path", "status", "duration_ms")


class RequestContextFilter(logging.Filter):
    """Adds the current request's trace id, method and path to every record."""

    def filter(self, record):
        context = current_request.get()
        if context is not None:
            for name, value in zip(("trace_id", "method", "path"), context, strict=True):
                if getattr(record, name, None) is None:
                    setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the request fields."""

    def format(self, record):
        data = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            data[name] = getattr(record, name, None)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class SingleLineFormatter(logging.Formatter):
    """Text logs: a CR or LF inside a message (a request path, a header) is escaped, so a client
    cannot forge a log line. Tracebacks, appended after the message, keep their lines."""

    def formatMessage(self, record):
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


class AccessLine:
    """An access log line as a request thread leaves it for the log writer: its values, taken at
    the moment :func:`log_access` is called. The writer makes it the record ``log_access`` would
    have made then (:meth:`record`: the same message, fields, time and thread), in its batch.
    Making and routing a ``LogRecord`` on the request thread, between two requests' work, cost a
    cached hit about a sixth of its CPU in process, the writer making a batch of them less than
    half of that (bench/NOTES.md, "The access log line")."""

    __slots__ = ("created", "thread", "thread_name", "context", "method", "path", "status", "duration", "trace_id")

    def __init__(self, created, thread, thread_name, context, method, path, status, duration, trace_id):
        self.created, self.thread, self.thread_name, self.context = created, thread, thread_name, context
        self.method, self.path, self.status, self.duration, self.trace_id = method, path, status, duration, trace_id

    def record(self):
        extra = {"status": self.status, "duration_ms": round(self.duration, 1)}
        if self.trace_id is not None:
            extra.update(trace_id=self.trace_id, method=self.method, path=self.path)
        elif self.context is not None:  # what RequestContextFilter adds on the request's thread
            extra.update(zip(("trace_id", "method", "path"), self.context, strict=True))
        # Made here, not by access_log.info(), which would first look up its caller's frame: the
        # same line, for about a third of its cost.
        record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, "%s %s %s %.1fms",
                                       (self.method, self.path, self.status, self.duration), None, extra=extra)
        later = record.created - self.created
        record.created = self.created
        record.msecs = int((self.created - int(self.created)) * 1000) + 0.0
        record.relativeCreated -= later * 1000
        record.thread, record.threadName = self.thread, self.thread_name
        return record


class BatchWriter:
    """The thread that formats and writes what the request threads logged.

    Woken by a record, it waits ``GATHER_SEC`` for more, then writes all that came in one go:
    for a stream handler (the ini files' console, a file) one ``write`` and one ``flush`` per
    batch, not per line. Under load a batch holds the lines of many requests, and the thread
    wakes (and takes the GIL from the request threads) a few dozen times a second instead of
    once per request. Other handlers get their records one by one.
    """

    GATHER_SEC = 0.02
    MAX_BATCH = 1024

    def __init__(self, records, handlers, owner=None):
        self.records = records
        self.handlers = handlers
        self.owner = owner  # the RequestThreadHandler whose queue this is: it handles the access lines
        self.thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            batch = [self.records.get()]
            if batch[0] is not None:
                time.sleep(self.GATHER_SEC)
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            self.write([record for record in map(self._record_of, batch) if record is not None])
            if None in batch:
                return

    def _record_of(self, item):
        """A queued record as it is, an :class:`AccessLine` as the record it stands for, once it
        has gone where ``access_log.handle`` would have sent it: the owner's level and filters,
        and its ``prepare``. None for the end of the queue or a line a filter drops."""
        if not isinstance(item, AccessLine):
            return item
        record, owner = item.record(), self.owner
        if owner is None:
            return record
        if record.levelno < owner.level:
            return None
        kept = owner.filter(record)
        if not kept:
            return None
        return owner.prepare(kept if isinstance(kept, logging.LogRecord) else record)

    def write(self, records):
        """Write ``records`` through every handler; a handler that fails loses its lines of
        this batch (reported on stderr, as logging does), never the writer or the others."""
        for handler in self.handlers:
            try:
                self._write_to(handler, records)
            except Exception as exc:
                sys.stderr.write("cinema_api: a log handler failed: %r\n" % (exc,))

    @staticmethod
    def _write_to(handler, records):
        chosen = [record for record in records if record.levelno >= handler.level]
        stream = getattr(handler, "stream", None)
        if not isinstance(handler, logging.StreamHandler) or stream is None:
            for record in chosen:
                handler.handle(record)
            return
        lines = []
        for record in chosen:
            kept = handler.filter(record)  # a filter may return a replacement record
            if not kept:
                continue
            record = kept if isinstance(kept, logging.LogRecord) else record
            try:
                lines.append(handler.format(record) + handler.terminator)
            except Exception:
                handler.handleError(record)
        if not lines:
            return
        with handler.lock:
            try:
                stream.write("".join(lines))
                handler.flush()
            except Exception:
                handler.handleError(chosen[-1])

    def stop(self):
        """Write what is queued, then end the thread."""
        self.records.put(None)
        self.thread.join(5)


class RequestThreadHandler(logging.handlers.QueueHandler):
    """What a request thread does to log: add the request's fields and put the record on a
    queue. Formatting and writing happen on the writer's thread, in batches."""

    def __init__(self, handlers):
        records = queue.SimpleQueue()
        super().__init__(records)
        self.addFilter(RequestContextFilter())
        self.listener = BatchWriter(records, handlers, owner=self)
        self.listening = True
        atexit.register(self.stop_listener)  # what is queued is written before the process ends

    def stop_listener(self):
        """Write what is queued and stop the writer's thread (once); what is logged afterwards
        (by other exit handlers) is written at once."""
        if self.listening:
            self.listening = False
            self.listener.stop()

    def enqueue(self, record):
        if self.listening:
            super().enqueue(record)
        else:
            self.listener.write([record])

    def prepare(self, record):
        # keep exc_info for the formatters (a JSON line has its own "exception" field); the
        # record crosses threads, not processes, so it need not be made picklable
        record.message = record.getMessage()
        return record


def configure_logging(settings):
    """Apply ``LOG_LEVEL`` and ``LOG_FORMAT`` to the handlers the ini file configured, and move
    their work off the request threads."""
    logging.getLogger("cinema_api").setLevel(settings.log_level)
    root = logging.getLogger()
    queued = [h for h in root.handlers if isinstance(h, RequestThreadHandler)]
    # the handlers that write (those of the ini file); others, such as a test runner's, stay
    writers = [h for h in root.handlers if type(h) in (logging.StreamHandler, logging.FileHandler)]
    handlers = queued[0].listener.handlers if queued else writers or [logging.StreamHandler()]
    for handler in handlers:
        if settings.log_format == "json":
            handler.setFormatter(JsonFormatter())
        elif not isinstance(handler.formatter, SingleLineFormatter):
            configured = handler.formatter or logging.Formatter()
            handler.setFormatter(SingleLineFormatter(configured._fmt, configured.datefmt))
    if not queued:
        for handler in writers:
            root.removeHandler(handler)
        root.addHandler(RequestThreadHandler(handlers))


def flush_logs():
    """Write out every queued record now (before a process ends without running its exit
    handlers)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RequestThreadHandler):
            handler.stop_listener()
    logging.shutdown()


def _only_writer():
    """The :class:`RequestThreadHandler` that is the only place an access log record would go
    (no filter on the access logger, no handler on the way to the root but that one, on the
    root), while its writer runs; None otherwise (a test's capturing handler, a handler of the
    ini file's own on the access logger), and then the record is made and handled at once."""
    if access_log.filters:
        return None
    logger = access_log
    while logger.parent is not None:
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    handlers = logger.handlers
    if len(handlers) != 1 or type(handlers[0]) is not RequestThreadHandler or not handlers[0].listening:
        return None
    return handlers[0]


def log_access(method, path, status, started, trace_id=None):
    """The access log line of a request that began at ``started`` (``time.perf_counter()``).
    ``trace_id`` when no request context is set (see :class:`RequestContextFilter`). Where the
    line can only go to the log writer, the request thread leaves it its values
    (:class:`AccessLine`), in the queue of every other record, and the writer makes the record;
    otherwise the record is made and handled here."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    thread = threading.current_thread()
    line = AccessLine(time.time(), thread.ident, thread.name, current_request.get(), method, path, status,
                      (time.perf_counter() - started) * 1000, trace_id)
    writer = _only_writer()
    if writer is not None:
        writer.queue.put(line)
    else:
        access_log.handle(line.record())


def request_context_tween_factory(handler, registry):
    """Sets the logging context of a request, writes its access log line and counts it in the
    metrics (by the route it matched, error responses included; the fast path of cached hits
    does the same for the hits it answers)."""
    metrics = registry["cinema.metrics"]
    metrics = metrics if metrics.enabled else None

    def request_context_tween(request):
        started = time.perf_counter()
        path = safe_path(request)
        token = current_request.set((request.trace_id, request.method, path))
        if metrics is not None:
            metrics.requests_in_flight.inc()
        status = 500
        try:
            response = handler(request)
            status = response.status_code
            return response
        finally:
            log_access(request.method, path, status, started)
            if metrics is not None:
                metrics.requests_in_flight.dec()
                metrics.observe_request(route_pattern(request), request.method, status, time.perf_counter() - started)
            current_request.reset(token)

    return request_context_tween
