"""The monitoring recipes of deploy/ (docs/API.md section 12) against what the API exports:
the Grafana dashboard queries only metrics the API serves, Prometheus scrapes every process of
nginx's upstream, and several processes each serve their own counts."""

import json
import os
import re
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cinema_api.testing import ServerProcess
from tests.conftest import HERE

DEPLOY = os.path.join(HERE, "deploy")
#: Series Prometheus makes itself, not the API.
PROMETHEUS_OWN = {"up"}
METRIC_NAME = re.compile(r"\b((?:cinema|process)_[a-z_]+|up)\b(?!\s*\()")


def exported_sample_names(client):
    """Every sample name the application's /metrics serves, after a few requests."""
    client.get("/")
    client.get("/nowhere", status=404)
    text = client.get("/metrics").text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def dashboard_queries():
    with open(os.path.join(DEPLOY, "grafana-dashboard.json"), encoding="utf-8") as source:
        dashboard = json.load(source)
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [variable["query"] for variable in dashboard["templating"]["list"]]
    return dashboard, queries


def test_every_metric_the_dashboard_queries_is_one_the_api_exports(testapp):
    exported = exported_sample_names(testapp)
    _, queries = dashboard_queries()
    queried = set()
    for query in queries:
        names = set(METRIC_NAME.findall(query))
        assert names, query
        queried |= names
    assert not queried - exported - PROMETHEUS_OWN, sorted(queried - exported - PROMETHEUS_OWN)


def test_the_dashboard_shows_what_the_contract_asks_for():
    dashboard, queries = dashboard_queries()
    text = "\n".join(queries)
    for needed in (
        "rate(cinema_http_requests_total",  # request rate
        'status=~"5.."',  # error rate
        "histogram_quantile(0.99, sum by (route, le) (rate(cinema_http_request_duration_seconds_bucket",  # per route
        "cinema_database_breaker_open",  # database health
        "cinema_cache_hits_total",  # cache hit ratio
        "cinema_cache_misses_total",
        "cinema_login_gate_rejections_total",  # login gate
        "cinema_login_gate_wait_seconds_bucket",
    ):
        assert needed in text, needed
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_scrapes_every_process_of_nginx_upstream():
    with open(os.path.join(DEPLOY, "prometheus.yml"), encoding="utf-8") as source:
        config = yaml.safe_load(source)
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    with open(os.path.join(DEPLOY, "nginx.conf"), encoding="utf-8") as source:
        nginx = source.read()
    upstream = re.search(r"upstream cinema_api \{(.*?)\}", nginx, re.S).group(1)
    assert sorted(targets) == sorted(re.findall(r"server (\S+) ", upstream))
    # through nginx every client is 127.0.0.1, which METRICS_ALLOW accepts: nginx must refuse it
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", nginx)


def scrape(server):
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return {
        sample.labels["route"]: sample.value
        for sample in families["cinema_http_requests"].samples
        if sample.name == "cinema_http_requests_total" and sample.labels["status"] == "200"
    }


@pytest.mark.slow
def test_each_process_serves_its_own_metrics(tmp_path):
    """Two processes on one database, as behind nginx: each counts what it answered, and the
    sum over the targets is what was served."""
    environ = {"DATABASE_URL": "sqlite:///%s" % (tmp_path / "shared.sqlite"), "CACHE_URL": "memory://", "ENVIRONMENT": "development"}
    with ServerProcess(**environ) as first, ServerProcess(**environ) as second:
        for _ in range(5):
            first.request("GET", "/")
        for _ in range(3):
            second.request("GET", "/")
        second.request("GET", "/v1/health/live")
        counts = scrape(first), scrape(second)
    assert counts[0]["/"] == 5 and "/v1/health/live" not in counts[0]
    assert counts[1]["/"] == 3 and counts[1]["/v1/health/live"] == 1
