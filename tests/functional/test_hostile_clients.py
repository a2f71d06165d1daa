"""Hostile clients against a real server process (docs/API.md sections 1 and 7)."""

import socket

import pytest

from cinema_api.testing import ServerProcess

FORGED = "2026-11-30 04:31:00,000 WARNI [cinema_api.security] FORGED"


def raw_request(port, request_line):
    """Send one request as raw bytes (so CR and LF stay percent-encoded as sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % request_line).encode())
        return sock.recv(65536).decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_a_request_cannot_forge_a_text_log_line(tmp_path, ini):
    environ = {"DATABASE_URL": "sqlite:///" + str(tmp_path / "logs.sqlite"), "LOG_FORMAT": "text"}
    with ServerProcess(ini=ini, migrate=True, **environ) as server:  # each ini file as shipped, its logging included
        answer = raw_request(server.port, "GET /v1/x%0d%0a" + FORGED.replace(" ", "%20"))
        assert answer.startswith("HTTP/1.1 404")
        output = server.stop()
    assert not any(line.startswith(FORGED[:23]) for line in output.splitlines())
    assert "\\r\\n" + FORGED in output  # the access line keeps the path, escaped


def open_idle(port, count, per_address=100):
    """``count`` connections that never send a byte, ``per_address`` from each loopback address
    (127.0.1.x; one address may hold only so many, see test_connection_limits)."""
    sockets = []
    for index in range(count):
        sock = socket.socket()
        sock.settimeout(10)
        sock.bind(("127.0.1.%d" % (index // per_address + 1), 0))
        sock.connect(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def trickle(sockets, stop, every=1.0):
    """Slowloris: a header line on each connection every ``every`` seconds, never the end."""
    for sock in sockets:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    while not stop.wait(every):
        for sock in sockets:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass


@pytest.mark.slow
def test_idle_and_slow_connections_leave_other_requests_answered_within_a_second(tmp_path):
    import threading
    import time

    from tests.conftest import PASSWORD, bearer

    environ = {"DATABASE_URL": "sqlite:///" + str(tmp_path / "conns.sqlite")}
    with ServerProcess(**environ) as server:
        _, _, body = server.request("POST", "/v1/auth/register", {"username": "boss", "password": PASSWORD, "age": 40, "role": "manager"})
        auth = bearer(body["accessToken"])
        idle = open_idle(server.port, 400)
        slow = open_idle(server.port, 200)
        stop = threading.Event()
        trickler = threading.Thread(target=trickle, args=(slow, stop))
        trickler.start()
        try:
            time.sleep(1.5)  # the slow ones have sent a few lines
            for _ in range(5):
                for path, headers in (("/v1/health", None), ("/v1/movies", auth), ("/", None)):
                    started = time.monotonic()
                    status = server.request("GET", path, headers=headers)[0]
                    assert status == 200 and time.monotonic() - started < 1.0, (path, time.monotonic() - started)
                time.sleep(0.2)
        finally:
            stop.set()
            trickler.join(10)
            for sock in idle + slow:
                sock.close()


@pytest.mark.slow
def test_the_login_budget_is_exact_across_two_processes(fresh_postgres_url):
    import shutil

    from cinema_api.testing import RedisServer, at_once
    from tests.conftest import PASSWORD

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with RedisServer() as redis_server:
        # hashing gates large enough for every attempt: what limits the checks is the budget alone
        environ = {"DATABASE_URL": fresh_postgres_url, "CACHE_URL": redis_server.url, "BCRYPT_CONCURRENCY": "16",
                    "LOGIN_LIMIT_PER_ADDRESS": "10", "LOGIN_LIMIT_PER_USERNAME": "10"}
        with ServerProcess(**environ) as first, ServerProcess(**environ) as second:
            assert first.request("POST", "/v1/auth/register", {"username": "alice", "password": PASSWORD, "age": 30})[0] == 201

            def attempt(index):
                server = first if index % 2 else second
                return server.request("POST", "/v1/auth/login", {"username": "alice", "password": "wrong1234"})[0]

            statuses = at_once(30, attempt, timeout=60)
    assert sorted(statuses) == [401] * 10 + [429] * 20


#: The body that froze a process: an unterminated string of escaped quotes and commas, 1 MiB.
ATTACK_BODY = ('{"refreshToken":"' + '\\",' * 349_519).encode()


@pytest.mark.slow
@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_a_body_built_to_backtrack_is_refused_at_once_and_holds_up_no_other_request(tmp_path, ini):
    import http.client
    import threading
    import time

    environ = {"DATABASE_URL": "sqlite:///" + str(tmp_path / "body.sqlite")}
    assert len(ATTACK_BODY) <= 1024 * 1024
    answers = {}

    def attack(path):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        started = time.monotonic()
        connection.request("POST", path, ATTACK_BODY, {"Content-Type": "application/json"})
        response = connection.getresponse()
        answers[path] = (response.status, response.read(), time.monotonic() - started)
        connection.close()

    with ServerProcess(ini=ini, migrate=True, **environ) as server:
        attackers = [threading.Thread(target=attack, args=(path,)) for path in ("/v1/auth/refresh", "/v1/auth/login")]
        for thread in attackers:
            thread.start()
        try:
            for _ in range(5):
                started = time.monotonic()
                status = server.request("GET", "/v1/health")[0]
                assert status == 200 and time.monotonic() - started < 1.0, time.monotonic() - started
        finally:
            for thread in attackers:
                thread.join(60)
    for path, (status, body, seconds) in answers.items():
        assert status == 400 and b"Malformed JSON" in body and seconds < 2.0, (path, status, body[:200], seconds)
