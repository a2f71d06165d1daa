"""SQLite: the write-ahead log is moved into the database file by a thread of the process, not by
whichever request happens to commit its thousandth page.

In WAL mode every commit appends its pages to the ``-wal`` file. By default, the commit that
takes the log past 1,000 pages then copies them into the database file and waits for the disk
(a checkpoint) before it returns, still holding the write lock that every other writer queues
on: about one purchase in a hundred took 5 to 12 ms instead of 0.1, and every writer waited
behind it. Here one thread of each process checkpoints each database file its connections
write to, in SQLite's PASSIVE mode (it waits for no reader or writer, and none waits for it):
every ``TICK_SEC`` while the log grows, backing off to every ``IDLE_SEC`` while nothing is
written. A page written many times between two checkpoints is copied once.

The connections of the requests still checkpoint by themselves past ``FALLBACK_PAGES``: should
the thread fall behind, the log stays bounded as before, only later.
"""

import logging
import os
import sqlite3
import threading
import time
import weakref
from urllib.parse import quote

from cinema_api.core.threads import ProcessThread

log = logging.getLogger(__name__)

#: ``PRAGMA wal_autocheckpoint`` of the request connections, in pages (SQLite's default: 1,000):
#: reached only when the thread falls behind (about 40 MiB of log at 4 KiB pages).
FALLBACK_PAGES = 10_000
TICK_SEC = 0.05
IDLE_SEC = 1.0


class WalCheckpointer:
    """Checkpoints the database file at ``path`` from the process's checkpoint thread, on a
    connection of its own, for as long as the object lives (the ``Database`` holds it).
    :meth:`start` on each new connection of the database."""

    _all = weakref.WeakSet()
    _all_lock = threading.Lock()

    def __init__(self, path):
        self.path = path
        self.interval = TICK_SEC
        self.due = 0.0
        self.last = None  # (frames in the log, frames moved) after the previous checkpoint
        self.connection = None
        self.pid = None  # of the process that opened the connection
        self.failed = False

    def start(self):
        """Checkpointed from now on by the process's thread (started by the first call of each
        process)."""
        with WalCheckpointer._all_lock:
            WalCheckpointer._all.add(self)
        _CHECKPOINTING.ensure()

    def forget(self):
        """No longer checkpointed, until :meth:`start` (the database's next new connection)."""
        with WalCheckpointer._all_lock:
            WalCheckpointer._all.discard(self)
        self.close()

    def checkpoint(self):
        """One PASSIVE checkpoint: ``(frames in the log, frames moved into the database)``, as
        ``PRAGMA wal_checkpoint`` says; ``(-1, -1)`` when the database is not in WAL mode.
        The connection is opened on first use, read-write: a missing file is never created."""
        if self.connection is None or self.pid != os.getpid():
            # a forked child must not use its parent's connection (nor close it): a new one
            uri = "file:%s?mode=rw" % quote(self.path)
            self.connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            self.pid = os.getpid()
            # closed with the object; not at exit, when this thread may still be using it
            weakref.finalize(self, _close_in_process, self.connection, self.pid).atexit = False
        _busy, frames, moved = self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames, moved

    def tick(self, now):
        """Checkpoint if due; the next one is due sooner while the log changes."""
        if now < self.due:
            return
        if not os.path.exists(self.path):  # removed with its directory: nothing to write to
            log.debug("%s is gone: not checkpointed until it is connected to again", self.path)
            self.forget()
            return
        try:
            state = self.checkpoint()
        except sqlite3.Error as exc:  # unreadable, not a database, a disk error: requests will say so too
            if not self.failed:
                log.warning("checkpoint of %s failed: %s; retrying every %.0f s", self.path, exc, IDLE_SEC)
            self.failed, self.interval, self.last = True, IDLE_SEC, None
            self.close()
        else:
            if self.failed:
                log.info("checkpoint of %s works again", self.path)
            self.failed = False
            self.interval = min(self.interval * 2, IDLE_SEC) if state == self.last else TICK_SEC
            self.last = state
            if self.interval == IDLE_SEC:
                self.close()  # idle: no open files until the next look
        self.due = now + self.interval

    def close(self):
        if self.connection is not None:
            _close_in_process(self.connection, self.pid)
        self.connection = None

    @classmethod
    def run_all(cls):
        while True:
            time.sleep(TICK_SEC)
            with cls._all_lock:
                checkpointers = list(cls._all)
            now = time.monotonic()
            for checkpointer in checkpointers:
                checkpointer.tick(now)
            checkpointers = checkpointer = None  # a database dropped meanwhile is not kept alive


def _close_in_process(connection, pid):
    if os.getpid() == pid:
        connection.close()


# a checkpoint runs in SQLite, outside the interpreter lock: on every CPU, not the interpreter's alone
_CHECKPOINTING = ProcessThread("sqlite-checkpoint", WalCheckpointer.run_all, parallel=True)
