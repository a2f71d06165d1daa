"""The server runner: pserve with our waitress wrapper, HOST and PORT overrides."""

import os
import socket
import subprocess
import sys

import pytest

from cinema_api.settings import SettingsError, load_server_settings
from cinema_api.testing import ServerProcess, child_environ, copy_ini, free_port


def listen_address(here, host, port):
    where = load_server_settings(here, host, port, 10)
    return where.host, where.port


def test_host_and_port_come_from_the_environment_first(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("PORT=7000\nHOST=127.0.0.2\n")
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert listen_address(str(tmp_path), "localhost", "6543") == ("127.0.0.2", 7000)
    monkeypatch.setenv("PORT", "8080")
    assert listen_address(str(tmp_path), "localhost", "6543") == ("127.0.0.2", 8080)
    assert listen_address(str(tmp_path / "none"), "localhost", "6543") == ("localhost", 8080)


def test_a_bad_port_stops_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PORT", "http")
    with pytest.raises(SettingsError, match="PORT must be an integer"):
        listen_address(str(tmp_path), "localhost", "6543")
    from cinema_api.runtime.server import run_server

    with pytest.raises(SystemExit, match="configuration error: PORT must be an integer"):
        run_server(None, {"here": str(tmp_path)})


def test_a_listen_line_is_refused_in_one_line(tmp_path):
    from cinema_api.runtime.server import run_server

    with pytest.raises(SystemExit, match="listen is not supported in \\[server:main\\]: use host and port"):
        run_server(None, {"here": str(tmp_path)}, listen="127.0.0.1:7000")


def test_bad_server_settings_stop_with_one_line(monkeypatch, tmp_path):
    from cinema_api.runtime.server import run_server

    for name in ("SHUTDOWN_TIMEOUT", "PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit, match="SHUTDOWN_TIMEOUT must be a number of seconds"):
        run_server(None, {"here": str(tmp_path)}, port="0", shutdown_timeout="soon")


@pytest.mark.slow
def test_pserve_development_ini_serves_on_port(tmp_path):
    with ServerProcess(DATABASE_URL="sqlite:///" + str(tmp_path / "dev.sqlite")) as server:
        status, headers, body = server.request("GET", "/v1/health")
    assert status == 200 and body["status"] == "ok"
    assert body["info"]["database"] == {"status": "up"}
    assert headers["X-Trace-Id"]


@pytest.mark.slow
def test_sigterm_lets_in_flight_writes_finish(tmp_path):
    import http.client
    import signal
    import threading
    import time

    database = "sqlite:///" + str(tmp_path / "graceful.sqlite")
    results = {}

    def register(index, port):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = '{"username": "user%02d", "password": "secret123", "age": 30}' % index
        try:
            connection.request("POST", "/v1/auth/register", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            length = int(response.headers["Content-Length"])
            assert len(payload) == length  # never a truncated body
            results[index] = response.status
        except (ConnectionError, http.client.HTTPException, OSError):
            results[index] = "connection error"
        finally:
            connection.close()

    with ServerProcess(DATABASE_URL=database, BCRYPT_ROUNDS="12", BCRYPT_CONCURRENCY="2") as server:
        threads = [threading.Thread(target=register, args=(index, server.port)) for index in range(20)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # the writes are in flight: bcrypt at cost 12 takes a while
        server.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        assert server.process.wait(timeout=30) == 0
        output = server.stop()
    assert "stopping: no new connections" in output
    assert set(results.values()) <= {201, 503, "connection error"}, results
    created = sorted(index for index, status in results.items() if status == 201)
    assert created, results
    with ServerProcess(DATABASE_URL=database) as again:
        for index in created:
            status, _, _ = again.request("POST", "/v1/auth/login", {"username": "user%02d" % index, "password": "secret123"})
            assert status == 200


@pytest.mark.slow
def test_json_logs_are_one_object_per_line_with_the_trace_id(tmp_path):
    import json

    environ = {"DATABASE_URL": "sqlite:///" + str(tmp_path / "logs.sqlite"), "LOG_FORMAT": "json", "ENABLE_TRACE_LOGS": "true"}
    with ServerProcess(args=("-q",), **environ) as server:
        server.request("GET", "/v1/health", headers={"X-Trace-Id": "trace-health-0001"})
        server.request("GET", "/nowhere", headers={"X-Trace-Id": "trace-missing-0002"})
        _, _, alice = server.request("POST", "/v1/auth/register", {"username": "alice", "password": "secret123", "age": 30}, {"X-Trace-Id": "trace-register-0003"})
        server.request("POST", "/v1/auth/login", {"username": "alice", "password": "wrong1234"}, {"X-Trace-Id": "trace-login-0004"})
        for trace_id in ("trace-miss-0005", "trace-hit-0006"):  # a hit is answered by the fast path
            _, headers, _ = server.request("GET", "/v1/movies", headers={"Authorization": "Bearer " + alice["accessToken"], "X-Trace-Id": trace_id})
        assert headers["X-Cache"] == "HIT" and headers["X-Trace-Id"] == "trace-hit-0006"
        output = server.stop()
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message", "trace_id"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "cinema_api.access"]
    assert [(r["trace_id"], r["method"], r["path"], r["status"]) for r in access if r["trace_id"].startswith("trace-")] == [
        ("trace-health-0001", "GET", "/v1/health", 200),
        ("trace-missing-0002", "GET", "/nowhere", 404),
        ("trace-register-0003", "POST", "/v1/auth/register", 201),
        ("trace-login-0004", "POST", "/v1/auth/login", 401),
        ("trace-miss-0005", "GET", "/v1/movies", 200),
        ("trace-hit-0006", "GET", "/v1/movies", 200),
    ]
    assert all(isinstance(r["duration_ms"], float) for r in access)
    traced = [r for r in records if r["logger"] == "cinema_api.trace" and r["trace_id"]]
    assert {r["trace_id"] for r in traced} >= {"trace-missing-0002", "trace-login-0004"}
    # lines written while a request is handled carry that request's trace id
    for record in records:
        if record["logger"] in ("cinema_api.trace", "cinema_api.access") and record["method"]:
            assert record["trace_id"]


# ---------------------------------------------------------------- logins under load


class Connections:
    """Real waitress connections, as waitress hands them to its thread pool: our ``Channel`` on one
    end of a socket pair, its requests parsed by waitress's own parser from the bytes a client
    sent, served by waitress's own task. The application records each request's start and end
    (by its path and ``X-Id``) and, for a path in ``hold``, waits for ``release`` in between."""

    def __init__(self, dispatcher, hold=(), release=None):
        import socket
        import threading

        import waitress

        self.started, self.finished, self.lock = [], [], threading.Lock()
        self.hold, self.release = set(hold), release
        self.map = {}
        self.server = waitress.create_server(self.app, map=self.map, _dispatcher=dispatcher, host="127.0.0.1", port=0)
        self.socket, self.pairs = socket, []

    def app(self, environ, start_response):
        name = (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_X_ID", ""))
        with self.lock:
            self.started.append(name)
        if environ["PATH_INFO"] in self.hold and self.release is not None:
            self.release.wait(10)
        with self.lock:
            self.finished.append(name)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    def open(self, method, path, count=1, ident=""):
        """A connection that sent ``count`` requests (pipelined): the server's end, as queued."""
        from cinema_api.runtime.server import Channel

        ours, theirs = self.socket.socketpair()
        self.pairs.append((ours, theirs))
        channel = Channel(self.server, ours, ("127.0.0.1", 50000 + len(self.pairs)), self.server.adj, map=self.map)
        body = "" if method == "GET" else "Content-Length: 0\r\n"
        request = "%s %s HTTP/1.1\r\nHost: x\r\nX-Id: %s\r\n%s\r\n" % (method, path, ident, body)
        channel.received((request * count).encode())  # waitress parses it and queues the connection
        channel.ident = (method, path, ident)
        return channel

    def has_started(self, channel):
        return channel.ident in self.started

    def has_finished(self, channel, times=1):
        return self.finished.count(channel.ident) >= times

    def close(self):
        for ours, theirs in self.pairs:
            ours.close()
            theirs.close()
        self.server.close()


def wait_until(condition, timeout=5):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_slow_requests_never_take_the_threads_other_requests_need():
    import threading

    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher(["/v1/auth/login"], slow_threads=2)
    dispatcher.set_thread_count(4)
    release = threading.Event()
    connections = Connections(dispatcher, hold=["/v1/auth/login"], release=release)
    try:
        logins = [connections.open("POST", "/v1/auth/login", ident=str(i)) for i in range(6)]
        wait_until(lambda: sum(connections.has_started(login) for login in logins) == 2)
        read = connections.open("GET", "/v1/movies")
        wait_until(lambda: connections.has_finished(read))  # two threads were left for it
        assert sum(connections.has_started(login) for login in logins) == 2 and len(dispatcher.slow_queue) == 4
        release.set()
        wait_until(lambda: all(connections.has_finished(login) for login in logins))
        wait_until(lambda: dispatcher.slow_running == 0)
        assert not dispatcher.slow_queue
        assert all("service" not in vars(login) for login in logins)  # unwrapped for their next requests
    finally:
        release.set()
        dispatcher.shutdown(timeout=5)
        connections.close()


def test_a_connection_that_queues_its_next_login_while_served_is_counted_once_per_run():
    """waitress queues a connection again from inside its service when it already read the next
    request (pipelining): each run is counted, and every place is given back."""
    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher(["/v1/auth/login"], slow_threads=2, busy_threads=2)
    dispatcher.set_thread_count(4)
    connections = Connections(dispatcher)
    try:
        # three requests read at once on each: waitress queues the connection again after each one
        channels = [connections.open("POST", "/v1/auth/login", count=3), connections.open("GET", "/v1/movies", count=3)]
        wait_until(lambda: all(connections.has_finished(channel, times=3) for channel in channels))
        wait_until(lambda: dispatcher.slow_running == 0 and not dispatcher.young)
        assert not dispatcher.slow_queue and not dispatcher.busy_queue
    finally:
        dispatcher.shutdown(timeout=5)
        connections.close()


def test_only_a_login_keeps_its_connection_read_while_it_runs():
    """waitress reads one request ahead (channel_request_lookahead = 1) so that a login waiting for
    the hashing gate sees its client go; any other request's connection is read again only once
    that request is done (reading ahead cost the title search 7 %)."""
    import threading

    from waitress.adjustments import Adjustments

    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher(["/v1/auth/login"], slow_threads=2)
    dispatcher.set_thread_count(4)
    release = threading.Event()
    connections = Connections(dispatcher, hold=["/v1/auth/login", "/v1/movies"], release=release)
    connections.server.adj = Adjustments(channel_request_lookahead=1)
    try:
        login = connections.open("POST", "/v1/auth/login")
        read = connections.open("GET", "/v1/movies")
        wait_until(lambda: connections.has_started(login) and connections.has_started(read))
        assert login.readable()  # its client's going away is seen while it waits
        assert not read.readable()
        release.set()
        wait_until(lambda: connections.has_finished(login) and connections.has_finished(read))
        wait_until(lambda: not read.requests)
        assert read.readable()  # done: its next request is read
    finally:
        release.set()
        dispatcher.shutdown(timeout=5)
        connections.close()


def test_an_error_while_the_header_is_gathered_still_lets_waitress_answer_500():
    """An application's bug (a body that is not bytes) while our task gathers the header: nothing
    was sent, so waitress's own task still answers 500 on the real connection."""
    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher([], slow_threads=1)
    dispatcher.set_thread_count(1)
    connections = Connections(dispatcher)

    def buggy(environ, start_response):
        start_response("200 OK", [("Content-Length", "9")])
        return ["not bytes"]

    connections.server.application = buggy
    try:
        channel = connections.open("GET", "/")
        client = connections.pairs[-1][1]
        wait_until(lambda: not channel.requests)
        channel.handle_write()  # the loop's part: send what the task left
        client.settimeout(5)
        assert client.recv(65536).startswith(b"HTTP/1.1 500 Internal Server Error")
        assert channel.gathered is None
    finally:
        dispatcher.shutdown(timeout=5)
        connections.close()


def test_a_slow_request_that_could_not_start_in_time_goes_through_at_once():
    import threading

    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher(["/v1/auth/login"], slow_threads=1, max_wait=5)
    dispatcher.set_thread_count(3)
    dispatcher.slow_duration = 2.0  # recent logins took 2 s each
    release = threading.Event()
    connections = Connections(dispatcher, hold=["/v1/auth/login"], release=release)
    try:
        queued = [connections.open("POST", "/v1/auth/login", ident=str(i)) for i in range(4)]
        wait_until(lambda: connections.has_started(queued[0]))  # held on the one slow thread; three wait
        connections.hold = set()  # the late one is not held
        late = connections.open("POST", "/v1/auth/login", ident="late")  # three waiting at 2 s each: it would start after 6 s
        wait_until(lambda: connections.has_finished(late))  # served now, so that the hashing gate refuses it now
        assert not any(connections.has_finished(channel) for channel in queued)
    finally:
        release.set()
        dispatcher.shutdown(timeout=5)
        connections.close()


@pytest.mark.parametrize(
    "method, path, limits",
    [("POST", "/v1/auth/login", {}), ("GET", "/v1/movies", {"busy_threads": 1, "young_sec": 60})],
    ids=["slow requests", "busy requests"],
)
def test_shutdown_cancels_requests_still_waiting_for_a_thread(method, path, limits):
    import threading

    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher(["/v1/auth/login"], slow_threads=1, **limits)
    dispatcher.set_thread_count(2)
    release = threading.Event()
    connections = Connections(dispatcher, hold=[path], release=release)
    channels = [connections.open(method, path, ident=str(i)) for i in range(3)]
    wait_until(lambda: connections.has_started(channels[0]))
    stopping = threading.Thread(target=dispatcher.shutdown, kwargs={"timeout": 5})
    stopping.start()  # while the first still runs: the two others are waiting for a thread
    wait_until(lambda: all(channel.will_close and not channel.requests for channel in channels[1:]))  # waitress's cancel
    release.set()
    stopping.join(10)
    assert connections.has_finished(channels[0]) and not any(connections.has_started(c) for c in channels[1:])
    connections.close()


def test_at_most_busy_threads_requests_compute_at_once():
    import threading

    from cinema_api.runtime.server import FairTaskDispatcher

    dispatcher = FairTaskDispatcher([], slow_threads=1, busy_threads=2, young_sec=60)
    dispatcher.set_thread_count(6)
    release = threading.Event()
    connections = Connections(dispatcher, hold=["/v1/movies"], release=release)
    try:
        reads = [connections.open("GET", "/v1/movies", ident=str(i)) for i in range(5)]
        wait_until(lambda: sum(connections.has_started(read) for read in reads) == 2)
        dispatcher.tick()  # none is older than young_sec: the three others still wait
        assert sum(connections.has_started(read) for read in reads) == 2 and len(dispatcher.busy_queue) == 3
        release.set()
        wait_until(lambda: all(connections.has_finished(read) for read in reads))  # each end let the next one in
        wait_until(lambda: not dispatcher.young)
        assert not dispatcher.busy_queue
    finally:
        release.set()
        dispatcher.shutdown(timeout=5)
        connections.close()


def test_a_request_waiting_longer_than_young_sec_gives_its_place_away():
    """A frozen database must not hold the limit: requests waiting on it stop counting, and the
    pool's other threads serve what needs no database."""
    import threading

    from cinema_api.runtime.server import FairTaskDispatcher

    now = [100.0]
    dispatcher = FairTaskDispatcher([], slow_threads=1, clock=lambda: now[0], busy_threads=2, young_sec=0.1)
    dispatcher.set_thread_count(6)
    frozen = threading.Event()
    connections = Connections(dispatcher, hold=["/v1/users"], release=frozen)
    try:
        stuck = [connections.open("GET", "/v1/users", ident=str(i)) for i in range(3)]
        home = connections.open("GET", "/")
        wait_until(lambda: sum(connections.has_started(channel) for channel in stuck) == 2)
        assert not connections.has_started(home)
        now[0] += 0.2  # the two running are now waiting, not computing
        dispatcher.tick()
        wait_until(lambda: connections.has_finished(home) and connections.has_started(stuck[2]))
        assert not dispatcher.busy_queue
        frozen.set()
        wait_until(lambda: all(connections.has_finished(channel) for channel in stuck))
        wait_until(lambda: not dispatcher.young)  # the turns that gave their place away did not count again
    finally:
        frozen.set()
        dispatcher.shutdown(timeout=5)
        connections.close()


@pytest.mark.slow
def test_reads_are_served_while_logins_flood_the_server(tmp_path):
    """Logins waiting for bcrypt hold at most half of the threads; a read does not queue behind them."""
    import threading
    import time

    database = "sqlite:///" + str(tmp_path / "flood.sqlite")
    with ServerProcess(DATABASE_URL=database, BCRYPT_ROUNDS="12", BCRYPT_CONCURRENCY="1") as server:
        login = {"username": "alice", "password": "secret123"}
        assert server.request("POST", "/v1/auth/register", dict(login, age=30))[0] == 201
        statuses = []
        logins = [threading.Thread(target=lambda: statuses.append(server.request("POST", "/v1/auth/login", login)[0])) for _ in range(16)]
        for thread in logins:
            thread.start()
        time.sleep(0.5)  # every thread would now be a login waiting for the one hashing thread
        started = time.monotonic()
        status, _, body = server.request("GET", "/v1/health")
        elapsed = time.monotonic() - started
        for thread in logins:
            thread.join(60)
    assert status == 200 and body["status"] == "ok"
    assert elapsed < 1.0, "a read waited %.2f s behind logins" % elapsed
    assert sorted(set(statuses)) in ([200], [200, 503]), statuses


def test_a_server_on_several_addresses_serves_each_and_stops_gracefully():
    """``localhost`` is ::1 and 127.0.0.1 on stock Debian: waitress then listens on both (a
    MultiSocketServer), and the runner must serve and drain every one of them."""
    import http.client
    import socket
    import threading

    from cinema_api.runtime.server import GracefulServer

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = GracefulServer(app, 1.0, listen="127.0.0.1:0 [::1]:0", threads=2)
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    try:
        addresses = [sock.getsockname()[:2] for sock in (d.socket for d in server.map.values() if hasattr(d, "accepting") and d.accepting)]
        assert {host for host, _ in addresses} == {"127.0.0.1", "::1"}
        for host, port in addresses:
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.request("GET", "/")
            assert connection.getresponse().read() == b"ok"
            connection.close()
    finally:
        server.request_stop()
        runner.join(10)
    assert not runner.is_alive() and not server.map


@pytest.mark.slow
def test_keep_alive_holds_after_a_204_and_a_304(tmp_path):
    """waitress alone closes the connection after every response without Content-Length,
    204 and 304 included (which must not carry one)."""
    import http.client
    import json

    def exchange(connection, method, path, body=None, headers=None):
        payload = json.dumps(body) if body is not None else None
        connection.request(method, path, payload, {"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        assert response.getheader("Connection") is None, (method, path, response.status)
        return response.status, response, json.loads(data) if data else None

    with ServerProcess(DATABASE_URL="sqlite:///" + str(tmp_path / "keepalive.sqlite")) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        exchange(connection, "POST", "/v1/auth/register", {"username": "keeper", "password": "secret123", "age": 30})
        the_socket = connection.sock
        _, _, tokens = exchange(connection, "POST", "/v1/auth/login", {"username": "keeper", "password": "secret123"})
        auth = {"Authorization": "Bearer " + tokens["accessToken"]}
        status, response, _ = exchange(connection, "GET", "/v1/movies", headers=auth)
        assert status == 200
        status, _, _ = exchange(connection, "GET", "/v1/movies", headers={**auth, "If-None-Match": response.getheader("ETag")})
        assert status == 304
        status, _, _ = exchange(connection, "POST", "/v1/auth/logout", headers=auth)
        assert status == 204
        status, _, _ = exchange(connection, "GET", "/v1/health")
        assert status == 200
        assert connection.sock is the_socket  # http.client opens a new one after a close
        # a client that asks for the close still gets it
        connection.request("GET", "/v1/health", headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        assert response.getheader("Connection") == "close" and response.will_close
        connection.close()


def run_pserve(tmp_path, *args, **variables):
    """``pserve <args> development.ini`` (a copy) until it ends by itself."""
    pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
    environ = child_environ(HOST="127.0.0.1", PORT=str(free_port()), DATABASE_URL="sqlite:///" + str(tmp_path / "dev.sqlite"))
    environ.pop("CACHE_URL", None)
    environ.update(variables)
    return subprocess.run(
        [pserve, *args, copy_ini("development.ini", tmp_path)],
        cwd=str(tmp_path), env=environ, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def assert_stops_with(result, line):
    """Status 1, ``line`` last on stderr, no traceback (pserve's "Exiting ..." with status 0 neither)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.splitlines()[-1] == line
    assert "Traceback" not in result.stderr and "Exiting" not in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("args", [(), ("-q",)])
def test_a_busy_port_is_one_line_and_status_1(tmp_path, args):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_pserve(tmp_path, *args, PORT=str(port))
    assert_stops_with(result, "cinema_api: cannot listen on 127.0.0.1:%d: Address already in use" % port)


@pytest.mark.slow
def test_a_bad_server_setting_through_pserve_is_one_line_and_status_1(tmp_path):
    assert_stops_with(run_pserve(tmp_path, SHUTDOWN_TIMEOUT="soon"), "cinema_api: configuration error: SHUTDOWN_TIMEOUT must be a number of seconds")


@pytest.mark.slow
def test_a_bad_cors_origin_stops_pserve_with_one_line(tmp_path):
    assert_stops_with(
        run_pserve(tmp_path, CORS_ORIGINS="notaurl"),
        "cinema_api: configuration error: CORS_ORIGINS 'notaurl' is not an origin: scheme://host[:port] or *",
    )


@pytest.mark.slow
def test_an_unreachable_database_stops_pserve_with_one_line(tmp_path):
    result = run_pserve(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:9/cinema")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("cinema_api: database unavailable: connection to server at")
    assert "Traceback" not in result.stderr


def test_the_loop_leaves_a_running_tasks_output_to_its_thread():
    """While a request thread writes a response, the I/O loop does not poll the connection for
    writability (it found the output locked and polled again at once: a busy loop); it takes
    over when the task ends, or when the output passes the high watermark."""
    from waitress.adjustments import Adjustments

    from cinema_api.runtime.server import Channel

    channel = Channel.__new__(Channel)  # the rule only: no socket needed
    channel.adj = Adjustments()
    channel.will_close = channel.close_when_flushed = False
    channel.total_outbufs_len = 301
    channel.requests = ["a running task"]
    assert not channel.writable()
    channel.total_outbufs_len = channel.adj.outbuf_high_watermark + 1
    assert channel.writable()
    channel.total_outbufs_len = 301
    channel.requests = []
    assert channel.writable()
    channel.requests = ["a running task"]
    channel.will_close = True
    assert channel.writable()


def test_a_large_response_to_a_slow_reader_arrives_whole():
    """What the request thread could not send while its task ran is sent by the loop after."""
    import http.client
    import threading
    import time

    from cinema_api.runtime.server import GracefulServer

    chunk = b"x" * 65536
    chunks = 64  # 4 MiB: far more than the socket buffers hold

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(chunk) * chunks))])
        return (chunk for _ in range(chunks))

    server = GracefulServer(app, 1.0, listen="127.0.0.1:0", threads=2)
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    try:
        port = next(d.socket.getsockname()[1] for d in server.map.values() if getattr(d, "accepting", False))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        received = 0
        while True:
            data = response.read(65536)
            if not data:
                break
            received += len(data)
            time.sleep(0.002)  # a slow reader: the socket buffers fill up
        assert received == len(chunk) * chunks
        connection.request("GET", "/")  # and the connection is still usable
        assert len(connection.getresponse().read()) == len(chunk) * chunks
        connection.close()
    finally:
        server.request_stop()
        runner.join(10)


def test_malloc_arenas_are_bounded_where_the_c_library_is_glibc():
    """Eight request threads must not each keep an arena of freed memory (RSS of the scale case)."""
    import platform

    from cinema_api.runtime.server import tune_malloc

    assert tune_malloc() is (platform.libc_ver()[0] == "glibc")


# Forty request bodies of a megabyte, each followed on the heap by a block of 100 kB that lives on
# (below the threshold: on the heap either way), then freed: what the process's RSS (MiB) kept.
LARGE_BLOCKS = """
import sys
from cinema_api.runtime.server import tune_malloc

def rss():
    with open("/proc/self/status") as status:
        return [int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:")][0]

if sys.argv[1] == "tuned":
    tune_malloc()
before = rss()
block = b"x" * (4 << 20)
del block  # glibc maps it and unmaps it, then (untuned) serves blocks up to 4 MiB from the heap
bodies, kept = [], []
for index in range(40):
    bodies.append(b"x" * (1 << 20))
    kept.append(b"y" * 100_000)
del bodies[:]
print(rss() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_large_blocks_give_their_memory_back_once_freed():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc only")

    def kept_mib(mode):
        run = subprocess.run([sys.executable, "-c", LARGE_BLOCKS, mode], capture_output=True, text=True, check=True)
        return float(run.stdout)

    tuned, untuned = kept_mib("tuned"), kept_mib("untuned")
    assert tuned < 8 and untuned - tuned > 30, (tuned, untuned)  # 40 x 100 kB stay in both


def test_a_response_leaves_in_one_send_with_its_header(monkeypatch):
    """waitress sends a response's header and its body one after the other; ours go together."""
    import http.client
    import threading

    from cinema_api.runtime.server import Channel, GracefulServer

    sends = []
    real_send = Channel.send

    def counted_send(self, data, do_close=True):
        sends.append(bytes(data))
        return real_send(self, data, do_close)

    monkeypatch.setattr(Channel, "send", counted_send)

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/empty":
            start_response("204 No Content", [])
            return []
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"hello"]

    server = GracefulServer(app, 1.0, listen="127.0.0.1:0", threads=2)
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    try:
        port = next(d.socket.getsockname()[1] for d in server.map.values() if getattr(d, "accepting", False))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.getheader("Content-Length"), response.read()) == (200, "5", b"hello")
        assert len(sends) == 1 and sends[0].startswith(b"HTTP/1.1 200 OK\r\n") and sends[0].endswith(b"\r\n\r\nhello")
        connection.request("GET", "/empty")
        response = connection.getresponse()
        assert (response.status, response.read()) == (204, b"")
        assert len(sends) == 2 and sends[1].startswith(b"HTTP/1.1 204 No Content\r\n")
        connection.close()
    finally:
        server.request_stop()
        runner.join(10)


class _App:
    """What ``read_busy_threads`` looks at: the registry of a Pyramid application."""

    def __init__(self, database_url):
        from tests.conftest import build_settings

        self.registry = {"cinema.settings": build_settings({"DATABASE_URL": database_url})}


SQLITE_URL, POSTGRES_URL = "sqlite:///busy.sqlite", "postgresql://postgres@127.0.0.1:5432/busy"


@pytest.mark.parametrize(
    "url, value, threads, expected",
    [
        (SQLITE_URL, "auto", 8, 2),
        (SQLITE_URL, None, 8, 2),
        (SQLITE_URL, "auto", 2, 1),  # never more than half the threads
        (POSTGRES_URL, "auto", 8, 4),
        (POSTGRES_URL, None, 8, 4),
        (SQLITE_URL, "3", 8, 3),
        (POSTGRES_URL, " 6 ", 8, 6),
    ],
)
def test_busy_threads_auto_follows_the_database(url, value, threads, expected):
    """SQLite's calls run in the process and hold the interpreter lock: two places; a PostgreSQL
    request also waits on the server's round trips, without the lock: half the threads."""
    from cinema_api.runtime.server import read_busy_threads

    assert read_busy_threads(_App(url), value, threads) == expected


@pytest.mark.parametrize("value", ["0", "-1", "many", "2.5"])
def test_busy_threads_that_are_neither_auto_nor_a_positive_integer_stop_the_start(value):
    from cinema_api.runtime.server import read_busy_threads

    with pytest.raises(SystemExit, match="busy_threads must be a positive integer or auto"):
        read_busy_threads(_App(SQLITE_URL), value, 8)


def test_busy_threads_auto_without_the_applications_settings_is_half_the_threads():
    from cinema_api.runtime.server import read_busy_threads

    assert read_busy_threads(object(), "auto", 8) == 4
