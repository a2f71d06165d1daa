"""What a request costs the database: every statement sent is one the request asked for.

Pony's PostgreSQL pool resets a connection with ``DISCARD ALL`` whenever a ``db_session``
ends: a second round trip for every request, cached hits included (their one query is the
login-session check). The application sets no session state, so the pool only rolls back
what a request left open.
"""

import psycopg2.extensions
from pony.orm import db_session

from cinema_api.infrastructure.db import make_database
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

