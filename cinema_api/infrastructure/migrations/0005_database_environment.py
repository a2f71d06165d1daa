"""The environment a database was made for: one row, written once.

``database_environment`` holds ``development``, ``testing`` or ``production`` and when it was
recorded. The migration only creates the table: the migration step of
``cinema_api.infrastructure.migrate`` writes the row, the first time a database is migrated
(``cinema-migrate``, or the migrate-at-start of development and testing), and never changes it.
Production refuses to serve a database made for another environment, and ``cinema-seed`` (the
public demo accounts) refuses one made for production (docs/API.md section 7).
"""

from yoyo import step

__depends__ = {"0004_live_login_session"}


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def apply_step(conn):
    timestamp = "DATETIME" if _is_sqlite(conn) else "TIMESTAMP"
    conn.cursor().execute(
        f"""CREATE TABLE "database_environment" (
            "id" INTEGER NOT NULL PRIMARY KEY CHECK ("id" = 1),
            "environment" VARCHAR(16) NOT NULL CHECK ("environment" IN ('development', 'testing', 'production')),
            "recorded_at" {timestamp} NOT NULL
        )"""
    )


def rollback_step(conn):
    conn.cursor().execute('DROP TABLE "database_environment"')


steps = [step(apply_step, rollback_step)]
