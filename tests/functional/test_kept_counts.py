"""Totals without a scan: the counts the writing transactions keep (migration 0010), and pages in
the back half of a list read from its other end (``Page.walk``)."""

import threading
import uuid

import pytest
from pony.orm import db_session

from tests.conftest import commit_elsewhere

MOVIES = "/v1/movies"


def counted(db):
    """``{(table, part): rows}`` from kept_counts, parts with no row left out."""
    with db_session:
        rows = db.select('SELECT "table_name", "part", "rows" FROM "kept_counts"')
    return {(table, part): n for table, part, n in rows if n}


def recounted(db):
    """The same, counted from the rows themselves."""
    with db_session:
        movies = db.select('SELECT "age_restriction", COUNT(*) FROM "movies" GROUP BY 1')
        sessions = db.select(
            'SELECT CASE WHEN "cancelled_at" IS NULL THEN 0 ELSE 1 END, COUNT(*) FROM "movie_sessions" GROUP BY 1'
        )
    return {**{("movies", part): n for part, n in movies}, **{("movie_sessions", part): n for part, n in sessions}}


def create_movies(testapp, manager, titles, age=lambda index: index % 5, status=201):
    body = {"movies": [{"title": title, "ageRestriction": age(index)} for index, title in enumerate(titles)]}
    return testapp.post_json(MOVIES + "/bulk", body, headers=manager.headers, status=status).json


def add_sessions(testapp, manager, movie_id, count, first_room=1):
    items = [{"date": "2031-01-%02dT20:00:00Z" % (1 + index % 28), "timeslot": "20:00-22:00", "roomNumber": first_room + index // 28}
             for index in range(count)]
    return testapp.post_json(MOVIES + "/%s/sessions/bulk" % movie_id, {"sessions": items}, headers=manager.headers, status=201).json


def test_counts_follow_every_write_and_only_committed_ones(testapp, db, settings, manager):
    assert counted(db) == recounted(db) == {}
    movies = create_movies(testapp, manager, ["Movie %02d" % index for index in range(12)])
    assert counted(db) == recounted(db)
    assert sum(counted(db).values()) == 12
    # a refused bulk (a title taken) writes nothing, counts included
    create_movies(testapp, manager, ["Fresh", "Movie 03"], status=409)
    assert counted(db) == recounted(db)
    # a change of restriction moves the movie to another part
    testapp.patch_json(MOVIES + "/" + movies[0]["id"], {"ageRestriction": 18}, headers=manager.headers)
    assert counted(db)[("movies", 18)] == 1
    sessions = add_sessions(testapp, manager, movies[1]["id"], 5)
    add_sessions(testapp, manager, movies[2]["id"], 3, first_room=5)
    testapp.post(
        "/v1/movie-sessions/%s/cancel" % sessions[0]["id"], headers=manager.headers, status=200
    )
    assert counted(db)[("movie_sessions", 1)] == 1
    assert counted(db) == recounted(db)
    # a movie's delete cascades to its sessions: both counts follow
    testapp.delete(MOVIES + "/" + movies[1]["id"], headers=manager.headers, status=204)
    assert counted(db) == recounted(db)
    assert ("movie_sessions", 1) not in counted(db)
    # whoever writes: raw SQL on a connection of its own
    commit_elsewhere(settings, 'UPDATE "movies" SET "age_restriction" = 21 WHERE "title" = %s', "Movie 05")
    commit_elsewhere(settings, 'DELETE FROM "movies" WHERE "title" = %s', "Movie 06")
    assert counted(db) == recounted(db)
    assert sum(n for (table, _), n in counted(db).items() if table == "movies") == 10


def test_truncate_zeroes_the_counts_of_every_truncated_table(testapp, db, settings, manager):
    if settings.database_url.is_sqlite:
        pytest.skip("SQLite has no TRUNCATE")
    movies = create_movies(testapp, manager, ["A", "B", "C"])
    add_sessions(testapp, manager, movies[0]["id"], 2)
    commit_elsewhere(settings, 'TRUNCATE "movies", "movie_sessions", "tickets"')
    assert counted(db) == recounted(db) == {}


def test_concurrent_writers_keep_exact_counts(testapp, db, settings, manager):
    """Writers in transactions of their own, released together by a barrier: no count lost."""
    writers, per_writer = 6, 25
    barrier = threading.Barrier(writers)
    failures = []

    def write(number):
        values = ", ".join(
            "(%s, %s, %s, %d, %s, %s)" % (
                ("X'%s'" % uuid.uuid4().hex) if settings.database_url.is_sqlite else "'%s'" % uuid.uuid4(),
                "'W%d-%d'" % (number, index), "'w%d-%d'" % (number, index), index % 22,
                "'2030-01-01 00:00:00'", "'2030-01-01 00:00:00'",
            )
            for index in range(per_writer)
        )
        sql = 'INSERT INTO "movies" ("id", "title", "title_folded", "age_restriction", "created_at", "updated_at") VALUES ' + values
        barrier.wait(timeout=30)
        for _ in range(20):  # SQLite: a writer that finds the database locked tries again
            try:
                commit_elsewhere(settings, sql)
                return
            except Exception as exc:  # noqa: BLE001 - the locked error of the driver
                if "locked" not in str(exc):
                    failures.append(exc)
                    return
        failures.append("never written")

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert counted(db) == recounted(db)
    assert sum(counted(db).values()) == writers * per_writer


def listed(testapp, headers, query, key):
    response = testapp.get(MOVIES if key == "movies" else "/v1/movie-sessions", query, headers=headers).json
    return [item["id"] for item in response[key]], response["meta"]


@pytest.mark.parametrize("sort", ["createdAt", "title", "ageRestriction"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("age", [None, 3])
def test_every_page_of_the_movies_is_the_slice_of_the_whole_list(testapp, manager, customer, sort, order, age):
    """Pages in the back half are read backwards: each page equals its slice of the whole list,
    last and partial pages included, and a page past the end is empty with the right total."""
    create_movies(testapp, manager, ["Title %02d" % ((index * 7) % 23) for index in range(23)], age=lambda index: index % 6)
    query = {"sort": sort, "order": order}
    if age is not None:
        query["ageRestriction"] = age
    whole, meta = listed(testapp, customer.headers, dict(query, perPage=100), "movies")
    assert meta["totalItems"] == len(whole) == (23 if age is None else len([i for i in range(23) if i % 6 >= 3]))
    for per_page in (4, 5):
        pages = -(-len(whole) // per_page)
        for number in range(1, pages + 2):
            ids, meta = listed(testapp, customer.headers, dict(query, page=number, perPage=per_page), "movies")
            assert ids == whole[(number - 1) * per_page:number * per_page], (per_page, number)
            assert (meta["totalItems"], meta["totalPages"]) == (len(whole), pages)


@pytest.mark.parametrize("sort", [None, "date", "timeslot", "roomNumber"])
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("cancelled", [None, "true", "false"])
def test_every_page_of_the_screenings_is_the_slice_of_the_whole_list(testapp, manager, customer, sort, order, cancelled):
    movie = create_movies(testapp, manager, ["Programme"])[0]
    sessions = add_sessions(testapp, manager, movie["id"], 31)
    for session in sessions[::4]:
        testapp.post("/v1/movie-sessions/%s/cancel" % session["id"], headers=manager.headers, status=200)
    query = {"order": order}
    if sort:
        query["sort"] = sort
    if cancelled:
        query["cancelled"] = cancelled
    whole, meta = listed(testapp, customer.headers, dict(query, perPage=100), "sessions")
    assert meta["totalItems"] == len(whole) == {None: 31, "true": 8, "false": 23}[cancelled]
    per_page = 4
    pages = -(-len(whole) // per_page)
    for number in range(1, pages + 2):
        ids, meta = listed(testapp, customer.headers, dict(query, page=number, perPage=per_page), "sessions")
        assert ids == whole[(number - 1) * per_page:number * per_page], number
        assert meta["totalItems"] == len(whole)
