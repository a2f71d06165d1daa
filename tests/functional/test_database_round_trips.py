"""What a request costs the database: every statement sent is one the request asked for.

Pony's PostgreSQL pool resets a connection with ``DISCARD ALL`` whenever a ``db_session``
ends: a second round trip for every request, cached hits included (their one query is the
login-session check). The application sets no session state, so the pool only rolls back
what a request left open.
"""

import psycopg2.extensions
from pony.orm import db_session

from cinema_api.infrastructure.db import make_database, select_rows
from cinema_api.settings import parse_database_url


class RecordingCursor(psycopg2.extensions.cursor):
    statements = []

    def execute(self, query, vars=None):
        # psycopg2 sends BEGIN (and later COMMIT or ROLLBACK) by itself outside autocommit mode
        mode = "autocommit" if self.connection.autocommit else "in a transaction"
        RecordingCursor.statements.append((query.decode() if isinstance(query, bytes) else query, mode))
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



def test_a_purchase_reads_once_and_inserts_once(fresh_postgres_url, tmp_path, monkeypatch):
    """Authentication, one read of the session, its movie and the buyer, and the insert, alone in
    autocommit mode (no BEGIN and COMMIT round trips, a single statement being atomic): the
    unique key refuses a second ticket, so no statement checks for one beforehand."""
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
    customer = register(client, "buyer")
    movie = client.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 0}, headers=manager.headers).json
    session = {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}
    session = client.post_json("/v1/movies/%s/sessions" % movie["id"], session, headers=manager.headers).json
    RecordingCursor.statements.clear()
    client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=customer.headers, status=201)
    sent = [(query.split("(")[0].split(" FROM ")[0], mode) for query, mode in RecordingCursor.statements]
    assert sent == [
        ('SELECT "live_login_session"', "autocommit"),
        ('SELECT "s"."date", "s"."timeslot", "s"."room_number", "s"."seat_rows", "s"."seats_per_row", "m"."id", "m"."title", "m"."age_restriction", ', "autocommit"),
        ('INSERT INTO "tickets" ', "autocommit"),  # one statement: its own transaction
    ]
    RecordingCursor.statements.clear()
    again = client.post_json("/v1/tickets", {"sessionId": session["id"]}, headers=customer.headers, status=409)
    assert again.json["message"] == "Ticket already purchased for this session"
    assert len(RecordingCursor.statements) == 3
    app.registry["cinema.db"].disconnect()


def test_each_sqlite_connection_keeps_a_small_page_cache(fresh_sqlite_url, tmp_path):
    """Every request thread has a connection of its own, each with its page cache: SQLite's
    default (2 MiB) would cost the eight threads 16 MiB once a scan of a large catalogue filled
    them. The operating system caches the file for all of them."""
    db = make_database(parse_database_url(fresh_sqlite_url, str(tmp_path)), [])
    with db_session:
        assert select_rows(db, "PRAGMA cache_size", {}) == [(-512,)]
    db.disconnect()
