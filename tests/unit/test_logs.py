"""The log writer: request threads queue records; one thread formats and writes them in batches."""

import io
import logging
import queue
import threading
import time

import pytest

from cinema_api.core.logs import BatchWriter
from cinema_api.testing import at_once


class CountingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


def record(thread, index, level=logging.INFO):
    return logging.LogRecord("cinema_api.access", level, __file__, 1, "%s line %d", (thread, index), None)


def test_what_was_queued_is_written_whole_and_in_order_in_one_write():
    stream = CountingStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    records = queue.SimpleQueue()

    def log(n):
        for index in range(250):
            records.put(record("t%d" % n, index))

    at_once(4, log)
    BatchWriter(records, [handler]).stop()  # the 1,000 records were queued before it started
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1000
    for n in range(4):
        assert [line for line in lines if line.startswith("t%d " % n)] == ["t%d line %d" % (n, index) for index in range(250)]
    assert stream.writes == 1  # one write per batch, not one per line


def test_a_failing_handler_loses_neither_the_writer_nor_the_other_handlers(capsys):
    class Broken(logging.Handler):
        def handle(self, item):
            raise RuntimeError("disk full")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    records = queue.SimpleQueue()
    writer = BatchWriter(records, [Broken(), handler])
    records.put(record("a", 1))
    records.put(record("a", 2))
    writer.stop()
    assert stream.getvalue() == "a line 1\na line 2\n"
    assert "a log handler failed: RuntimeError('disk full')" in capsys.readouterr().err


def test_handler_levels_and_other_handlers_are_respected():
    stream = io.StringIO()
    warnings_only = logging.StreamHandler(stream)
    warnings_only.setLevel(logging.WARNING)
    warnings_only.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    seen = []

    class Collecting(logging.Handler):
        def emit(self, item):
            seen.append(item.getMessage())

    records = queue.SimpleQueue()
    writer = BatchWriter(records, [warnings_only, Collecting()])
    records.put(record("a", 1))
    records.put(record("a", 2, logging.WARNING))
    writer.stop()
    assert stream.getvalue() == "WARNING a line 2\n"
    assert seen == ["a line 1", "a line 2"]


# ---------------------------------------------------------------- the access line, made by the writer


class Capturing(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, item):
        self.records.append(item)


@pytest.fixture
def writer_only():
    """The root logger as configure_logging leaves it (one RequestThreadHandler, writing to a
    capturing handler), the access log at INFO; restored afterwards."""
    from cinema_api.core.logs import RequestThreadHandler

    root, cinema = logging.getLogger(), logging.getLogger("cinema_api")
    saved = root.handlers[:], cinema.level
    written = Capturing()
    handler = RequestThreadHandler([written])
    root.handlers[:] = [handler]
    cinema.setLevel(logging.INFO)
    try:
        yield handler, written
    finally:
        handler.stop_listener()
        root.handlers[:] = saved[0]
        cinema.setLevel(saved[1])


def access_line_from_a_request_thread(context, trace_id=None, root_handlers=None):
    """log_access called on a thread named like waitress's, within ``context`` (trace id, method,
    path), while the root logger has only ``root_handlers`` (pytest adds its own during a test);
    the times just before and after the call."""
    from cinema_api.core.logs import RequestThreadHandler, current_request, log_access

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = root_handlers or [h for h in saved if isinstance(h, RequestThreadHandler)]
    times = []

    def request_thread():
        token = current_request.set(context) if context else None
        times.append(time.time())
        log_access("GET", "/v1/movies", 200, time.perf_counter() - 0.0123, trace_id)
        times.append(time.time())
        if token is not None:
            current_request.reset(token)

    thread = threading.Thread(target=request_thread, name="waitress-7")
    try:
        thread.start()
        thread.join()
    finally:
        root.handlers[:] = saved
    return thread, times


def test_an_access_line_is_queued_as_values_and_written_as_the_record_of_its_moment_and_thread(writer_only):
    from cinema_api.core.logs import AccessLine

    handler, written = writer_only
    queued = []
    put = handler.queue.put
    handler.queue = type("Spy", (), {"put": lambda self, item: (queued.append(item), put(item))[1],
                                     "put_nowait": lambda self, item: (queued.append(item), put(item))[1]})()
    thread, (before, after) = access_line_from_a_request_thread(("trace-1", "GET", "/v1/movies"))
    assert [type(item) for item in queued] == [AccessLine]  # no record made on the request thread
    handler.stop_listener()
    [record] = written.records
    assert record.getMessage().startswith("GET /v1/movies 200 ") and record.getMessage().endswith("ms")
    assert record.name == "cinema_api.access" and record.levelno == logging.INFO
    assert (record.trace_id, record.method, record.path, record.status) == ("trace-1", "GET", "/v1/movies", 200)
    assert record.duration_ms >= 12.3
    assert (record.threadName, record.thread) == ("waitress-7", thread.ident)  # the request's thread, not the writer's
    assert before <= record.created <= after  # when it was logged, not when it was written
    assert record.msecs == int((record.created - int(record.created)) * 1000)


def test_an_access_line_with_its_own_trace_id_needs_no_context(writer_only):
    handler, written = writer_only
    access_line_from_a_request_thread(None, trace_id="trace-2")
    handler.stop_listener()
    [record] = written.records
    assert (record.trace_id, record.method, record.path) == ("trace-2", "GET", "/v1/movies")


def test_the_writer_honours_the_handler_s_filters(writer_only):
    handler, written = writer_only
    handler.addFilter(lambda record: record.trace_id != "trace-3")
    access_line_from_a_request_thread(("trace-3", "GET", "/v1/movies"))
    access_line_from_a_request_thread(("trace-4", "GET", "/v1/movies"))
    handler.stop_listener()
    assert [record.trace_id for record in written.records] == ["trace-4"]


def test_the_writer_honours_the_handler_s_level(writer_only):
    handler, written = writer_only
    handler.setLevel(logging.WARNING)
    access_line_from_a_request_thread(("trace-5", "GET", "/v1/movies"))
    handler.stop_listener()
    assert written.records == []


def test_where_a_record_could_go_elsewhere_it_is_made_and_handled_at_once(writer_only):
    handler, _ = writer_only
    capturing = Capturing()  # as pytest's caplog does, on the root
    access_line_from_a_request_thread(("trace-7", "GET", "/v1/movies"), root_handlers=[handler, capturing])
    access_logger = logging.getLogger("cinema_api.access")
    access_logger.addHandler(capturing)  # a handler of the ini file's own on the access logger
    try:
        access_line_from_a_request_thread(("trace-6", "GET", "/v1/movies"))
    finally:
        access_logger.removeHandler(capturing)
    # at once, on the request's thread: in the capturing handler as soon as log_access returned
    assert [(r.trace_id, r.threadName) for r in capturing.records] == [("trace-7", "waitress-7"), ("trace-6", "waitress-7")]
