"""cinema-seed: demo data, idempotent."""

import os
import subprocess
import sys

from cinema_api.scripts.seed import DAYS, MOVIES, ROOM_PLANS, ROOMS, seed
from tests.conftest import HERE, production_secret


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


def test_seed_refuses_production_without_the_flag(tmp_path):
    env = dict(os.environ, DATABASE_URL="sqlite:///" + str(tmp_path / "seed.sqlite"), JWT_SECRET=production_secret())
    env.pop("CACHE_URL", None)
    subprocess.run([sys.executable, "-m", "cinema_api.scripts.migrate", "production.ini"], cwd=HERE, env=env, check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "cinema_api.scripts.seed", "production.ini"], cwd=HERE, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "refusing to load public demo accounts" in result.stderr
