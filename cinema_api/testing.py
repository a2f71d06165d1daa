"""Helpers for the project's own tests and benchmark: a real server in a child process."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

#: The directory of the ini files (the source checkout).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``pserve <ini>`` in a child process on a free loopback port, stopped on exit."""

    def __init__(self, ini="development.ini", args=(), **environ):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", **environ)
        self.command = [*args, ini]
        self.process = None

    def __enter__(self):
        pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
        # A file, not a pipe: a server logging more than a pipe holds must not block.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [pserve, *self.command], cwd=PROJECT_ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("server did not start: %s" % self.stop())
                time.sleep(0.1)

    def stop(self):
        if self.log.closed:
            return self.output
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.seek(0)
        self.output = self.log.read().decode(errors="replace")
        self.log.close()
        return self.output

    def __exit__(self, *exc):
        self.stop()

    def request(self, method, path, body=None, headers=None):
        """``(status, headers, json or None)``."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=dict(headers or {}))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            error.close()
            return error.code, dict(error.headers), json.loads(raw) if raw else None
