"""Hostile clients against a real server process (API.md sections 1 and 7)."""

import secrets
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
    environ = {
        "DATABASE_URL": "sqlite:///" + str(tmp_path / "logs.sqlite"),
        "ENVIRONMENT": "development",  # applies the migrations; the ini's logging stays
        "JWT_SECRET": secrets.token_urlsafe(48),
        "LOG_FORMAT": "text",
    }
    with ServerProcess(ini=ini, **environ) as server:
        answer = raw_request(server.port, "GET /v1/x%0d%0a" + FORGED.replace(" ", "%20"))
        assert answer.startswith("HTTP/1.1 404")
        output = server.stop()
    assert not any(line.startswith(FORGED[:23]) for line in output.splitlines())
    assert "\\r\\n" + FORGED in output  # the access line keeps the path, escaped
