"""cinema-admin: create and delete users from the command line."""

import os
import subprocess
import sys

import pytest

from tests.conftest import HERE


@pytest.fixture
def run_admin(tmp_path):
    env = dict(os.environ, DATABASE_URL="sqlite:///" + str(tmp_path / "admin.sqlite"))
    env.pop("CACHE_URL", None)

    def run(*args, password=None):
        if password is not None:
            env["CINEMA_ADMIN_PASSWORD"] = password
        return subprocess.run(
            [sys.executable, "-m", "cinema_api.scripts.admin", "testing.ini", *args],
            cwd=HERE, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
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
