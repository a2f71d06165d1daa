"""The server runner: pserve with our waitress wrapper, HOST and PORT overrides."""

import pytest

from cinema_api.server import listen_address
from tests.conftest import HERE, ServerProcess


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
    with ServerProcess(DATABASE_URL="sqlite:///" + str(tmp_path / "dev.sqlite")) as server:
        status, headers, body = server.request("GET", "/v1/health")
    assert status == 200 and body["status"] == "ok"
    assert body["info"]["database"] == {"status": "up"}
    assert headers["X-Trace-Id"]
