"""after_commit: what counts a change runs once the request's transaction has committed, and
never when it did not (cinema_api.infrastructure.db)."""

import uuid
from datetime import datetime

import pytest
from pony.orm import db_session
from pony.orm.core import local
from pyramid.response import Response

from cinema_api.infrastructure.db import after_commit, db_session_tween_factory
from cinema_api.infrastructure.sql import on_sqlite, sql_datetime, sql_uuid


NOW = datetime(2030, 1, 1)


class Request:
    environ = {}
    trace_id = "test"


def tween(registry, handler):
    return db_session_tween_factory(handler, registry)


def insert_movie(db, title):
    db.execute('INSERT INTO "movies" ("id", "title", "title_folded", "age_restriction", "created_at", "updated_at") '
               "VALUES ($id, $title, $folded, 0, $now, $now)",
               {"id": sql_uuid(db, uuid.uuid4()), "title": title, "folded": title.lower(), "now": sql_datetime(db, NOW)})


def titles(db):
    with db_session:
        return list(db.select('SELECT "title" FROM "movies"'))


def test_the_callbacks_run_once_the_transaction_has_committed(testapp, registry, db):
    seen = []

    def handler(request):
        insert_movie(db, "Alien")
        after_commit(lambda: seen.append((local.db_session is None, titles(db))))
        after_commit(lambda: seen.append("second"))
        assert seen == []  # not yet
        return Response(status=201)

    assert tween(registry, handler)(Request()).status_code == 201
    assert seen == [(True, ["Alien"]), "second"]  # outside the transaction, which committed


@pytest.mark.parametrize("status", [400, 404, 409, 503])
def test_an_error_response_rolls_back_and_runs_none(testapp, registry, db, status):
    seen = []

    def handler(request):
        insert_movie(db, "Alien")
        after_commit(lambda: seen.append("counted"))
        return Response(status=status)

    assert tween(registry, handler)(Request()).status_code == status
    assert seen == [] and titles(db) == []


def test_an_exception_rolls_back_and_runs_none(testapp, registry, db):
    seen = []

    def handler(request):
        insert_movie(db, "Alien")
        after_commit(lambda: seen.append("counted"))
        raise RuntimeError("the view failed")

    with pytest.raises(RuntimeError):
        tween(registry, handler)(Request())
    assert seen == [] and titles(db) == []


def test_a_commit_that_fails_runs_none(testapp, registry, db):
    """A sale the database refuses only at COMMIT (here an SQLite foreign key checked at commit)."""
    if not on_sqlite(db):
        pytest.skip("PostgreSQL's foreign keys are checked at once: nothing here fails only at its commit")
    seen = []

    def handler(request):
        db.execute("PRAGMA defer_foreign_keys = ON")
        db.execute('INSERT INTO "user_sessions" ("id", "user_id", "created_at", "expires_at") VALUES ($id, $uid, $now, $now)',
                   {"id": sql_uuid(db, uuid.uuid4()), "uid": sql_uuid(db, uuid.uuid4()), "now": sql_datetime(db, NOW)})
        after_commit(lambda: seen.append("counted"))
        return Response(status=201)

    with pytest.raises(Exception, match="FOREIGN KEY"):
        tween(registry, handler)(Request())
    assert seen == []


def test_outside_a_request_the_callback_runs_at_once():
    seen = []
    after_commit(lambda: seen.append("now"))
    assert seen == ["now"]
