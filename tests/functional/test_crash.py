"""A kill -9 during concurrent writes leaves a consistent database where every write that was
answered 2xx is present (SQLite in WAL mode and PostgreSQL)."""

import http.client
import json
import signal
import threading
import time

import pytest

from cinema_api.testing import ServerProcess

BATCH = 25


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    return request.getfixturevalue("fresh_sqlite_url" if request.param == "sqlite" else "fresh_postgres_url")


def post(port, path, body, token=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        return response.status, response.read()
    except (ConnectionError, http.client.HTTPException, OSError):
        return None, b""
    finally:
        connection.close()


@pytest.mark.slow
def test_kill_9_during_writes_loses_no_acknowledged_write(database_url):
    environ = {"DATABASE_URL": database_url, "CACHE_URL": "memory://"}
    answered = {}
    with ServerProcess(**environ) as server:
        _, body = post(server.port, "/v1/auth/register", {"username": "boss", "password": "secret123", "age": 40, "role": "manager"})
        token = json.loads(body)["accessToken"]
        stop = threading.Event()

        def writer(worker):
            for batch in range(1000):
                if stop.is_set():
                    return
                key = "w%d-b%d" % (worker, batch)
                movies = [{"title": "%s movie %d" % (key, index), "ageRestriction": 1} for index in range(BATCH)]
                answered[key] = post(server.port, "/v1/movies/bulk", {"movies": movies}, token)[0]

        threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        server.process.send_signal(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(30)
        server.process.wait(10)
    acknowledged = [key for key, status in answered.items() if status == 201]
    assert acknowledged, answered
    with ServerProcess(**environ) as again:
        status, body = post(again.port, "/v1/auth/login", {"username": "boss", "password": "secret123"})
        token = json.loads(body)["accessToken"]
        connection = http.client.HTTPConnection("127.0.0.1", again.port, timeout=30)
        titles = []
        page = 1
        while True:
            connection.request("GET", "/v1/movies?perPage=100&page=%d" % page, headers={"Authorization": "Bearer " + token})
            listed = json.loads(connection.getresponse().read())
            titles += [m["title"] for m in listed["movies"]]
            if page >= listed["meta"]["totalPages"]:
                break
            page += 1
        connection.close()
    per_batch = {}
    for title in titles:
        per_batch[title.split(" movie ")[0]] = per_batch.get(title.split(" movie ")[0], 0) + 1
    for key in acknowledged:
        assert per_batch.get(key) == BATCH, key  # every acknowledged batch is there, whole
    assert set(per_batch.values()) <= {BATCH}  # and no batch is there in part
