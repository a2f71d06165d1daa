"""An index of the folded titles' trigrams, for the title search (docs/API.md section 3).

The search is a substring of ``movies.title_folded``: without an index, a scan of every title.
A needle of 3 characters or more is made of trigrams that any title containing it has too, so
an index of trigrams finds the few candidates, and an exact comparison keeps only the matches
(``cinema_api.movies.services.Movies.page``).

- PostgreSQL: the ``pg_trgm`` extension (trusted since PostgreSQL 13: a user with CREATE on the
  database may install it) and a GIN index of ``title_folded`` with ``gin_trgm_ops``, which
  serves ``LIKE '%...%'``. Without ``fastupdate``: new rows go into the index at once rather
  than into its pending list, which every search reads whole until a vacuum empties it, and
  which made the planner go back to reading every title after 20,000 rows inserted at once
  (the catalogue is read far more than written: an insert costs about 0.1 ms more). Building
  the index locks writes to ``movies`` for its duration (8 s at a million movies, 2 cores).
- SQLite: ``movies_title_fts``, an FTS5 table with the ``trigram`` tokenizer (case-sensitive: the
  text is folded already) over ``movies.title_folded``, external-content (it stores no copy of
  the titles, only the index), keyed by ``movies``' rowid (``movies`` is a rowid table: its UUID
  key is not an alias of the rowid). Triggers keep it in step with every insert, delete and
  change of ``title_folded``, whoever writes; this migration fills it from the rows there are.
  SQLite's VACUUM keeps the rowids of such a table (checked on 3.40), though its documentation
  does not promise it: ``INSERT INTO "movies_title_fts"("movies_title_fts") VALUES ('rebuild')``
  makes the index again from ``movies`` if it ever drifts.

  A SQLite built without FTS5 (or older than 3.34, without the trigram tokenizer) gets no table
  and no trigger: the migration still applies, and the search keeps its scan (the application
  looks for the table once, ``cinema_api.movies.services.title_index_of``). Once such a SQLite
  is replaced, rolling this migration back and applying it again builds the index. The other
  way round, a database file that has the table cannot be written to by a SQLite without FTS5
  (its triggers name the table): such a SQLite must not serve it.
"""

import sqlite3

from yoyo import step

PG_INDEX = "ix_movies_title_folded_trgm"
FTS_TABLE = "movies_title_fts"
FTS_TOKENIZER = "trigram case_sensitive 1"

# (trigger, SQL after ON "movies"): each writes the change of the folded title to the index.
# An external-content table forgets a row by being told the values it indexed ('delete').
FTS_TRIGGERS = [
    (
        "movies_title_fts_insert",
        f'AFTER INSERT ON "movies" BEGIN '
        f'INSERT INTO "{FTS_TABLE}" ("rowid", "title_folded") VALUES (NEW."rowid", NEW."title_folded"); END',
    ),
    (
        "movies_title_fts_delete",
        f'AFTER DELETE ON "movies" BEGIN '
        f'INSERT INTO "{FTS_TABLE}" ("{FTS_TABLE}", "rowid", "title_folded") VALUES (\'delete\', OLD."rowid", OLD."title_folded"); END',
    ),
    (
        "movies_title_fts_update",
        f'AFTER UPDATE OF "title_folded" ON "movies" WHEN OLD."title_folded" IS NOT NEW."title_folded" BEGIN '
        f'INSERT INTO "{FTS_TABLE}" ("{FTS_TABLE}", "rowid", "title_folded") VALUES (\'delete\', OLD."rowid", OLD."title_folded"); '
        f'INSERT INTO "{FTS_TABLE}" ("rowid", "title_folded") VALUES (NEW."rowid", NEW."title_folded"); END',
    ),
]


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def sqlite_has_trigram_fts():
    """Whether this process's SQLite has FTS5 with the trigram tokenizer (asked of a scratch
    in-memory database, so a refusal leaves the migration's transaction untouched)."""
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute(f"CREATE VIRTUAL TABLE \"probe\" USING fts5(\"text\", tokenize='{FTS_TOKENIZER}')")
        return True
    except sqlite3.OperationalError:  # no such module: fts5 / no such tokenizer: trigram
        return False
    finally:
        probe.close()


def apply_step(conn):
    cursor = conn.cursor()
    if not _is_sqlite(conn):
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute(f'CREATE INDEX "{PG_INDEX}" ON "movies" USING gin ("title_folded" gin_trgm_ops) WITH (fastupdate = off)')
        return
    if not sqlite_has_trigram_fts():
        return
    cursor.execute(
        f'CREATE VIRTUAL TABLE "{FTS_TABLE}" USING fts5('
        f"\"title_folded\", content='movies', content_rowid='rowid', tokenize='{FTS_TOKENIZER}')"
    )
    for name, body in FTS_TRIGGERS:
        cursor.execute(f'CREATE TRIGGER "{name}" {body}')
    cursor.execute(f"INSERT INTO \"{FTS_TABLE}\" (\"{FTS_TABLE}\") VALUES ('rebuild')")


def rollback_step(conn):
    cursor = conn.cursor()
    if not _is_sqlite(conn):
        # The extension stays: it may have been there before (IF NOT EXISTS above), and other
        # objects of the database may use it; dropping it would fail or cascade to them.
        cursor.execute(f'DROP INDEX "{PG_INDEX}"')
        return
    # IF EXISTS: a SQLite without FTS5 applied this migration without making them
    for name, _ in FTS_TRIGGERS:
        cursor.execute(f'DROP TRIGGER IF EXISTS "{name}"')
    cursor.execute(f'DROP TABLE IF EXISTS "{FTS_TABLE}"')


__depends__ = {"0008_known_login_addresses"}

steps = [step(apply_step, rollback_step)]
