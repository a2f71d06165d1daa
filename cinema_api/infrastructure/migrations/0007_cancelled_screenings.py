"""Cancelled screenings (docs/API.md section 11).

- ``movie_sessions.cancelled_at`` and ``tickets.cancelled_at``: null while a screening is on; set
  on the screening and on each of its unused tickets when it is cancelled.
- The room rule (one screening per room, timeslot and booking day) holds among the screenings
  that are on: ``uq_movie_sessions_room_slot_day`` becomes a partial unique index ``WHERE
  "cancelled_at" IS NULL`` (same name, so the application still answers its 409), and a cancelled
  screening leaves its room, timeslot and day free for a new one. SQLite cannot drop a table
  constraint: its ``movie_sessions`` is rebuilt (with its indexes and the triggers of 0002 and 0006).

Cached bodies gain ``cancelledAt``: the catalogue version changes here, so no copy made before is
served again.
"""

from yoyo import step

TIMESLOTS = "'10:00-12:00', '12:00-14:00', '14:00-16:00', '16:00-18:00', '18:00-20:00', '20:00-22:00', '22:00-00:00'"
SQLITE_NEW_VERSION = "lower(hex(randomblob(16)))"
POSTGRES_NEW_VERSION = "md5(random()::text || clock_timestamp()::text)"
SEAT_PLAN_KEPT = "ck_movie_sessions_seat_plan_kept"
ROOM_RULE = "uq_movie_sessions_room_slot_day"
COLUMNS = '"id", "movie_id", "date", "day", "timeslot", "room_number", "created_at", "updated_at", "seat_rows", "seats_per_row"'

INDEXES = [
    'CREATE INDEX "ix_movie_sessions_movie" ON "movie_sessions" ("movie_id", "date", "timeslot", "room_number", "id")',
    'CREATE INDEX "ix_movie_sessions_date" ON "movie_sessions" ("date", "timeslot", "room_number", "id")',
    'CREATE INDEX "ix_movie_sessions_day" ON "movie_sessions" ("day", "date", "timeslot", "room_number", "id")',
    'CREATE INDEX "ix_movie_sessions_timeslot" ON "movie_sessions" ("timeslot", "id")',
    'CREATE INDEX "ix_movie_sessions_room" ON "movie_sessions" ("room_number", "id")',
]


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def _sqlite_table(name, cancellable):
    """The SQLite ``movie_sessions`` table: with ``cancelled_at`` (the room rule then an index),
    or as 0001-0006 left it (the room rule a table constraint)."""
    last = '"cancelled_at" DATETIME' if cancellable else f'CONSTRAINT "{ROOM_RULE}" UNIQUE ("room_number", "timeslot", "day")'
    return f"""CREATE TABLE "{name}" (
        "id" UUID NOT NULL PRIMARY KEY,
        "movie_id" UUID NOT NULL REFERENCES "movies" ("id") ON DELETE CASCADE,
        "date" DATETIME NOT NULL,
        "day" DATE NOT NULL,
        "timeslot" VARCHAR(11) NOT NULL CHECK ("timeslot" IN ({TIMESLOTS})),
        "room_number" INTEGER NOT NULL CHECK ("room_number" BETWEEN 1 AND 999),
        "created_at" DATETIME NOT NULL,
        "updated_at" DATETIME NOT NULL,
        "seat_rows" INTEGER CHECK ("seat_rows" BETWEEN 1 AND 26),
        "seats_per_row" INTEGER CHECK (("seats_per_row" IS NULL AND "seat_rows" IS NULL)
            OR ("seats_per_row" IS NOT NULL AND "seat_rows" IS NOT NULL AND "seats_per_row" BETWEEN 1 AND 50)),
        {last}
    )"""


def _sqlite_rebuild(cursor, cancellable):
    """Rebuild SQLite's ``movie_sessions`` (the 12 steps of https://sqlite.org/lang_altertable.html;
    yoyo's connection does not enforce foreign keys, so the tickets' references survive the swap)."""
    cursor.execute(_sqlite_table("movie_sessions_rebuilt", cancellable))
    cursor.execute(f'INSERT INTO "movie_sessions_rebuilt" ({COLUMNS}) SELECT {COLUMNS} FROM "movie_sessions"')
    cursor.execute('DROP TABLE "movie_sessions"')  # with its indexes and triggers
    # legacy: the triggers of "tickets" name "movie_sessions", which does not exist for a moment
    cursor.execute("PRAGMA legacy_alter_table = ON")
    cursor.execute('ALTER TABLE "movie_sessions_rebuilt" RENAME TO "movie_sessions"')
    cursor.execute("PRAGMA legacy_alter_table = OFF")
    for statement in INDEXES:
        cursor.execute(statement)
    if cancellable:
        cursor.execute(
            f'CREATE UNIQUE INDEX "{ROOM_RULE}" ON "movie_sessions" ("room_number", "timeslot", "day") '
            'WHERE "cancelled_at" IS NULL'
        )
    for event in ("INSERT", "UPDATE", "DELETE"):  # 0002
        cursor.execute(
            f'CREATE TRIGGER "movie_sessions_{event.lower()}_version" AFTER {event} ON "movie_sessions" '
            f'BEGIN UPDATE "catalog_version" SET "version" = {SQLITE_NEW_VERSION} WHERE "id" = 1; END'
        )
    plan_changed = '(OLD."seat_rows" IS NOT NEW."seat_rows" OR OLD."seats_per_row" IS NOT NEW."seats_per_row")'
    cursor.execute(  # 0006
        f'CREATE TRIGGER "movie_sessions_seat_plan_kept" BEFORE UPDATE OF "seat_rows", "seats_per_row" '
        f'ON "movie_sessions" WHEN {plan_changed} AND EXISTS (SELECT 1 FROM "tickets" WHERE "session_id" = OLD."id") '
        f"BEGIN SELECT RAISE(ABORT, '{SEAT_PLAN_KEPT}'); END"
    )


def apply_step(conn):
    cursor = conn.cursor()
    if _is_sqlite(conn):
        _sqlite_rebuild(cursor, cancellable=True)
        cursor.execute('ALTER TABLE "tickets" ADD COLUMN "cancelled_at" DATETIME')
        cursor.execute(f'UPDATE "catalog_version" SET "version" = {SQLITE_NEW_VERSION} WHERE "id" = 1')
        return
    cursor.execute('ALTER TABLE "movie_sessions" ADD COLUMN "cancelled_at" TIMESTAMP')
    cursor.execute('ALTER TABLE "tickets" ADD COLUMN "cancelled_at" TIMESTAMP')
    cursor.execute(f'ALTER TABLE "movie_sessions" DROP CONSTRAINT "{ROOM_RULE}"')
    cursor.execute(
        f'CREATE UNIQUE INDEX "{ROOM_RULE}" ON "movie_sessions" ("room_number", "timeslot", "day") WHERE "cancelled_at" IS NULL'
    )
    cursor.execute(f'UPDATE "catalog_version" SET "version" = {POSTGRES_NEW_VERSION} WHERE "id" = 1')


def rollback_step(conn):
    cursor = conn.cursor()
    if _is_sqlite(conn):
        cursor.execute('ALTER TABLE "tickets" DROP COLUMN "cancelled_at"')
        _sqlite_rebuild(cursor, cancellable=False)
        return
    cursor.execute(f'DROP INDEX "{ROOM_RULE}"')
    cursor.execute(
        f'ALTER TABLE "movie_sessions" ADD CONSTRAINT "{ROOM_RULE}" UNIQUE ("room_number", "timeslot", "day")'
    )
    cursor.execute('ALTER TABLE "tickets" DROP COLUMN "cancelled_at"')
    cursor.execute('ALTER TABLE "movie_sessions" DROP COLUMN "cancelled_at"')


__depends__ = {"0006_kept_rows"}

steps = [step(apply_step, rollback_step)]
