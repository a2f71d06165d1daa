"""Counts the writing transaction keeps: the lists' totals without a scan of every row.

``kept_counts`` holds, for each counted table, the number of its rows in each part:

- ``movies``, one part per ``age_restriction`` (0..21): the catalogue's ``totalItems``, and that of
  its ``ageRestriction`` filter (the sum of the parts at or above it);
- ``movie_sessions``, part 0 for the screenings that are on and 1 for the cancelled ones: the
  screening list's ``totalItems`` without a filter, or with only ``cancelled``.

Triggers change the counts in the transaction that writes the rows, whoever writes them (an
endpoint, a console script, raw SQL, another process), so a count is exactly as committed as the
rows it counts: at 1,000,000 movies a page's total is one read of at most 22 rows, where
``COUNT(*)`` read the whole table (tens of milliseconds on PostgreSQL, growing with the data).

PostgreSQL: statement triggers with transition tables (one update of each part a statement,
however many rows: a bulk insert of 1,000 movies changes one or a few counts); a TRUNCATE sets
the table's counts to 0 (also when cascaded from ``movies``). Writers of these tables already
queue on the catalogue version's row (migration 0002), which they lock before the counts' rows,
so the counts add no deadlock. SQLite: row triggers (its writers are serialised anyway).
"""

from yoyo import step

__depends__ = {"0007_cancelled_screenings", "0009_title_search_index"}  # 0007: cancelled_at

#: (table, the part of a row as SQL over a row alias)
COUNTED = {
    "movies": '{row}."age_restriction"',
    "movie_sessions": 'CASE WHEN {row}."cancelled_at" IS NULL THEN 0 ELSE 1 END',
}


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def apply_step(conn):
    cursor = conn.cursor()
    cursor.execute(
        """CREATE TABLE "kept_counts" (
            "table_name" VARCHAR(30) NOT NULL,
            "part" INTEGER NOT NULL,
            "rows" BIGINT NOT NULL CHECK ("rows" >= 0),
            PRIMARY KEY ("table_name", "part")
        )"""
    )
    for table, part in COUNTED.items():
        cursor.execute(
            f'INSERT INTO "kept_counts" ("table_name", "part", "rows") '
            f'SELECT \'{table}\', {part.format(row="t")}, COUNT(*) FROM "{table}" AS "t" GROUP BY 2'
        )
    if _is_sqlite(conn):
        _sqlite_triggers(cursor)
    else:
        _postgres_triggers(cursor)


def _sqlite_triggers(cursor):
    for table, part in COUNTED.items():
        add = (
            f'INSERT INTO "kept_counts" ("table_name", "part", "rows") VALUES (\'{table}\', {part.format(row="NEW")}, 1) '
            'ON CONFLICT ("table_name", "part") DO UPDATE SET "rows" = "rows" + 1;'
        )
        remove = (
            f'UPDATE "kept_counts" SET "rows" = "rows" - 1 '
            f'WHERE "table_name" = \'{table}\' AND "part" = {part.format(row="OLD")};'
        )
        cursor.execute(f'CREATE TRIGGER "{table}_count_insert" AFTER INSERT ON "{table}" BEGIN {add} END')
        cursor.execute(f'CREATE TRIGGER "{table}_count_delete" AFTER DELETE ON "{table}" BEGIN {remove} END')
        cursor.execute(
            f'CREATE TRIGGER "{table}_count_update" AFTER UPDATE ON "{table}" '
            f'WHEN {part.format(row="OLD")} IS NOT {part.format(row="NEW")} BEGIN {remove} {add} END'
        )


def _postgres_triggers(cursor):
    for table, part in COUNTED.items():
        added = f'SELECT {part.format(row="n")} AS "part", COUNT(*) AS "rows" FROM "new_rows" AS "n" GROUP BY 1'
        removed = f'SELECT {part.format(row="o")} AS "part", COUNT(*) AS "rows" FROM "old_rows" AS "o" GROUP BY 1'
        add = (
            f'INSERT INTO "kept_counts" ("table_name", "part", "rows") SELECT \'{table}\', "part", "rows" FROM ({added}) AS "a" '
            'ON CONFLICT ("table_name", "part") DO UPDATE SET "rows" = "kept_counts"."rows" + EXCLUDED."rows";'
        )
        remove = (
            f'UPDATE "kept_counts" AS "k" SET "rows" = "k"."rows" - "r"."rows" FROM ({removed}) AS "r" '
            f'WHERE "k"."table_name" = \'{table}\' AND "k"."part" = "r"."part";'
        )
        bodies = {"insert": add, "delete": remove, "update": remove + "\n" + add}
        for event, body in bodies.items():
            cursor.execute(
                f"""CREATE FUNCTION "count_{table}_{event}"() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    {body}
                    RETURN NULL;
                END $$"""
            )
        cursor.execute(
            f'CREATE TRIGGER "{table}_count_insert" AFTER INSERT ON "{table}" REFERENCING NEW TABLE AS "new_rows" '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "count_{table}_insert"()'
        )
        cursor.execute(
            f'CREATE TRIGGER "{table}_count_delete" AFTER DELETE ON "{table}" REFERENCING OLD TABLE AS "old_rows" '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "count_{table}_delete"()'
        )
        cursor.execute(
            f'CREATE TRIGGER "{table}_count_update" AFTER UPDATE ON "{table}" '
            f'REFERENCING OLD TABLE AS "old_rows" NEW TABLE AS "new_rows" '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "count_{table}_update"()'
        )
        cursor.execute(
            f"""CREATE FUNCTION "count_{table}_truncate"() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE "kept_counts" SET "rows" = 0 WHERE "table_name" = '{table}';
                RETURN NULL;
            END $$"""
        )
        cursor.execute(
            f'CREATE TRIGGER "{table}_count_truncate" AFTER TRUNCATE ON "{table}" '
            f'FOR EACH STATEMENT EXECUTE FUNCTION "count_{table}_truncate"()'
        )


def rollback_step(conn):
    cursor = conn.cursor()
    sqlite = _is_sqlite(conn)
    for table in COUNTED:
        events = ("insert", "delete", "update") if sqlite else ("insert", "delete", "update", "truncate")
        for event in events:
            cursor.execute(f'DROP TRIGGER "{table}_count_{event}"' + ("" if sqlite else f' ON "{table}"'))
            if not sqlite:
                cursor.execute(f'DROP FUNCTION "count_{table}_{event}"()')
    cursor.execute('DROP TABLE "kept_counts"')


steps = [step(apply_step, rollback_step)]
