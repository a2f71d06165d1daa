"""cinema-seed: demo data, idempotent."""

import subprocess
import sys

from cinema_api.scripts.seed import DAYS, MOVIES, ROOM_PLANS, ROOMS, seed
from cinema_api.testing import child_environ, copy_ini


def test_seed_loads_demo_data_once(app, testapp):
    lines = []
    seed(app.registry, out=lines.append)
    assert "manager  username=manager password=manager123" in lines
    manager = testapp.post_json("/v1/auth/login", {"username": "manager", "password": "manager123"}).json
    customer = testapp.post_json("/v1/auth/login", {"username": "customer", "password": "customer123"}).json
    headers = {"Authorization": "Bearer " + manager["accessToken"]}
    assert testapp.get("/v1/movies", headers=headers).json["meta"]["totalItems"] == len(MOVIES)
    sessions = testapp.get("/v1/movie-sessions", headers=headers).json["meta"]["totalItems"]
    assert sessions == DAYS * len(ROOMS) * 3
    mine = testapp.get("/v1/tickets/me", headers={"Authorization": "Bearer " + customer["accessToken"]}).json
    assert len(mine) == 4 and sum(t["isUsed"] for t in mine) == 1
    assert {t["seat"] for t in mine} == {"A1"}  # the first seat of each session
    rooms = testapp.get("/v1/rooms", headers=headers).json
    assert [(r["number"], r["name"], r["rows"], r["seatsPerRow"]) for r in rooms] == [(n, *ROOM_PLANS[n]) for n in ROOMS]
    listed = testapp.get("/v1/movie-sessions?perPage=100", headers=headers).json["sessions"]
    assert {s["capacity"] for s in listed} == {rows * seats for _, rows, seats in ROOM_PLANS.values()}
    testapp.put_json("/v1/rooms/1", {"name": "Changed", "rows": 1, "seatsPerRow": 1}, headers=headers)

    seed(app.registry, out=lines.append)  # again: nothing new
    assert lines[-2:] == ["rooms: 0 added", "movies: 0 added, sessions: 0 added, tickets: 0 bought"]
    assert testapp.get("/v1/rooms/1", headers=headers).json["name"] == "Changed"  # a room changed since is kept
    assert testapp.get("/v1/movie-sessions", headers=headers).json["meta"]["totalItems"] == sessions


def run_script(module, ini, directory, extra_args=(), **variables):
    env = child_environ(DATABASE_URL="sqlite:///" + str(directory / "seed.sqlite"), **variables)
    env.pop("CACHE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cinema_api.scripts." + module, copy_ini(ini, directory), *extra_args],
        cwd=str(directory), env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def test_seed_refuses_production(tmp_path):
    assert run_script("migrate", "production.ini", tmp_path).returncode == 0
    result = run_script("seed", "production.ini", tmp_path)
    assert result.returncode == 1
    assert result.stderr == "cinema-seed: refusing to load public demo accounts into production\n"
    # there is no way around it: the flag that allowed it is gone
    assert run_script("seed", "production.ini", tmp_path, extra_args=("--allow-production",)).returncode == 2


def test_seed_says_what_it_loaded_and_starts_nothing(tmp_path):
    result = run_script("seed", "development.ini", tmp_path, LOG_LEVEL="INFO")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "demo data in sqlite:///%s:" % (tmp_path / "seed.sqlite")
    assert "manager  username=manager password=manager123" in lines
    assert lines[-1] == "movies: %d added, sessions: %d added, tickets: 4 bought" % (len(MOVIES), DAYS * len(ROOMS) * 3)
    assert "started" not in result.stdout + result.stderr
    # and it needs no JWT secret: it signs no token
    env_without_secret = run_script("seed", "development.ini", tmp_path, JWT_SECRET="")
    assert env_without_secret.returncode == 0, env_without_secret.stderr
