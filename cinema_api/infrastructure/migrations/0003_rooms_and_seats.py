"""Rooms, the seat plan each session copies from its room, and the seat of each ticket.

- ``rooms``: a room's number (1..999), name, rows (1..26, lettered A..Z) and seats per row (1..50).
- ``movie_sessions.seat_rows`` and ``seats_per_row``: the session's own copy of its room's plan,
  made when the session is created (both null: no plan, no limit).
- ``tickets.seat``: a label such as ``C7`` (null for a session without a plan), unique per session
  (``uq_tickets_session_seat``; several nulls never clash).

Never oversold, never sold twice, whatever path writes: a trigger refuses a ticket whose seat is
missing for a session with a plan, given for a session without one, or outside the plan
(``ck_tickets_seat_in_plan``); the unique index refuses a seat sold twice. Together they bound a
session's tickets by its capacity with no counter that could drift: each ticket holds a distinct
seat of the plan. A session's plan never changes once it is created.

Rooms appear in no cached body (a session's capacity comes from its own columns, which the
catalogue version triggers of 0002 already cover), and tickets appear in none either: purchases
do not change the catalogue version.
"""

from yoyo import step

SEAT_IN_PLAN = "ck_tickets_seat_in_plan"


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def _statements(sqlite):
    timestamp = "DATETIME" if sqlite else "TIMESTAMP"
    seat_format = (
        """("seat" GLOB '[A-Z][1-9]' OR "seat" GLOB '[A-Z][1-9][0-9]')"""
        if sqlite
        else """"seat" ~ '^[A-Z][1-9][0-9]?$'"""
    )
    statements = [
        f"""CREATE TABLE "rooms" (
            "number" INTEGER NOT NULL CHECK ("number" BETWEEN 1 AND 999),
            "name" VARCHAR(100) NOT NULL,
            "seat_rows" INTEGER NOT NULL CHECK ("seat_rows" BETWEEN 1 AND 26),
            "seats_per_row" INTEGER NOT NULL CHECK ("seats_per_row" BETWEEN 1 AND 50),
            "created_at" {timestamp} NOT NULL,
            "updated_at" {timestamp} NOT NULL,
            CONSTRAINT "pk_rooms" PRIMARY KEY ("number")
        )""",
        'ALTER TABLE "movie_sessions" ADD COLUMN "seat_rows" INTEGER CHECK ("seat_rows" BETWEEN 1 AND 26)',
        # a plan has both dimensions or neither
        'ALTER TABLE "movie_sessions" ADD COLUMN "seats_per_row" INTEGER CHECK (("seats_per_row" IS NULL AND "seat_rows" IS NULL) '
        'OR ("seats_per_row" IS NOT NULL AND "seat_rows" IS NOT NULL AND "seats_per_row" BETWEEN 1 AND 50))',
        f'ALTER TABLE "tickets" ADD COLUMN "seat" VARCHAR(3) CHECK ({seat_format})',
        'CREATE UNIQUE INDEX "uq_tickets_session_seat" ON "tickets" ("session_id", "seat")',
    ]
    if sqlite:
        # SQLite has no ALTER TABLE ... ADD CONSTRAINT: the column check above holds both columns.
        outside = (
            '(s."seat_rows" IS NULL AND NEW."seat" IS NOT NULL) OR (s."seat_rows" IS NOT NULL AND ('
            'NEW."seat" IS NULL OR unicode(substr(NEW."seat", 1, 1)) - 64 > s."seat_rows" '
            'OR CAST(substr(NEW."seat", 2) AS INTEGER) > s."seats_per_row"))'
        )
        for event, name in (("INSERT", "insert"), ('UPDATE OF "seat", "session_id"', "update")):
            statements.append(
                f'CREATE TRIGGER "tickets_{name}_seat_in_plan" BEFORE {event} ON "tickets" '
                f"""BEGIN SELECT RAISE(ABORT, '{SEAT_IN_PLAN}') FROM "movie_sessions" s """
                f'WHERE s."id" = NEW."session_id" AND ({outside}); END'
            )
        return statements
    statements += [
        f"""CREATE FUNCTION "check_ticket_seat"() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            plan_rows INTEGER;
            plan_seats INTEGER;
        BEGIN
            SELECT "seat_rows", "seats_per_row" INTO plan_rows, plan_seats
                FROM "movie_sessions" WHERE "id" = NEW."session_id";
            IF NOT FOUND OR NEW."seat" !~ '^[A-Z][1-9][0-9]?$' THEN
                RETURN NEW;  -- the foreign key and the seat's format check answer for these
            END IF;
            IF (plan_rows IS NULL AND NEW."seat" IS NOT NULL)
                OR (plan_rows IS NOT NULL AND (NEW."seat" IS NULL
                    OR ascii(left(NEW."seat", 1)) - 64 > plan_rows
                    OR substring(NEW."seat" FROM 2)::INTEGER > plan_seats)) THEN
                RAISE EXCEPTION 'seat % does not fit the seat plan of session %', NEW."seat", NEW."session_id"
                    USING ERRCODE = 'check_violation', CONSTRAINT = '{SEAT_IN_PLAN}', TABLE = 'tickets';
            END IF;
            RETURN NEW;
        END $$""",
        'CREATE TRIGGER "tickets_seat_in_plan" BEFORE INSERT OR UPDATE OF "seat", "session_id" ON "tickets" '
        'FOR EACH ROW EXECUTE FUNCTION "check_ticket_seat"()',
    ]
    return statements


def apply_step(conn):
    cursor = conn.cursor()
    for statement in _statements(_is_sqlite(conn)):
        cursor.execute(statement)


def rollback_step(conn):
    cursor = conn.cursor()
    if _is_sqlite(conn):
        cursor.execute('DROP TRIGGER "tickets_insert_seat_in_plan"')
        cursor.execute('DROP TRIGGER "tickets_update_seat_in_plan"')
    else:
        cursor.execute('DROP TRIGGER "tickets_seat_in_plan" ON "tickets"')
        cursor.execute('DROP FUNCTION "check_ticket_seat"()')
    cursor.execute('DROP INDEX "uq_tickets_session_seat"')
    cursor.execute('ALTER TABLE "tickets" DROP COLUMN "seat"')
    # seats_per_row first: its check names seat_rows
    cursor.execute('ALTER TABLE "movie_sessions" DROP COLUMN "seats_per_row"')
    cursor.execute('ALTER TABLE "movie_sessions" DROP COLUMN "seat_rows"')
    cursor.execute('DROP TABLE "rooms"')


__depends__ = {"0002_catalog_version"}

steps = [step(apply_step, rollback_step)]
