"""The plain-number families of cinema_api.core.metrics, read back through prometheus_client's
own encoder and parser, as a scraper reads them."""

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cinema_api.core.metrics import SHORT_BUCKETS, Metrics


def scraped(metrics):
    text = generate_latest(metrics.registry).decode()
    return {
        (item.name, tuple(sorted(item.labels.items()))): item.value
        for family in text_string_to_metric_families(text)
        for item in family.samples
    }


def test_database_calls_fill_cumulative_buckets_whose_bounds_are_inclusive():
    metrics = Metrics()
    for seconds in (0.0005, 0.001, 0.004, 0.004, 0.3, 20.0):
        metrics.database_call_duration.observe(seconds)
    found = scraped(metrics)
    name = "cinema_database_call_duration_seconds"

    def bucket(le):
        return found[(name + "_bucket", (("le", le),))]

    assert bucket("0.001") == 2  # 0.001 itself is in the bucket le="0.001"
    assert bucket("0.0025") == 2
    assert bucket("0.005") == 4
    assert bucket("0.25") == 4
    assert bucket("0.5") == 5
    assert bucket("10.0") == 5
    assert bucket("+Inf") == 6
    assert found[(name + "_count", ())] == 6
    assert abs(found[(name + "_sum", ())] - 20.3095) < 1e-9
    assert sum(1 for key in found if key[0] == name + "_bucket") == len(SHORT_BUCKETS) + 1


def test_cache_look_ups_are_counted_by_region():
    metrics = Metrics()
    movies, sessions = metrics.cache_hits.labels("movies"), metrics.cache_hits.labels("sessions")
    assert metrics.cache_hits.labels("movies") is movies  # one child per region
    for _ in range(3):
        movies.inc()
    sessions.inc(2)
    metrics.cache_misses.labels("movies").inc()
    found = scraped(metrics)
    assert found[("cinema_cache_hits_total", (("region", "movies"),))] == 3
    assert found[("cinema_cache_hits_total", (("region", "sessions"),))] == 2
    assert found[("cinema_cache_misses_total", (("region", "movies"),))] == 1
    assert ("cinema_cache_misses_total", (("region", "sessions"),)) not in found


def test_requests_in_flight_and_their_latency():
    metrics = Metrics()
    metrics.requests_in_flight.inc()
    metrics.requests_in_flight.inc()
    metrics.requests_in_flight.dec()
    metrics.observe_request("/v1/movies", "GET", 200, 0.005)
    metrics.observe_request("/v1/movies", "GET", 200, 0.02)
    metrics.observe_request(None, "BREW", 404, 0.001)
    found = scraped(metrics)
    assert found[("cinema_http_requests_in_flight", ())] == 1
    assert found[("cinema_http_requests_total", (("method", "GET"), ("route", "/v1/movies"), ("status", "200")))] == 2
    assert found[("cinema_http_requests_total", (("method", "other"), ("route", "unmatched"), ("status", "404")))] == 1
    duration = "cinema_http_request_duration_seconds_bucket"
    assert found[(duration, (("le", "0.005"), ("route", "/v1/movies")))] == 1
    assert found[(duration, (("le", "0.025"), ("route", "/v1/movies")))] == 2
