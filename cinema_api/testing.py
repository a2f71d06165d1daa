"""Helpers for the project's own tests and benchmark: a real server in a child process, a
private Redis server, a TCP proxy that slows a connection down, calls that race each other."""

import contextlib
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit


def repeated(unit, size):
    """``unit`` repeated to ``size`` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def adversarial_bodies(size=1024 * 1024):
    """Bodies of about ``size`` characters built to defeat a backtracking or recursive check of a
    body, by name (the tests of linear checks, and the benchmark's hostile bodies)."""
    return {
        "unterminated string of escaped quotes and commas": '{"refreshToken":"' + repeated('\\",', size - 20),
        "quotes only": '"' * size,
        "backslashes in an unterminated string": '{"a":"' + "\\" * (size - 6),
        "escaped quotes, terminated": '{"a":"' + repeated('\\"', size - 8) + '"}',
        "escaped backslash then quote": '{"a":"' + repeated('\\\\"', size - 8),
        "backslash before a newline": repeated('"\\\n', size),
        "commas": "[" + "," * (size - 2) + "]",
        "opening brackets": "[" * size,
        "opening braces": repeated('{"a":', size),
        "many small strings": "[" + repeated('"a",', size - 5) + '"a"]',
        "many numbers": "[" + repeated("1,", size - 4) + "1]",
        "one long string": '{"username":"' + "a" * (size - 20) + '"}',
        "lone surrogates": '{"username":"' + repeated("\\ud800", size - 20) + '"}',
        "unicode escapes, unterminated": '{"a":"' + repeated("\\u00e9", size - 6),
        "white space": "{" + " " * (size - 2) + "}",
    }


#: The directory of the ini files (the source checkout).
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Variables the application, its server runner and its scripts read, besides the settings.
RUNNER_VARIABLES = ("HOST", "PORT", "SHUTDOWN_TIMEOUT", "CPU_AFFINITY", "CINEMA_ADMIN_PASSWORD")
#: The variables of the suite's own that point it at servers it may use: a PostgreSQL server it
#: may create databases on, a Redis database it may write keys to. It never reads the
#: application's DATABASE_URL or CACHE_URL (a developer's own) to choose where it writes.
TEST_DATABASE_VARIABLE, TEST_CACHE_VARIABLE = "TEST_DATABASE_URL", "TEST_CACHE_URL"


def at_once(count, call, timeout=120):
    """``[call(0), ..., call(count - 1)]``, each made on a thread of its own, all released
    together by a barrier so that the race really happens. A call that raised raises here (the
    barrier is broken, so no other call waits for it), and so do calls still running after
    ``timeout`` seconds."""
    results = [None] * count
    errors = []
    barrier = threading.Barrier(count)

    def run(index):
        try:
            barrier.wait(timeout)
            results[index] = call(index)
        except BaseException as exc:  # noqa: B036 - re-raised on the caller's thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0, deadline - time.monotonic()))
    running = sum(thread.is_alive() for thread in threads)
    if running:
        raise AssertionError("%d of %d concurrent calls still running after %s s" % (running, count, timeout))
    if errors:  # the call that failed, not the others' broken barrier
        raise next((exc for exc in errors if not isinstance(exc, threading.BrokenBarrierError)), errors[0])
    return results


def child_environ(**variables):
    """The environment of a child process of the tests: the caller's, without any setting it
    might export (a developer's shell must not change what a test checks, nor where it
    writes: its DATABASE_URL and CACHE_URL are dropped too), plus ``variables``."""
    from cinema_api.settings import SCHEMA, env_name

    settings = {env_name(name) for name in SCHEMA} | set(RUNNER_VARIABLES)
    environ = {key: value for key, value in os.environ.items() if key not in settings}
    environ.update(variables)
    return environ


def copy_ini(name, directory, root=PROJECT_ROOT):
    """A copy of the project's ini file ``name`` in ``directory``: what runs on it reads no
    ``.env`` of the checkout, and a relative SQLite file lands in ``directory``. ``root``: the
    checkout whose ini file it is (another version of the project, for the benchmark's A/B)."""
    path = os.path.join(str(directory), os.path.basename(name))
    shutil.copyfile(os.path.join(root, name), path)
    return path


def free_port():
    """A TCP port on the loopback interface that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process, log, timeout):
    """Terminate ``process`` (killed after ``timeout`` s) and return what it wrote to ``log``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.seek(0)
    output = log.read().decode(errors="replace")
    log.close()
    return output


def script(name, checkout=None):
    """The path of the console script ``name`` of this environment (``pserve``, ``cinema-migrate``),
    or of the ``.venv`` of another ``checkout`` of the project."""
    if checkout is not None:
        return os.path.join(checkout, ".venv", "bin", name)
    return os.path.join(os.path.dirname(sys.executable), name)


class ServerProcess:
    """``pserve <ini>`` in a child process on a free loopback port, stopped on exit. It runs
    on a copy of the project's ini file in a directory of its own (see :func:`copy_ini`).

    ``migrate=True`` first runs ``cinema-migrate <ini>`` with the same environment, as the deploy
    recipes do: production never migrates by itself and serves only a database migrated for it,
    so this is how a test runs production.ini as shipped (an ``ENVIRONMENT`` that contradicts the
    ini file stops it). production.ini gets a random ``JWT_SECRET`` unless one is given."""

    def __init__(self, ini="development.ini", args=(), migrate=False, checkout=None, wrapper=(), start_timeout=30,
                 **environ):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        if os.path.basename(ini) == "production.ini":
            environ.setdefault("JWT_SECRET", secrets.token_urlsafe(48))
        self.env = child_environ(PORT=str(self.port), HOST="127.0.0.1", **environ)
        self.ini = ini
        self.args = args
        self.migrate = migrate
        self.checkout = checkout  # another version of the project (its .venv and ini files), or None
        self.wrapper = tuple(wrapper)  # a command that runs pserve (valgrind ..., for bench/instructions.py)
        self.start_timeout = start_timeout
        self.process = None

    def __enter__(self):
        pserve = script("pserve", self.checkout)
        self.directory = tempfile.TemporaryDirectory(prefix="cinema-server-")
        ini = copy_ini(self.ini, self.directory.name, self.checkout or PROJECT_ROOT)
        if self.migrate:
            migrated = subprocess.run(
                [script("cinema-migrate", self.checkout), ini], cwd=self.directory.name, env=self.env,
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
            )
            if migrated.returncode != 0:
                self.directory.cleanup()
                raise RuntimeError("cinema-migrate failed: %s" % migrated.stderr)
        # A file, not a pipe: a server logging more than a pipe holds must not block.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [*self.wrapper, pserve, *self.args, ini], cwd=self.directory.name, env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/v1/health", timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("server did not start: %s" % self.stop()) from None
                time.sleep(0.1)

    def stop(self):
        if not self.log.closed:
            self.output = stop_process(self.process, self.log, timeout=15)
            self.directory.cleanup()
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


class RedisServer:
    """A private ``redis-server`` on a free loopback port, without persistence; stopped on exit.

    Tests that pause, freeze or slow Redis use one of their own, never a shared server.
    ``freeze()`` and ``thaw()`` stop and resume the process (SIGSTOP, SIGCONT).
    """

    def __init__(self, executable="redis-server"):
        self.executable = executable
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port
        self.process = None

    def __enter__(self):
        self.directory = tempfile.TemporaryDirectory(prefix="cinema-redis-")
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [
                self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.directory.name,
            ],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers_ping():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("redis-server did not start: %s" % self.stop())
            time.sleep(0.05)
        return self

    def _answers_ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def freeze(self):
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        """Stop the server (thawed first, so it can exit) and return its log."""
        if not self.log.closed:
            self.thaw()
            self.output = stop_process(self.process, self.log, timeout=10)
            self.directory.cleanup()
        return self.output

    def __exit__(self, *exc):
        self.stop()


class TcpProxy:
    """A loopback TCP proxy to ``127.0.0.1:target_port`` that delivers every chunk ``delay``
    seconds after it arrived, in each direction: latency, not a bandwidth limit (chunks in
    flight overlap, their order is kept). ``delay`` may be changed while it runs; it applies to
    the chunks that arrive from then on. Threads; every connection is closed on exit."""

    def __init__(self, target_port, delay):
        self.target = ("127.0.0.1", target_port)
        self.delay = delay
        self.port = None
        self._stopping = threading.Event()
        self._sockets = []
        self._threads = []
        self._lock = threading.Lock()

    def __enter__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)
        return self

    def _start(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            self._relay(client, upstream)
            self._relay(upstream, client)

    def _relay(self, source, sink):
        """Two threads: one reads ``source`` and stamps each chunk, one writes it to ``sink`` when due."""
        chunks = queue.Queue()

        def read():
            while True:
                try:
                    data = source.recv(65536)
                except OSError:
                    data = b""
                chunks.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def write():
            while True:
                due, data = chunks.get()
                pause = due - time.monotonic()
                if pause > 0 and self._stopping.wait(pause):
                    return
                try:
                    if not data:
                        sink.shutdown(socket.SHUT_WR)
                        return
                    sink.sendall(data)
                except OSError:
                    return

        self._start(read)
        self._start(write)

    def __exit__(self, *exc):
        self._stopping.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in threads:
            thread.join(5)


class PostgresCluster:
    """A private PostgreSQL cluster (``pg_createcluster``) on a free loopback port, trust auth;
    dropped on exit. Tests that freeze or crash the database use one of their own.

    ``freeze()``/``thaw()`` stop and resume every process of the cluster (SIGSTOP, SIGCONT);
    ``crash()`` stops it at once (``-m immediate``, as a power cut would), ``start()`` again.
    """

    def __init__(self):
        self.version = sorted(os.listdir("/etc/postgresql"))[-1]
        self.name = "cinema_test_%d" % os.getpid()
        self.port = free_port()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        self.databases = PostgresServer(self.url, "cinema_test_")

    def new_database(self):
        """The URL of a database of its own, just created in this cluster (a cluster serves several
        tests in turn: creating one costs seconds, a database a fraction of one)."""
        return self.databases.create()

    def recover(self):
        """Running and thawed again, whatever a test left it in (frozen, crashed)."""
        self.thaw()
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start"],
                       capture_output=True, timeout=120)  # an error when it runs already: fine

    def _run(self, *command):
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def __enter__(self):
        self._run(
            "pg_createcluster", self.version, self.name, "-p", str(self.port),
            "--", "--auth-local=trust", "--auth-host=trust",
        )
        self.start()
        return self

    def start(self):
        self._run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start")

    def crash(self):
        self._run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "stop", "-m", "immediate")

    def _pids(self):
        with open("/var/lib/postgresql/%s/%s/postmaster.pid" % (self.version, self.name)) as pidfile:
            postmaster = int(pidfile.readline())
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self):
        self.frozen = self._pids()
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in getattr(self, "frozen", ()):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = ()

    def __exit__(self, *exc):
        self.thaw()
        subprocess.run(["pg_dropcluster", "--stop", self.version, self.name], capture_output=True, timeout=120)


# ---------------------------------------------------------------- servers the tests are pointed at
#
# On a PostgreSQL or Redis server that a run was pointed at (TEST_DATABASE_URL, TEST_CACHE_URL;
# deploy/check.sh and the benchmark likewise), the run creates and deletes only databases and keys
# of a prefix of its own: never a FLUSHDB or FLUSHALL, never another database.


def run_tag():
    """``<pid>_<8 hex digits>``: unique to this run, on this machine and among runs sharing a server."""
    return "%d_%s" % (os.getpid(), secrets.token_hex(4))


def _glob_escaped(text):
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def delete_keys(url, prefix):
    """Delete the keys of the Redis database ``url`` whose names start with ``prefix`` (``SCAN
    MATCH`` and ``UNLINK``; nothing else is touched); how many there were."""
    import redis

    if not prefix:
        raise ValueError("an empty prefix would name every key")
    client = redis.Redis.from_url(url)
    deleted, batch = 0, []
    try:
        for key in client.scan_iter(match=_glob_escaped(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) == 500:
                deleted += client.unlink(*batch)
                batch = []
        if batch:
            deleted += client.unlink(*batch)
    finally:
        client.close()
    return deleted


class RedisPrefix:
    """The keys of one run (or one test) in the Redis database ``url``: ``CACHE_KEY_PREFIX`` is
    :attr:`prefix`, so every key the application writes starts with ``prefix + ":"``."""

    def __init__(self, url, prefix):
        from cinema_api.settings import parse_key_prefix

        self.url = url
        self.prefix = parse_key_prefix(prefix)

    def child(self, name):
        """A prefix inside this one (its keys are among this one's): a test's own."""
        return RedisPrefix(self.url, "%s:%s" % (self.prefix, name))

    @property
    def environ(self):
        return {"CACHE_URL": self.url, "CACHE_KEY_PREFIX": self.prefix}

    def clean(self, settle=0.2, rounds=10):
        """Delete the keys of the prefix, again until a pass ``settle`` s after the last finds
        none (a process's cache writer may still be sending entries); how many there were."""
        total = 0
        for _ in range(rounds):
            deleted = delete_keys(self.url, self.prefix + ":")
            total += deleted
            if not deleted:
                return total
            time.sleep(settle)
        raise RuntimeError("keys of %s keep appearing in %s" % (self.prefix, self.url))


class PostgresServer:
    """The databases of one run on the PostgreSQL server of ``url`` (a database to connect to
    for administration, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``): each is
    named ``<prefix><name>``, and only those are ever created or dropped."""

    def __init__(self, url, prefix):
        if not re.fullmatch(r"[a-z0-9_]{8,40}", prefix):
            raise ValueError("a database prefix is 8 to 40 of a-z, 0-9, _: %r" % prefix)
        self.url, self.prefix = url, prefix
        self.created = 0

    def _admin(self):
        import psycopg2

        connection = psycopg2.connect(self.url, connect_timeout=10)
        connection.autocommit = True
        return connection

    def check(self):
        """Connect once: raises what psycopg2 raises when the server cannot be used."""
        self._admin().close()

    def url_of(self, name):
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))

    def create(self, name=None):
        """A new, empty database of the prefix; its URL."""
        self.created += 1
        name = self.prefix + (name or "db%d" % self.created)
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute('CREATE DATABASE "%s"' % name)
        finally:
            connection.close()
        return self.url_of(name)

    @contextlib.contextmanager
    def database(self, name=None):
        """A new, empty database of the prefix (:meth:`create`), dropped when the block ends
        (its connections ended): yields its URL."""
        url = self.create(name)
        try:
            yield url
        finally:
            self.drop(url)

    def drop(self, url):
        name = urlsplit(url).path.lstrip("/")
        if not name.startswith(self.prefix):
            raise ValueError("%s is not a database of this run" % name)
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        finally:
            connection.close()

    def names(self):
        """The databases of the prefix that exist."""
        connection = self._admin()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT datname FROM pg_database WHERE left(datname, %s) = %s", (len(self.prefix), self.prefix))
                return sorted(row[0] for row in cursor.fetchall())
        finally:
            connection.close()

    def drop_all(self):
        """Drop every database of the prefix still there (a test that failed half-way); their names."""
        names = self.names()
        for name in names:
            self.drop(self.url_of(name))
        return names
