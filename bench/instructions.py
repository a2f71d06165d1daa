"""Instructions per request, counted by valgrind's callgrind: an A/B of two versions of the code
that the machine's other work does not move.

    .venv/bin/python bench/instructions.py                       # this checkout
    .venv/bin/python bench/instructions.py --checkout ../other    # another one (its own .venv)
    .venv/bin/python bench/instructions.py --checkout ../other --checkout .   # both, one table
    .venv/bin/python bench/instructions.py --database postgres ...   # on PostgreSQL (127.0.0.1:5432)

A rate measured with wrk moves by a third from one run to the next on a shared 2-core machine,
and so does the CPU time of a server process under contention: neither can tell a change of a
few per cent. The number of instructions a request executes can: for the same code, inputs and
environment it is the same from one run to the next, whatever else the machine does.

What it runs, for each checkout, in one process of the checkout's own ``.venv`` under
``valgrind --tool=callgrind`` (instrumentation off until the measured part): production.ini as
shipped, on a new SQLite database (or, with ``--database postgres``, a new database
``cinema_instructions_<pid>_<random>_db`` on the PostgreSQL server at 127.0.0.1:5432, user postgres, dropped
at the end) and the memory cache (``cinema-migrate`` and ``cinema-admin`` of that checkout
prepare them), 200 movies, 1,000 sessions and 3 customers made through the
application; then, with instrumentation on, ``--requests`` (default 200) of each of: a cached
hit of the movie list, a title search that misses the cache (a 3-letter needle never asked
before), and a purchase of a fresh (customer, session) pair. Requests go straight to the WSGI
application, one at a time, on one thread: waitress, the network and the interleaving of
threads are left out (bench/run.py measures those). The access log is written, as in
production, to a file the run throws away.

It prints instructions per request of each kind (the counts of the log writer's thread
included); the second checkout's row is compared with the first's. Needs valgrind (Debian's
package) and takes about a minute per checkout. The application's own code of the checkout
runs; this script is the same for both.

``--served CONNECTIONS`` counts the whole server instead: ``pserve production.ini`` of the
checkout under callgrind (waitress's I/O loop, its threads and the runner's dispatcher
included), seeded over HTTP, answering ``--requests`` requests of each kind (``GET /``, the cached
list, the cached session list, a search that misses, a purchase) from CONNECTIONS keep-alive
clients released together (threads of this process, outside valgrind). valgrind runs one thread
at a time, so the interleaving differs from a real run's; the counts repeat within about 2 %,
and what they leave out is the kernel's share (system calls, waking threads), which the
rate A/B of bench/run.py --ab-code sees.

    .venv/bin/python bench/instructions.py --served 32 --requests 640 --checkout ../other --checkout .
"""

import argparse
import contextlib
import itertools
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KINDS = ("cached hit", "search miss", "purchase")
PASSWORD = "bench1234"


#: The catalogue both ways of measuring create.
MOVIES = [{"title": "Bench movie %03d" % index, "ageRestriction": index % 19} for index in range(200)]


def shuffled_needles():
    """Every 3-letter lower-case needle, in the same order every run: each search one never asked before."""
    needles = ["".join(letters) for letters in itertools.product("abcdefghijklmnopqrstuvwxyz", repeat=3)]
    random.Random(1).shuffle(needles)
    return needles


@contextlib.contextmanager
def database(kind, work):
    """The DATABASE_URL of a new database of ``kind``, removed afterwards."""
    if kind == "sqlite":
        yield "sqlite:///" + os.path.join(work, "instructions.sqlite")
        return
    from cinema_api.testing import PostgresServer, run_tag  # this process's checkout, not the measured one's

    with PostgresServer("postgresql://postgres@127.0.0.1:5432/postgres", "cinema_instructions_%s_" % run_tag()).database("db") as url:
        yield url


def measure(checkout, requests, kind="sqlite"):
    """``{kind: instructions per request}`` of ``checkout``."""
    python = os.path.join(checkout, ".venv", "bin", "python")
    with tempfile.TemporaryDirectory(prefix="cinema-instructions-") as work, database(kind, work) as url:
        out = os.path.join(work, "callgrind.out")
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out,
            python, os.path.abspath(__file__), "--child", work, "--requests", str(requests), "--database-url", url,
        ]
        with open(os.path.join(work, "log"), "w") as log:
            subprocess.run(command, cwd=checkout, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=1800)
        counts = {}
        for name in os.listdir(work):
            if not name.startswith("callgrind.out."):
                continue
            with open(os.path.join(work, name)) as dump:
                text = dump.read()
            kind = re.search(r"^desc: Trigger: .*dump (.+)$", text, re.M).group(1).replace("_", " ")
            counts[kind] = int(re.search(r"^summary: (\d+)", text, re.M).group(1)) / requests
        return counts


def child(work, requests, database_url):
    """The measured process (run under callgrind by :func:`measure`, in the checkout's directory)."""
    import io

    ini = os.path.join(work, "production.ini")
    shutil.copyfile("production.ini", ini)
    environ = {
        "DATABASE_URL": database_url, "CACHE_URL": "memory://",
        "JWT_SECRET": secrets.token_urlsafe(48), "JWT_EXPIRES_IN_SEC": "86400", "BCRYPT_ROUNDS": "4",
        "LOGIN_LIMIT_PER_ADDRESS": "1000000", "LOGIN_LIMIT_PER_USERNAME": "1000000",
    }
    os.environ.update(environ)
    scripts = os.path.join(".venv", "bin")
    subprocess.run([os.path.join(scripts, "cinema-migrate"), ini], check=True, capture_output=True)
    subprocess.run([os.path.join(scripts, "cinema-admin"), ini, "create-user", "--username", "manager", "--role", "manager",
                    "--age", "40"], env=dict(os.environ, CINEMA_ADMIN_PASSWORD=PASSWORD), check=True, capture_output=True)
    sys.stderr = open(os.path.join(work, "server.log"), "w")  # production.ini logs to stderr
    from pyramid.paster import get_app

    app = get_app(ini, "main")

    def call(method, path, body=None, token=None, query=""):
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "6543", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:6543", "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        }
        if body is not None:
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)))
        if token:
            environ["HTTP_AUTHORIZATION"] = "Bearer " + token
        status = []
        chunks = app(environ, lambda line, headers, exc_info=None: status.append(int(line[:3])))
        payload = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        return status[0], payload

    def expect(status, answer):
        if answer[0] != status:
            raise SystemExit("instructions: expected %d, got %d: %r" % (status, answer[0], answer[1][:300]))
        return json.loads(answer[1]) if answer[1] else None

    manager = expect(200, call("POST", "/v1/auth/login", {"username": "manager", "password": PASSWORD}))["accessToken"]
    movie_ids = [movie["id"] for movie in expect(201, call("POST", "/v1/movies/bulk", {"movies": MOVIES}, manager))]
    sessions = []
    for number, movie_id in enumerate(movie_ids[:100]):
        items = [{"date": "2031-%02d-%02dT20:00:00Z" % (1 + (number * 10 + k) // 28 % 12, 1 + (number * 10 + k) % 28),
                  "timeslot": "20:00-22:00", "roomNumber": 1 + number % 40} for k in range(10)]
        sessions += [s["id"] for s in expect(201, call("POST", "/v1/movies/%s/sessions/bulk" % movie_id, {"sessions": items}, manager))]
    customers = [
        expect(201, call("POST", "/v1/auth/register", {"username": "customer%d" % index, "password": PASSWORD, "age": 30}))["accessToken"]
        for index in range(3)
    ]
    needles = shuffled_needles()
    pairs = iter([(customer, session) for customer in customers for session in sessions])

    def purchase():
        customer, session = next(pairs)
        expect(201, call("POST", "/v1/tickets", {"sessionId": session}, customer))

    kinds = {
        "cached_hit": lambda: expect(200, call("GET", "/v1/movies", token=customers[0], query="perPage=20")),
        "search_miss": lambda: expect(200, call("GET", "/v1/movies", token=customers[0], query="perPage=20&title=" + needles.pop())),
        "purchase": purchase,
    }
    for run in kinds.values():  # warm: every path once before counting
        for _ in range(20):
            run()

    def callgrind(*arguments):
        subprocess.run(["callgrind_control", *arguments, str(os.getpid())], check=True, capture_output=True, timeout=300)

    callgrind("-i", "on")
    for kind, run in kinds.items():
        callgrind("-z")
        for _ in range(requests):
            run()
        callgrind("-d", kind)


# ---------------------------------------------------------------- --served: the whole server

#: The requests of ``--served``, each kind in turn: the cached reads of bench/run.py's targets
#: (hits from the first request), title searches that miss the cache, purchases of fresh pairs, and
#: ``GET /`` (no application work to speak of: the serving machinery alone).
SERVED_KINDS = ("root", "cached list", "session list", "search miss", "purchase")


def served_environ(database_url):
    return {
        "DATABASE_URL": database_url, "CACHE_URL": "memory://", "JWT_EXPIRES_IN_SEC": "86400", "BCRYPT_ROUNDS": "4",
        "LOGIN_LIMIT_PER_ADDRESS": "1000000", "LOGIN_LIMIT_PER_USERNAME": "1000000",
    }


def load(port, requests_of, connections):
    """``connections`` keep-alive clients, released together, send the requests ``requests_of(i)``
    (``(method, path, body, token)``) of client ``i``; every answer must be a 2xx."""
    import http.client
    import threading

    barrier = threading.Barrier(connections)
    failures = []

    def client(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            barrier.wait()
            for method, path, body, token in requests_of(index):
                headers = {"Authorization": "Bearer " + token} if token else {}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                if not 200 <= response.status < 300:
                    failures.append((method, path, response.status, payload[:200]))
        except Exception as exc:  # reported below, not lost in a thread
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit("instructions: %d failed requests, the first: %r" % (len(failures), failures[0]))


def measure_served(checkout, requests, kind, connections):
    """``{kind: instructions per request}`` of the whole server of ``checkout`` (``pserve
    production.ini`` under callgrind: waitress's I/O loop and threads included) answering
    ``requests`` requests of each kind from ``connections`` keep-alive clients at once."""
    sys.path.insert(0, ROOT)
    from cinema_api.testing import ServerProcess, copy_ini, script

    with tempfile.TemporaryDirectory(prefix="cinema-instructions-") as work, database(kind, work) as url:
        environ = dict(served_environ(url), JWT_SECRET=secrets.token_urlsafe(48))
        ini = copy_ini("production.ini", work, checkout)
        for command in (["cinema-migrate", ini],
                        ["cinema-admin", ini, "create-user", "--username", "manager", "--role", "manager", "--age", "40"]):
            subprocess.run([script(command[0], checkout), *command[1:]], cwd=work, check=True, capture_output=True,
                           env=dict(os.environ, CINEMA_ADMIN_PASSWORD=PASSWORD, **environ), timeout=300)
        out = os.path.join(work, "callgrind.out")
        # the pipe callgrind_control talks through, named alike on both sides
        vgdb = "--vgdb-prefix=" + os.path.join(work, "vgdb")
        python = os.path.join(checkout, ".venv", "bin", "python")  # pserve's interpreter, named: no #! for valgrind
        wrapper = ("valgrind", "--tool=callgrind", "--instr-atstart=no", vgdb, "--callgrind-out-file=" + out, python)
        with ServerProcess("production.ini", args=("-q",), checkout=checkout, wrapper=wrapper, start_timeout=300,
                           **environ) as server:
            def call(method, path, status, body=None, token=None):
                answer = server.request(method, path, body, {"Authorization": "Bearer " + token} if token else None)
                if answer[0] != status:
                    raise SystemExit("instructions: %s %s: expected %d, got %r" % (method, path, status, answer[:3]))
                return answer[2]

            manager = call("POST", "/v1/auth/login", 200, {"username": "manager", "password": PASSWORD})["accessToken"]
            movie_ids = [movie["id"] for movie in call("POST", "/v1/movies/bulk", 201, {"movies": MOVIES}, manager)]
            sessions = []
            for number, movie_id in enumerate(movie_ids[:connections]):
                items = [{"date": "2031-%02d-%02dT20:00:00Z" % (1 + k // 28, 1 + k % 28), "timeslot": "20:00-22:00",
                          "roomNumber": 1 + number % 40} for k in range(-(-(requests + 20 * connections) // connections))]
                sessions.append([s["id"] for s in call("POST", "/v1/movies/%s/sessions/bulk" % movie_id, 201,
                                                        {"sessions": items}, manager)])
            customers = [call("POST", "/v1/auth/register", 201, {"username": "customer%d" % index, "password": PASSWORD,
                                                                  "age": 30})["accessToken"] for index in range(connections)]
            needles = shuffled_needles()
            # client i buys the sessions of row i, one after the other: every purchase a fresh pair
            bought = [iter(row) for row in sessions]

            def request(kind_, index):
                """The next request of kind ``kind_`` of client ``index``."""
                token = customers[index]
                if kind_ == "root":
                    return "GET", "/", None, None
                if kind_ == "cached list":
                    return "GET", "/v1/movies?perPage=20", None, token
                if kind_ == "session list":
                    return "GET", "/v1/movie-sessions?perPage=20", None, token
                if kind_ == "search miss":
                    return "GET", "/v1/movies?perPage=20&title=" + needles.pop(), None, token  # list.pop: atomic
                return "POST", "/v1/tickets", {"sessionId": next(bought[index])}, token

            def plan(kind_, count):
                """``requests_of`` for :func:`load`: ``count`` requests of ``kind_``, shared by the clients."""
                share = [count // connections + (index < count % connections) for index in range(connections)]
                return lambda index: (request(kind_, index) for _ in range(share[index]))

            def callgrind(*arguments):
                # the server's environment: valgrind names its pipe after $USER and $HOST (which the server has)
                subprocess.run(["callgrind_control", vgdb, *arguments, str(server.process.pid)], check=True,
                               capture_output=True, timeout=300, env=server.env)

            for kind_ in SERVED_KINDS:  # warm: every path on every connection before counting
                load(server.port, plan(kind_, 10 * connections), connections)
            callgrind("-i", "on")
            for kind_ in SERVED_KINDS:
                callgrind("-z")
                load(server.port, plan(kind_, requests), connections)
                callgrind("-d", kind_.replace(" ", "_"))
        counts = {}
        for name in os.listdir(work):
            if name.startswith("callgrind.out."):
                with open(os.path.join(work, name)) as dump:
                    text = dump.read()
                found = re.search(r"^desc: Trigger: .*dump (.+)$", text, re.M)
                if found:
                    counts[found.group(1).replace("_", " ")] = int(re.search(r"^summary: (\d+)", text, re.M).group(1)) / requests
        return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", action="append", help="a checkout of the project with its own .venv (default: this one)")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind (default 200)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite", help="default: sqlite")
    parser.add_argument("--served", type=int, metavar="CONNECTIONS",
                        help="the whole server (pserve production.ini under callgrind), this many clients at once")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.requests, args.database_url)
    if not shutil.which("valgrind"):
        sys.exit("instructions: valgrind is missing (Debian: apt-get install valgrind)")
    checkouts = [os.path.abspath(path) for path in args.checkout or [ROOT]]
    if args.served:
        kinds = SERVED_KINDS
        rows = [(checkout, measure_served(checkout, args.requests, args.database, args.served)) for checkout in checkouts]
    else:
        kinds = KINDS
        rows = [(checkout, measure(checkout, args.requests, args.database)) for checkout in checkouts]
    print("| checkout | " + " | ".join("%s (instructions/request)" % kind for kind in kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    first = rows[0][1]
    for checkout, counts in rows:
        cells = []
        for kind in kinds:
            cell = "{:,.0f}".format(counts[kind])
            if counts is not first:
                cell += " (%+.1f %%)" % (100 * (counts[kind] / first[kind] - 1))
            cells.append(cell)
        print("| %s | %s |" % (os.path.relpath(checkout), " | ".join(cells)))


if __name__ == "__main__":
    main()
