"""The catalogue's version: a value the database itself changes with every write to movies or
movie sessions, in the writing transaction.

Cached reads are keyed by it (``cinema_api.infrastructure.cache``): a committed change, made
by any path (an endpoint, a console script, raw SQL, another process), changes the version
that the next read sees, so copies made before it can no longer be found. The version is a
random value, not a counter, so it never comes back: a database restored from a backup or
emptied by a test still cannot meet a copy of other data under its version.

PostgreSQL: a statement trigger that runs *before* each statement, so a writer takes the
version row's lock before any row lock of its own and catalogue writers queue on it instead
of deadlocking on each other. SQLite (which has row triggers only): one trigger per row;
its writers are serialised by the database lock anyway.
"""

from yoyo import step

TABLES = ("movies", "movie_sessions")

SQLITE_NEW_VERSION = "lower(hex(randomblob(16)))"


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def apply_step(conn):
    cursor = conn.cursor()
    sqlite = _is_sqlite(conn)
    new_version = SQLITE_NEW_VERSION if sqlite else "md5(random()::text || clock_timestamp()::text)"
    cursor.execute(
        """CREATE TABLE "catalog_version" (
            "id" INTEGER NOT NULL PRIMARY KEY CHECK ("id" = 1),
            "version" VARCHAR(32) NOT NULL
        )"""
    )
    cursor.execute('INSERT INTO "catalog_version" ("id", "version") VALUES (1, %s)' % new_version)
    if sqlite:
        for table in TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                cursor.execute(
                    f'CREATE TRIGGER "{table}_{event.lower()}_version" AFTER {event} ON "{table}" '
                    f'BEGIN UPDATE "catalog_version" SET "version" = {new_version} WHERE "id" = 1; END'
                )
        return
    cursor.execute(
        f"""CREATE FUNCTION "change_catalog_version"() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE "catalog_version" SET "version" = {new_version} WHERE "id" = 1;
            RETURN NULL;
        END $$"""
    )
    for table in TABLES:
        cursor.execute(
            f'CREATE TRIGGER "{table}_version" BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
            'FOR EACH STATEMENT EXECUTE FUNCTION "change_catalog_version"()'
        )


def rollback_step(conn):
    cursor = conn.cursor()
    if _is_sqlite(conn):
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                cursor.execute(f'DROP TRIGGER "{table}_{event}_version"')
    else:
        for table in TABLES:
            cursor.execute(f'DROP TRIGGER "{table}_version" ON "{table}"')
        cursor.execute('DROP FUNCTION "change_catalog_version"()')
    cursor.execute('DROP TABLE "catalog_version"')


__depends__ = {"0001_initial"}

steps = [step(apply_step, rollback_step)]
