"""What every console script does when it cannot work: one line on stderr, exit status 1.

And the first hour of a new user: after the Quick start and cinema-seed, production.ini does not
serve the demo accounts.
"""

import os
import subprocess
import sys

import pytest
from pyramid.paster import get_app
from webtest import TestApp

from cinema_api.testing import child_environ, copy_ini
from tests.conftest import production_secret

SCRIPTS = {
    "cinema-migrate": ("migrate", ()),
    "cinema-admin": ("admin", ("delete-user", "nobody")),
    "cinema-seed": ("seed", ()),
}


def run(script, ini, directory, extra_args=(), **variables):
    """``script`` on ``ini`` in ``directory``, on the ini file's own database (never the one the
    suite was pointed at) unless ``variables`` name one."""
    module, args = SCRIPTS[script]
    env = child_environ()
    env.pop("DATABASE_URL", None)
    env.pop("CACHE_URL", None)
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-m", "cinema_api.scripts." + module, ini, *args, *extra_args],
        cwd=str(directory), env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def assert_one_line(result, expected):
    assert result.returncode == 1
    assert result.stderr == expected + "\n"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_missing_ini_file_is_one_line(tmp_path, script):
    assert_one_line(run(script, "nowhere.ini", tmp_path), "%s: cannot read nowhere.ini: No such file or directory" % script)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_an_unreadable_ini_file_is_one_line(tmp_path, script):
    (tmp_path / "folder.ini").mkdir()
    assert_one_line(run(script, "folder.ini", tmp_path), "%s: cannot read folder.ini: Is a directory" % script)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_broken_ini_file_is_one_line(tmp_path, script):
    (tmp_path / "broken.ini").write_text("[app:main\nuse = egg:cinema_api\n")
    result = run(script, "broken.ini", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("%s: cannot read broken.ini: File contains no section headers." % script)
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_an_ini_file_without_the_application_is_one_line(tmp_path, script):
    (tmp_path / "empty.ini").write_text("[server:main]\nport = 6543\n")
    result = run(script, "empty.ini", tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("%s: cannot read empty.ini: " % script) and result.stderr.count("\n") == 1


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_wrong_setting_is_one_line(tmp_path, script):
    ini = copy_ini("development.ini", tmp_path)
    result = run(script, ini, tmp_path, CORS_ORIGINS="notaurl")
    assert_one_line(result, "%s: configuration error: CORS_ORIGINS 'notaurl' is not an origin: scheme://host[:port] or *" % script)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_an_unreachable_database_is_one_line(tmp_path, script):
    ini = copy_ini("development.ini", tmp_path)
    # nothing listens on port 9: the connection is refused at once
    result = run(script, ini, tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:9/cinema")
    assert result.returncode == 1
    assert result.stderr.startswith("%s: database unavailable: " % script), result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("script", ["cinema-admin", "cinema-seed"])
def test_production_with_pending_migrations_is_one_line_naming_the_command(tmp_path, script):
    ini = copy_ini("production.ini", tmp_path)
    result = run(script, ini, tmp_path, JWT_SECRET=production_secret())
    if script == "cinema-seed":  # it refuses production before it looks at the database
        assert_one_line(result, "cinema-seed: refusing to load public demo accounts into production")
        return
    assert result.returncode == 1
    assert result.stderr.startswith("%s: the database is not migrated (" % script), result.stderr
    assert result.stderr.endswith("run: cinema-migrate production.ini\n") and result.stderr.count("\n") == 1


def test_after_the_quick_start_and_cinema_seed_production_does_not_serve_the_demo_accounts(tmp_path, monkeypatch):
    """The README's Quick start, then cinema-seed, then production.ini with a real secret."""
    development, production = copy_ini("development.ini", tmp_path), copy_ini("production.ini", tmp_path)
    env = child_environ()
    for name in ("DATABASE_URL", "CACHE_URL"):
        env.pop(name, None)
    scripts = os.path.dirname(sys.executable)
    seeded = subprocess.run([os.path.join(scripts, "cinema-seed"), development], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    migrated = subprocess.run([os.path.join(scripts, "cinema-migrate"), production], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr

    for name in ("DATABASE_URL", "CACHE_URL", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JWT_SECRET", production_secret())
    client = TestApp(get_app(production), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    refused = client.post_json("/v1/auth/login", {"username": "manager", "password": "manager123"}, status=401)
    assert refused.json["message"] == "Invalid credentials"
    # while development still has them
    monkeypatch.delenv("JWT_SECRET")
    demo = TestApp(get_app(development), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    demo.post_json("/v1/auth/login", {"username": "manager", "password": "manager123"}, status=200)
