"""The log writer: request threads queue records; one thread formats and writes them in batches."""

import io
import logging
import queue

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
