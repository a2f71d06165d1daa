"""The backend contract: one set of cache tests run on every backend (memory, redis, null)."""

import uuid

import pytest

from cinema_api.infrastructure.cache import Caches
from cinema_api.settings import RegionConfig
from tests.conftest import require_service

REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture(params=["memory", "redis", "null"])
def backend(request):
    if request.param == "redis":
        require_service("Redis", "127.0.0.1", 6379)
    return request.param


def region_on(backend, name="contract"):
    config = RegionConfig(name, backend, 60, 100, REDIS_URL if backend == "redis" else None)
    return Caches([config]).region(name)


def test_a_missing_key_reads_as_none(backend):
    assert region_on(backend).get(uuid.uuid4().hex) is None


def test_a_stored_value_reads_back_except_on_null(backend):
    region, key = region_on(backend), uuid.uuid4().hex
    region.set(key, ("etag", b"body"))
    assert region.get(key) == (None if backend == "null" else ("etag", b"body"))


def test_processes_sharing_a_backend_share_values_only_on_redis(backend):
    key = uuid.uuid4().hex
    region_on(backend).set(key, ("etag", b"body"))
    other = region_on(backend)  # another process's region on the same configuration
    assert other.get(key) == (("etag", b"body") if backend == "redis" else None)


def test_the_health_check_is_a_real_round_trip(backend):
    assert Caches([RegionConfig("health", backend, 60, 100, REDIS_URL if backend == "redis" else None)]).ping()


def test_an_unreachable_backend_reads_as_a_miss_and_reports_down():
    region = Caches([RegionConfig("down", "redis", 60, 100, "redis://127.0.0.1:9/0")]).region("down")
    region.set("key", ("etag", b"body"))  # kept locally: exact under its key
    assert region.get("other") is None
    assert not region.ping()
