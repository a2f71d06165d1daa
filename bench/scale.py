"""The scale suite of ``bench/run.py --scale``: does a request cost the same at 1,000 movies as at
1,000,000?

For each setup, two sizes, each in a database of its own (SQLite: a file of the run's temporary
folder; PostgreSQL: ``cinema_bench_<tag>_scale_<size>``, dropped when the size is done):

- small: 1,000 movies, 1,000 screenings, 1,000 tickets, all of one customer;
- full: 1,000,000 movies, 100,000 screenings, 1,000,000 tickets (1,000 customers x 1,000).

The shape is the same at both sizes (:class:`Shape`): half the screenings are in rooms of 10 x 20
seats (rooms 51-100, which exist; their tickets hold seats), half in rooms 1-50 without a Room (no
plan); one movie (the measured one) has 10 screenings, the others at most one; 5 movies have the
rare word "Zyzzyva" in their title; the measured customer has exactly 1,000 tickets.

``cinema-migrate`` makes the schema and ``cinema-admin`` the manager, as for the other runs;
then the rows are written straight through SQL in one transaction (SQLite: executemany;
PostgreSQL: COPY), as the app writes them (UUIDs v4, folded titles, booking days, seat plans, naive
UTC datetimes in Pony's form, bcrypt hashes of the bench's password at cost 10), triggers on.
PostgreSQL then gets the VACUUM ANALYZE that autovacuum would run after such a load; SQLite is left
as the app leaves it (the app never runs ANALYZE).

Each size is measured by two servers in turn, on production.ini as the benchmark runs it:
CACHE_URL=null:// (uncached), then the setup's cache (cached: each path read by the warm-ups
first, so a cached route answers hits). Each scenario: WARMUPS requests, then MEASURED requests
one after the other on one keep-alive connection, timed from the request to the body's last
byte; p50 and p90. The servers' RSS at their end and their peak (VmHWM). Nothing is asserted.
"""

import contextlib
import io
import json
import math
import os
import sqlite3
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.client import HTTPConnection
from urllib.parse import urlsplit

import bcrypt
import psycopg2
from pony.utils import datetime2timestamp

from cinema_api.movies.entities import TIMESLOTS, fold_title, normalise_title

WARMUPS, MEASURED = 5, 40
LIMIT = 2.0  # full p50 / small p50
RSS_LIMIT_MIB = 100
PER_PAGE, TICKETS_PER_PAGE = 25, 100
RARE_WORD = "Zyzzyva"
BCRYPT_COST = 10  # the benchmark's BCRYPT_ROUNDS: the hash the server would have written
#: Rooms 1..50 have no Room (screenings without a plan); rooms 51..100 have one of ROWS x SEATS.
PLANLESS_ROOMS, SEATED_ROOMS, ROWS, SEATS = range(1, 51), range(51, 101), 10, 20
#: Every row is dated from here, one second apart (created_at, updated_at, purchased_at): in the past.
EPOCH = datetime(2025, 1, 1)
BUYERS = ("buyer.uncached", "buyer.cached")


@dataclass(frozen=True)
class Shape:
    """One size of the scale suite. Screening ``n`` is seated when ``n`` is even; customer ``c``'s
    ``k``-th ticket is for screening ``(c + stride * k) % screenings``: a customer never holds two
    tickets of a screening, and a screening's tickets (customers ``c`` congruent modulo ``stride``)
    take seats ``c // stride``, distinct."""

    name: str
    movies: int
    screenings: int
    customers: int  # customers with tickets; customer 0 is the measured one
    tickets_each: int = 1000
    rare: int = 5  # titles with RARE_WORD
    measured_sessions: int = 10  # screenings of movie 0, the measured movie

    @property
    def stride(self):
        return self.screenings // self.tickets_each

    @property
    def tickets(self):
        return self.customers * self.tickets_each

    def check(self):
        if not (self.stride >= 1 and self.customers <= self.stride * ROWS * SEATS):
            raise ValueError("%s: %d customers do not fit %d screenings of %d seats" % (self.name, self.customers, self.screenings, ROWS * SEATS))
        if not self.measured_sessions < self.screenings <= self.movies:
            raise ValueError("%s: each screening needs a movie of its own" % self.name)
        if self.screenings // 2 > len(PLANLESS_ROOMS) * len(TIMESLOTS) * 3650:
            raise ValueError("%s: too many screenings for ten years of rooms" % self.name)

    def rare_movies(self):
        """The indexes of the movies whose title has RARE_WORD: spread over the catalogue."""
        return {self.movies * i // self.rare + self.movies // (2 * self.rare) for i in range(self.rare)}

    def movie_of(self, n):
        """Screening ``n``'s movie: movie 0 has the first ``measured_sessions``, movie ``n`` the others."""
        return 0 if n < self.measured_sessions else n

    def screening_of(self, customer, k):
        return (customer + self.stride * k) % self.screenings

    def seat_of(self, customer):
        index = customer // self.stride
        return "%s%d" % (chr(ord("A") + index // SEATS), index % SEATS + 1)


def shapes(divisor=1):
    full = Shape("full", 1_000_000 // divisor, 100_000 // divisor, 1000 // divisor or 1)
    return [Shape("small", 1000, 1000, 1), full]


def title_of(n, rare):
    if n in rare:
        return "The %s Affair, reel %07d" % (RARE_WORD, n)
    if n % 10 == 3:
        return "Scène n° %07d" % n  # a title whose folded copy is not ASCII
    return "Scale movie %07d" % n


def slot_of(n, today):
    """Room, timeslot and start of screening ``n``: seated ones (even) in SEATED_ROOMS, the others
    in PLANLESS_ROOMS, each half walking rooms, then timeslots, then days from the day after
    tomorrow: no two live screenings share a room, timeslot and day."""
    rooms = SEATED_ROOMS if n % 2 == 0 else PLANLESS_ROOMS
    m = n // 2
    timeslot = TIMESLOTS[(m // len(rooms)) % len(TIMESLOTS)]
    day = today + timedelta(days=2 + m // (len(rooms) * len(TIMESLOTS)))
    start = datetime(day.year, day.month, day.day, int(timeslot[:2]))
    return rooms[m % len(rooms)], timeslot, start


# ---------------------------------------------------------------- rows


@dataclass
class Ids:
    """The ids the seed drew, for the rows that point at them and for the measured paths."""

    users: list = field(default_factory=list)  # customers, then BUYERS
    movies: list = field(default_factory=list)  # of movies 0 .. screenings - 1 only
    screenings: list = field(default_factory=list)


USER_COLUMNS = ("id", "username", "password_hash", "role", "age", "created_at", "updated_at")
ROOM_COLUMNS = ("number", "name", "seat_rows", "seats_per_row", "created_at", "updated_at")
MOVIE_COLUMNS = ("id", "title", "title_folded", "age_restriction", "created_at", "updated_at")
SESSION_COLUMNS = ("id", "movie_id", "date", "day", "timeslot", "room_number", "seat_rows", "seats_per_row",
                   "cancelled_at", "created_at", "updated_at")
TICKET_COLUMNS = ("id", "user_id", "session_id", "seat", "purchased_at", "is_used", "used_at", "cancelled_at")


def customer_names(shape):
    return ["scale%04d" % c for c in range(shape.customers)] + list(BUYERS)


def user_rows(shape, ids, password):
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()  # one hash, valid for all
    for n, username in enumerate(customer_names(shape)):
        ids.users.append(uuid.uuid4())
        at = EPOCH + timedelta(seconds=n)
        yield ids.users[-1], username, hashed, "customer", 30, at, at


def room_rows():
    for number in SEATED_ROOMS:
        yield number, "Room %d" % number, ROWS, SEATS, EPOCH, EPOCH


def movie_rows(shape, ids):
    rare = shape.rare_movies()
    for n in range(shape.movies):
        movie_id = uuid.uuid4()
        if n < shape.screenings:
            ids.movies.append(movie_id)
        title = normalise_title(title_of(n, rare))
        at = EPOCH + timedelta(seconds=n)
        yield movie_id, title, fold_title(title), n % 22, at, at


def session_rows(shape, ids, today):
    for n in range(shape.screenings):
        ids.screenings.append(uuid.uuid4())
        room, timeslot, start = slot_of(n, today)
        rows, seats = (ROWS, SEATS) if room in SEATED_ROOMS else (None, None)
        at = EPOCH + timedelta(seconds=n)
        yield ids.screenings[-1], ids.movies[shape.movie_of(n)], start, start.date(), timeslot, room, rows, seats, None, at, at


def ticket_rows(shape, ids):
    for k in range(shape.tickets_each):
        for customer in range(shape.customers):
            n = shape.screening_of(customer, k)
            seat = shape.seat_of(customer) if n % 2 == 0 else None
            at = EPOCH + timedelta(seconds=k * shape.customers + customer)
            yield uuid.uuid4(), ids.users[customer], ids.screenings[n], seat, at, False, None, None


# ---------------------------------------------------------------- writers


class SqliteWriter:
    """Rows into a SQLite file in one transaction, each value as Pony stores it (UUIDs as 16-byte
    blobs, datetimes as Pony's text, booleans as 0/1); foreign keys checked."""

    def __init__(self, path):
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in ("foreign_keys = ON", "journal_mode = MEMORY", "synchronous = OFF", "cache_size = -1048576"):
            self.connection.execute("PRAGMA " + pragma)
        self.connection.execute("BEGIN")

    @staticmethod
    def value(value):
        if isinstance(value, uuid.UUID):
            return value.bytes
        if isinstance(value, datetime):
            return datetime2timestamp(value)
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, bool):
            return int(value)
        return value

    def insert(self, table, columns, rows):
        sql = 'INSERT INTO "%s" (%s) VALUES (%s)' % (table, ", ".join('"%s"' % c for c in columns), ", ".join("?" * len(columns)))
        convert = self.value
        self.connection.executemany(sql, (tuple([convert(v) for v in row]) for row in rows))

    def commit(self):
        self.connection.execute("COMMIT")
        self.connection.execute("PRAGMA journal_mode = WAL")  # as the app leaves the file

    def close(self):
        self.connection.close()


class PostgresWriter:
    """Rows into a PostgreSQL database by COPY, in one transaction."""

    CHUNK = 100_000

    def __init__(self, url):
        self.connection = psycopg2.connect(url)
        cursor = self.connection.cursor()
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '256MB'")

    @staticmethod
    def value(value):
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, str):
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return str(value)

    def insert(self, table, columns, rows):
        sql = 'COPY "%s" (%s) FROM STDIN' % (table, ", ".join('"%s"' % c for c in columns))
        convert, cursor, lines = self.value, self.connection.cursor(), []
        for row in rows:
            lines.append("\t".join([convert(v) for v in row]))
            if len(lines) == self.CHUNK:
                cursor.copy_expert(sql, io.StringIO("\n".join(lines) + "\n"))
                lines = []
        if lines:
            cursor.copy_expert(sql, io.StringIO("\n".join(lines) + "\n"))

    def commit(self):
        self.connection.commit()
        self.connection.autocommit = True
        started = time.perf_counter()
        self.connection.cursor().execute("VACUUM ANALYZE")  # what autovacuum does after a load
        self.vacuum_seconds = time.perf_counter() - started

    def close(self):
        self.connection.close()


def seed(writer, shape, password, today):
    """Every row of ``shape`` through ``writer``, committed: the ids drawn and each table's seconds."""
    ids, seconds = Ids(), {}
    tables = [
        ("users", USER_COLUMNS, user_rows(shape, ids, password)),
        ("rooms", ROOM_COLUMNS, room_rows()),
        ("movies", MOVIE_COLUMNS, movie_rows(shape, ids)),
        ("movie_sessions", SESSION_COLUMNS, session_rows(shape, ids, today)),
        ("tickets", TICKET_COLUMNS, ticket_rows(shape, ids)),
    ]
    for table, columns, rows in tables:
        started = time.perf_counter()
        writer.insert(table, columns, rows)
        seconds[table] = time.perf_counter() - started
    started = time.perf_counter()
    writer.commit()
    seconds["commit"] = time.perf_counter() - started
    return ids, seconds


# ---------------------------------------------------------------- measuring


class Client:
    """Requests one after the other on one keep-alive connection (opened again if the server closed it)."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.connection = None

    def request(self, method, path, token=None, body=None):
        """``(status, headers, body bytes, ms)``: the time from sending to the body's last byte."""
        headers = {"Authorization": "Bearer " + token} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.connection is None:
                self.connection = HTTPConnection(self.host, self.port, timeout=30)
                self.connection.connect()
            try:
                started = time.perf_counter()
                self.connection.request(method, path, data, headers)
                response = self.connection.getresponse()
                raw = response.read()
                ms = (time.perf_counter() - started) * 1000
            except (ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, response.headers, raw, ms
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Figure:
    """One scenario on one server."""

    p50: float
    p90: float
    unexpected: int  # answers of another status than expected
    hits: int  # X-Cache: HIT among the measured answers
    cacheable: bool  # the answers carried X-Cache


def measure(client, requests, expect):
    """``requests``: WARMUPS + MEASURED ``(method, path, token, body)``; the figure of the last MEASURED."""
    timings, unexpected, hits, cacheable = [], 0, 0, False
    for number, (method, path, token, body) in enumerate(requests):
        status, headers, _, ms = client.request(method, path, token, body)
        if number < WARMUPS:
            continue
        timings.append(ms)
        unexpected += status != expect
        cache = headers.get("X-Cache")
        cacheable = cacheable or cache is not None
        hits += cache == "HIT"
    return Figure(statistics.median(timings), statistics.quantiles(timings, n=10)[8], unexpected, hits, cacheable)


def repeat(method, path, token=None):
    return [(method, path, token, None)] * (WARMUPS + MEASURED)


SCENARIOS = (
    "movie list, page 1",
    "movie list, last page",
    "title search (5 matches)",
    "movie by id, with its 10 sessions",
    "the movie's session list",
    "session list, page 1",
    "session list, last page",
    "tickets/me (1,000 tickets), page 1 of 100",
    "seat map of a screening with a plan",
    "purchase, no plan (fresh pairs)",
    "purchase, seat assigned (fresh pairs)",
)


def json_body(raw):
    return json.loads(raw)


def scenario_requests(client, shape, ids, me, buyer):
    """``{scenario: (requests, expected status)}``, the totals read from the API (and checked)."""
    status, headers, raw, _ = client.request("GET", "/v1/movies?perPage=%d" % PER_PAGE, me)
    movies_total = json_body(raw)["meta"]["totalItems"]
    status, headers, raw, _ = client.request("GET", "/v1/movie-sessions?perPage=%d" % PER_PAGE, me)
    sessions_total = json_body(raw)["meta"]["totalItems"]
    status, headers, raw, _ = client.request("GET", "/v1/tickets/me?perPage=%d" % TICKETS_PER_PAGE, me)
    tickets_mine = int(headers["X-Total-Count"])
    status, headers, raw, _ = client.request("GET", "/v1/movies?title=%s" % RARE_WORD.lower(), me)
    rare = json_body(raw)["meta"]["totalItems"]
    seen = (movies_total, sessions_total, tickets_mine, rare)
    if seen != (shape.movies, shape.screenings, shape.tickets_each, shape.rare):
        raise RuntimeError("%s: the API counts %s movies, sessions, my tickets, rare titles; seeded %s"
                           % (shape.name, seen, (shape.movies, shape.screenings, shape.tickets_each, shape.rare)))
    movie, seated = ids.movies[0], ids.screenings[0]
    # fresh pairs: the buyer holds no ticket; screenings past the measured movie's, each once
    count = WARMUPS + MEASURED
    first = shape.measured_sessions + shape.measured_sessions % 2
    planless = [ids.screenings[n] for n in range(first + 1, shape.screenings, 2)][:count]
    with_plan = [ids.screenings[n] for n in range(first, shape.screenings, 2)][:count]
    return {
        SCENARIOS[0]: (repeat("GET", "/v1/movies?perPage=%d" % PER_PAGE, me), 200),
        SCENARIOS[1]: (repeat("GET", "/v1/movies?perPage=%d&page=%d" % (PER_PAGE, math.ceil(movies_total / PER_PAGE)), me), 200),
        SCENARIOS[2]: (repeat("GET", "/v1/movies?perPage=%d&title=%s" % (PER_PAGE, RARE_WORD.lower()), me), 200),
        SCENARIOS[3]: (repeat("GET", "/v1/movies/%s" % movie, me), 200),
        SCENARIOS[4]: (repeat("GET", "/v1/movies/%s/sessions?perPage=%d" % (movie, PER_PAGE), me), 200),
        SCENARIOS[5]: (repeat("GET", "/v1/movie-sessions?perPage=%d" % PER_PAGE, me), 200),
        SCENARIOS[6]: (repeat("GET", "/v1/movie-sessions?perPage=%d&page=%d" % (PER_PAGE, math.ceil(sessions_total / PER_PAGE)), me), 200),
        SCENARIOS[7]: (repeat("GET", "/v1/tickets/me?perPage=%d" % TICKETS_PER_PAGE, me), 200),
        SCENARIOS[8]: (repeat("GET", "/v1/movie-sessions/%s/seats" % seated, me), 200),
        SCENARIOS[9]: ([("POST", "/v1/tickets", buyer, {"sessionId": str(s)}) for s in planless], 201),
        SCENARIOS[10]: ([("POST", "/v1/tickets", buyer, {"sessionId": str(s)}) for s in with_plan], 201),
    }


def memory_mib(pid):
    """``(VmRSS, VmHWM)`` of a process, in MiB."""
    found = {}
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return found.get("VmRSS", float("nan")), found.get("VmHWM", float("nan"))


@dataclass
class SizeResult:
    shape: Shape
    seed_seconds: dict
    migrate_seconds: float
    vacuum_seconds: float = None
    database_mib: float = 0.0
    figures: dict = field(default_factory=dict)  # (scenario, "uncached"|"cached") -> Figure
    memory: dict = field(default_factory=dict)  # "uncached"|"cached" -> (rss, hwm)


@dataclass
class ScaleSetup:
    """The scale suite on one setup. ``setup`` is bench/run.py's Setup (servers, console scripts);
    ``database(size)`` a context manager yielding ``(DATABASE_URL, writer factory, size in MiB of it)``."""

    name: str
    setup: object
    database: object
    cache_environ: dict
    password: str
    divisor: int = 1
    results: list = field(default_factory=list)
    seconds: float = 0.0  # the whole setup, wall clock

    def run(self):
        print("== %s: scale" % self.name, flush=True)
        started = time.perf_counter()
        for shape in shapes(self.divisor):
            shape.check()
            self.results.append(self.run_size(shape))
        self.seconds = time.perf_counter() - started

    def run_size(self, shape):
        with self.database(shape.name) as (url, writer_of, size_of):
            started = time.perf_counter()
            self.setup.prepare(DATABASE_URL=url)
            migrate_seconds = time.perf_counter() - started
            writer = writer_of()
            try:
                ids, seconds = seed(writer, shape, self.password, datetime.now(timezone.utc).date())
            finally:
                writer.close()
            result = SizeResult(shape, seconds, migrate_seconds, getattr(writer, "vacuum_seconds", None), size_of())
            print("  %-5s seeded in %.1f s (%s), %.0f MiB" % (shape.name, sum(seconds.values()), ", ".join(
                "%s %.1f" % item for item in seconds.items()), result.database_mib), flush=True)
            for mode, environ in (("uncached", {"CACHE_URL": "null://"}), ("cached", self.cache_environ)):
                self.run_server(shape, ids, result, mode, dict(environ, DATABASE_URL=url))
            return result

    def run_server(self, shape, ids, result, mode, environ):
        names = customer_names(shape)
        with self.setup.server(BCRYPT_ROUNDS=str(BCRYPT_COST), **environ) as server:
            client = Client(server.url)
            try:
                me, buyer = (self.login(client, names[index]) for index in (0, shape.customers + BUYERS.index("buyer." + mode)))
                for scenario, (requests, expect) in scenario_requests(client, shape, ids, me, buyer).items():
                    figure = measure(client, requests, expect)
                    result.figures[scenario, mode] = figure
                    print("  %-5s %-8s %-45s p50 %8.2f ms  p90 %8.2f ms  unexpected %d  hits %d" % (
                        shape.name, mode, scenario, figure.p50, figure.p90, figure.unexpected, figure.hits), flush=True)
            finally:
                client.close()
            result.memory[mode] = memory_mib(server.process.pid)
            self.setup.finish(server, "scale %s, %s" % (shape.name, mode))

    def login(self, client, username):
        status, _, raw, _ = client.request("POST", "/v1/auth/login", body={"username": username, "password": self.password})
        if status != 200:
            raise RuntimeError("login of %s: %d %s" % (username, status, raw[:200]))
        return json_body(raw)["accessToken"]


# ---------------------------------------------------------------- databases


def sqlite_database(work):
    @contextlib.contextmanager
    def database(size):
        path = os.path.join(work, "scale-%s.sqlite" % size)
        try:
            yield ("sqlite:///" + path, lambda: SqliteWriter(path),
                   lambda: sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)) / 2**20)
        finally:
            for suffix in ("", "-wal", "-shm"):
                with_suffix = path + suffix
                if os.path.exists(with_suffix):
                    os.remove(with_suffix)

    return database


def postgres_database(own_database):
    """``own_database(suffix)``: bench/run.py's context manager of a database of the run's own."""
    @contextlib.contextmanager
    def database(size):
        with own_database("_scale_" + size) as url:
            def size_of():
                with psycopg2.connect(url) as connection, connection.cursor() as cursor:
                    cursor.execute("SELECT pg_database_size(current_database())")
                    return cursor.fetchone()[0] / 2**20

            yield url, lambda: PostgresWriter(url), size_of

    return database


# ---------------------------------------------------------------- report


def verdict(ratio):
    return "within 2x" if ratio <= LIMIT else "**missed**"


def section(scale):
    small, full = scale.results
    lines = ["## %s: scale" % scale.name, "", "The setup took %.1f min, wall clock (databases, seeding, servers, requests)." % (scale.seconds / 60), ""]
    for result in scale.results:
        shape, seconds = result.shape, result.seed_seconds
        vacuum = "; VACUUM ANALYZE %.1f s" % result.vacuum_seconds if result.vacuum_seconds is not None else ""
        lines.append(
            "- %s: %s movies, %s screenings (%s with a plan of %d x %d), %s customer(s) with %s tickets each (+ %d buyers),"
            " %s tickets; database %.0f MiB. Migrated in %.1f s; seeded in %.1f s (%s)%s." % (
                shape.name, f"{shape.movies:,}", f"{shape.screenings:,}", f"{(shape.screenings + 1) // 2:,}", ROWS, SEATS,
                f"{shape.customers:,}", f"{shape.tickets_each:,}", len(BUYERS), f"{shape.tickets:,}", result.database_mib,
                result.migrate_seconds, sum(seconds.values()), ", ".join("%s %.1f s" % item for item in seconds.items()), vacuum))
    lines += [
        "",
        "p50 (p90) in ms of %d sequential requests after %d warm-ups. `full/small`: the p50s' ratio; `uncached/cached`:"
        " the full size's uncached p50 over its cached p50. `hits`: X-Cache HITs of the measured answers, small / full"
        " (`–`: the route is not cached)." % (MEASURED, WARMUPS),
        "",
        "| scenario | cache | small p50 (p90) ms | full p50 (p90) ms | full/small | uncached/cached | hits | unexpected | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for scenario in SCENARIOS:
        for mode in ("uncached", "cached"):
            s, f = small.figures[scenario, mode], full.figures[scenario, mode]
            ratio = f.p50 / s.p50
            across = "%.1f" % (full.figures[scenario, "uncached"].p50 / f.p50) if mode == "cached" else ""
            hits = "%d / %d" % (s.hits, f.hits) if s.cacheable or f.cacheable else "–"
            lines.append("| %s | %s | %.2f (%.2f) | %.2f (%.2f) | %.2f | %s | %s | %d | %s |" % (
                scenario, mode, s.p50, s.p90, f.p50, f.p90, ratio, across, hits, s.unexpected + f.unexpected, verdict(ratio)))
    lines += ["", "| server | RSS at its end (MiB) | peak RSS, VmHWM (MiB) | < %d MiB |" % RSS_LIMIT_MIB, "|---|---:|---:|---|"]
    for result in scale.results:
        for mode, (rss, hwm) in result.memory.items():
            lines.append("| %s, %s | %.1f | %.1f | %s |" % (result.shape.name, mode, rss, hwm, "yes" if hwm < RSS_LIMIT_MIB else "**no**"))
    return lines
