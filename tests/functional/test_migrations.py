"""The schema is built by the migrations, on SQLite and PostgreSQL alike."""

import subprocess
import sys

import pytest
from pony.orm import db_session

from cinema_api import main
from cinema_api.infrastructure import migrate
from cinema_api.infrastructure.db import make_database
from cinema_api.infrastructure.sql import on_sqlite
from cinema_api.infrastructure.storage_errors import violated_constraint
from cinema_api.settings import parse_database_url
from cinema_api.testing import copy_ini
from tests.conftest import HERE, TABLES, ini_settings, production_secret

MIGRATIONS = [
    "0001_initial",
    "0002_catalog_version",
    "0003_rooms_and_seats",
    "0004_live_login_session",
    "0005_database_environment",
    "0006_kept_rows",
    "0007_cancelled_screenings",
    "0008_known_login_addresses",
    "0009_title_search_index",
    "0010_kept_counts",
]


def definers():
    from cinema_api.auth.entities import define_entities as auth
    from cinema_api.movies.entities import define_entities as movies
    from cinema_api.rooms.entities import define_entities as rooms
    from cinema_api.tickets.entities import define_entities as tickets
    from cinema_api.users.entities import define_entities as users

    return [users, auth, rooms, movies, tickets]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    fixture = "fresh_sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return parse_database_url(request.getfixturevalue(fixture), HERE)


def insert(db, table, **values):
    columns = ", ".join('"%s"' % c for c in values)
    params = ", ".join("$" + c for c in values)
    db.execute('INSERT INTO "%s" (%s) VALUES (%s)' % (table, columns, params), values)


def test_migrations_apply_and_pony_maps_every_table(database_url):
    assert migrate.pending(database_url) == MIGRATIONS
    assert migrate.apply(database_url, "testing") == MIGRATIONS
    assert migrate.pending(database_url) == []
    assert migrate.apply(database_url, "testing") == []  # idempotent
    db = make_database(database_url, definers())  # check_tables=True: every mapped column exists
    with db_session:
        for table in TABLES:
            assert db.select('SELECT COUNT(*) FROM "%s"' % table) == [0]
    db.disconnect()


def test_constraints_back_the_domain_rules(database_url):
    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    User, Movie, Screening = db.User, db.Movie, db.Screening
    from datetime import datetime

    from pony.orm import TransactionIntegrityError, commit
    from pony.orm.dbapiprovider import IntegrityError

    with db_session:
        user = User(username="alice", password_hash="x", role="customer", age=30)
        movie = Movie(title="Alien", age_restriction=16)
        session = Screening(movie=movie, date=datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=1)
        db.Ticket(user=user, screening=session)
        ids = user.id, movie.id, session.id

    def violates(action):
        with pytest.raises((TransactionIntegrityError, IntegrityError)):
            with db_session:
                action()
                commit()

    # unique username, movie title, (room, timeslot, day), (user, session)
    violates(lambda: User(username="alice", password_hash="x", role="customer", age=1))
    violates(lambda: Movie(title="Alien", age_restriction=1))
    violates(lambda: Screening(movie=Movie[ids[1]], date=datetime(2030, 1, 1, 21), timeslot="20:00-22:00", room_number=1))
    violates(lambda: db.Ticket(user=User[ids[0]], screening=Screening[ids[2]]))
    # checks: role, age range, timeslot label, room range, restriction range
    violates(lambda: User(username="bob", password_hash="x", role="admin", age=1))
    violates(lambda: User(username="bob", password_hash="x", role="customer", age=151))
    violates(lambda: Screening(movie=Movie[ids[1]], date=datetime(2030, 1, 2), timeslot="09:00-10:00", room_number=2))
    violates(lambda: Screening(movie=Movie[ids[1]], date=datetime(2030, 1, 2), timeslot="10:00-12:00", room_number=1000))
    violates(lambda: Movie(title="Big", age_restriction=22))
    # a session with tickets cannot be deleted (the 409 of docs/API.md is backed by the database)
    violates(lambda: db.execute('DELETE FROM "movie_sessions"'))
    # a movie without ticketed sessions takes its sessions with it
    with db_session:
        db.execute('DELETE FROM "tickets"')
        db.execute('DELETE FROM "movies"')
        assert db.select('SELECT COUNT(*) FROM "movie_sessions"') == [0]
    db.disconnect()


def test_the_database_keeps_tickets_inside_the_seat_plan_and_one_per_seat(database_url):
    """Whatever path writes (here raw SQL): no seat twice, no seat outside the plan, a seat for
    every ticket of a session with a plan and none for a session without; plans and rooms in range."""
    from datetime import datetime

    from pony.orm import TransactionIntegrityError, commit
    from pony.orm.dbapiprovider import IntegrityError

    from cinema_api.rooms.entities import SeatPlan

    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    with db_session:
        users = [db.User(username="user%d" % i, password_hash="x", role="customer", age=30) for i in range(4)]
        movie = db.Movie(title="Alien", age_restriction=0)
        seated = db.Screening(movie=movie, date=datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=1, plan=SeatPlan(2, 3))
        unseated = db.Screening(movie=movie, date=datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=2)
        db.Ticket(user=users[0], screening=seated, seat="B3")
        db.Ticket(user=users[0], screening=unseated)
        db.Ticket(user=users[1], screening=unseated)  # several tickets without a seat never clash
        ids = [u.id for u in users], seated.id, unseated.id
    user_ids, seated_id, unseated_id = ids

    def violates(action):
        with pytest.raises((TransactionIntegrityError, IntegrityError)):
            with db_session:
                action()
                commit()

    ticket = lambda user, session, seat: db.Ticket(user=db.User[user_ids[user]], screening=db.Screening[session], seat=seat)  # noqa: E731
    violates(lambda: ticket(1, seated_id, "B3"))  # sold twice
    violates(lambda: ticket(1, seated_id, "C1"))  # no row C
    violates(lambda: ticket(1, seated_id, "A4"))  # no seat 4
    violates(lambda: ticket(1, seated_id, None))  # a session with a plan sells seats only
    violates(lambda: ticket(2, unseated_id, "A1"))  # a session without one sells none
    violates(lambda: ticket(1, seated_id, "A01"))  # the label's form
    violates(lambda: ticket(1, seated_id, "a1"))
    violates(lambda: db.execute('UPDATE "tickets" SET "seat" = \'C9\' WHERE "seat" = \'B3\''))
    violates(lambda: db.Room(number=1000, name="", seat_rows=1, seats_per_row=1))
    violates(lambda: db.Room(number=1, name="", seat_rows=27, seats_per_row=1))
    violates(lambda: db.Room(number=1, name="", seat_rows=1, seats_per_row=51))
    violates(lambda: db.execute('UPDATE "movie_sessions" SET "seats_per_row" = NULL WHERE "seat_rows" IS NOT NULL'))
    violates(lambda: db.execute('UPDATE "movie_sessions" SET "seat_rows" = 27 WHERE "seat_rows" IS NOT NULL'))
    with db_session:  # what the rules allow
        ticket(1, seated_id, "A1")
        ticket(2, seated_id, "B2")
        db.Room(number=999, name="", seat_rows=26, seats_per_row=50)
    with db_session:
        assert sorted(db.select('SELECT "seat" FROM "tickets" WHERE "seat" IS NOT NULL')) == ["A1", "B2", "B3"]
    db.disconnect()


def test_the_database_keeps_the_seat_plan_of_a_session_with_tickets(database_url):
    """Raw SQL once shrank a plan of 2 seats under 4 sold tickets; a session without tickets may
    still take another plan (it moved to another room)."""
    from datetime import datetime

    from pony.orm import TransactionIntegrityError, commit
    from pony.orm.dbapiprovider import IntegrityError

    from cinema_api.rooms.entities import SeatPlan

    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    with db_session:
        user = db.User(username="buyer", password_hash="x", role="customer", age=30)
        movie = db.Movie(title="Alien", age_restriction=0)
        sold = db.Screening(movie=movie, date=datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=1, plan=SeatPlan(2, 3))
        unsold = db.Screening(movie=movie, date=datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=2, plan=SeatPlan(2, 3))
        db.Ticket(user=user, screening=sold, seat="B3")
        sold_id, unsold_id = sold.id, unsold.id
    for change in ('"seat_rows" = 1', '"seats_per_row" = 1', '"seat_rows" = 26', '"seat_rows" = NULL, "seats_per_row" = NULL'):
        with pytest.raises((TransactionIntegrityError, IntegrityError)) as refused:
            with db_session:
                db.execute('UPDATE "movie_sessions" SET %s WHERE "id" = $sold_id' % change, {"sold_id": sql_id(db, sold_id)})
                commit()
        assert violated_constraint(refused.value) == ("ck_movie_sessions_seat_plan_kept", "movie_sessions")
    with db_session:
        db.execute('UPDATE "movie_sessions" SET "seat_rows" = 5, "seats_per_row" = 5 WHERE "id" = $unsold_id',
                   {"unsold_id": sql_id(db, unsold_id)})
        db.execute('UPDATE "movie_sessions" SET "room_number" = 3 WHERE "id" = $sold_id', {"sold_id": sql_id(db, sold_id)})
    with db_session:
        assert (db.Screening[sold_id].plan.rows, db.Screening[unsold_id].plan.rows) == (2, 5)
    db.disconnect()


def test_the_room_rule_holds_among_the_screenings_that_are_on(database_url):
    """One screening per room, timeslot and day that is on (``uq_movie_sessions_room_slot_day``,
    a partial unique index since 0007): a cancelled one leaves its place free, whatever path writes."""
    from datetime import datetime

    from pony.orm import TransactionIntegrityError, commit
    from pony.orm.dbapiprovider import IntegrityError

    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    with db_session:
        movie = db.Movie(title="Alien", age_restriction=0)
        first = db.Screening(movie=movie, date=datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=1)
        ids = movie.id, first.id
    with pytest.raises((TransactionIntegrityError, IntegrityError)) as refused:
        with db_session:
            db.Screening(movie=db.Movie[ids[0]], date=datetime(2030, 1, 1, 21), timeslot="20:00-22:00", room_number=1)
            commit()
    assert violated_constraint(refused.value) == ("uq_movie_sessions_room_slot_day", "movie_sessions")
    with db_session:
        db.execute('UPDATE "movie_sessions" SET "cancelled_at" = "date" WHERE "id" = $sid', {"sid": sql_id(db, ids[1])})
        db.Screening(movie=db.Movie[ids[0]], date=datetime(2030, 1, 1, 21), timeslot="20:00-22:00", room_number=1)
    # the cancelled one cannot come back while another holds its place
    with pytest.raises((TransactionIntegrityError, IntegrityError)):
        with db_session:
            db.execute('UPDATE "movie_sessions" SET "cancelled_at" = NULL WHERE "id" = $sid', {"sid": sql_id(db, ids[1])})
            commit()
    db.disconnect()


def test_screenings_and_their_tickets_survive_0007(database_url):
    """SQLite rebuilds ``movie_sessions`` for 0007 (and back): rows, the tickets' foreign key and
    the catalogue version triggers are all still there afterwards."""
    from pony.orm import TransactionIntegrityError, commit
    from pony.orm.dbapiprovider import IntegrityError
    from yoyo import get_backend, read_migrations

    migrate.apply(database_url, "testing")
    backend = get_backend(database_url.url)
    with backend.lock():
        # 0007 and what came after it (0010's triggers read cancelled_at)
        backend.rollback_migrations(backend.to_rollback(read_migrations(migrate.MIGRATIONS_DIR).filter(lambda m: m.id >= "0007")))
    backend.connection.close()
    db = make_database(database_url, [])  # as 0006 left it: raw rows only
    from cinema_api.infrastructure.db import sql_datetime

    now = sql_datetime(db, NOW)
    with db_session:
        insert(db, "users", id=sql_id(db, UUIDS[3]), username="buyer", password_hash="x", role="customer", age=30,
               created_at=now, updated_at=now)
        insert(db, "movies", id=sql_id(db, UUIDS[0]), title="Alien", title_folded="alien", age_restriction=0,
               created_at=now, updated_at=now)
        insert(db, "movie_sessions", id=sql_id(db, UUIDS[1]), movie_id=sql_id(db, UUIDS[0]), date=now, day=NOW.date().isoformat(),
               timeslot="20:00-22:00", room_number=1, created_at=now, updated_at=now)
        insert(db, "tickets", id=sql_id(db, UUIDS[2]), user_id=sql_id(db, UUIDS[3]), session_id=sql_id(db, UUIDS[1]),
               purchased_at=now, is_used=False)
    db.disconnect()
    assert migrate.apply(database_url, "testing") == [m for m in MIGRATIONS if m >= "0007"]
    db = make_database(database_url, definers())
    with db_session:
        screening = db.Screening[UUIDS[1]]
        assert (screening.room_number, screening.cancelled_at, len(screening.tickets)) == (1, None, 1)
        version = db.select('SELECT "version" FROM "catalog_version"')
        screening.timeslot = "18:00-20:00"
    with db_session:
        assert db.select('SELECT "version" FROM "catalog_version"') != version
    with pytest.raises((TransactionIntegrityError, IntegrityError)):
        with db_session:
            db.execute('DELETE FROM "movie_sessions"')
            commit()
    db.disconnect()


UUIDS = [__import__("uuid").UUID("0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5%d" % i) for i in range(4)]
NOW = __import__("datetime").datetime(2030, 1, 1, 20)


def sql_id(db, value):
    from cinema_api.infrastructure.sql import sql_uuid

    return sql_uuid(db, value)


def test_the_database_keeps_its_catalogue_version_row(database_url):
    """The row keys every cached copy and every token check: deleting it locked everyone out."""
    from pony.orm import TransactionIntegrityError, commit
    from pony.orm.dbapiprovider import IntegrityError

    from cinema_api.infrastructure.db import read_catalog_version

    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    refusals = ['DELETE FROM "catalog_version"'] + ([] if database_url.is_sqlite else ['TRUNCATE "catalog_version"'])
    for statement in refusals:
        with pytest.raises((TransactionIntegrityError, IntegrityError)) as refused:
            with db_session:
                db.execute(statement)
                commit()
        assert violated_constraint(refused.value) == ("ck_catalog_version_kept", "catalog_version")
    with db_session:
        assert read_catalog_version(db) is not None
    db.disconnect()


def test_a_database_that_lost_its_catalogue_version_row_gets_a_new_one(database_url, caplog):
    from yoyo import get_backend, read_migrations

    from cinema_api.infrastructure.db import read_catalog_version

    migrate.apply(database_url, "testing")
    backend = get_backend(database_url.url)
    try:
        with backend.lock():
            kept = read_migrations(migrate.MIGRATIONS_DIR).filter(lambda migration: migration.id == "0006_kept_rows")
            backend.rollback_migrations(kept)
    finally:
        backend.connection.close()
    db = make_database(database_url, definers())
    with db_session:
        db.execute('DELETE FROM "catalog_version"')  # as before 0006: nothing refused it
    with db_session:
        assert read_catalog_version(db) is None
    assert migrate.apply(database_url, "testing") == ["0006_kept_rows"]
    with db_session:
        assert read_catalog_version(db) is not None
    assert "catalogue version's row was missing" in caplog.text
    db.disconnect()


def test_the_database_changes_the_catalog_version_with_every_write_to_movies_and_sessions(database_url):
    """Any path (here raw SQL, as a console script or a future code path might write) changes
    the version in its own transaction; a rolled back write and writes elsewhere do not."""
    from pony.orm import rollback

    from cinema_api.infrastructure.db import read_catalog_version

    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    versions = []

    def write(sql, undo=False):
        with db_session:
            db.execute(sql)
            if undo:
                rollback()
        with db_session:
            versions.append(read_catalog_version(db))

    with db_session:
        versions.append(read_catalog_version(db))
        movie_id = db.Movie(title="Alien", age_restriction=16).id
    with db_session:
        versions.append(read_catalog_version(db))
        db.Screening(movie=db.Movie[movie_id], date=__import__("datetime").datetime(2030, 1, 1, 20), timeslot="20:00-22:00", room_number=1)
    with db_session:
        versions.append(read_catalog_version(db))
    write('UPDATE "movies" SET "age_restriction" = 12')
    write('UPDATE "movie_sessions" SET "room_number" = 2')
    write('DELETE FROM "movie_sessions"')
    write('DELETE FROM "movies"')
    assert len(set(versions)) == len(versions) and None not in versions
    unchanged = versions[-1]
    write('INSERT INTO "movies" ("id", "title", "title_folded", "age_restriction", "created_at", "updated_at") '
          "VALUES ('0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b', 'Heat', 'heat', 16, '2030-01-01', '2030-01-01')", undo=True)
    write('DELETE FROM "tickets"')
    write('UPDATE "users" SET "age" = 1')
    assert versions[-3:] == [unchanged] * 3
    db.disconnect()


def title_index_objects(db):
    """The names of the schema objects of migration 0009 (SQLite: the FTS5 table, its shadow
    tables and the triggers; PostgreSQL: the index), and whether pg_trgm is installed."""
    with db_session:
        if on_sqlite(db):
            names = db.select("SELECT \"name\" FROM \"sqlite_master\" WHERE \"name\" LIKE 'movies_title_fts%' ORDER BY 1")
            return names, None
        names = db.select("SELECT \"indexname\" FROM \"pg_indexes\" WHERE \"indexname\" = 'ix_movies_title_folded_trgm'")
        return names, bool(db.select("SELECT 1 FROM \"pg_extension\" WHERE \"extname\" = 'pg_trgm'"))


def test_the_title_index_covers_the_movies_there_were_and_rolls_back(database_url):
    """0009 indexes the rows already there; rolled back, it leaves no object of its own but
    the extension, and the search answers the same without it."""
    from yoyo import get_backend, read_migrations

    from cinema_api.core.pagination import Page
    from cinema_api.movies.services import Movies

    def roll_back_0009():
        backend = get_backend(database_url.url)
        with backend.lock():
            backend.rollback_migrations(read_migrations(migrate.MIGRATIONS_DIR).filter(lambda m: m.id == "0009_title_search_index"))
        backend.connection.close()

    def search(db, needle):
        with db_session:
            rows, total = Movies(db).page(Page(1, 25), sort="title", title=needle)
        return [row.title for row in rows], total

    migrate.apply(database_url, "testing")
    roll_back_0009()
    db = make_database(database_url, definers())
    with db_session:
        for title in ("Straße", "STRASSE 2", "Heat", "Alien"):
            db.Movie(title=title, age_restriction=0)
    assert title_index_objects(db)[0] == []
    assert search(db, "strasse") == (["STRASSE 2", "Straße"], 2)
    db.disconnect()

    assert migrate.apply(database_url, "testing") == ["0009_title_search_index"]
    db = make_database(database_url, definers())
    names, extension = title_index_objects(db)
    if on_sqlite(db):
        assert names == [
            "movies_title_fts", "movies_title_fts_config", "movies_title_fts_data", "movies_title_fts_delete",
            "movies_title_fts_docsize", "movies_title_fts_idx", "movies_title_fts_insert", "movies_title_fts_update",
        ]
        with db_session:
            assert sorted(db.select("SELECT \"rowid\" FROM \"movies_title_fts\" WHERE \"movies_title_fts\" MATCH '\"ass\"'")) == sorted(
                db.select("SELECT \"rowid\" FROM \"movies\" WHERE \"title_folded\" LIKE '%ass%'"))
            db.execute("INSERT INTO \"movies_title_fts\" (\"movies_title_fts\", \"rank\") VALUES ('integrity-check', 1)")
    else:
        assert names == ["ix_movies_title_folded_trgm"] and extension
    assert search(db, "strasse") == (["STRASSE 2", "Straße"], 2)
    db.disconnect()

    roll_back_0009()
    db = make_database(database_url, definers())
    names, extension = title_index_objects(db)
    assert names == [] and extension in (None, True)  # PostgreSQL keeps pg_trgm
    assert search(db, "strasse") == (["STRASSE 2", "Straße"], 2)
    with db_session:
        db.Movie(title="Strasse 3", age_restriction=0)  # no trigger left behind to fail
    assert search(db, "STRASSE") == (["STRASSE 2", "Strasse 3", "Straße"], 3)
    db.disconnect()


def test_migrations_roll_back_completely(database_url):
    migrate.apply(database_url, "testing")
    assert migrate.rollback_all(database_url) == MIGRATIONS[::-1]
    assert migrate.pending(database_url) == MIGRATIONS
    assert migrate.apply(database_url, "testing") == MIGRATIONS


def test_production_refuses_an_unmigrated_database_and_names_the_command(fresh_sqlite_url, tmp_path):
    settings = ini_settings(**{"cinema.environment": "production"})
    environ_backup = dict(__import__("os").environ)
    import os

    os.environ["DATABASE_URL"] = fresh_sqlite_url
    os.environ["JWT_SECRET"] = production_secret()
    try:
        with pytest.raises(SystemExit) as info:
            main({"here": str(tmp_path)}, **settings)  # no .env of the checkout
    finally:
        os.environ.clear()
        os.environ.update(environ_backup)
    assert "not migrated" in str(info.value)
    assert "cinema-migrate production.ini" in str(info.value)


def test_cinema_migrate_applies_the_migrations_and_needs_no_jwt_secret(fresh_sqlite_url, tmp_path):
    env = {"DATABASE_URL": fresh_sqlite_url, "PATH": ""}  # no JWT_SECRET: it signs no token
    ini = copy_ini("production.ini", tmp_path)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "cinema_api.scripts.migrate", *args, ini],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60,
    )
    listed = run("--list")
    assert listed.returncode == 0 and listed.stdout.split() == MIGRATIONS
    applied = run()
    assert applied.returncode == 0, applied.stderr
    assert "applied: %s" % ", ".join(MIGRATIONS) in applied.stdout
    assert run("--list").stdout.strip() == "no pending migrations"


def test_the_login_session_check_is_the_same_rule_as_query_and_as_postgresql_function(fresh_postgres_url):
    """The rule lives twice: the query of ``live_login_session`` (SQLite) and migration 0004's
    PL/pgSQL function (PostgreSQL). Both answer alike for every state a login session can be in."""
    from datetime import datetime, timedelta

    from cinema_api.infrastructure import db as storage
    from cinema_api.infrastructure.pony_internals import select_rows

    database_url = parse_database_url(fresh_postgres_url, HERE)
    migrate.apply(database_url, "testing")
    db = make_database(database_url, definers())
    now = datetime(2030, 1, 1, 12)
    with db_session:
        live_user = db.User(username="alice", password_hash="x", role="manager", age=30)
        gone_user = db.User(username="bob", password_hash="x", role="customer", age=30)
        cases = {
            "live": (db.LoginSession(user=live_user, expires_at=now + timedelta(hours=1)), live_user),
            "revoked": (db.LoginSession(user=live_user, expires_at=now + timedelta(hours=1), revoked_at=now), live_user),
            "expired": (db.LoginSession(user=live_user, expires_at=now), live_user),
            "another user's": (db.LoginSession(user=gone_user, expires_at=now + timedelta(hours=1)), live_user),
        }
        cases = {name: (session.id, user.id) for name, (session, user) in cases.items()}
        cases["unknown"] = (__import__("uuid").uuid4(), live_user.id)
    answers = {}
    with db_session:
        for name, (session_id, user_id) in cases.items():
            params = {"sid": session_id, "uid": user_id, "now": now}
            as_query = select_rows(db, storage._LIVE_LOGIN_SESSION, params)
            as_function = select_rows(db, storage._LIVE_LOGIN_SESSION_CALL, params)
            answers[name] = (as_query[0][0] if as_query else None, as_function[0][0])
    version = answers["live"][0].split(":")[1]
    assert answers == {
        "live": ("manager:" + version,) * 2,
        "revoked": (None, None),
        "expired": (None, None),
        "another user's": (None, None),
        "unknown": (None, None),
    }
    db.disconnect()
def recorded_rows(database_url):
    """Every row of the table recording the database's environment."""
    from yoyo import get_backend

    backend = get_backend(database_url.url)
    try:
        return backend.execute('SELECT "id", "environment", "recorded_at" FROM "database_environment"').fetchall()
    finally:
        backend.connection.close()


def test_cinema_migrate_records_the_environment_once_and_never_changes_it(database_url, tmp_path):
    env = {"DATABASE_URL": database_url.url, "PATH": ""}
    for name in ("production.ini", "development.ini", "testing.ini"):
        copy_ini(name, tmp_path)
    run = lambda ini: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "cinema_api.scripts.migrate", str(tmp_path / ini)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60,
    )
    assert run("production.ini").returncode == 0
    first = recorded_rows(database_url)
    assert [row[:2] for row in first] == [(1, "production")]
    for other in ("development.ini", "testing.ini"):
        refused = run(other)
        assert refused.returncode == 1
        assert refused.stderr == "cinema-migrate: the database %s was made for production, not %s: each environment migrates and serves only its own database\n" % (
            database_url.display, other[:-4])
    again = run("production.ini")
    assert again.returncode == 0 and "nothing, the schema is up to date" in again.stdout
    assert recorded_rows(database_url) == first
    # and the migration step itself, as the migrate-at-start of development and testing calls it
    with pytest.raises(migrate.WrongEnvironment, match="was made for production, not development"):
        migrate.apply(database_url, "development")
    assert migrate.recorded_environment(database_url) == "production"


def migrated_before_environments_were_recorded(database_url):
    """A database migrated by a version before migration 0005: its schema, no environment."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(database_url.url)
    try:
        with backend.lock():
            todo = backend.to_apply(read_migrations(migrate.MIGRATIONS_DIR))
            backend.apply_migrations_only([m for m in todo if m.id != migrate.ENVIRONMENT_MIGRATION])
    finally:
        backend.connection.close()
    assert migrate.pending(database_url) == [migrate.ENVIRONMENT_MIGRATION]


def test_a_database_migrated_before_environments_were_recorded_is_recorded_only_by_cinema_migrate(database_url, caplog):
    """The migrate-at-start of development (or cinema-seed) could be pointed at production's old
    database by a stray .env: it refuses and names the command; cinema-migrate, where an operator
    names the ini file, records that ini file's environment and says so in the log."""
    migrated_before_environments_were_recorded(database_url)
    with pytest.raises(migrate.WrongEnvironment) as info:
        migrate.apply(database_url, "development")
    assert str(info.value) == (
        "the database %s records no environment (it was migrated before databases recorded theirs): "
        "run cinema-migrate development.ini if it is development's" % database_url.display
    )
    assert migrate.pending(database_url) == [migrate.ENVIRONMENT_MIGRATION]  # nothing applied
    with pytest.raises(migrate.WrongEnvironment, match="records no environment"):
        migrate.check_environment(database_url, "production")

    with caplog.at_level("WARNING", logger="cinema_api.infrastructure.migrate"):
        assert migrate.apply(database_url, "production", claim_unrecorded=True) == [migrate.ENVIRONMENT_MIGRATION]
    assert migrate.recorded_environment(database_url) == "production"
    assert [r.getMessage() for r in caplog.records] == [
        "the database %s recorded no environment (migrated before they were recorded): recorded as production from now on"
        % database_url.display
    ]
    migrate.check_environment(database_url, "production")
    with pytest.raises(migrate.WrongEnvironment, match="was made for production, not development"):
        migrate.apply(database_url, "development", claim_unrecorded=True)
