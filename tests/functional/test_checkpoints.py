"""SQLite: a thread of the process moves the write-ahead log into the database file
(cinema_api/infrastructure/checkpoints.py); a request's commit no longer does it by itself."""

import gc
import logging
import os
import shutil
import sqlite3
import time
from contextlib import closing

import pytest
from pony.orm import db_session

from cinema_api.infrastructure.checkpoints import FALLBACK_PAGES, IDLE_SEC, TICK_SEC, WalCheckpointer
from cinema_api.infrastructure.db import make_database
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.settings import parse_database_url


@pytest.fixture
def sqlite_db(fresh_sqlite_url, tmp_path):
    db = make_database(parse_database_url(fresh_sqlite_url, str(tmp_path)), [])
    yield db, str(tmp_path / "fresh.sqlite")
    db.disconnect()


def rows_in_the_file_alone(path, copy):
    """The rows of table ``t`` that the database file holds without its log: a copy of the file
    alone, opened apart (what a checkpoint has moved, nothing else)."""
    shutil.copyfile(path, copy)
    with closing(sqlite3.connect(copy)) as connection:
        try:
            return connection.execute("SELECT COUNT(*) FROM t").fetchone()[0]
        except sqlite3.DatabaseError:  # not even the table has reached the file, or a copy made mid-write
            return None


def test_a_commit_checkpoints_by_itself_only_past_the_fallback(sqlite_db):
    db, _ = sqlite_db
    with db_session:
        assert select_rows(db, "PRAGMA wal_autocheckpoint", {}) == [(FALLBACK_PAGES,)]
        assert select_rows(db, "PRAGMA journal_mode", {}) == [("wal",)]


def test_the_thread_moves_what_requests_commit_into_the_file(sqlite_db, tmp_path):
    """200 commits fill a few hundred pages of log, far below the requests' own threshold: only
    the thread can have moved them into the file, within a few of its ticks."""
    db, path = sqlite_db
    with db_session:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("CREATE INDEX ix_t_name ON t (name)")
    for number in range(200):
        with db_session:
            db.execute("INSERT INTO t (name) VALUES ($name)", {"name": "row %d" % number})
    deadline = time.monotonic() + 5
    while rows_in_the_file_alone(path, str(tmp_path / "copy.sqlite")) != 200:
        assert time.monotonic() < deadline, "the log was not moved into the database file"
        time.sleep(TICK_SEC)
    # the log is still there (nothing truncated it), and its frames are all in the file
    assert os.path.getsize(path + "-wal") > 0


def checkpointers_of(path):
    return sum(1 for checkpointer in list(WalCheckpointer._all) if checkpointer.path == path)


def checkpointer_of(path):
    """A checkpointer ticked only by the test (not by the process's thread)."""
    checkpointer = WalCheckpointer(path)
    checkpointer.forget()
    return checkpointer


def test_it_checks_often_while_the_log_grows_and_seldom_while_idle(sqlite_db):
    db, path = sqlite_db
    with db_session:
        db.execute("CREATE TABLE t (x int)")
    checkpointer = checkpointer_of(path)
    intervals = []
    now = 0.0
    for step in range(8):
        if step == 6:  # a write: back to the short tick
            with db_session:
                db.execute("INSERT INTO t VALUES (1)")
        now = checkpointer.due
        checkpointer.tick(now)
        intervals.append(checkpointer.interval)
    frames, moved = checkpointer.last
    assert frames == moved > 0
    assert intervals == [TICK_SEC, 2 * TICK_SEC, 4 * TICK_SEC, 8 * TICK_SEC, 16 * TICK_SEC, IDLE_SEC, TICK_SEC, 2 * TICK_SEC]
    assert checkpointer.connection is not None  # closed only while idle
    checkpointer.tick(now + TICK_SEC)  # not due yet: nothing is asked
    assert checkpointer.due == now + 2 * TICK_SEC
    checkpointer.close()


def test_a_removed_file_is_forgotten_and_never_created(sqlite_db):
    db, path = sqlite_db
    with db_session:
        db.execute("CREATE TABLE t (x int)")
    [checkpointer] = [c for c in list(WalCheckpointer._all) if c.path == path]
    db.disconnect()
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name):
            os.remove(name)
    checkpointer.tick(checkpointer.due)
    assert not os.path.exists(path)
    assert checkpointers_of(path) == 0
    checkpointer.start()  # the database connects again: checkpointed again
    assert checkpointers_of(path) == 1


def test_a_failing_checkpoint_is_said_once_and_tried_again_seldom(tmp_path, caplog):
    path = str(tmp_path / "not-a-database.sqlite")
    with open(path, "w") as out:
        out.write("not a database, " * 100)
    checkpointer = checkpointer_of(path)
    with caplog.at_level(logging.WARNING, logger="cinema_api.infrastructure.checkpoints"):
        checkpointer.tick(0.0)
        checkpointer.tick(checkpointer.due)
    assert checkpointer.interval == IDLE_SEC and checkpointer.due == 2 * IDLE_SEC
    assert [record.getMessage().split(":")[0] for record in caplog.records] == ["checkpoint of %s failed" % path]


def use_and_drop(url, tmp_path):
    """A database used once, then dropped (its last reference is this frame's)."""
    db = make_database(parse_database_url(url, str(tmp_path)), [])
    with db_session:
        db.execute("CREATE TABLE t (x int)")
    assert checkpointers_of(str(tmp_path / "fresh.sqlite")) == 1
    db.disconnect()


def test_a_dropped_database_is_no_longer_checkpointed(fresh_sqlite_url, tmp_path):
    use_and_drop(fresh_sqlite_url, tmp_path)
    gc.collect()
    assert checkpointers_of(str(tmp_path / "fresh.sqlite")) == 0


