"""The Swagger UI in a real browser: headless Chromium renders every operation of the document
from the app's own assets, under the page's Content-Security-Policy, and the page requests
nothing from any other host.

Needs Chromium (Debian's ``chromium``); ``.ci/openapi`` installs it. Without it the test is
skipped, with the reason shown. Chromium's own background traffic (updates, accounts) is
resolved to nowhere, so the run sends nothing off the machine, and it is told apart from the
page's requests by the request's initiator.
"""

import json
import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

from cinema_api.testing import ServerProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/openapi installs it)")]


def chromium_dump(url, folder):
    """``(dom, console, netlog)`` of ``url`` rendered by headless Chromium."""
    netlog = os.path.join(folder, "netlog.json")
    result = subprocess.run(
        [
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
            "--disable-extensions", "--disable-default-apps", "--disable-background-networking",
            "--disable-component-update", "--disable-domain-reliability",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--user-data-dir=" + os.path.join(folder, "profile"), "--enable-logging=stderr", "--v=0",
            "--log-net-log=" + netlog, "--virtual-time-budget=30000", "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    with open(netlog, encoding="utf-8") as log:
        return result.stdout, result.stderr, json.load(log)


def page_requests(netlog, origin):
    """The URLs of the requests the page (its origin) initiated."""
    names = {number: name for name, number in netlog["constants"]["logEventTypes"].items()}
    urls = set()
    for event in netlog["events"]:
        params = event.get("params") or {}
        if names.get(event["type"]) == "URL_REQUEST_START_JOB" and params.get("initiator") == origin:
            urls.add(params["url"])
    return urls


def test_chromium_renders_every_operation_asking_nothing_of_another_host(tmp_path):
    with ServerProcess(DATABASE_URL="sqlite:///" + str(tmp_path / "ui.sqlite")) as server:
        document = server.request("GET", "/v1/api-json")[2]
        dom, console, netlog = chromium_dump(server.url + "/v1/api", str(tmp_path))
    expected = {
        "operations-%s-%s" % (operation["tags"][0], operation["operationId"])
        for item in document["paths"].values()
        for operation in item.values()
    }
    rendered = set(re.findall(r'id="(operations-[^"]+)"', dom)) - {"operations-tag-" + tag["name"] for tag in document["tags"]}
    assert rendered == expected
    assert "Unable to render this definition" not in dom
    assert "Content Security Policy" not in console and "Refused to" not in console
    requests = page_requests(netlog, server.url)
    assert server.url + "/v1/api-json" in requests and server.url + "/v1/api/assets/swagger-ui-bundle.js" in requests
    assert {urlsplit(url).netloc for url in requests} == {urlsplit(server.url).netloc}
