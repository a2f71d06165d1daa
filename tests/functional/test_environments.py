"""Environments cannot mix (docs/API.md section 7, issue 26): a database records the environment it
was first migrated for; production serves only its own, development and cinema-seed never touch
production's, whatever ``.env`` or the OS environment says; the ini file chooses the mode.

Each test plays the issue's machine: development.ini and production.ini in one folder, reading one
``.env`` that holds production's ``DATABASE_URL``. On SQLite and on PostgreSQL."""

import os
import subprocess
import sys

import pytest
from pony.orm import db_session
from pyramid.paster import get_app
from webtest import TestApp

from cinema_api.infrastructure import migrate
from cinema_api.settings import SCHEMA, env_name, parse_database_url
from cinema_api.testing import ServerProcess, child_environ, copy_ini, free_port
from tests.conftest import production_secret


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A new database (nothing migrated yet): a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite:///" + str(tmp_path / "data" / "production.sqlite")
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def machine(tmp_path, database):
    """development.ini and production.ini side by side, their ``.env`` naming ``database``."""
    copy_ini("development.ini", tmp_path)
    copy_ini("production.ini", tmp_path)
    (tmp_path / ".env").write_text("DATABASE_URL=%s\n" % database)
    return tmp_path


def run(command, ini, directory, *args, **variables):
    """A console script (or pserve) of the venv on ``ini`` in ``directory``: the folder's ``.env``
    and ``variables`` are all it gets of the settings."""
    env = child_environ(HOST="127.0.0.1", PORT=str(free_port()), **variables)
    for name in ("DATABASE_URL", "CACHE_URL"):
        if name not in variables:
            env.pop(name, None)
    executable = os.path.join(os.path.dirname(sys.executable), command)
    try:
        return subprocess.run(
            [executable, str(directory / ini), *args],
            cwd=str(directory), env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("%s %s did not stop: it is serving" % (command, ini))


def assert_one_line(result, line):
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr == line + "\n"


def all_migrations():
    return sorted(name[:-3] for name in os.listdir(migrate.MIGRATIONS_DIR) if name.endswith(".py"))


def made_for(database, directory):
    return migrate.recorded_environment(parse_database_url(database, str(directory)))


def display(database, directory):
    return parse_database_url(database, str(directory)).display


def production_app(directory, monkeypatch):
    """production.ini of ``directory`` in this process, with a real secret and its ``.env``."""
    for name in {env_name(name) for name in SCHEMA}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JWT_SECRET", production_secret())
    return get_app(str(directory / "production.ini"))


def test_a_production_dotenv_does_not_let_cinema_seed_write_the_demo_accounts_into_production(machine, database, monkeypatch):
    assert run("cinema-migrate", "production.ini", machine).returncode == 0
    assert made_for(database, machine) == "production"

    refusal = "cinema-seed: the database %s was made for production: the public demo accounts never go there"
    assert_one_line(run("cinema-seed", "development.ini", machine), refusal % display(database, machine))
    # the same with DATABASE_URL exported in the shell instead of .env
    (machine / ".env").unlink()
    assert_one_line(run("cinema-seed", "development.ini", machine, DATABASE_URL=database), refusal % display(database, machine))
    (machine / ".env").write_text("DATABASE_URL=%s\n" % database)

    app = production_app(machine, monkeypatch)
    client = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    client.post_json("/v1/auth/login", {"username": "manager", "password": "manager123"}, status=401)
    db = app.registry["cinema.db"]
    with db_session:  # nothing written: no user, no movie, and still production's
        assert db.select('SELECT COUNT(*) FROM "users"') == [0]
        assert db.select('SELECT COUNT(*) FROM "movies"') == [0]
    db.disconnect()
    assert made_for(database, machine) == "production"


@pytest.mark.parametrize("other", ["development", "testing"])
def test_production_refuses_to_serve_a_database_made_for_another_environment(machine, database, other):
    if other == "testing":
        copy_ini("testing.ini", machine)
    assert run("cinema-migrate", other + ".ini", machine).returncode == 0
    result = run("pserve", "production.ini", machine, JWT_SECRET=production_secret())
    assert_one_line(
        result,
        "cinema_api: the database %s was made for %s, not production: each environment migrates and serves only its own database"
        % (display(database, machine), other),
    )
    assert made_for(database, machine) == other


def test_an_exported_environment_cannot_turn_production_ini_into_a_development_server(machine, database):
    """Development mode would have migrated the new database at start and served it."""
    result = run("pserve", "production.ini", machine, ENVIRONMENT="development", JWT_SECRET=production_secret())
    assert_one_line(
        result,
        "cinema_api: configuration error: ENVIRONMENT=development in the environment contradicts the ini file "
        "(cinema.environment = production): the ini file chooses the mode; unset ENVIRONMENT or start the ini file of that mode",
    )
    for script in ("cinema-migrate", "cinema-seed"):
        refused = run(script, "production.ini", machine, ENVIRONMENT="development")
        assert refused.returncode == 1 and refused.stderr.startswith(script + ": configuration error: ENVIRONMENT=development")
    # the database was not touched
    assert migrate.pending(parse_database_url(database, str(machine))) == all_migrations()
    assert made_for(database, machine) is None


def test_an_exported_environment_equal_to_the_ini_files_is_fine(tmp_path):
    database = "sqlite:///" + str(tmp_path / "production.sqlite")
    with ServerProcess(ini="production.ini", migrate=True, DATABASE_URL=database, ENVIRONMENT="production") as server:
        assert server.request("GET", "/v1/health")[0] == 200


def test_development_ini_refuses_to_migrate_or_serve_production_s_database(machine, database):
    assert run("cinema-migrate", "production.ini", machine).returncode == 0
    line = "the database %s was made for production, not development: each environment migrates and serves only its own database"
    assert_one_line(run("pserve", "development.ini", machine), "cinema_api: " + line % display(database, machine))
    assert_one_line(run("cinema-migrate", "development.ini", machine), "cinema-migrate: " + line % display(database, machine))
    assert_one_line(
        run("cinema-admin", "development.ini", machine, "delete-user", "boss"), "cinema-admin: " + line % display(database, machine)
    )
    assert made_for(database, machine) == "production"
