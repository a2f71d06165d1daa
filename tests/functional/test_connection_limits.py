"""Clients that do not read, and addresses that open too many connections (docs/API.md section 7,
"The server can be attacked"): the runner's own limits, in process and through pserve."""

import contextlib
import http.client
import resource
import socket
import threading
import time

import pytest

from cinema_api.runtime.server import GracefulServer
from cinema_api.testing import ServerProcess

BUNDLE = "/v1/api/assets/swagger-ui-bundle.js"


def connect(port, source="127.0.0.1", receive_buffer=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def non_readers(port, count=8, pipelined=20, path=BUNDLE):
    """``count`` clients with a 4 kB receive buffer that each pipeline ``pipelined`` requests
    for ``path`` and read nothing."""
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode()
    sockets = []
    for index in range(count):
        sock = connect(port, source="127.0.2.%d" % (index + 1), receive_buffer=4096)
        sock.sendall(request * pipelined)
        sockets.append(sock)
    return sockets


def timed_get(port, path, source="127.0.0.1", headers=None):
    """``(status, seconds)`` of one GET on a connection of its own."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        connection.close()


def environ_for(tmp_path):
    return {"DATABASE_URL": "sqlite:///" + str(tmp_path / "limits.sqlite")}


@pytest.mark.slow
@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_clients_that_never_read_leave_every_other_client_answered_within_a_second(tmp_path, ini):
    with ServerProcess(ini=ini, migrate=True, **environ_for(tmp_path)) as server:  # each ini file as shipped
        hogs = non_readers(server.port)  # as many as the server has threads
        try:
            time.sleep(1.5)  # every thread would be waiting for them by now
            for _ in range(5):
                for path in ("/v1/health", "/", "/v1/api", BUNDLE):
                    status, seconds = timed_get(server.port, path)
                    assert status == 200 and seconds < 1.0, (path, seconds)
                time.sleep(0.2)
        finally:
            for sock in hogs:
                sock.close()


@contextlib.contextmanager
def running(app, **adjustments):
    """A GracefulServer on a free loopback port, served by a thread of its own."""
    server = GracefulServer(app, 1.0, listen="127.0.0.1:0", **adjustments)
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    try:
        yield server, next(d.socket.getsockname()[1] for d in server.map.values() if getattr(d, "accepting", False))
    finally:
        server.request_stop()
        runner.join(10)


def test_a_client_that_takes_nothing_for_channel_timeout_is_closed_with_its_request_in_progress():
    chunk = b"x" * 65536
    ended = []

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/small":
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]
        start_response("200 OK", [("Content-Length", str(len(chunk) * 256))])

        def body():
            try:
                for _ in range(256):  # 16 MiB: far over the watermark, in one response
                    yield chunk
            finally:
                ended.append(time.monotonic())

        return body()

    with running(app, threads=1, channel_timeout=2, cleanup_interval=1, outbuf_high_watermark=262144) as (server, port):
        hog = connect(port, receive_buffer=4096)
        hog.sendall(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
        sent = time.monotonic()
        try:
            deadline = sent + 10
            while not ended and time.monotonic() < deadline:
                time.sleep(0.1)
            # the only thread waited for the client within the response, and was let go
            assert ended and 2 <= ended[0] - sent < 5, ended and ended[0] - sent
            assert timed_get(port, "/small")[0] == 200
            # a snapshot of the map (list() copies it under the interpreter lock): the I/O loop changes it meanwhile
            assert not [c for c in list(server.map.values()) if getattr(c, "addr", None) == hog.getsockname()]
        finally:
            hog.close()


def test_a_connection_behind_on_its_output_is_served_its_next_request_once_the_client_reads():
    body = b"y" * 300_000

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    with running(app, threads=1, channel_timeout=30, outbuf_high_watermark=262144) as (server, port):
        reader = connect(port, receive_buffer=4096)
        reader.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 6)
        try:
            time.sleep(1)
            # the one thread is free while the pipelined requests wait for this client
            assert timed_get(port, "/")[0] == 200
            received = b""
            answers = []
            while len(answers) < 6 or len(answers[-1]) < len(body):
                data = reader.recv(65536)
                assert data, "the connection closed before every answer arrived"
                received += data
                answers = [part.partition(b"\r\n\r\n")[2] for part in received.split(b"HTTP/1.1 200 OK")[1:]]
            assert answers == [body] * 6
        finally:
            reader.close()


def test_one_address_holds_at_most_connections_per_address():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    with running(app, threads=2, connections_per_address=5) as (server, port):
        held = [connect(port) for _ in range(5)]
        refused = connect(port)
        try:
            assert refused.recv(1) == b""  # closed at once
            assert timed_get(port, "/", source="127.0.0.2")[0] == 200  # another address is served
            held.pop().close()
            time.sleep(0.5)  # the loop sees the close
            assert timed_get(port, "/")[0] == 200  # a place was freed
        finally:
            refused.close()
            for sock in held:
                sock.close()


@pytest.mark.slow
@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_2100_connections_from_one_address_leave_other_clients_served(tmp_path, ini):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2400 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (2400, hard))
    elif soft < 2400:
        pytest.skip("this process may open only %d files" % soft)
    with ServerProcess(ini=ini, migrate=True, **environ_for(tmp_path)) as server:
        flood = []
        try:
            for _ in range(2100):
                flood.append(connect(server.port, source="127.0.3.1"))
            time.sleep(1)
            for _ in range(5):
                for path in ("/v1/health", "/"):
                    status, seconds = timed_get(server.port, path, source="127.0.3.2")
                    assert status == 200 and seconds < 1.0, (path, seconds)
            open_ones = 0
            for sock in flood:
                sock.setblocking(False)
                try:
                    open_ones += sock.recv(1) != b""
                except BlockingIOError:
                    open_ones += 1
            assert open_ones == 128  # connections_per_address in both ini files
        finally:
            for sock in flood:
                sock.close()
        output = server.stop()
    assert output.count("127.0.3.1 holds 128 connections") == 1
