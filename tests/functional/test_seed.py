"""cinema-seed: demo data, idempotent."""

import os
import subprocess
import sys

from cinema_api.scripts.seed import DAYS, MOVIES, ROOMS, seed
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

    seed(app.registry, out=lines.append)  # again: nothing new
    assert lines[-1] == "movies: 0 added, sessions: 0 added, tickets: 0 bought"
    assert testapp.get("/v1/movie-sessions", headers=headers).json["meta"]["totalItems"] == sessions


def test_seed_refuses_production_without_the_flag(tmp_path):
    env = dict(os.environ, DATABASE_URL="sqlite:///" + str(tmp_path / "seed.sqlite"), JWT_SECRET=production_secret())
    env.pop("CACHE_URL", None)
    subprocess.run([sys.executable, "-m", "cinema_api.scripts.migrate", "production.ini"], cwd=HERE, env=env, check=True, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-m", "cinema_api.scripts.seed", "production.ini"], cwd=HERE, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "refusing to load public demo accounts" in result.stderr
