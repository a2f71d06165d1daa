"""The suite touches no server it was not pointed at, and on one it was pointed at only what is
its own (docs/API.md section 7, "Environments cannot mix"; issue 26).

Each test runs a part of the suite, the part that writes to Redis, as a child ``pytest`` against
a private ``redis-server`` holding canary keys in every database: keys of other applications,
named like the application's own (``cinema:login:...``, ``cinema:movies:...``) and like another
run's (``cinema-test-...``). Every canary must survive, and the server's command statistics say
whether the suite wrote, deleted or flushed anything.
"""

import os
import shutil
import subprocess
import sys

import pytest
import redis

from cinema_api.testing import PROJECT_ROOT, RedisServer

#: Tests that write to Redis when the suite is given one: the cache contract, the cached reads,
#: the login throttle (its counts, and the reset between tests), the console scripts.
PART = ["tests/unit/test_cache_regions.py", "tests/functional/test_cache.py", "tests/functional/test_auth.py"]
#: Other databases' canaries are in every one of Redis's 16 databases; the suite's is this one.
SUITE_DB = 5
CANARY_NAMES = [
    "canary:plain",
    "cinema:login:address:127.0.0.1",  # what the throttle's keys were: a reset deleted them all
    "cinema:login:username:boss",
    "cinema:movies:1:movies:?",
    "cinema-test-1-00000000:movies:1:x",  # another run of the suite, on the same database
    "cinema-test-",
]


def require_redis_server():
    if shutil.which("redis-server"):
        return
    if os.environ.get("CI"):
        pytest.fail("redis-server is not on PATH (CI must not skip this test)")
    pytest.skip("redis-server is not on PATH")


@pytest.fixture
def canaries():
    """A private Redis whose 16 databases each hold the canaries; yields ``(server, client of db
    SUITE_DB, {db: {key: value}})``, the statistics reset after the canaries were written."""
    require_redis_server()
    with RedisServer() as server:
        written = {}
        for db in range(16):
            client = redis.Redis(port=server.port, db=db)
            written[db] = {("%s:db%d" % (name, db) if db != SUITE_DB else name).encode(): b"value %d" % db for name in CANARY_NAMES}
            client.mset(written[db])
            client.close()
        client = redis.Redis(port=server.port, db=SUITE_DB)
        client.config_resetstat()
        yield server, client, written
        client.close()


def run_part(tmp_path, **environ):
    """The part of the suite, in a child pytest with the suite's variables replaced by ``environ``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TEST_")}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "child"), *PART],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def every_key(server):
    keys = {}
    for db in range(16):
        client = redis.Redis(port=server.port, db=db)
        keys[db] = {key: client.get(key) for key in client.scan_iter(count=1000)}
        client.close()
    return keys


def commands_run(client):
    """``{command: calls}`` since the statistics were reset (this client's INFO included)."""
    return {name.removeprefix("cmdstat_").split("|")[0].lower(): stats["calls"] for name, stats in client.info("commandstats").items()}


@pytest.mark.slow
def test_pointed_at_a_redis_database_the_suite_deletes_its_own_keys_and_nothing_else(canaries, tmp_path):
    server, client, written = canaries
    result = run_part(tmp_path, TEST_CACHE_URL="redis://127.0.0.1:%d/%d" % (server.port, SUITE_DB))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "TEST_CACHE_URL is not set" not in result.stdout  # the Redis tests ran
    commands = commands_run(client)
    # it wrote (cached bodies, login counts) and deleted, and never emptied a database
    assert commands.get("setex", 0) + commands.get("set", 0) > 0 and commands.get("evalsha", 0) + commands.get("eval", 0) > 0, commands
    assert commands.get("unlink", 0) + commands.get("del", 0) > 0, commands
    assert "flushdb" not in commands and "flushall" not in commands, commands
    # every canary is there, unchanged, and nothing else: no key of the run is left
    assert every_key(server) == written


@pytest.mark.slow
def test_not_pointed_at_any_server_the_suite_neither_reads_nor_writes_the_applications_own(canaries, tmp_path):
    """A developer's exported DATABASE_URL and CACHE_URL (their own application's) are not where
    the suite writes, and without TEST_* variables it connects to no server at all."""
    server, client, written = canaries
    mine = tmp_path / "my-own-app.sqlite"
    result = run_part(tmp_path, DATABASE_URL="sqlite:///" + str(mine), CACHE_URL="redis://127.0.0.1:%d/%d" % (server.port, SUITE_DB),
                      CACHE_KEY_PREFIX="cinema")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "TEST_CACHE_URL is not set" in result.stdout  # the tests that need Redis skipped
    assert not mine.exists()
    assert client.info("stats")["total_connections_received"] == 0  # none but this test's own client
    assert every_key(server) == written


def test_a_scratch_database_is_one_of_the_prefix_and_is_dropped_when_its_block_ends(test_postgres):
    """PostgresServer.database (also the benchmark's): created under the run's prefix, gone after
    the block, also when the block fails."""
    import psycopg2

    with test_postgres.database("scratch") as url:
        assert url.rsplit("/", 1)[1] == test_postgres.prefix + "scratch"
        assert test_postgres.prefix + "scratch" in test_postgres.names()
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # a connection still open when the block ends
            with pytest.raises(RuntimeError), test_postgres.database("failed"):
                raise RuntimeError("the block failed")
    assert not {test_postgres.prefix + "scratch", test_postgres.prefix + "failed"} & set(test_postgres.names())
