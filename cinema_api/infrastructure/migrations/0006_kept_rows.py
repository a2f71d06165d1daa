"""What the database keeps whoever writes to it: the catalogue version's row, and the seat plan of a
session that has sold tickets.

- ``catalog_version``: its one row keys every cached copy and every token check (migration 0002).
  Without it, writes no longer changed any version and every authenticated request answered 401:
  a deleted row locked everyone out. Deleting (or, on PostgreSQL, truncating) it is now refused
  (``ck_catalog_version_kept``), and a database that had already lost it gets a new one here.
- ``movie_sessions.seat_rows`` and ``seats_per_row``: once a session has tickets, its plan no longer
  changes (``ck_movie_sessions_seat_plan_kept``): raw SQL once shrank a plan of 2 seats under 4 sold
  tickets (available: -2). A session without tickets may still take another plan (moved to
  another room).
"""

import logging

from yoyo import step

log = logging.getLogger("cinema_api.infrastructure.migrate")

VERSION_KEPT = "ck_catalog_version_kept"
SEAT_PLAN_KEPT = "ck_movie_sessions_seat_plan_kept"

SQLITE_NEW_VERSION = "lower(hex(randomblob(16)))"
POSTGRES_NEW_VERSION = "md5(random()::text || clock_timestamp()::text)"


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def apply_step(conn):
    cursor = conn.cursor()
    sqlite = _is_sqlite(conn)
    cursor.execute(
        'INSERT INTO "catalog_version" ("id", "version") SELECT 1, %s WHERE NOT EXISTS (SELECT 1 FROM "catalog_version")'
        % (SQLITE_NEW_VERSION if sqlite else POSTGRES_NEW_VERSION)
    )
    if cursor.rowcount == 1:
        log.warning("the catalogue version's row was missing: a new one was made (every cached copy is now unreachable)")
    plan_changed = '(OLD."seat_rows" IS NOT NEW."seat_rows" OR OLD."seats_per_row" IS NOT NEW."seats_per_row")'
    if sqlite:
        cursor.execute(
            f'CREATE TRIGGER "catalog_version_kept" BEFORE DELETE ON "catalog_version" '
            f"BEGIN SELECT RAISE(ABORT, '{VERSION_KEPT}'); END"
        )
        cursor.execute(
            f'CREATE TRIGGER "movie_sessions_seat_plan_kept" BEFORE UPDATE OF "seat_rows", "seats_per_row" '
            f'ON "movie_sessions" WHEN {plan_changed} AND EXISTS (SELECT 1 FROM "tickets" WHERE "session_id" = OLD."id") '
            f"BEGIN SELECT RAISE(ABORT, '{SEAT_PLAN_KEPT}'); END"
        )
        return
    cursor.execute(
        f"""CREATE FUNCTION "keep_catalog_version"() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the catalogue version row keys every cached copy: it is kept'
                USING ERRCODE = 'check_violation', CONSTRAINT = '{VERSION_KEPT}', TABLE = 'catalog_version';
        END $$"""
    )
    cursor.execute(
        'CREATE TRIGGER "catalog_version_kept" BEFORE DELETE OR TRUNCATE ON "catalog_version" '
        'FOR EACH STATEMENT EXECUTE FUNCTION "keep_catalog_version"()'
    )
    cursor.execute(
        f"""CREATE FUNCTION "keep_seat_plan"() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM "tickets" WHERE "session_id" = OLD."id") THEN
                RAISE EXCEPTION 'session % has tickets: its seat plan is kept', OLD."id"
                    USING ERRCODE = 'check_violation', CONSTRAINT = '{SEAT_PLAN_KEPT}', TABLE = 'movie_sessions';
            END IF;
            RETURN NEW;
        END $$"""
    )
    cursor.execute(
        'CREATE TRIGGER "movie_sessions_seat_plan_kept" BEFORE UPDATE OF "seat_rows", "seats_per_row" ON "movie_sessions" '
        'FOR EACH ROW WHEN (OLD."seat_rows" IS DISTINCT FROM NEW."seat_rows" '
        'OR OLD."seats_per_row" IS DISTINCT FROM NEW."seats_per_row") EXECUTE FUNCTION "keep_seat_plan"()'
    )


def rollback_step(conn):
    cursor = conn.cursor()
    if _is_sqlite(conn):
        cursor.execute('DROP TRIGGER "catalog_version_kept"')
        cursor.execute('DROP TRIGGER "movie_sessions_seat_plan_kept"')
        return
    cursor.execute('DROP TRIGGER "catalog_version_kept" ON "catalog_version"')
    cursor.execute('DROP FUNCTION "keep_catalog_version"()')
    cursor.execute('DROP TRIGGER "movie_sessions_seat_plan_kept" ON "movie_sessions"')
    cursor.execute('DROP FUNCTION "keep_seat_plan"()')


__depends__ = {"0005_database_environment"}

steps = [step(apply_step, rollback_step)]
