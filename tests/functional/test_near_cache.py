"""Exact process-local copies of Redis cache entries (cinema_api.infrastructure.nearcache).

Two ``Caches`` (or two applications) on one Redis stand for two processes: each has its own
tracking connection, exactly as two pserve processes do.
"""

import time

import pytest
import redis
from webtest import TestApp

from cinema_api import make_app
from cinema_api.infrastructure.cache import Caches, RegionConfig
from tests.conftest import build_settings, ini_settings, reading_in_background, register, require_service, reset_state

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def server():
    require_service("Redis", "127.0.0.1", 6379)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.close()


def make_caches(**arguments):
    ini = {"cinema.cache.%s.arguments.%s" % (name, key): value for name in ("movies", "auth") for key, value in arguments.items()}
    return Caches([RegionConfig.from_settings(name, ini, REDIS_URL) for name in ("movies", "auth")])


class RoundTrips:
    """Counts the reads that reach Redis through a region."""

    def __init__(self, region):
        self.count = 0
        proxied = region.dogpile.backend.proxied
        original = proxied.get_serialized_multi

        def counted(keys):
            self.count += 1
            return original(keys)

        proxied.get_serialized_multi = counted


def warmed_movies():
    """``(caches, movies region, generation)``, with the body of "list" stored and read once."""
    caches = make_caches()
    region = caches.region("movies")
    generation, _ = region.lookup("list")
    region.store(generation, "list", b"[1]")
    assert region.lookup("list") == (generation, b"[1]")
    return caches, region, generation


def test_a_hit_costs_no_round_trip_to_redis(server):
    caches = make_caches()
    region = caches.region("movies")
    generation, _ = region.lookup("list")
    region.store(generation, "list", b"[1]")
    trips = RoundTrips(region)
    assert region.lookup("list") == (generation, b"[1]")  # read once, then kept
    for _ in range(20):
        assert region.lookup("list") == (generation, b"[1]")
    assert trips.count == 1


def test_near_cache_false_reads_redis_every_time(server):
    caches = make_caches(near_cache="false")
    region = caches.region("movies")
    assert caches.trackers == {}
    generation, _ = region.lookup("list")
    region.store(generation, "list", b"[1]")
    calls = []
    original = region.dogpile.backend.get_serialized_multi
    region.dogpile.backend.get_serialized_multi = lambda keys: calls.append(keys) or original(keys)
    for _ in range(3):
        assert region.lookup("list") == (generation, b"[1]")
    assert len(calls) == 3


def test_a_write_in_one_process_is_seen_at_once_by_the_other(server):
    writer, reader = make_caches(), make_caches()
    movies, auth = reader.region("movies"), reader.region("auth")
    for round_ in range(50):
        generation, _ = movies.lookup("list")
        movies.store(generation, "list", b"page %d" % round_)
        assert movies.lookup("list") == (generation, b"page %d" % round_)
        assert movies.lookup("list") == (generation, b"page %d" % round_)  # a local copy now
        writer.invalidate("movies")
        assert movies.lookup("list")[1] is None, "round %d served a retired generation" % round_
    # a missing key is kept too (the revocation marker is read on every request), and its
    # creation elsewhere is seen at once
    marker = "revoked:session-1"
    assert auth.read([marker]) == [None] and auth.read([marker]) == [None]
    writer.region("auth").write(marker, True)
    assert auth.read([marker]) == [True]


def test_a_value_read_while_it_changes_is_not_kept(server):
    """The read's answer may predate the change whose push has already been applied."""
    writer, reader = make_caches(), make_caches()
    region = reader.region("auth")
    writer.region("auth").write("session:s", "old")
    proxied = region.dogpile.backend.proxied
    original = proxied.get_serialized_multi

    def read_then_change(keys):
        values = original(keys)  # "old"
        writer.region("auth").write("session:s", "new")
        time.sleep(0.05)  # the push arrives before this read returns
        return values

    proxied.get_serialized_multi = read_then_change
    assert region.read(["session:s"]) == ["old"]
    proxied.get_serialized_multi = original
    assert region.read(["session:s"]) == ["new"]


def test_a_flush_drops_every_copy(server):
    caches, region, generation = warmed_movies()
    server.flushdb()
    assert region.lookup("list") == (region.FIRST_GENERATION, None)


def tracking_address(caches):
    (tracker,) = caches.trackers.values()
    host, port = tracker._sock.getsockname()
    return "%s:%d" % (host, port)


def test_a_lost_tracking_connection_drops_the_copies_until_it_is_back(server, caplog):
    caches, region, generation = warmed_movies()
    trips = RoundTrips(region)
    server.client_kill_filter(addr=tracking_address(caches))
    time.sleep(0.05)
    (tracker,) = caches.trackers.values()
    for _ in range(3):  # answered by Redis, not by the copies the lost connection kept exact
        assert region.lookup("list") == (generation, b"[1]")
    assert trips.count == 3 and len(tracker._prefixes["cinema:movies:"]) == 0
    assert any("tracking connection lost" in r.getMessage() for r in caplog.records)
    time.sleep(1.1)  # RECONNECT_SEC: the next read opens it again and keeps its answer
    for _ in range(3):
        assert region.lookup("list") == (generation, b"[1]")
    assert trips.count == 4


def test_copies_are_not_trusted_once_redis_stops_answering_the_heartbeat(server):
    caches, region, generation = warmed_movies()
    server.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # Redis stalls: no PONG, no push
    try:
        deadline = time.monotonic() + 1.2
        answers = []
        while time.monotonic() < deadline:
            answers.append(region.lookup("list"))
            time.sleep(0.05)
    finally:
        server.execute_command("CLIENT", "UNPAUSE")
    # served from the copy until the heartbeat came due unanswered, then uncached
    assert answers[0] == (generation, b"[1]") and answers[-1] == (None, None)
    assert caches.breaker.is_open


def test_readers_in_another_process_see_every_write_right_after_its_response(server, test_environ):
    """Two applications on one database and one Redis: the second serves reads from copies."""
    settings = build_settings(dict(test_environ, CACHE_URL=REDIS_URL))
    writer_app, reader_app = make_app(settings, ini_settings()), make_app(settings, ini_settings())
    reset_state(writer_app.registry["cinema.db"], writer_app.registry)
    writer, reader = TestApp(writer_app), TestApp(reader_app)
    staff = register(writer, "boss", role="manager", age=40)
    with reading_in_background(reader_app, "/v1/movies?perPage=100", staff.headers) as failures:
        for index in range(15):
            writer.post_json("/v1/movies", {"title": "Movie %d" % index, "ageRestriction": 1}, headers=staff.headers)
            titles = [m["title"] for m in reader.get("/v1/movies?perPage=100", headers=staff.headers).json["movies"]]
            assert "Movie %d" % index in titles
        hits = [reader.get("/v1/movies?perPage=100", headers=staff.headers).headers["X-Cache"] for _ in range(3)]
        assert hits[-1] == "HIT"
        writer.post_json("/v1/auth/logout", headers=staff.headers, status=204)
        reader.get("/v1/movies?perPage=100", headers=staff.headers, status=401)
    assert set(failures) <= {"401 Unauthorized"}
