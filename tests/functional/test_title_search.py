"""The title search (docs/API.md section 3) through the trigram indexes of migration 0009: the
same answers as reading every title, the index really used, and SQLite's FTS5 table kept in step
by every write."""

import math
import sqlite3
import uuid

import pytest
from pony.orm import db_session

from cinema_api.core.pagination import Page
from cinema_api.infrastructure import migrate
from cinema_api.infrastructure.db import make_database
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.infrastructure.sql import on_sqlite, sql_datetime
from cinema_api.movies import services
from cinema_api.movies.entities import fold_title
from cinema_api.movies.schemas import QueryMovie
from cinema_api.movies.services import Movies, title_index_of
from cinema_api.settings import parse_database_url
from tests.conftest import HERE, commit_elsewhere
from tests.functional.test_migrations import definers

LONG_TITLE = "The Extraordinarily Long Afternoon of the Sleepless Projectionist in Königsberg"

# Titles that trip a search which is not a plain literal substring of the folded title.
TITLES = [
    ("Straße der Sehnsucht", 16),
    ("STRASSE 9", 12),
    ("ǅemal and ǄEMAL", 0),  # title-case and upper-case DŽ: both fold to ǆ
    ("ΟΔΥΣΣΕΥΣ", 12),  # capital sigmas
    ("Οδυσσεύς", 6),  # ends in a final sigma (ς folds to σ)
    ("Café Noir", 18),
    ("Cafe\u0301 Bleu", 21),  # combining accent: stored as the precomposed é
    ("Q\u0307uiet", 0),  # a combining dot that has no precomposed form with Q
    ("100% Wolf", 6),
    ("100 Wolves", 6),
    ("Cat_Dog", 21),
    ("CatXDog", 0),
    ("Back\\slash", 12),
    ("Backslash", 12),
    ('Say "Hello"', 0),
    ("It's Alive", 16),
    ("Rock AND Roll", 0),
    ("Black OR White", 6),
    ("NOT Here", 12),
    ("NEAR Dark", 18),
    ("Star*Wars", 12),
    ("^Caret^", 0),
    ("Column: One", 6),
    ("A", 0),
    ("Ab", 16),
    ("abc", 18),
    (LONG_TITLE, 12),
]

NEEDLES = [
    # 1 and 2 characters: read every title
    "a", "S", "ß", "%", "_", "\\", '"', "'", "*", "^", ":", "ǆ", "ς", "σ", "ab", "ss", "0%", "t_", "k\\",
    # 3 characters and more: through the index
    "abc", "ABC", "STRASSE", "straße", "STRAẞE", "ǅEM", "ǆemal and ǆ", "ΟΔΥΣΣΕΥΣ", "οδυσσευς", "Οδυσσεύς", "υσσ",
    "café", "CAFE\u0301", "cafe", "é b", "Q\u0307u", "q\u0307", "100%", "0% w", "%%", "% w", "t_d", "t%d", "_do",
    "k\\s", "ck\\", "\\\\", 'say "h', '"hello"', '""', "it's", "'s a", "AND", "and", "OR", "NOT", "NEAR", "NEAR(",
    "AND OR", "k and r", "star*", "r*w", "*wa", "^ca", "^c", "t^", "n: o", "column:", ":", "ol",
    "extraordinarily long afternoon", LONG_TITLE, LONG_TITLE.upper(), "Rock AND Roll", "sleepless projectionist in königsberg!",
    "zzzzzz", "xq",
]


def movies_of(testapp, headers, **query):
    return testapp.get("/v1/movies", dict(query, perPage=100), headers=headers).json["movies"]


def search_pages(testapp, headers, per_page, **query):
    """Every page of a search, and the meta of each."""
    pages, number = [], 1
    while True:
        body = testapp.get("/v1/movies", dict(query, perPage=per_page, page=number), headers=headers).json
        pages.append(body)
        if not body["movies"]:
            return pages
        number += 1


def contains(title, needle):
    """The oracle: Python's ``in`` on the folded title and the folded needle (as the query
    string reaches the search: trimmed)."""
    return fold_title(needle.strip()) in fold_title(title)


def assert_searches_answer_as_the_oracle(testapp, headers, needles):
    """Each needle's answer, in each order, with and without a minimum age and page by page,
    is the unfiltered list in the same order with the titles that contain the needle
    (:func:`contains`)."""
    for sort in ("title", "ageRestriction", "createdAt"):
        for order in ("asc", "desc"):
            everything = movies_of(testapp, headers, sort=sort, order=order)
            for needle in needles:
                expected = [m for m in everything if contains(m["title"], needle)]
                found = movies_of(testapp, headers, sort=sort, order=order, title=needle)
                assert found == expected, (needle, sort, order)
    everything = movies_of(testapp, headers, sort="title", order="desc")
    for needle in needles:
        for age in (None, 12):
            query = {"sort": "title", "order": "desc", "title": needle}
            if age is not None:
                query["ageRestriction"] = age
            expected = [m for m in everything if contains(m["title"], needle) and m["ageRestriction"] >= (age or 0)]
            pages = search_pages(testapp, headers, 4, **query)
            assert [m for body in pages for m in body["movies"]] == expected, (needle, age)
            for number, body in enumerate(pages, 1):
                assert body["meta"] == {"currentPage": number, "totalPages": math.ceil(len(expected) / 4),
                                        "totalItems": len(expected), "perPage": 4}, (needle, age, number)


@pytest.fixture(params=["index", "every title"])
def sqlite_plan(request, monkeypatch):
    """SQLite's two ways of answering a needle of 3 characters or more, whatever the catalogue's
    size: through the FTS5 table, or by reading every title (PostgreSQL's planner chooses its own)."""
    monkeypatch.setattr(services, "SQLITE_INDEX_FROM_MOVIES", 0 if request.param == "index" else 10**9)
    return request.param


def test_every_needle_answers_as_the_oracle(testapp, manager, customer, sqlite_plan):
    items = [{"title": title, "ageRestriction": age} for title, age in TITLES]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=201)
    assert_searches_answer_as_the_oracle(testapp, customer.headers, NEEDLES)


def test_a_needle_that_every_title_contains_answers_every_movie(testapp, manager, customer, sqlite_plan):
    items = [{"title": "Movie %02d %s" % (i, "ÄÖÜ"[i % 3]), "ageRestriction": (i * 5) % 22} for i in range(30)]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=201)
    assert_searches_answer_as_the_oracle(testapp, customer.headers, ["movie", "MOVIE 0", "ovie", "e", "mo", "ä", "movie 29 ü"])
    assert len(movies_of(testapp, customer.headers, title="MOVIE")) == 30


# ---------------------------------------------------------------- the index is used


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_db(request):
    """A database of the test's own, migrated, with Pony mapped on it."""
    fixture = "fresh_sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    url = parse_database_url(request.getfixturevalue(fixture), HERE)
    migrate.apply(url, "testing")
    db = make_database(url, definers())
    yield db
    db.disconnect()


def fill(db, count):
    """``count`` movies inserted straight through SQL ("Movie 0000001 <word>", ...)."""
    now = sql_datetime(db, __import__("datetime").datetime(2030, 1, 1))
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
    rows = []
    for i in range(1, count + 1):
        title = "Movie %07d %s" % (i, words[i % len(words)])
        movie_id = uuid.uuid4()
        rows.append((movie_id.bytes if on_sqlite(db) else str(movie_id), title, title.lower(), i % 22, now, now))
    insert = 'INSERT INTO "movies" ("id", "title", "title_folded", "age_restriction", "created_at", "updated_at") VALUES '
    with db_session:
        connection = db.get_connection()
        if on_sqlite(db):
            connection.cursor().executemany(insert + "(?, ?, ?, ?, ?, ?)", rows)
        else:
            from psycopg2.extras import execute_values

            cursor = connection.cursor()
            execute_values(cursor, insert + "%s", rows, page_size=2000)
            cursor.execute('ANALYZE "movies"')
        connection.commit()


def the_query_of(db, **search):
    """The SQL and parameters of the page that ``Movies.page`` asks for a search, and its answer."""
    sent = []

    def spy(db, sql, params, prepared=False):
        sent.append((sql, dict(params)))
        return select_rows(db, sql, params, prepared)

    with pytest.MonkeyPatch.context() as patch, db_session:
        patch.setattr(services, "select_rows", spy)
        answer = Movies(db).page(Page(1, 25), **search)
    return [(sql, params) for sql, params in sent if "ORDER BY" in sql][0], answer


def plan_of(db, sql, params):
    with db_session:
        rows = select_rows(db, ("EXPLAIN QUERY PLAN " if on_sqlite(db) else "EXPLAIN ") + sql, params)
    return "\n".join(str(row[-1]) for row in rows)


def test_a_search_of_three_characters_or_more_goes_through_the_trigram_index(migrated_db):
    db = migrated_db
    fill(db, 20000)
    for needle, total in (("xyzzy", 0), ("movie 001234", 10), ("0001234 ECHO", 0), ("0001234 Charlie", 1), ("T_D%", 0)):
        (sql, params), (rows, found) = the_query_of(db, title=needle, sort="title")
        assert found == total, needle
        plan = plan_of(db, sql, params)
        if on_sqlite(db):
            assert "SCAN movies_title_fts VIRTUAL TABLE" in plan, plan
            assert not [line for line in plan.splitlines() if line == "SCAN movies" or line.startswith("SCAN movies ")], plan
        else:
            assert "Bitmap Index Scan on ix_movies_title_folded_trgm" in plan, plan
            assert "Seq Scan" not in plan, plan
    # two characters make no trigram: every title is read
    (sql, params), (rows, found) = the_query_of(db, title="9 ")
    assert found == 2000
    plan = plan_of(db, sql, params)
    assert "movies_title_fts" not in plan and "ix_movies_title_folded_trgm" not in plan, plan
    assert ("SCAN movies" if on_sqlite(db) else "Filter: (strpos(") in plan, plan


def test_sqlite_asks_its_index_once_the_catalogue_is_large_enough(fresh_sqlite_url, monkeypatch):
    """Below SQLITE_INDEX_FROM_MOVIES a search reads every title (cheaper there), from it on it
    asks the FTS5 table; the size is read again once CATALOGUE_SIZE_TTL_SEC old. Same answers."""
    url = parse_database_url(fresh_sqlite_url, HERE)
    migrate.apply(url, "testing")
    db = make_database(url, definers())
    monkeypatch.setattr(services, "SQLITE_INDEX_FROM_MOVIES", 50)
    monkeypatch.setattr(services, "CATALOGUE_SIZE_TTL_SEC", 0)
    try:
        fill(db, 49)  # "Movie 0000001 bravo" ... "Movie 0000049 alpha"
        (sql, params), (rows, found) = the_query_of(db, title="movie 000001", sort="title")
        assert found == 10 and "movies_title_fts" not in plan_of(db, sql, params)
        with db_session:
            Movies(db).create("The fiftieth", 0)
        (sql, params), (rows, found) = the_query_of(db, title="movie 000001", sort="title")
        assert found == 10 and "SCAN movies_title_fts VIRTUAL TABLE" in plan_of(db, sql, params)
        monkeypatch.setattr(services, "CATALOGUE_SIZE_TTL_SEC", 3600)
        with db_session:
            db.execute('DELETE FROM "movies" WHERE "title" LIKE $pattern', {"pattern": "Movie 000001%"})
        (sql, params), (rows, found) = the_query_of(db, title="movie 000001", sort="title")
        assert found == 0 and "movies_title_fts" in sql  # 40 movies now, but the size read a moment ago holds
    finally:
        db.disconnect()


# ---------------------------------------------------------------- SQLite's FTS5 table in step


def assert_fts_in_step(db):
    """SQLite: the FTS5 index holds exactly the trigrams of the rows of ``movies`` (FTS5's own
    check against its content table)."""
    if not on_sqlite(db):
        return
    with db_session:
        db.execute("INSERT INTO \"movies_title_fts\" (\"movies_title_fts\", \"rank\") VALUES ('integrity-check', 1)")


def found_titles(testapp, headers, needle):
    return sorted(m["title"] for m in movies_of(testapp, headers, title=needle))


def test_every_write_keeps_the_title_index_in_step(testapp, db, settings, manager, customer, sqlite_plan):
    if on_sqlite(db):
        with db_session:
            assert title_index_of(db)
    headers = manager.headers
    heat = testapp.post_json("/v1/movies", {"title": "Heat", "ageRestriction": 16}, headers=headers).json
    testapp.post_json("/v1/movies/bulk", {"movies": [{"title": "Heathers", "ageRestriction": 12},
                                                     {"title": "Alien", "ageRestriction": 16}]}, headers=headers)
    assert found_titles(testapp, headers, "HEAT") == ["Heat", "Heathers"]
    assert_fts_in_step(db)

    testapp.patch_json("/v1/movies/" + heat["id"], {"title": "Ronin"}, headers=headers)
    assert found_titles(testapp, headers, "heat") == ["Heathers"]
    assert found_titles(testapp, headers, "RONIN") == ["Ronin"]
    testapp.patch_json("/v1/movies/" + heat["id"], {"ageRestriction": 18}, headers=headers)  # title kept
    assert found_titles(testapp, headers, "ronin") == ["Ronin"]
    assert_fts_in_step(db)

    alien = [m for m in movies_of(testapp, headers) if m["title"] == "Alien"][0]
    testapp.post_json("/v1/movies/%s/sessions" % alien["id"],
                      {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}, headers=headers, status=201)
    testapp.delete("/v1/movies/" + alien["id"], headers=headers, status=204)
    assert found_titles(testapp, headers, "alien") == []
    assert_fts_in_step(db)

    commit_elsewhere(
        settings,
        'INSERT INTO "movies" ("id", "title", "title_folded", "age_restriction", "created_at", "updated_at") '
        "VALUES (%s, %s, %s, %s, %s, %s)",
        str(uuid.uuid4()), "Alien³", "alien³", 18, "2030-01-01 00:00:00", "2030-01-01 00:00:00",
    )
    assert found_titles(testapp, customer.headers, "ALIEN") == ["Alien³"]
    commit_elsewhere(settings, 'UPDATE "movies" SET "title" = %s, "title_folded" = %s WHERE "title" = %s', "Aliens", "aliens", "Alien³")
    assert found_titles(testapp, customer.headers, "alien³") == []
    assert found_titles(testapp, customer.headers, "aliens") == ["Aliens"]
    assert_fts_in_step(db)

    ids = [m["id"] for m in movies_of(testapp, headers)]
    testapp.delete_json("/v1/movies/bulk", {"movieIds": ids}, headers=headers)
    assert found_titles(testapp, headers, "hea") == found_titles(testapp, headers, "ali") == []
    assert_fts_in_step(db)


# ---------------------------------------------------------------- a SQLite without FTS5


class _WithoutFts5:
    """A connection of a SQLite built without FTS5: it refuses every virtual table of it."""

    def __init__(self, connection):
        self.connection = connection

    def execute(self, sql, *args):
        if "fts5" in sql.lower():
            raise sqlite3.OperationalError("no such module: fts5")
        return self.connection.execute(sql, *args)

    def close(self):
        self.connection.close()


def test_a_sqlite_without_fts5_is_migrated_and_searched_by_reading_every_title(fresh_sqlite_url, monkeypatch):
    connect = sqlite3.connect

    def connect_without_fts5(database, *args, **kwargs):
        connection = connect(database, *args, **kwargs)
        return _WithoutFts5(connection) if database == ":memory:" else connection

    monkeypatch.setattr(sqlite3, "connect", connect_without_fts5)
    url = parse_database_url(fresh_sqlite_url, HERE)
    assert "0009_title_search_index" in migrate.apply(url, "testing")
    monkeypatch.undo()
    db = make_database(url, definers())
    try:
        with db_session:
            assert db.select("SELECT \"name\" FROM \"sqlite_master\" WHERE \"name\" LIKE 'movies_title_fts%'") == []
            assert not title_index_of(db)
            for title, age in TITLES:
                db.Movie(title=title, age_restriction=age)
        for needle in NEEDLES:
            (sql, params), (rows, total) = the_query_of(db, title=needle)
            assert sorted(row.title for row in rows) == sorted(t for t, _ in TITLES if contains(t, needle)), needle
            assert "movies_title_fts" not in sql
        assert "0009_title_search_index" in migrate.rollback_all(url)  # nothing to drop: it still rolls back
    finally:
        db.disconnect()


# ---------------------------------------------------------------- searches that find nothing share one copy


def search(testapp, headers, status=200, **query):
    return testapp.get("/v1/movies", query, headers=headers, status=status)


def test_searches_that_find_nothing_share_one_cached_answer(testapp, manager, customer):
    """Once a search has missed the cache at a catalogue version, any needle with a trigram no
    title has is answered from one copy of the empty page of its other parameters; a change of
    the catalogue (a new title with that trigram) is seen at once, and a needle that finds
    something keeps its own key."""
    items = [{"title": "Bench movie %03d" % i, "ageRestriction": i % 19} for i in range(30)]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=201)
    first = search(testapp, customer.headers, title="qqq", perPage=20)
    assert first.headers["X-Cache"] == "MISS"
    empty = {"movies": [], "meta": {"currentPage": 1, "totalPages": 0, "totalItems": 0, "perPage": 20}}
    assert first.json == empty
    for needle in ("zzz", "XYZ", "  benchmark ", "movie 0300", "Q%_"):  # never asked: one trigram is nowhere
        again = search(testapp, customer.headers, title=needle, perPage=20)
        assert (again.headers["X-Cache"], again.json) == ("HIT", empty), needle
        assert again.headers["ETag"] == first.headers["ETag"]
    other = search(testapp, customer.headers, title="zzz", perPage=20, sort="title")  # other parameters: their own copy
    assert other.headers["X-Cache"] == "MISS" and other.json == empty
    found = search(testapp, customer.headers, title="ovie 01", perPage=20)
    assert found.headers["X-Cache"] == "MISS" and found.json["meta"]["totalItems"] == 10
    assert search(testapp, customer.headers, title="ovie 01", perPage=20).headers["X-Cache"] == "HIT"
    # every trigram of "movie 0010" is somewhere, yet nothing matches: a key of its own, the same answer
    own = search(testapp, customer.headers, title="movie 0010", perPage=20)
    assert own.headers["X-Cache"] == "MISS" and own.json == empty

    testapp.post_json("/v1/movies", {"title": "ZZ Top: live", "ageRestriction": 0}, headers=manager.headers, status=201)
    now = search(testapp, customer.headers, title="zzz", perPage=20)
    assert now.json == empty  # "zzz" is still in no title
    top = search(testapp, customer.headers, title="zz t", perPage=20)
    assert [m["title"] for m in top.json["movies"]] == ["ZZ Top: live"]
    assert search(testapp, customer.headers, title="qqq", perPage=20).json == empty


def test_a_needle_the_query_schema_refuses_is_never_answered_from_the_shared_copy(testapp, manager, customer):
    testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers, status=201)
    search(testapp, customer.headers, title="qqq", perPage=20)
    assert search(testapp, customer.headers, title="zzz", perPage=20).headers["X-Cache"] == "HIT"
    too_long = search(testapp, customer.headers, 400, title="q" * 201, perPage=20)
    assert "title" in too_long.text
    search(testapp, customer.headers, 400, title="qq\x00q", perPage=20)
    search(testapp, customer.headers, 400, title="qqq", perPage=500)  # another parameter refused: its own key


def test_a_catalogue_above_the_limit_keeps_a_key_per_needle(testapp, manager, customer, monkeypatch):
    monkeypatch.setattr(services, "NO_MATCH_FILTER_MAX_MOVIES", 2)
    items = [{"title": "Movie %d" % i, "ageRestriction": 0} for i in range(3)]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=201)
    assert search(testapp, customer.headers, title="qqq").headers["X-Cache"] == "MISS"
    assert search(testapp, customer.headers, title="zzz").headers["X-Cache"] == "MISS"
    testapp.delete("/v1/movies/%s" % movies_of(testapp, customer.headers)[0]["id"], headers=manager.headers, status=204)
    assert search(testapp, customer.headers, title="qqq").headers["X-Cache"] == "MISS"  # learns: 2 movies now
    assert search(testapp, customer.headers, title="zzz").headers["X-Cache"] == "HIT"


def test_what_is_known_serves_only_its_own_catalogue_version():
    trigrams = services.TitleTrigrams(QueryMovie()["title"])
    trigrams.known = ("v1", frozenset({"ali", "lie", "ien"}))
    query = {"title": "Zorro", "perPage": "20"}
    assert trigrams.group("v1", query) == ("no-title-match", {"perPage": "20"})
    assert trigrams.group("v2", query) == (None, query)
    assert trigrams.group("v1", {"title": "ALIEN", "perPage": "20"})[0] is None
    assert trigrams.group("v1", {"title": "zo", "perPage": "20"})[0] is None  # no trigram to tell by
    assert trigrams.group("v1", {"perPage": "20"})[0] is None
    trigrams.learn(None, "v2", {"perPage": "20"})  # a list without a search learns nothing (no database asked)
    assert trigrams.known[0] == "v1"
