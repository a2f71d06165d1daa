"""The server runner: pserve with our waitress wrapper, HOST and PORT overrides."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from cinema_api.server import listen_address
from tests.conftest import HERE


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_host_and_port_come_from_the_environment_first(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("PORT=7000\nHOST=127.0.0.2\n")
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert listen_address({"here": str(tmp_path)}, "localhost", "6543") == ("127.0.0.2", 7000)
    monkeypatch.setenv("PORT", "8080")
    assert listen_address({"here": str(tmp_path)}, "localhost", "6543") == ("127.0.0.2", 8080)
    assert listen_address({"here": str(tmp_path / "none")}, "localhost", "6543") == ("localhost", 8080)


def test_a_bad_port_stops_with_one_line(monkeypatch):
    monkeypatch.setenv("PORT", "http")
    with pytest.raises(SystemExit, match="PORT must be an integer"):
        listen_address({"here": HERE}, "localhost", "6543")


@pytest.mark.slow
def test_pserve_development_ini_serves_on_port(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATABASE_URL="sqlite:///" + str(tmp_path / "dev.sqlite"))
    pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
    process = subprocess.Popen([pserve, "development.ini"], cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v1/health" % port, timeout=2) as response:
                    body = json.load(response)
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.kill()
                    pytest.fail("server did not answer: %s" % process.stdout.read().decode(errors="replace"))
                time.sleep(0.2)
        assert body["status"] == "ok"
        assert body["info"]["database"] == {"status": "up"}
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
