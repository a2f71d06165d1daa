"""cinema-admin: create and delete users from the command line."""

import shutil
import subprocess
import sys

import pytest

from cinema_api.testing import child_environ, copy_ini


@pytest.fixture
def run_admin(tmp_path):
    env = child_environ(DATABASE_URL="sqlite:///" + str(tmp_path / "admin.sqlite"))
    env.pop("CACHE_URL", None)
    ini = copy_ini("testing.ini", tmp_path)

    def run(*args, password=None, **variables):
        if password is not None:
            env["CINEMA_ADMIN_PASSWORD"] = password
        return subprocess.run(
            [sys.executable, "-m", "cinema_api.scripts.admin", ini, *args],
            cwd=str(tmp_path), env=dict(env, **variables), capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )

    return run


def test_create_and_delete_a_manager(run_admin):
    created = run_admin("create-user", "--username", "boss", "--role", "manager", "--age", "45", password="strong123")
    assert created.returncode == 0, created.stderr
    assert "created manager boss" in created.stdout
    again = run_admin("create-user", "--username", "boss", "--role", "customer", "--age", "45", password="strong123")
    assert again.returncode == 1 and "Username already exists" in again.stderr
    deleted = run_admin("delete-user", "boss")
    assert deleted.returncode == 0 and "deleted boss" in deleted.stdout
    missing = run_admin("delete-user", "boss")
    assert missing.returncode == 1 and "no user named boss" in missing.stderr


def test_create_user_applies_the_registration_rules(run_admin):
    result = run_admin("create-user", "--username", "x", "--role", "manager", "--age", "200", password="weak")
    assert result.returncode == 1
    assert "username must be longer than or equal to 3 characters" in result.stderr
    assert "age must not be greater than 150" in result.stderr


def test_without_a_terminal_or_the_password_variable_it_names_the_variable(run_admin):
    result = run_admin("create-user", "--username", "boss", "--role", "manager", "--age", "45")
    assert result.returncode == 1
    assert result.stderr == "cinema-admin: no terminal to ask for the password on: set CINEMA_ADMIN_PASSWORD\n"
    assert "no user named boss" in run_admin("delete-user", "boss").stderr  # nothing was created


def test_it_needs_no_jwt_secret(run_admin):
    created = run_admin("create-user", "--username", "boss", "--role", "manager", "--age", "45", password="strong123", JWT_SECRET="")
    assert created.returncode == 0, created.stderr
    assert run_admin("delete-user", "boss", JWT_SECRET="").returncode == 0


def test_reset_login_limits_says_a_restart_resets_counts_kept_in_memory(run_admin):
    result = run_admin("reset-login-limits")
    assert result.returncode == 1
    assert result.stderr == (
        "cinema-admin: the failed-login counts live in each server's memory (CACHE_URL is not Redis): "
        "restart the server to reset them\n"
    )


def test_reset_login_limits_clears_the_counts_kept_in_redis_under_its_own_prefix(run_admin, test_environ, tmp_path):
    import redis
    from webtest import TestApp

    from cinema_api import make_app
    from cinema_api.testing import RedisServer
    from tests.conftest import build_settings, ini_settings, reset_state

    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    with RedisServer() as server:
        # another deployment's count in the same database, under the default prefix
        other = redis.Redis.from_url(server.url)
        other.zadd("cinema:login:address:203.0.113.9", {"attempt": 1})
        prefix = {"CACHE_URL": server.url, "CACHE_KEY_PREFIX": "cinema-admin-test"}
        app = make_app(build_settings(dict(test_environ, **prefix)), ini_settings())
        reset_state(app.registry["cinema.db"], app.registry)
        client = TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        wrong = {"username": "nobody", "password": "wrong1234"}
        for _ in range(10):
            client.post_json("/v1/auth/login", wrong, status=401)
        client.post_json("/v1/auth/login", wrong, status=429)
        result = run_admin("reset-login-limits", **prefix)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "login limits reset: 2 counts forgotten\n"  # the address and the username
        client.post_json("/v1/auth/login", wrong, status=401)  # checked again, not throttled
        assert other.zcard("cinema:login:address:203.0.113.9") == 1  # not its prefix: left alone
        other.close()
