"""The load benchmark of cinema_api: each scenario as req/s and as a ratio to a floor of the same run.

    .venv/bin/python bench/run.py                                 # both setups, 10 s per wrk run
    .venv/bin/python bench/run.py --setups sqlite --duration 2 --output /tmp/smoke.md

It writes a Markdown report to --output (default: bench/results/<YYYY-MM-DD>-<setups>.md; it
never writes bench/RESULTS.md unless given that path). bench/NOTES.md says how to read it.
For each setup (SQLite + memory cache; PostgreSQL + Redis):

1. The floor: bench/floor.py, a bare WSGI callable answering 2 bytes under waitress with the
   threads of production.ini's [server:main], on a free loopback port. Right before every
   scenario run, wrk runs on it with that run's settings (-t2, the same connections, the same
   duration). A scenario's ratio is its req/s over the median of the setup's floor runs at
   its connections: a single run moves with whatever else the shared machine did meanwhile,
   the median of runs spread over the whole setup much less.
2. The API: production.ini as shipped, its logging included (the access log is on), on a free
   loopback port. The server gets only what production.ini leaves to the environment
   (DATABASE_URL, CACHE_URL, JWT_SECRET) and what a scenario cannot run without:
   BCRYPT_ROUNDS=10 (logins are measured at cost 10), login limits out of reach (every request
   comes from 127.0.0.1) and JWT_EXPIRES_IN_SEC=86400 (the seeded tokens outlive the run).
   Any other setting that the calling shell exports is dropped. cinema-admin creates the
   manager; the API the customers (aged 30), 200 movies and 5 sessions each.
3. The scenarios, at 8, 32 and 64 connections: GET /, GET /v1/health, the cached movie list,
   a movie by id, the session list (each path read once before: cached), a title search for
   a random 3-letter substring per request (mostly cache misses), and purchases of fresh
   (customer, session) pairs (201 expected; customers are added before a run that could
   exhaust the pairs), then at 32 connections the same purchases of sessions with a seat plan
   (each assigned the first free seat), beside which the cost of seat assignment is judged. Then logins at cost 10 with 8 connections, beside the rate at which
   the machine's cores hash at cost 10 (bcrypt.checkpw, one process per core, measured just
   before, the server idle); the cached list at 8 connections, idle and while 64 connections
   hammer login; the list with the null cache backend; and the scale cases (bulk creates,
   list latency at 200 and at 100,000 movies, what the cap of 10,000 JSON values per body costs
   an accepted body and what a refused one costs the server).

With ``--ab-metrics ROUNDS`` it runs only the metrics A/B instead: two servers of the same
setup and database, ``METRICS_ENABLED=true`` and ``false``, the cached list at 32 connections on
each in turn (the order alternating every round), every run right after a floor run of its own;
the report gives each side's ratios to those floors and their medians.

Beside the scenarios: the NestJS service's ratio to a floor measured with it, where known, and
the project's targets with verdicts computed from the run's figures. Nothing is asserted.
Loopback only, one load at a time (the login hammer and the reads it slows are one scenario),
every run bounded. Needs wrk (Debian's package) and, for the second setup, PostgreSQL and Redis
on 127.0.0.1: it creates and drops its own database (cinema_bench_<pid>_<random>_main) and, in Redis
database 11, writes only keys of its own prefix (CACHE_KEY_PREFIX cinema-bench-<pid>-<random>),
deleted at the end with SCAN and UNLINK; no other key is touched.
"""

import argparse
import configparser
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

import bcrypt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from cinema_api.core.body import MAX_JSON_VALUES, values_exceed  # noqa: E402
from cinema_api.settings import SCHEMA  # noqa: E402
from cinema_api.testing import (  # noqa: E402
    PostgresServer, RedisPrefix, RedisServer, ServerProcess, adversarial_bodies, child_environ, copy_ini, free_port, run_tag,
    script,
)

import scale  # noqa: E402  (bench/scale.py: the --scale suite)

PRODUCTION_INI = os.path.join(ROOT, "production.ini")
REDIS_URL = "redis://127.0.0.1:6379/11"
#: Where the PostgreSQL setup creates its databases (a database to connect to for that).
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: This run's names: its database, its Redis keys.
RUN_TAG = run_tag()

WRK_THREADS = 2
WRK_TIMEOUT_SEC = 10
MAX_DURATION_SEC = 60
CONNECTIONS = (8, 32, 64)
AB_CONNECTIONS = 32
TARGET_CONNECTIONS = 32  # where the project's targets apply
LOGIN_CONNECTIONS = 8
HAMMER_CONNECTIONS = 64
LOGIN_ROUNDS = 10

PASSWORD = "bench1234"
MOVIES, SESSIONS_PER_MOVIE, MIN_CUSTOMERS = 200, 5, 50
#: Rooms 1..50 have no Room (sessions without a seat plan); these have one, and sessions of their own.
SEATED_ROOMS, SEATED_ROWS, SEATED_SEATS_PER_ROW = range(51, 101), 10, 20
SEAT_COST_MINIMUM = 2 / 3  # purchases with seats, at TARGET_CONNECTIONS, as a share of those without
BULK_SIZE, SCALE_MOVIES = 1000, 100_000
PAIR_GAP = 100  # pairs of headroom when customers are added for a purchase run
TIMESLOTS = ["10:00-12:00", "12:00-14:00", "14:00-16:00", "16:00-18:00", "18:00-20:00", "20:00-22:00", "22:00-00:00"]

#: The NestJS service's figures, as ratios to a floor measured with them (never absolute).
NESTJS_RATIOS = {
    "cached list": "0.20-0.23",
    "movie by id": "0.11-0.13",
    "session list": "0.21-0.23",
    "title search (misses)": "0.16",
    "purchase (fresh pairs)": "0.09-0.12",
}
#: The project's targets at TARGET_CONNECTIONS, as ratios to the floor.
FLOOR_TARGETS = {
    "cached list": 0.45,
    "movie by id": 0.45,
    "session list": 0.45,
    "title search (misses)": 0.45,  # issue 29: about twice the original's
    "purchase (fresh pairs)": 0.30,  # issue 29: about twice the original's
}
PURCHASES, SEATED_PURCHASES = "purchase (fresh pairs)", "purchase with seats (fresh pairs)"
LOGIN_USER = "customer000"
LOGIN_ENV = {"BENCH_MODE": "login", "BENCH_LOGIN": json.dumps({"username": LOGIN_USER, "password": PASSWORD})}
IDLE_READS = "cached list, idle"
LOADED_READS = "cached list, while %d conns hammer login" % HAMMER_CONNECTIONS
HAMMER = "login hammer (the load)"

CACHED_READS = ("cached list", "movie by id", "session list")
CACHED_READS_MINIMUM = 0.2  # in any case: at every connection count
LOGIN_SHARE_MINIMUM = 0.9  # of the machine's hashing rate
RSS_LIMIT_MIB = 100


def production_setting(section, key):
    parser = configparser.ConfigParser(interpolation=None)  # the log format holds %(...)s
    parser.read(PRODUCTION_INI)
    return parser[section][key]


# ---------------------------------------------------------------- HTTP client


def api(server, method, path, status, body=None, token=None):
    """The JSON body of an answer that must have ``status``."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    answered, _, data = server.request(method, path, body, headers)
    if answered != status:
        raise RuntimeError("%s %s: expected %s, got %s: %s" % (method, path, status, answered, data))
    return data


def login(server, username):
    return api(server, "POST", "/v1/auth/login", 200, {"username": username, "password": PASSWORD})["accessToken"]


# ---------------------------------------------------------------- seeding


class Seed:
    """Customers (tokens), movies and their sessions, made through the API by the manager that
    cinema-admin created."""

    def __init__(self, server):
        self.server = server
        self.manager = login(server, "manager")
        self.customers = []
        self.add_customers(MIN_CUSTOMERS)
        movies = [{"title": "Bench movie %03d" % index, "ageRestriction": index % 19} for index in range(MOVIES)]
        self.movies = [m["id"] for m in api(server, "POST", "/v1/movies/bulk", 201, {"movies": movies}, self.manager)]
        self.sessions = self.add_sessions(rooms=range(1, 51))
        for number in SEATED_ROOMS:
            api(server, "PUT", "/v1/rooms/%d" % number, 201, {"rows": SEATED_ROWS, "seatsPerRow": SEATED_SEATS_PER_ROW}, self.manager)
        self.seated_sessions = self.add_sessions(rooms=SEATED_ROOMS)

    def add_sessions(self, rooms):
        """SESSIONS_PER_MOVIE sessions of every movie in ``rooms``: their ids."""
        ids = []
        for number, movie_id in enumerate(self.movies):
            items = [self.session_item(number * SESSIONS_PER_MOVIE + index, rooms) for index in range(SESSIONS_PER_MOVIE)]
            created = api(self.server, "POST", "/v1/movies/%s/sessions/bulk" % movie_id, 201, {"sessions": items}, self.manager)
            ids += [s["id"] for s in created]
        return ids

    def add_customers(self, count):
        """Register customers until there are ``count``."""
        for index in range(len(self.customers), count):
            body = {"username": "customer%03d" % index, "password": PASSWORD, "age": 30}
            self.customers.append(api(self.server, "POST", "/v1/auth/register", 201, body)["accessToken"])

    @staticmethod
    def session_item(slot, rooms):
        """Session number ``slot``: the rooms in turn, then the next timeslot, then the next day; all in the future."""
        room, timeslot = rooms[slot % len(rooms)], TIMESLOTS[(slot // len(rooms)) % len(TIMESLOTS)]
        day = date.today() + timedelta(days=2 + slot // (len(rooms) * len(TIMESLOTS)))
        start = datetime(day.year, day.month, day.day, int(timeslot[:2]), tzinfo=timezone.utc)
        return {"date": start.isoformat().replace("+00:00", "Z"), "timeslot": timeslot, "roomNumber": room}


# ---------------------------------------------------------------- measuring


@dataclass
class Figures:
    """What one wrk run measured; latencies in ms."""

    rps: float
    p50: float
    p99: float
    requests: int
    unexpected: int  # answers other than the expected status
    status_5xx: int
    status_503: int
    cache_hits: int
    cache_misses: int
    next_pair: int  # purchase: the first pair index no request of the run took
    timeouts: int
    socket_errors: int  # connect, read and write errors

    @property
    def ok_rps(self):
        """Answers with the expected status, per second."""
        return self.rps * (self.requests - self.unexpected) / self.requests if self.requests else 0.0

    @property
    def hit_share(self):
        answered = self.cache_hits + self.cache_misses
        return self.cache_hits / answered if answered else None


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def latency_ms(output, percentile):
    match = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % percentile, output, re.M)
    return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")


def parse_wrk(output):
    counted = re.search(r"^BENCH (.*)$", output, re.M).group(1)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    connect, read, write, timeouts = map(int, socket_errors.groups()) if socket_errors else (0, 0, 0, 0)
    return Figures(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50=latency_ms(output, "50"),
        p99=latency_ms(output, "99"),
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        timeouts=timeouts,
        socket_errors=connect + read + write,
        **{name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", counted)},
    )


def wrk(url, duration, connections, env):
    """One wrk run with the benchmark's settings, the same for the floor and every scenario."""
    command = [
        "wrk", "-t%d" % WRK_THREADS, "-c%d" % connections, "-d%ds" % duration, "--latency",
        "--timeout", "%ds" % WRK_TIMEOUT_SEC, "-s", os.path.join(HERE, "wrk.lua"), url,
    ]
    env = dict(os.environ, BENCH_THREADS=str(WRK_THREADS), BENCH_SEED=str(secrets.randbelow(2**30)), **env)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60, check=True)
    return parse_wrk(done.stdout)


def check_until(hashed, deadline):
    """bcrypt checks in a loop until ``deadline``: this process's checks per second."""
    started, count = time.monotonic(), 0
    while time.monotonic() < deadline:
        bcrypt.checkpw(PASSWORD.encode(), hashed)
        count += 1
    return count / (time.monotonic() - started)


def hashing_rate(rounds, seconds):
    """Checks per second that the machine's cores do at ``rounds``, one process per core (bcrypt
    releases the GIL, but processes leave no doubt)."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores) as pool:
        deadline = time.monotonic() + seconds  # CLOCK_MONOTONIC is the same in every process
        return sum(pool.map(check_until, [hashed] * cores, [deadline] * cores))


def cpu_seconds(pid):
    """User plus system CPU time of a process, threads included."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    """Context switches of a process so far (voluntary and not), its threads' summed: each is a
    thread that waited (for the interpreter lock, a lock, the network) or was preempted."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, task)) as status:
                total += sum(int(line.split()[1]) for line in status if "ctxt_switches:" in line)
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def floor_server(threads):
    """bench/floor.py on a free loopback port; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "floor.py"), str(port), str(threads)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = "http://127.0.0.1:%d" % port
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("bench/floor.py did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---------------------------------------------------------------- targets


def verdict(ok):
    return "met" if ok else "**missed**"


@dataclass(frozen=True)
class Target:
    """A target of the project: ``figure(row) >= minimum``."""

    text: str
    minimum: float
    figure: Callable
    shown: Callable = "{:.3f}".format  # more digits than the ratio column: a verdict never looks contradicted

    def judge(self, row):
        value = self.figure(row)
        return "%s: %s" % (verdict(value >= self.minimum), self.shown(value))


def floor_target(minimum):
    return Target(">= %.2f of the floor" % minimum, minimum, lambda row: row.ratio)


def hashing_target(rate):
    text = ">= %.0f %% of %.1f hashes/s" % (100 * LOGIN_SHARE_MINIMUM, rate)
    return Target(text, LOGIN_SHARE_MINIMUM, lambda row: row.figures.ok_rps / rate, "{:.0%} (successful logins)".format)


def target_for(scenario, connections):
    minimum = FLOOR_TARGETS.get(scenario)
    return floor_target(minimum) if minimum and connections == TARGET_CONNECTIONS else None


@dataclass
class Row:
    scenario: str
    connections: int
    figures: Figures
    target: Target = None
    floor: float = None  # the setup's floor at these connections, once all its runs are in

    @property
    def ratio(self):
        return self.figures.rps / self.floor


# ---------------------------------------------------------------- one setup


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (\w+)\s*\[([\w.]+)\]", re.M)
LEVELS = {"WARNI": "WARNING", "CRITI": "CRITICAL"}  # production.ini's format cuts them to 5 characters


class Setup:
    def __init__(self, name, environ, duration, work):
        self.name, self.environ, self.duration, self.work = name, environ, duration, work
        self.threads = production_setting("server:main", "threads")
        self.floor_url = None
        self.floor_runs = {connections: [] for connections in CONNECTIONS}  # req/s of each floor run
        self.rows = []
        self.rss = {}  # server: MiB at its end
        self.log = Counter()  # lines of the servers' logs, by level and logger
        self.customers = self.hashing = None
        self.scale = {}

    # -------------------------------------------------------- plumbing

    def server(self, checkout=None, **extra):
        return ServerProcess(os.path.basename(PRODUCTION_INI), args=("-q",), checkout=checkout, **dict(self.environ, **extra))

    def admin(self, *command, checkout=None, **extra):
        """A console script of the project on production.ini with this setup's environment (of
        another ``checkout`` of the project: its .venv, its production.ini)."""
        env = child_environ(**dict(self.environ, **extra))
        # a copy, as the servers run on: no .env of the checkout reaches it
        ini = copy_ini("production.ini", tempfile.mkdtemp(dir=self.work), checkout or ROOT)
        command = [script(command[0], checkout), ini, *command[1:]]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)

    def list_file(self, items):
        """A list for wrk.lua, one item a line (tokens are too many for the environment), named by its content."""
        text = "\n".join(items) + "\n"
        path = os.path.join(self.work, hashlib.sha1(text.encode()).hexdigest()[:16] + ".txt")
        with open(path, "w") as out:
            out.write(text)
        return path

    def get_env(self, paths, token=None):
        env = {"BENCH_PATHS": self.list_file(paths)}
        if token:
            env["BENCH_TOKEN"] = token
        return env

    def settle(self, server):
        """Let the server finish what a run left queued: logins wait in their own queue while
        reads are answered at once, so wait until the server's CPU is idle."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            before = cpu_seconds(server.process.pid)
            time.sleep(0.5)
            if cpu_seconds(server.process.pid) - before < 0.05:
                return

    def run_floor(self, connections):
        rps = wrk(self.floor_url, self.duration, connections, self.get_env(["/"])).rps
        self.floor_runs[connections].append(rps)
        print("  %-40s c=%-3d %6.0f req/s" % ("floor", connections, rps), flush=True)

    def floor(self, connections):
        """The median of the floor runs: one run's figure moves with what else the machine did then."""
        return statistics.median(self.floor_runs[connections])

    def add(self, scenario, connections, figures, target=None):
        self.rows.append(Row(scenario, connections, figures, target or target_for(scenario, connections)))
        print("  %-40s c=%-3d %6.0f req/s  p99 %7.1f ms  non-2xx %d  5xx %d  timeouts %d" % (
            scenario, connections, figures.rps, figures.p99, figures.unexpected, figures.status_5xx, figures.timeouts), flush=True)

    def measure(self, server, scenario, connections, env, target=None):
        """A floor run, then the scenario's; the server settles before whatever comes next."""
        self.run_floor(connections)
        figures = wrk(server.url, self.duration, connections, env)
        self.settle(server)
        self.add(scenario, connections, figures, target)
        return figures

    def finish(self, server, label):
        """Note the server's RSS, stop it, and count its log lines: proof that it logged as production does."""
        self.rss[label] = rss_mib(server.process.pid)
        for level, logger in LOG_LINE.findall(server.stop()):
            self.log["%s %s" % (LEVELS.get(level, level), logger)] += 1

    # -------------------------------------------------------- the run

    def run(self):
        print("== %s" % self.name, flush=True)
        self.prepare()
        with floor_server(self.threads) as self.floor_url:
            self.main_server()
            self.null_cache_server()
        for row in self.rows:
            row.floor = self.floor(row.connections)

    def prepare(self, checkout=None, **extra):
        self.admin("cinema-migrate", checkout=checkout, **extra)
        manager = ("--username", "manager", "--role", "manager", "--age", "40")
        self.admin("cinema-admin", "create-user", *manager, checkout=checkout, CINEMA_ADMIN_PASSWORD=PASSWORD, **extra)

    def code_ab(self, before, before_database, rounds):
        """The scenarios of the project's targets at AB_CONNECTIONS, served by this code and by the
        ``before`` checkout (its own .venv, production.ini and database ``before_database``).
        Each round runs every scenario on both versions back to back (which goes first alternates
        round by round), each run beside a floor run of its own: the two runs of a pair meet the
        same moment of a shared machine. ``self.code`` is ``{scenario: {side: [answers of the
        expected status per second]}}``; ``self.code_cpu`` the same with the server's CPU microseconds per
        answer of the run (user plus system time of the server process over the wrk run, divided
        by its answers), which a busy neighbour moves far less than a rate."""
        print("== %s: code A/B against %s" % (self.name, before), flush=True)
        self.prepare()
        self.prepare(checkout=before, DATABASE_URL=before_database)
        self.code, self.code_cpu, self.code_switches = {}, {}, {}
        with floor_server(self.threads) as self.floor_url, self.server() as after, \
                self.server(checkout=before, DATABASE_URL=before_database) as earlier:
            sides = [("after", after, Seed(after)), ("before", earlier, Seed(earlier))]
            # each side's next fresh pair, of the sessions without a seat plan and of those with one
            offsets = {(side, scenario): 0 for side in ("after", "before") for scenario in (PURCHASES, SEATED_PURCHASES)}
            envs = {side: dict(self.code_ab_reads(server, seed)) for side, server, seed in sides}
            for number in range(rounds):
                for scenario in list(envs["after"]) + [PURCHASES, SEATED_PURCHASES]:
                    for side, server, seed in sides if number % 2 == 0 else sides[::-1]:
                        env = envs[side].get(scenario) or self.code_ab_purchase_env(seed, scenario, offsets[side, scenario])
                        self.run_floor(AB_CONNECTIONS)
                        cpu, switches = cpu_seconds(server.process.pid), context_switches(server.process.pid)
                        figures = wrk(server.url, self.duration, AB_CONNECTIONS, env)
                        cpu = cpu_seconds(server.process.pid) - cpu
                        switches = context_switches(server.process.pid) - switches
                        self.settle(server)
                        if scenario in (PURCHASES, SEATED_PURCHASES):
                            offsets[side, scenario] = figures.next_pair
                        ratio = figures.ok_rps / self.floor_runs[AB_CONNECTIONS][-1]
                        cpu_us = 1e6 * cpu / max(figures.requests, 1)
                        per_answer = switches / max(figures.requests, 1)
                        self.code.setdefault(scenario, {"after": [], "before": []})[side].append(figures.ok_rps)
                        self.code_cpu.setdefault(scenario, {"after": [], "before": []})[side].append(cpu_us)
                        self.code_switches.setdefault(scenario, {"after": [], "before": []})[side].append(per_answer)
                        print("  %-40s %-6s c=%-3d %6.0f req/s  ratio %.3f  cpu %5.0f us/answer  %4.1f switches/answer"
                              "  non-2xx %d" % (scenario, side, AB_CONNECTIONS, figures.rps, ratio, cpu_us, per_answer,
                                                figures.unexpected), flush=True)
            self.finish(after, "A/B, this code")
            self.finish(earlier, "A/B, the code before")

    def code_ab_reads(self, server, seed):
        customer = seed.customers[0]
        reads = [
            ("cached list", ["/v1/movies?perPage=20"]),
            ("movie by id", ["/v1/movies/%s" % movie_id for movie_id in seed.movies]),
            ("session list", ["/v1/movie-sessions?perPage=20"]),
        ]
        for scenario, paths in reads:
            for path in paths:  # warm: cached reads measure hits from their first request
                api(server, "GET", path, 200, token=customer)
            yield scenario, self.get_env(paths, customer)
        yield "title search (misses)", {"BENCH_MODE": "search", "BENCH_TOKEN": customer}

    def code_ab_purchase_env(self, seed, scenario, offset):
        sessions = seed.seated_sessions if scenario == SEATED_PURCHASES else seed.sessions
        fastest = max(max(runs) for runs in self.floor_runs.values() if runs)
        seed.add_customers(math.ceil((offset + fastest * self.duration + PAIR_GAP) / len(sessions)))
        return {"BENCH_MODE": "purchase", "BENCH_EXPECT": "201", "BENCH_OFFSET": str(offset),
                "BENCH_TOKENS": self.list_file(seed.customers), "BENCH_SESSIONS": self.list_file(sessions)}

    def metrics_ab(self, rounds):
        """The cached list with metrics on and off (see the module docstring): ``{side: [ratio to
        the floor run just before]}``, and the on side's count of the list's 200s."""
        print("== %s: metrics A/B" % self.name, flush=True)
        self.prepare()
        self.ab = {"on": [], "off": []}
        with floor_server(self.threads) as self.floor_url, \
                self.server(METRICS_ENABLED="true") as on, self.server(METRICS_ENABLED="false") as off:
            manager = login(on, "manager")
            movies = [{"title": "Bench movie %03d" % index, "ageRestriction": index % 19} for index in range(MOVIES)]
            api(on, "POST", "/v1/movies/bulk", 201, {"movies": movies}, manager)
            path = "/v1/movies?perPage=20"
            for server in (on, off):
                api(server, "GET", path, 200, token=manager)  # warm: hits from the first request
            env = self.get_env([path], manager)
            sides = [("on", on), ("off", off)]
            for number in range(rounds):
                for side, server in sides if number % 2 == 0 else sides[::-1]:
                    self.run_floor(AB_CONNECTIONS)
                    figures = wrk(server.url, self.duration, AB_CONNECTIONS, env)
                    self.settle(server)
                    self.ab[side].append(figures.rps / self.floor_runs[AB_CONNECTIONS][-1])
                    print("  %-40s c=%-3d %6.0f req/s  ratio %.3f" % ("cached list, metrics " + side, AB_CONNECTIONS,
                                                                       figures.rps, self.ab[side][-1]), flush=True)
            with urllib.request.urlopen(on.url + "/metrics", timeout=10) as response:
                scraped = response.read().decode()
            self.ab_counted = sum(float(line.rsplit(" ", 1)[1]) for line in scraped.splitlines()
                                  if line.startswith('cinema_http_requests_total{method="GET",route="/v1/movies",status="200"'))
            self.finish(on, "metrics on")
            self.finish(off, "metrics off")

    def main_server(self):
        with self.server(BCRYPT_ROUNDS=str(LOGIN_ROUNDS)) as server:
            seed = Seed(server)
            self.reads(server, seed)
            self.purchases(server, seed)
            self.customers = len(seed.customers)
            self.logins(server)
            self.reads_under_login_load(server, seed.customers[1])
            self.finish(server, "of the scenarios")

    def null_cache_server(self):
        with self.server(CACHE_URL="null://") as server:
            token = login(server, LOGIN_USER)
            self.measure_connections(server, "list, null cache backend", self.get_env(["/v1/movies?perPage=20"], token))
            self.scale_cases(server, token)
            self.finish(server, "of the scale cases (null cache, 100,000 movies)")

    def measure_connections(self, server, scenario, env):
        for connections in CONNECTIONS:
            self.measure(server, scenario, connections, env)

    def reads(self, server, seed):
        customer = seed.customers[0]
        gets = [
            ("GET /", ["/"], None),
            ("GET /v1/health", ["/v1/health"], None),
            ("cached list", ["/v1/movies?perPage=20"], customer),
            ("movie by id", ["/v1/movies/%s" % movie_id for movie_id in seed.movies], customer),
            ("session list", ["/v1/movie-sessions?perPage=20"], customer),
        ]
        for scenario, paths, token in gets:
            for path in paths:  # warm: cached reads measure hits from their first request
                api(server, "GET", path, 200, token=token)
            self.measure_connections(server, scenario, self.get_env(paths, token))
        # not warmed: most substrings are searched for the first time
        self.measure_connections(server, "title search (misses)", {"BENCH_MODE": "search", "BENCH_TOKEN": customer})

    def purchases(self, server, seed):
        offset = 0
        for connections in CONNECTIONS:
            figures = self.purchase_run(server, seed, PURCHASES, seed.sessions, offset, connections)
            # the next run starts past every pair this one sent, answered or not, by either thread
            offset = figures.next_pair
        # the sessions with a seat plan have pairs of their own: fresh from the first
        self.purchase_run(server, seed, SEATED_PURCHASES, seed.seated_sessions, 0, TARGET_CONNECTIONS)

    def purchase_run(self, server, seed, scenario, sessions, offset, connections):
        # purchases stay far below the bare floor: customers for every pair a run at its pace could ask for
        fastest = max(max(runs) for runs in self.floor_runs.values())
        seed.add_customers(math.ceil((offset + fastest * self.duration + PAIR_GAP) / len(sessions)))
        env = {"BENCH_MODE": "purchase", "BENCH_EXPECT": "201", "BENCH_OFFSET": str(offset),
               "BENCH_TOKENS": self.list_file(seed.customers), "BENCH_SESSIONS": self.list_file(sessions)}
        return self.measure(server, scenario, connections, env)

    def logins(self, server):
        self.hashing = hashing_rate(LOGIN_ROUNDS, self.duration)  # while the server is idle
        self.measure(server, "login cost %d" % LOGIN_ROUNDS, LOGIN_CONNECTIONS, LOGIN_ENV, hashing_target(self.hashing))

    def reads_under_login_load(self, server, token):
        env = self.get_env(["/v1/movies?perPage=20"], token)
        self.measure(server, IDLE_READS, LOGIN_CONNECTIONS, env)
        hammer = {}
        thread = threading.Thread(target=lambda: hammer.update(figures=wrk(server.url, self.duration + 2, HAMMER_CONNECTIONS, LOGIN_ENV)))
        thread.start()
        time.sleep(1)  # the reads start once the logins hold their threads and fill their queue
        loaded = wrk(server.url, self.duration, LOGIN_CONNECTIONS, env)
        thread.join()
        self.settle(server)
        self.add(LOADED_READS, LOGIN_CONNECTIONS, loaded)
        self.add(HAMMER, HAMMER_CONNECTIONS, hammer["figures"])

    def scale_cases(self, server, token):
        """Bulk creates, and list latency with the cache off at 200 and at SCALE_MOVIES movies."""
        manager = login(server, "manager")
        self.scale["list p50 at 200 movies (ms)"] = p50_ms(server, "/v1/movies", token)
        self.scale["bulk create 1,000 movies, one request (s)"] = bulk_create(server, manager, "Scale one")
        self.scale["bulk create 10,000 movies, ten requests (s)"] = sum(
            bulk_create(server, manager, "Scale ten %d" % batch) for batch in range(10))
        created = MOVIES + 11 * BULK_SIZE
        for batch in range(math.ceil((SCALE_MOVIES - created) / BULK_SIZE)):
            bulk_create(server, manager, "Fill %03d" % batch)
        self.scale["list p50 at 100,000 movies (ms)"] = p50_ms(server, "/v1/movies", token)
        self.scale["title search p50 at 100,000 movies (ms)"] = p50_ms(server, "/v1/movies?title=fill%20042%2000099", token)
        self.scale["page 5,000 p50 at 100,000 movies (ms)"] = p50_ms(server, "/v1/movies?page=5000&perPage=20", token)
        self.scale.update(json_cap_costs(server))
        self.scale.update(hostile_body_costs(server))


def json_cap_costs(server):
    """What the cap on JSON values (10,000 per body) costs an accepted body, and what a body of
    cheap values over it costs the server now that it is refused before parsing."""
    movies = [{"title": "Cap %06d" % index, "ageRestriction": index % 22} for index in range(BULK_SIZE)]
    accepted = json.dumps({"movies": movies})  # 3,002 values, as the bulk create sends them
    flood = "[" + ",".join(["[]"] * 330_000) + "]"  # ~1 MiB of empty arrays
    figures = {
        "JSON value cap: scan of a 1,000-movie bulk body (ms)": best_ms(lambda: values_exceed(accepted, MAX_JSON_VALUES)),
        "json.loads of the same body, for comparison (ms)": best_ms(lambda: json.loads(accepted)),
        "json.loads of 330,000 empty arrays, what the cap spares (ms)": best_ms(lambda: json.loads(flood), repeat=3),
    }
    body = ('{"refreshToken": %s}' % flood).encode()
    timings = []
    for _ in range(10):
        request = urllib.request.Request(server.url + "/v1/auth/refresh", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except urllib.error.HTTPError as error:
            error.read()
            if error.code != 400:
                raise RuntimeError("a body over the cap answered %d, not 400" % error.code) from None
        timings.append((time.perf_counter() - started) * 1000)
    figures["POST /v1/auth/refresh with 330,000 empty arrays (~1 MiB), refused: p50 (ms)"] = statistics.median(timings)
    return figures


def hostile_body_costs(server):
    """The server's CPU for each body of cinema_api.testing.adversarial_bodies (about 1 MiB, built
    to defeat a backtracking check), sent to login and refresh: the worst, and the body it was."""
    worst, worst_name = 0.0, None
    for name, text in adversarial_bodies().items():
        body = text.encode("utf-8", "surrogatepass")
        for path in ("/v1/auth/refresh", "/v1/auth/login"):
            request = urllib.request.Request(server.url + path, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            before = cpu_seconds(server.process.pid)
            try:
                urllib.request.urlopen(request, timeout=30).read()
            except urllib.error.HTTPError as error:
                error.read()
                if error.code not in (400, 401):
                    raise RuntimeError("%s to %s answered %d" % (name, path, error.code)) from None
            spent = cpu_seconds(server.process.pid) - before
            if spent >= worst:
                worst, worst_name = spent, "%s, %s" % (name, path)
    return {"worst hostile body of ~1 MiB (%s): server CPU (ms, target < 100)" % worst_name: worst * 1000}


def best_ms(function, repeat=20):
    """The fastest of ``repeat`` calls, in ms: the cost itself, without what else the machine did."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def p50_ms(server, path, token, count=40):
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        api(server, "GET", path, 200, token=token)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def bulk_create(server, manager, prefix):
    """Seconds to create BULK_SIZE movies in one request."""
    movies = [{"title": "%s %06d" % (prefix, index), "ageRestriction": index % 22} for index in range(BULK_SIZE)]
    started = time.perf_counter()
    api(server, "POST", "/v1/movies/bulk", 201, {"movies": movies}, manager)
    return time.perf_counter() - started


# ---------------------------------------------------------------- report


def tree_state(root=ROOT):
    """The commit of the checkout at ``root`` (this one by default), and whether its work tree
    differed from it."""
    def git(*command):
        return subprocess.run(["git", *command], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return "commit %s%s" % (git("rev-parse", "--short", "HEAD"), " with uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "a tree outside git"


def header(args):
    lines = [
        "# Benchmark results",
        "",
        "Written by `%s` on %s, from %s, on a machine with %d cores. wrk -t%d --timeout %ds,"
        " %d s per run, on loopback: the load generator shares the cores with the server. How to read"
        " this: bench/NOTES.md." % (
            args.command, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), tree_state(), os.cpu_count(),
            WRK_THREADS, WRK_TIMEOUT_SEC, args.duration),
    ]
    if args.ab_code:
        lines[-1] += " CHECKOUT: a checkout of %s." % args.ab_label
    return lines


def percent(share):
    return "–" if share is None else "{:.0%}".format(share)


def scenario_line(row):
    f = row.figures
    target = row.target.text if row.target else ""
    result = row.target.judge(row) if row.target else ""
    return "| %s | %d | %.0f | %.0f | %.2f | %s | %s | %s | %.1f | %.1f | %s | %d | %d (%d) | %d | %d |" % (
        row.scenario, row.connections, f.rps, row.floor, row.ratio, NESTJS_RATIOS.get(row.scenario, ""), target, result,
        f.p50, f.p99, percent(f.hit_share), f.unexpected, f.status_5xx, f.status_503, f.timeouts, f.socket_errors)


def check_line(check, figure, target="", ok=None):
    return "| %s | %s | %s | %s |" % (check, figure, target, "" if ok is None else verdict(ok))


def check_lines(setup):
    """The targets that span the scenarios, and the reads' latency under login load."""
    rows = {row.scenario: row for row in setup.rows}
    lowest = min((row for row in setup.rows if row.scenario in CACHED_READS), key=lambda row: row.ratio)
    # The hammer sends 64 logins at once, again as soon as each is answered, to a server that
    # hashes ~30 a second: the contract answers a login that cannot start hashing within 5 s
    # with 503 and Retry-After. Those refusals are the load's, reported on their own line;
    # every other 5xx counts, the hammer's other 5xx included.
    refusals = sum(row.figures.status_503 for row in setup.rows if row.scenario == HAMMER)
    errors = sum(row.figures.status_5xx for row in setup.rows) - refusals
    timeouts = sum(row.figures.timeouts for row in setup.rows)
    idle, loaded = rows[IDLE_READS].figures.p99, rows[LOADED_READS].figures.p99
    unseated = next(row for row in setup.rows if row.scenario == PURCHASES and row.connections == TARGET_CONNECTIONS)
    seat_share = rows[SEATED_PURCHASES].figures.ok_rps / unseated.figures.ok_rps
    lines = [
        "| check | figure | target | verdict |",
        "|---|---|---|---|",
        check_line("cached reads, the lowest ratio to the floor at any connection count", "%.2f (%s, %d conns)" % (
            lowest.ratio, lowest.scenario, lowest.connections), ">= %.2f" % CACHED_READS_MINIMUM, lowest.ratio >= CACHED_READS_MINIMUM),
        check_line("5xx answers, all scenarios (the hammer's contractual 503s apart)", "%d" % errors, "0", errors == 0),
        check_line("logins of the hammer refused with 503 (could not start hashing within 5 s)", "%d" % refusals),
        check_line("timeouts, all scenarios", "%d" % timeouts, "0", timeouts == 0),
        check_line("purchases with seats / without, at %d conns (201s per second)" % TARGET_CONNECTIONS, "%.2f" % seat_share,
                   ">= %.2f (seat assignment costs at most a third)" % SEAT_COST_MINIMUM, seat_share >= SEAT_COST_MINIMUM),
    ]
    lines += [check_line("RSS of the server %s, at its end (MiB)" % server, "%.1f" % rss, "< %d" % RSS_LIMIT_MIB, rss < RSS_LIMIT_MIB)
              for server, rss in setup.rss.items()]
    lines.append(check_line("cached list p99 at %d conns: while %d conns hammer login / idle" % (LOGIN_CONNECTIONS, HAMMER_CONNECTIONS),
                            "%.1f / %.1f ms = %.1fx" % (loaded, idle, loaded / idle)))
    return lines


def floor_summary(setup):
    return ", ".join("%d conns %.0f (%.0f-%.0f over %d runs)" % (connections, setup.floor(connections), min(runs), max(runs), len(runs))
                     for connections, runs in setup.floor_runs.items())


def setup_section(setup):
    logged = ", ".join("%d %s" % (count, kind) for kind, count in setup.log.most_common())
    environ = ", ".join("%s=%s" % (name, "(random)" if name == "JWT_SECRET" else value.replace(setup.work, "<tmp>"))
                        for name, value in setup.environ.items())
    lines = [
        "## %s" % setup.name,
        "",
        "- Floor: bench/floor.py (a 2-byte body) under waitress with production.ini's %s threads, run with the same"
        " wrk settings right before each scenario run. `floor req/s` is the median of those runs at the"
        " connections of the row: %s." % (setup.threads, floor_summary(setup)),
        "- The API: production.ini with its own logging. Lines its servers logged, by level and logger: %s." % logged,
        "- Environment given: %s; BCRYPT_ROUNDS=%d to the server of the scenarios, CACHE_URL=null:// to the server"
        " of the scale cases." % (environ, LOGIN_ROUNDS),
        "- Seeded: %d customers, %d movies, %d sessions without a seat plan and %d in rooms of %d x %d seats." % (
            setup.customers, MOVIES, MOVIES * SESSIONS_PER_MOVIE, MOVIES * SESSIONS_PER_MOVIE, SEATED_ROWS, SEATED_SEATS_PER_ROW),
        "- Hashing rate: %.1f hashes/s (bcrypt.checkpw at cost %d, %d processes), measured just before the logins,"
        " the server idle." % (
            setup.hashing, LOGIN_ROUNDS, os.cpu_count()),
        "",
        "| scenario | conns | req/s | floor req/s | ratio to floor | NestJS ratio | target | verdict | p50 ms | p99 ms"
        " | cache hits | non-2xx | 5xx (503) | timeouts | socket errors |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [scenario_line(row) for row in setup.rows]
    lines += [""] + check_lines(setup)
    lines += ["", "### Scale (null cache backend)", "", "| case | value |", "|---|---:|"]
    lines += ["| %s | %.3f |" % item for item in setup.scale.items()]
    return lines


def metrics_ab_section(setup):
    on, off = statistics.median(setup.ab["on"]), statistics.median(setup.ab["off"])
    return [
        "## %s: cached list, metrics on and off" % setup.name,
        "",
        "%d rounds at %d connections, the order alternating; each run's ratio is to the floor run right before it."
        " The server with metrics counted %d answers of the list." % (len(setup.ab["on"]), AB_CONNECTIONS, setup.ab_counted),
        "",
        "| metrics | ratios to the floor | median |",
        "|---|---|---:|",
        "| on | %s | %.3f |" % (", ".join("%.3f" % r for r in setup.ab["on"]), on),
        "| off | %s | %.3f |" % (", ".join("%.3f" % r for r in setup.ab["off"]), off),
        "",
        "On / off: %.3f (%+.1f %%); the contract allows a fall of at most 3 %%." % (on / off, 100 * (on / off - 1)),
    ]


def code_ab_section(setup, before):
    floor = setup.floor(AB_CONNECTIONS)
    lines = [
        "## %s: this code against %s" % (setup.name, before),
        "",
        "At %d connections. Every round runs each scenario on both versions back to back, which goes"
        " first alternating round by round, each run after a floor run. The ratios (answers of the"
        " expected status per second) are to the median of the A/B's floor runs (%.0f req/s; the runs"
        " spread from %.0f to %.0f): one floor run moves more than the difference sought. `paired` is"
        " the median over rounds of this code's rate over the code before's in the same round (the two"
        " runs of a pair meet the same moment of the machine); `CPU us/answer` is the server process's CPU"
        " time over the run divided by its answers, `switches/answer` its threads' context switches"
        " (medians)." % (AB_CONNECTIONS, floor, min(setup.floor_runs[AB_CONNECTIONS]), max(setup.floor_runs[AB_CONNECTIONS])),
        "",
        "| scenario | before | this code | median before | median this code | change | paired | CPU us/answer before"
        " | this code | CPU change | switches/answer before | this code |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, rates in setup.code.items():
        sides = {side: [rate / floor for rate in rates[side]] for side in rates}
        b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
        paired = statistics.median(x / y for x, y in zip(sides["after"], sides["before"], strict=True))
        cpu = setup.code_cpu[scenario]
        cb, ca = statistics.median(cpu["before"]), statistics.median(cpu["after"])
        switches = setup.code_switches[scenario]
        lines.append("| %s | %s | %s | %.3f | %.3f | %+.1f %% | %+.1f %% | %.0f | %.0f | %+.1f %% | %.1f | %.1f |" % (
            scenario, ", ".join("%.3f" % r for r in sides["before"]), ", ".join("%.3f" % r for r in sides["after"]),
            b, a, 100 * (a / b - 1), 100 * (paired - 1), cb, ca, 100 * (ca / cb - 1),
            statistics.median(switches["before"]), statistics.median(switches["after"])))
    return lines


def scale_header(args):
    return [
        "# Scale: the same requests at 1,000 and at 1,000,000 movies",
        "",
        "Written by `%s` on %s, from %s, on a machine with %d cores. Sequential requests on loopback, one"
        " server at a time, production.ini as the benchmark runs it. How to read this: bench/NOTES.md (the scale suite)." % (
            args.command, datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), tree_state(), os.cpu_count()),
    ]


def report(setups, args):
    if args.scale:
        lines = scale_header(args)
        for setup in setups:
            lines += [""] + scale.section(setup)
        return "\n".join(lines) + "\n"
    lines = header(args)
    for setup in setups:
        if args.ab_code:
            section = code_ab_section(setup, args.ab_label)
        elif args.ab_metrics:
            section = metrics_ab_section(setup)
        else:
            section = setup_section(setup)
        lines += [""] + section
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def postgres_database(suffix=""):
    """A database of the run's own (cinema_bench_<pid>_<random>_main, or ``suffix`` in place of
    ``_main``), dropped at the end: a context manager yielding its URL."""
    return PostgresServer(POSTGRES_ADMIN_URL, "cinema_bench_%s_" % RUN_TAG).database(suffix.lstrip("_") or "main")


def sqlite_setup(stack, work):
    return "SQLite + memory", {"DATABASE_URL": "sqlite:///%s/bench.sqlite" % work, "CACHE_URL": "memory://"}


@contextlib.contextmanager
def redis_keys():
    """A key prefix of the run's own in REDIS_URL, its keys deleted at the end (nothing else is)."""
    keys = RedisPrefix(REDIS_URL, "cinema-bench-" + RUN_TAG.replace("_", "-"))
    try:
        yield keys
    finally:
        keys.clean()


def postgres_setup(stack, work):
    # The catalogue versions of a new database start again, so the entries of an earlier run
    # could match: the run's own key prefix holds none.
    return "PostgreSQL + Redis", {"DATABASE_URL": stack.enter_context(postgres_database()), **stack.enter_context(redis_keys()).environ}


SETUPS = {"sqlite": sqlite_setup, "postgres": postgres_setup}


def server_environ():
    """What the servers get besides production.ini: see the module docstring."""
    for name in [*SCHEMA, "shutdown_timeout", "cpu_affinity"]:
        os.environ.pop(name.upper(), None)  # production.ini decides, not the shell that started the run
    return {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "JWT_EXPIRES_IN_SEC": "86400",
        "LOGIN_LIMIT_PER_ADDRESS": "1000000",
        "LOGIN_LIMIT_PER_USERNAME": "1000000",
    }


def seconds(text):
    value = int(text)
    if not 1 <= value <= MAX_DURATION_SEC:
        raise argparse.ArgumentTypeError("between 1 and %d seconds" % MAX_DURATION_SEC)
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=seconds, default=10, help="seconds per wrk run, at most %d (default 10)" % MAX_DURATION_SEC)
    parser.add_argument("--setups", default="sqlite,postgres", help="comma-separated, of: sqlite, postgres (default: both)")
    parser.add_argument("--ab-metrics", type=int, metavar="ROUNDS", help="only the metrics A/B, in this many rounds")
    parser.add_argument("--ab-code", metavar="CHECKOUT",
                        help="only an A/B of this code against another checkout of the project (with its own .venv)")
    parser.add_argument("--ab-rounds", type=int, default=3, help="rounds of the code A/B (default 3)")
    parser.add_argument("--scale", action="store_true",
                        help="only the scale suite (bench/scale.py): each request at 1,000 and at 1,000,000 movies")
    parser.add_argument("--scale-divisor", type=int, default=1, metavar="N",
                        help="the scale suite's full size divided by N, for a smoke run (default 1)")
    parser.add_argument("--output", help="the report to write (default: bench/results/<YYYY-MM-DD>-<setups>.md;"
                        " with --scale, <YYYY-MM-DD>-scale.md)")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    # the other checkout by its commit (args.ab_label), not by a path of this machine
    shown = ["CHECKOUT" if index and given[index - 1] == "--ab-code" else
             "--ab-code=CHECKOUT" if argument.startswith("--ab-code=") else argument
             for index, argument in enumerate(given)]
    args.command = shlex.join(["bench/run.py", *shown])
    args.setups = list(dict.fromkeys(args.setups.split(",")))  # each setup once, in the order given
    unknown = set(args.setups) - set(SETUPS)
    if unknown:
        parser.error("unknown setups: %s" % ", ".join(sorted(unknown)))
    if args.scale_divisor < 1:
        parser.error("--scale-divisor: 1 or more")
    name = "-".join(["scale"] if args.scale and len(args.setups) == len(SETUPS) else ["scale"] * args.scale + args.setups)
    args.output = args.output or os.path.join(HERE, "results", "%s-%s.md" % (date.today().isoformat(), name))
    return args


def scale_setup(key, stack, work, environ):
    """The scale suite's setup ``key``: its databases come one per size (bench/scale.py)."""
    if key == "sqlite":
        name, database, cache = "SQLite + memory", scale.sqlite_database(work), {"CACHE_URL": "memory://"}
    else:
        name, database, cache = "PostgreSQL + Redis", scale.postgres_database(postgres_database), stack.enter_context(redis_keys()).environ
    return name, Setup(name, dict(environ), 0, work), database, cache


def stop_on_sigterm():
    """SIGTERM unwinds like Ctrl-C: servers stopped, databases dropped, keys deleted, files removed."""
    def stop(number, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, stop)


def main(argv=None):
    args = parse_args(argv)
    stop_on_sigterm()
    if not args.scale and not shutil.which("wrk"):
        sys.exit("bench: wrk is missing (Debian: apt-get install wrk)")
    environ = server_environ()
    if args.ab_code:
        args.ab_label = tree_state(os.path.abspath(args.ab_code))  # the report names it so
    setups = []
    with tempfile.TemporaryDirectory(prefix="cinema-bench-") as work, contextlib.ExitStack() as stack:
        for key in args.setups:
            if args.scale:
                name, setup, database, cache = scale_setup(key, stack, work, environ)
                setups.append(scale.ScaleSetup(name, setup, database, cache, PASSWORD, args.scale_divisor))
                setups[-1].run()
                continue
            name, own = SETUPS[key](stack, work)
            setups.append(Setup(name, dict(environ, **own), args.duration, work))
            if args.ab_code:
                before = "sqlite:///%s/before.sqlite" % work if key == "sqlite" else stack.enter_context(postgres_database("_before"))
                if key == "postgres":  # the code before may know no key prefix: a Redis of the run's own
                    setups[-1].environ["CACHE_URL"] = stack.enter_context(RedisServer()).url
                setups[-1].code_ab(os.path.abspath(args.ab_code), before, args.ab_rounds)
            elif args.ab_metrics:
                setups[-1].metrics_ab(args.ab_metrics)
            else:
                setups[-1].run()
    text = report(setups, args)  # before the report's file is opened: it may be a tracked file
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as out:
        out.write(text)
    print("written: %s" % args.output)


if __name__ == "__main__":
    main()
