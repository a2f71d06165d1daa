"""What a request costs the database: every statement sent is one the request asked for.

Pony's PostgreSQL pool resets a connection with ``DISCARD ALL`` whenever a ``db_session``
ends: a second round trip for every request, cached hits included (their one query is the
login-session check). The application sets no session state, so the pool only rolls back
what a request left open.
"""

from concurrent.futures import ThreadPoolExecutor

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from pony.orm import db_session

from pony.orm.dbapiprovider import IntegrityError

from cinema_api.infrastructure.db import make_database
from cinema_api.infrastructure.pony_internals import execute_alone, select_rows, select_without_session
from cinema_api.settings import parse_database_url


class RecordingCursor(psycopg2.extensions.cursor):
    statements = []
    prepared = {}  # name -> statement, of every PREPARE seen

    def execute(self, query, vars=None):
        # psycopg2 sends BEGIN (and later COMMIT or ROLLBACK) by itself outside autocommit mode
        mode = "autocommit" if self.connection.autocommit else "in a transaction"
        query = query.decode() if isinstance(query, bytes) else query
        RecordingCursor.statements.append((query, mode))
        if query.startswith("PREPARE "):
            name, _, body = query[len("PREPARE "):].partition(" AS ")
            RecordingCursor.prepared[name] = body
        return super().execute(query, vars)


def recording_database(url, tmp_path):
    database_url = parse_database_url(url, str(tmp_path))
    database_url.bind_kwargs["cursor_factory"] = RecordingCursor
    return make_database(database_url, [])


def test_a_read_sends_its_query_and_nothing_else(fresh_postgres_url, tmp_path):
    db = recording_database(fresh_postgres_url, tmp_path)
    with db_session:
        db.select("SELECT 1")  # connects
    RecordingCursor.statements.clear()
    for _ in range(3):
        with db_session:
            assert db.select("SELECT 2") == [2]
    assert RecordingCursor.statements == [("SELECT 2", "autocommit")] * 3
    db.disconnect()


def test_a_read_without_a_session_is_its_query_alone_on_the_threads_connection(fresh_postgres_url, tmp_path):
    """The fast path of cached hits reads outside any db_session: after a session that wrote (in
    a transaction), on the same connection, its query alone in autocommit mode; the next
    session still gets its transaction."""
    db = recording_database(fresh_postgres_url, tmp_path)
    with db_session:
        db.execute("CREATE TABLE t (x int)")
        db.execute("INSERT INTO t VALUES (1)")
    RecordingCursor.statements.clear()
    assert select_without_session(db, "SELECT count(*) FROM t WHERE x = $x", {"x": 1}) == [(1,)]
    assert RecordingCursor.statements == [("SELECT count(*) FROM t WHERE x = %(x)s", "autocommit")]
    with db_session:
        db.execute("INSERT INTO t VALUES (2)")
        assert RecordingCursor.statements[-1] == ("INSERT INTO t VALUES (2)", "in a transaction")
    assert select_without_session(db, "SELECT count(*) FROM t", {}) == [(2,)]
    db.disconnect()


def test_a_read_without_a_session_survives_a_lost_connection_and_its_own_errors(fresh_postgres_url, tmp_path):
    db = recording_database(fresh_postgres_url, tmp_path)
    pid = select_without_session(db, "SELECT pg_backend_pid()", {})[0][0]
    admin = psycopg2.connect(fresh_postgres_url)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    # the pooled connection is gone: replaced, and the read sent again on the new one
    assert select_without_session(db, "SELECT pg_backend_pid()", {})[0][0] != pid
    with pytest.raises(psycopg2.errors.UndefinedTable):
        select_without_session(db, "SELECT * FROM missing", {})
    # a failed read leaves nothing open: the connection still answers, in and out of sessions
    assert select_without_session(db, "SELECT 3", {}) == [(3,)]
    with db_session:
        assert db.select("SELECT 4") == [4]
    db.disconnect()


def test_a_read_without_a_session_on_sqlite(fresh_sqlite_url, tmp_path):
    db = make_database(parse_database_url(fresh_sqlite_url, str(tmp_path)), [])
    # a new connection (another thread's) gets the project's settings first (db.on_connect)
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(select_without_session, db, "PRAGMA cache_size", {}).result() == [(-512,)]
    with db_session:
        db.execute("CREATE TABLE t (x int)")
        db.execute("INSERT INTO t VALUES (1)")
    assert select_without_session(db, "SELECT x FROM t WHERE x = $x", {"x": 1}) == [(1,)]
    db.disconnect()



def sent_statements():
    """What ``RecordingCursor`` saw, a prepared statement's ``EXECUTE`` shown as the statement it
    runs (its ``PREPARE``, recorded before, names it), each cut to its first words."""
    sent = []
    for query, mode in RecordingCursor.statements:
        if query.startswith("PREPARE "):
            sent.append(("PREPARE", mode))
        elif query.startswith("EXECUTE "):
            body = RecordingCursor.prepared[query.split()[1]]
            sent.append(("EXECUTE " + body.split("(")[0].split(" FROM ")[0], mode))
        else:
            sent.append((query.split("(")[0].split(" FROM ")[0], mode))
    return sent


def test_a_purchase_reads_and_sells_in_one_statement(fresh_postgres_url, tmp_path, monkeypatch):
    """One statement: the check of the buyer's login session (deferred by the security policy),
    the read of the session, its movie and the buyer, and the insert made only where every check
    passes, alone in autocommit mode (no BEGIN and COMMIT round trips, a single statement being
    atomic). The unique key refuses a second ticket, so no statement checks for one beforehand;
    the statement failed, so its check of the login session is made again before the 409. With a
    seat plan the same statement sells the first free seat; a seat asked for is the login check,
    the read, then the sale. The server plans each once per connection (prepared statements),
    not on every purchase."""
    from webtest import TestApp

    from cinema_api import make_app
    from cinema_api.infrastructure import db as db_module
    from tests.conftest import build_settings, ini_settings, register

    bind_kwargs = db_module.postgres_bind_kwargs
    monkeypatch.setattr(
        db_module, "postgres_bind_kwargs", lambda *args: dict(bind_kwargs(*args), cursor_factory=RecordingCursor)
    )
    app = make_app(build_settings({"DATABASE_URL": fresh_postgres_url}, allow_manager_signup="true"), ini_settings())
    client = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    manager = register(client, "boss", role="manager", age=40)
    first, second = register(client, "buyer"), register(client, "another")
    movie = client.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 0}, headers=manager.headers).json
    session = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}
    session = client.post_json("/v1/movies/%s/sessions" % movie["id"], session, headers=manager.headers).json
    RecordingCursor.statements.clear()
    client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=first.headers, status=201)
    # the connection planned the login check for the manager's requests; the purchase's statement now
    assert sent_statements() == [
        ("PREPARE", "autocommit"),
        ('EXECUTE WITH "l" ', "autocommit"),  # one statement: its own transaction, the login check in it
    ]
    RecordingCursor.statements.clear()
    client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=second.headers, status=201)
    assert sent_statements() == [('EXECUTE WITH "l" ', "autocommit")]
    RecordingCursor.statements.clear()
    again = client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=first.headers, status=409)
    assert again.json["message"] == "Ticket already purchased for this session"
    assert sent_statements() == [('EXECUTE WITH "l" ', "autocommit"), ('EXECUTE SELECT "live_login_session"', "autocommit")]
    # a seat asked for: the read, then the conditional insert of that seat
    client.put_json("/v1/rooms/2", {"rows": 2, "seatsPerRow": 3}, headers=manager.headers)
    seated = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 2}
    seated = client.post_json("/v1/movies/%s/sessions" % movie["id"], seated, headers=manager.headers).json
    RecordingCursor.statements.clear()
    assert client.post_json("/v1/tickets", {"sessionId": seated["id"]}, headers=second.headers, status=201).json["seat"] == "A1"
    assert sent_statements() == [('EXECUTE WITH "l" ', "autocommit")]  # the same statement: the first free seat, sold
    RecordingCursor.statements.clear()
    client.post_json("/v1/tickets", {"sessionId": seated["id"], "seat": "B3"}, headers=first.headers, status=201)
    facts = 'SELECT "s"."date", "s"."timeslot", "s"."room_number", "s"."seat_rows", "s"."seats_per_row", "m"."id", "m"."title", "m"."age_restriction", '
    assert sent_statements() == [
        ('EXECUTE SELECT "live_login_session"', "autocommit"),
        ("PREPARE", "autocommit"),
        ("EXECUTE " + facts, "autocommit"),
        ("PREPARE", "autocommit"),
        ('EXECUTE INSERT INTO "tickets" ', "autocommit"),
    ]
    app.registry["cinema.db"].disconnect()


def test_a_prepared_statement_is_planned_once_per_connection(fresh_postgres_url, tmp_path):
    """``PREPARE`` the first time a connection runs it, then only ``EXECUTE``; a new connection
    (the old one lost) prepares again. Reads with and without a session and lone writes share
    the connection's prepared statements."""
    db = recording_database(fresh_postgres_url, tmp_path)
    with db_session:
        db.execute("CREATE TABLE t (x int PRIMARY KEY, y text)")
    read = "SELECT y FROM t WHERE x = $x"
    RecordingCursor.statements.clear()
    for x in (1, 2):
        with db_session:
            assert execute_alone(db, "INSERT INTO t VALUES ($x, $y)", {"x": x, "y": "v%d" % x}, prepared=True).rowcount == 1
        assert select_without_session(db, read, {"x": x}, prepared=True) == [("v%d" % x,)]
        with db_session:
            assert select_rows(db, read, {"x": x}, prepared=True) == [("v%d" % x,)]
    kinds = [query.split()[0] for query, mode in RecordingCursor.statements]
    assert kinds == ["PREPARE", "EXECUTE", "PREPARE", "EXECUTE", "EXECUTE", "EXECUTE", "EXECUTE", "EXECUTE"]
    # the same statement is refused as it was without preparing: Pony's error, as db.execute
    with db_session, pytest.raises(IntegrityError):
        execute_alone(db, "INSERT INTO t VALUES ($x, $y)", {"x": 1, "y": "again"}, prepared=True)
    pid = select_without_session(db, "SELECT pg_backend_pid()", {})[0][0]
    admin = psycopg2.connect(fresh_postgres_url)
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    RecordingCursor.statements.clear()
    assert select_without_session(db, read, {"x": 2}, prepared=True) == [("v2",)]
    assert [query.split()[0] for query, mode in RecordingCursor.statements][-2:] == ["PREPARE", "EXECUTE"]
    db.disconnect()


def test_a_prepared_statement_follows_a_change_of_its_table(fresh_postgres_url, tmp_path):
    """A migration run beside the server may change the columns a prepared statement reads; the
    server then refuses its plan. Alone (autocommit), the statement is prepared again and
    answers; inside a transaction that refusal fails the transaction, and the next use
    prepares it again."""
    db = recording_database(fresh_postgres_url, tmp_path)
    with db_session:
        db.execute("CREATE TABLE t (x int, y int)")
        db.execute("INSERT INTO t VALUES (1, 10)")
    read = "SELECT * FROM t WHERE x = $x"
    assert select_without_session(db, read, {"x": 1}, prepared=True) == [(1, 10)]
    with db_session:
        assert select_rows(db, read, {"x": 1}, prepared=True) == [(1, 10)]
    admin = psycopg2.connect(fresh_postgres_url)
    admin.autocommit = True
    admin.cursor().execute("ALTER TABLE t ADD COLUMN z text DEFAULT 'z'")
    assert select_without_session(db, read, {"x": 1}, prepared=True) == [(1, 10, "z")]
    admin.cursor().execute("ALTER TABLE t DROP COLUMN z")
    with pytest.raises(psycopg2.errors.FeatureNotSupported, match="must not change result type"), db_session:
        db.execute("INSERT INTO t VALUES (2, 20)")  # a transaction is open
        select_rows(db, read, {"x": 1}, prepared=True)
    with db_session:
        assert select_rows(db, "SELECT count(*) FROM t", {}) == [(1,)]  # the transaction was rolled back
    with db_session:
        db.execute("INSERT INTO t VALUES (2, 20)")  # in a transaction again: prepared anew first
        assert select_rows(db, read, {"x": 2}, prepared=True) == [(2, 20)]
    assert select_without_session(db, read, {"x": 1}, prepared=True) == [(1, 10)]
    admin.close()
    db.disconnect()


def test_each_sqlite_connection_keeps_a_small_page_cache(fresh_sqlite_url, tmp_path):
    """Every request thread has a connection of its own, each with its page cache: SQLite's
    default (2 MiB) would cost the eight threads 16 MiB once a scan of a large catalogue filled
    them. The operating system caches the file for all of them."""
    db = make_database(parse_database_url(fresh_sqlite_url, str(tmp_path)), [])
    with db_session:
        assert select_rows(db, "PRAGMA cache_size", {}) == [(-512,)]
    db.disconnect()
