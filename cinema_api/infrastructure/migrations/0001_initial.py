"""The initial schema: users, user sessions, refresh tokens, movies, movie sessions, tickets.

One script for SQLite and PostgreSQL; the few dialect differences are chosen from the
DB-API connection. Derived columns: ``movies.title_folded`` (case-folded title for the
case-insensitive search) and ``movie_sessions.day`` (the UTC booking day of the room rule).
"""

from yoyo import step

TIMESLOTS = "'10:00-12:00', '12:00-14:00', '14:00-16:00', '16:00-18:00', '18:00-20:00', '20:00-22:00', '22:00-00:00'"


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def _tables(sqlite):
    timestamp = "DATETIME" if sqlite else "TIMESTAMP"
    # PostgreSQL sorts titles by code point only with the "C" collation.
    title_collation = "" if sqlite else ' COLLATE "C"'
    return [
        f"""CREATE TABLE "users" (
            "id" UUID NOT NULL PRIMARY KEY,
            "username" VARCHAR(50) NOT NULL,
            "password_hash" VARCHAR(100) NOT NULL,
            "role" VARCHAR(16) NOT NULL CHECK ("role" IN ('manager', 'customer')),
            "age" INTEGER NOT NULL CHECK ("age" BETWEEN 0 AND 150),
            "created_at" {timestamp} NOT NULL,
            "updated_at" {timestamp} NOT NULL,
            CONSTRAINT "uq_users_username" UNIQUE ("username")
        )""",
        'CREATE INDEX "ix_users_created_at" ON "users" ("created_at", "id")',
        f"""CREATE TABLE "user_sessions" (
            "id" UUID NOT NULL PRIMARY KEY,
            "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
            "created_at" {timestamp} NOT NULL,
            "expires_at" {timestamp} NOT NULL,
            "revoked_at" {timestamp}
        )""",
        'CREATE INDEX "ix_user_sessions_user" ON "user_sessions" ("user_id", "id")',
        f"""CREATE TABLE "refresh_tokens" (
            "id" UUID NOT NULL PRIMARY KEY,
            "user_session_id" UUID NOT NULL REFERENCES "user_sessions" ("id") ON DELETE CASCADE,
            "token_hash" CHAR(64) NOT NULL,
            "created_at" {timestamp} NOT NULL,
            "used_at" {timestamp},
            CONSTRAINT "uq_refresh_tokens_token_hash" UNIQUE ("token_hash")
        )""",
        'CREATE INDEX "ix_refresh_tokens_session" ON "refresh_tokens" ("user_session_id", "id")',
        f"""CREATE TABLE "movies" (
            "id" UUID NOT NULL PRIMARY KEY,
            "title" VARCHAR(200){title_collation} NOT NULL,
            "title_folded" VARCHAR(800) NOT NULL,
            "age_restriction" INTEGER NOT NULL CHECK ("age_restriction" BETWEEN 0 AND 21),
            "created_at" {timestamp} NOT NULL,
            "updated_at" {timestamp} NOT NULL,
            CONSTRAINT "uq_movies_title" UNIQUE ("title")
        )""",
        'CREATE INDEX "ix_movies_created_at" ON "movies" ("created_at", "id")',
        'CREATE INDEX "ix_movies_title" ON "movies" ("title", "id")',
        'CREATE INDEX "ix_movies_age_restriction" ON "movies" ("age_restriction", "id")',
        f"""CREATE TABLE "movie_sessions" (
            "id" UUID NOT NULL PRIMARY KEY,
            "movie_id" UUID NOT NULL REFERENCES "movies" ("id") ON DELETE CASCADE,
            "date" {timestamp} NOT NULL,
            "day" DATE NOT NULL,
            "timeslot" VARCHAR(11) NOT NULL CHECK ("timeslot" IN ({TIMESLOTS})),
            "room_number" INTEGER NOT NULL CHECK ("room_number" BETWEEN 1 AND 999),
            "created_at" {timestamp} NOT NULL,
            "updated_at" {timestamp} NOT NULL,
            CONSTRAINT "uq_movie_sessions_room_slot_day" UNIQUE ("room_number", "timeslot", "day")
        )""",
        'CREATE INDEX "ix_movie_sessions_movie" ON "movie_sessions" ("movie_id", "date", "timeslot", "room_number", "id")',
        'CREATE INDEX "ix_movie_sessions_date" ON "movie_sessions" ("date", "timeslot", "room_number", "id")',
        'CREATE INDEX "ix_movie_sessions_day" ON "movie_sessions" ("day", "date", "timeslot", "room_number", "id")',
        'CREATE INDEX "ix_movie_sessions_timeslot" ON "movie_sessions" ("timeslot", "id")',
        'CREATE INDEX "ix_movie_sessions_room" ON "movie_sessions" ("room_number", "id")',
        f"""CREATE TABLE "tickets" (
            "id" UUID NOT NULL PRIMARY KEY,
            "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
            "session_id" UUID NOT NULL REFERENCES "movie_sessions" ("id") ON DELETE RESTRICT,
            "purchased_at" {timestamp} NOT NULL,
            "is_used" BOOLEAN NOT NULL,
            "used_at" {timestamp},
            CONSTRAINT "uq_tickets_user_session" UNIQUE ("user_id", "session_id")
        )""",
        'CREATE INDEX "ix_tickets_purchased_at" ON "tickets" ("purchased_at", "id")',
        'CREATE INDEX "ix_tickets_user" ON "tickets" ("user_id", "purchased_at", "id")',
        'CREATE INDEX "ix_tickets_session" ON "tickets" ("session_id", "purchased_at", "id")',
        'CREATE INDEX "ix_tickets_is_used" ON "tickets" ("is_used", "purchased_at", "id")',
    ]


TABLES_IN_DROP_ORDER = ["tickets", "movie_sessions", "movies", "refresh_tokens", "user_sessions", "users"]


def apply_step(conn):
    cursor = conn.cursor()
    for statement in _tables(_is_sqlite(conn)):
        cursor.execute(statement)


def rollback_step(conn):
    cursor = conn.cursor()
    for table in TABLES_IN_DROP_ORDER:
        cursor.execute('DROP TABLE "%s"' % table)


steps = [step(apply_step, rollback_step)]
