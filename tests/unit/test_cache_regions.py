"""The backend contract: one set of cache tests run on every backend (memory, redis, null).

Redis is the one of TEST_CACHE_URL (skipped without it), every key under the run's prefix."""

import time
import uuid

import pytest

from cinema_api.infrastructure.cache import Caches, RedisWriter
from cinema_api.settings import RegionConfig

#: Where the Redis regions of this module live: set by :func:`redis_keys`.
REDIS = {}


@pytest.fixture
def redis_keys(test_redis):
    REDIS.update(url=test_redis.url, prefix=test_redis.prefix)
    yield test_redis
    REDIS.clear()


@pytest.fixture(params=["memory", "redis", "null"])
def backend(request):
    if request.param == "redis":
        request.getfixturevalue("redis_keys")
    return request.param


def caches_on(backend, *names):
    if backend != "redis":
        return Caches([RegionConfig(name, backend, 60, 100) for name in names])
    return Caches([RegionConfig(name, "redis", 60, 100, REDIS["url"]) for name in names], REDIS["prefix"])


def region_on(backend, name="contract"):
    return caches_on(backend, name).region(name)


def test_a_missing_key_reads_as_none(backend):
    assert region_on(backend).get(uuid.uuid4().hex) is None


def test_a_stored_value_reads_back_except_on_null(backend):
    region, key = region_on(backend), uuid.uuid4().hex
    region.set(key, ("etag", b"body"))
    assert region.get(key) == (None if backend == "null" else ("etag", b"body"))


def eventually(read, seconds=2.0):
    """``read()`` once it is not None, or None after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (value := read()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def test_processes_sharing_a_backend_share_values_only_on_redis(backend):
    key = uuid.uuid4().hex
    region_on(backend).set(key, ("etag", b"body"))
    other = region_on(backend)  # another process's region on the same configuration
    seconds = 2.0 if backend == "redis" else 0.2  # Redis gets new entries from a thread of its own
    assert eventually(lambda: other.get(key), seconds) == (("etag", b"body") if backend == "redis" else None)


def test_new_entries_reach_redis_off_the_request_thread_a_batch_in_one_round_trip(redis_keys):
    caches = caches_on("redis", "first", "second")
    sent = []
    for region in caches.regions.values():
        store_many = region.store_many
        region.store_many = lambda mapping, store_many=store_many: sent.append(len(mapping)) or store_many(mapping)
    keys = [uuid.uuid4().hex for _ in range(20)]
    for index, key in enumerate(keys):
        caches.region(("first", "second")[index % 2]).set(key, ("etag", key.encode()))
    assert not sent or sum(sent) < len(keys)  # the request threads did not wait for Redis
    readers = [region_on("redis", name) for name in ("first", "second")]
    for index, key in enumerate(keys):
        assert eventually(lambda index=index, key=key: readers[index % 2].get(key)) == ("etag", key.encode())
    assert sum(sent) == len(keys) and len(sent) < len(keys), sent  # batched: fewer round trips than entries


def test_entries_beyond_the_pending_bound_are_kept_locally_only():
    writer = RedisWriter()
    writer.thread.target = lambda: None  # no thread takes them
    region = Caches([RegionConfig("bounded", "redis", 60, 100, "redis://127.0.0.1:9/0")]).region("bounded")
    for index in range(RedisWriter.MAX_PENDING + 10):
        writer.store(region, "key%d" % index, ("etag", b"body"))
    assert writer.pending.qsize() == RedisWriter.MAX_PENDING


def test_a_failing_store_opens_the_breaker_and_the_local_copy_stays():
    region = Caches([RegionConfig("refused", "redis", 60, 100, "redis://127.0.0.1:9/0")]).region("refused")
    region.set("key", ("etag", b"body"))
    assert eventually(lambda: region.breaker.is_open or None) and region.get("key") == ("etag", b"body")


def test_the_health_check_is_a_real_round_trip(backend):
    assert caches_on(backend, "health").ping()


def test_an_unreachable_backend_reads_as_a_miss_and_reports_down():
    region = Caches([RegionConfig("down", "redis", 60, 100, "redis://127.0.0.1:9/0")]).region("down")
    region.set("key", ("etag", b"body"))  # kept locally: exact under its key
    assert region.get("other") is None
    assert not region.ping()
