"""The hashing gate is fair between client addresses and lets go of clients that have gone
(docs/API.md section 5): real threads, released together, more logins than places."""

import threading
import time

import bcrypt
import pytest
from webtest import TestApp

from cinema_api.core.errors import ServiceUnavailable
from cinema_api.infrastructure.passwords import HashingGate, PasswordHasher
from cinema_api.testing import at_once
from tests.conftest import PASSWORD, register

FLOOD_SEC = 1.5


class Hashes:
    """A stand-in for bcrypt that takes ``seconds`` and records how many run at once per client."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = {}
        self.most = {}

    def __call__(self, client):
        with self.lock:
            self.running[client] = self.running.get(client, 0) + 1
            self.most[client] = max(self.most.get(client, 0), self.running[client])
        time.sleep(self.seconds)
        with self.lock:
            self.running[client] -= 1
        return True


def flood(until, call):
    """``call()`` again and again until ``until``; the statuses it got (200 or 503)."""
    statuses = []
    while time.monotonic() < until:
        try:
            call()
            statuses.append(200)
        except ServiceUnavailable:
            statuses.append(503)
    return statuses


def test_a_flood_from_one_address_uses_the_gate_alone_and_never_keeps_another_out():
    gate = HashingGate(concurrency=4)  # 4 places, 4 waiting: with another client there, one address holds 1 and 1
    gate.typical = 0.05
    hashes = Hashes(0.05)
    until = time.monotonic() + FLOOD_SEC

    def call(index):
        if index < 16:
            return flood(until, lambda: gate.run(5, None, hashes, "A", client="203.0.113.1"))
        time.sleep(0.2)  # the flood has filled what it can
        served = []
        for _ in range(5):
            started = time.monotonic()
            served.append(gate.run(5, None, hashes, "B", client="203.0.113.2"))
            assert time.monotonic() - started < 1
        return served

    results = at_once(17, call)
    assert results[16] == [True] * 5  # never a 503 for the other address
    assert hashes.most["A"] == 4  # alone, the flood hashes on every place
    flood_statuses = sum(results[:16], [])
    assert flood_statuses.count(200) > 5 and flood_statuses.count(503) > 0


class Ordered:
    """A stand-in for bcrypt that takes ``seconds[label]`` (default 0.2) and records the order in
    which the hashes started, by label."""

    def __init__(self, **seconds):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.started = []

    def __call__(self, label):
        with self.lock:
            self.started.append(label)
        time.sleep(self.seconds.get(label, 0.2))
        return True


def test_one_address_alone_is_refused_nothing_the_gate_can_hold():
    """4 clients behind one address, a gate of 2 places and 2 waiting: nothing idles, nothing is refused."""
    gate = HashingGate(concurrency=2)
    gate.typical = 0.05
    hashes = Hashes(0.05)
    results = at_once(4, lambda index: gate.run(5, None, hashes, "A", client="203.0.113.1"))
    assert results == [True] * 4 and hashes.most["A"] == 2


def test_another_address_takes_the_newest_waiting_place_beyond_the_share_and_the_next_place_freed():
    gate = HashingGate(concurrency=2)  # 2 places, 2 waiting: one address holds 1 and 1 once another asks
    gate.typical = 0.2
    hashes = Ordered(A1=0.5)  # the places free one after the other: A0's at 0.2 s, A1's at 0.5 s

    def until(condition):
        deadline = time.monotonic() + 5
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.002)

    def call(index):
        if index < 4:  # in this order: 0 and 1 hash, then 2 and 3 wait
            until(lambda: gate.hashing + len(gate.waiting) == index)
            try:
                return gate.run(5, None, hashes, "A%d" % index, client="203.0.113.1")
            except ServiceUnavailable:
                return 503
        until(lambda: len(gate.waiting) == 2)
        assert gate.admitted == gate.max_admitted  # the gate is full of the first address
        return gate.run(5, None, hashes, "B", client="203.0.113.2")

    results = at_once(5, call)
    assert results == [True, True, True, 503, True]  # the newest waiting request of A made way for B
    assert sorted(hashes.started[:2]) == ["A0", "A1"]
    assert hashes.started[2:] == ["B", "A2"]  # B took the first place freed, before A's waiting one
    assert gate.admitted == 0 and not gate.waiting and not gate.held and not gate.placed


def test_a_request_is_in_line_from_the_moment_it_is_admitted(monkeypatch):
    """Admitted requests that have not yet reached the line (a thread descheduled between the
    two, here for 0.3 s) still make way for another address: it is never refused for them."""
    gate = HashingGate(concurrency=2)  # 2 places, 2 waiting
    gate.typical = 0.05
    hashes = Hashes(0.05)
    take_place = gate._take_place

    def late(*args, **kwargs):
        time.sleep(0.3)
        return take_place(*args, **kwargs)

    monkeypatch.setattr(gate, "_take_place", late)

    def call(index):
        if index < 4:
            try:
                return gate.run(5, None, hashes, "A", client="203.0.113.1")
            except ServiceUnavailable:
                return 503
        deadline = time.monotonic() + 5
        while gate.admitted < gate.max_admitted and time.monotonic() < deadline:
            time.sleep(0.002)
        assert gate.hashing == 0  # the first address's requests are all admitted, none has a place yet
        return gate.run(5, None, hashes, "B", client="203.0.113.2")

    results = at_once(5, call)
    assert results[4] is True  # never a 503 for the other address
    assert results[:4].count(True) == 3 and results[:4].count(503) == 1  # one of the first made way


def test_a_request_on_its_way_out_holds_no_room_at_the_gate(monkeypatch):
    """Requests whose hash is done but whose thread has not yet returned (descheduled, here for
    0.3 s) no longer count among those at the gate: another address is admitted meanwhile."""
    gate = HashingGate(concurrency=2)  # 2 places, 2 waiting
    gate.typical = 0.05
    hashes = Ordered(A0=0.05, A1=0.05)  # A2 and A3 hash for 0.2 s
    hash_ = gate._hash

    def slow_to_return(*args, **kwargs):
        result = hash_(*args, **kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(gate, "_hash", slow_to_return)

    def call(index):
        if index < 4:
            return gate.run(5, None, hashes, "A%d" % index, client="203.0.113.1")
        deadline = time.monotonic() + 5
        while len(hashes.started) < 4 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert gate.hashing == 2 and not gate.waiting  # A2 and A3 hash, A0 and A1 are on their way out
        return gate.run(5, None, hashes, "B", client="203.0.113.2")

    results = at_once(5, call)
    assert results == [True] * 5


def test_the_cheap_look_reads_the_line_under_the_gate_s_lock():
    """is_full walks the line, which other threads change: read without the lock it raised
    "deque mutated during iteration" under a flood (a 500 for a login)."""
    gate = HashingGate(concurrency=1)
    looked = threading.Event()
    with gate.lock:
        looker = threading.Thread(target=lambda: (gate.is_full(5, "203.0.113.1"), looked.set()))
        looker.start()
        assert not looked.wait(0.2)  # it waits for the lock
    assert looked.wait(5)
    looker.join(5)


def test_a_flood_of_valid_logins_from_one_address_does_not_keep_another_address_out(app, testapp, monkeypatch):
    monkeypatch.setitem(app.registry, "cinema.password_hasher", PasswordHasher(4, None, gate=HashingGate(2)))
    checkpw = bcrypt.checkpw

    def slow_checkpw(*args):
        time.sleep(0.05)
        return checkpw(*args)

    monkeypatch.setattr(bcrypt, "checkpw", slow_checkpw)
    register(testapp, "flooder")
    register(testapp, "bob")
    until = time.monotonic() + FLOOD_SEC

    def login(username, address):
        body = {"username": username, "password": PASSWORD}
        return TestApp(app).post_json("/v1/auth/login", body, extra_environ={"REMOTE_ADDR": address}, expect_errors=True).status_int

    def call(index):
        if index < 12:
            statuses = []
            while time.monotonic() < until:
                statuses.append(login("flooder", "10.70.0.1"))
            return statuses
        time.sleep(0.2)
        return [login("bob", "10.70.0.2") for _ in range(5)]

    results = at_once(13, call)
    assert results[12] == [200] * 5
    flood_statuses = set(sum(results[:12], []))
    # 429: more than 10 logins of one address in progress at once hold its whole budget
    assert 503 in flood_statuses and flood_statuses <= {200, 429, 503}


def test_a_waiting_request_whose_client_has_gone_leaves_the_gate_at_once():
    gate = HashingGate(concurrency=1)
    gate.typical = 0.01
    release = threading.Event()
    holder = threading.Thread(target=gate.run, args=(5, None, release.wait), kwargs={"client": "203.0.113.1"})
    holder.start()
    try:
        deadline = time.monotonic() + 5
        while gate.hashing < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        gone = threading.Event()
        hashed = []
        threading.Timer(0.2, gone.set).start()
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            gate.run(5, None, hashed.append, "B", client="203.0.113.2", gone=gone.is_set)
        assert time.monotonic() - started < 1  # not the 5 s of the gate's wait
        assert hashed == [] and not gate.waiting and gate.admitted == 1
    finally:
        release.set()
        holder.join(10)
    assert gate.admitted == 0 and gate.hashing == 0 and not gate.held and not gate.placed


def test_a_request_whose_client_has_gone_is_never_hashed():
    gate = HashingGate(concurrency=1)
    gate.typical = 0.01
    hashed = []
    with pytest.raises(ServiceUnavailable):
        gate.run(5, None, hashed.append, "A", client="203.0.113.1", gone=lambda: True)
    assert hashed == [] and gate.admitted == 0 and gate.hashing == 0


def test_every_client_holds_at_least_one_place_and_one_waiting_place():
    gate = HashingGate(concurrency=1)
    assert (gate.client_places, gate.client_queue) == (1, 1)
    gate = HashingGate(concurrency=8)
    assert (gate.client_places, gate.client_queue) == (2, 2)


def give_up_early(port, body, forwarded_for, after):
    """A login whose client closes the connection ``after`` seconds without reading its answer."""
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=after)
    try:
        headers = {"Content-Type": "application/json", "X-Forwarded-For": forwarded_for}
        connection.request("POST", "/v1/auth/login", json.dumps(body), headers)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


@pytest.mark.slow
def test_a_real_server_flooded_from_one_address_answers_another_within_the_bound(tmp_path):
    import secrets

    from cinema_api.testing import ServerProcess

    # production.ini: its waitress leaves X-Forwarded-For to the application (TRUSTED_PROXIES)
    environ = {
        "DATABASE_URL": "sqlite:///" + str(tmp_path / "flood.sqlite"),
        "JWT_SECRET": secrets.token_urlsafe(48), "BCRYPT_ROUNDS": "10", "BCRYPT_CONCURRENCY": "4",
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    with ServerProcess(ini="production.ini", migrate=True, **environ) as server:
        flooder, bob = ({"username": name, "password": PASSWORD} for name in ("flooder", "bob"))
        for body in (flooder, bob):
            assert server.request("POST", "/v1/auth/register", dict(body, age=30))[0] == 201
        until = time.monotonic() + 4

        def call(index):
            if index < 30:  # valid logins, each given up after 0.3 s
                statuses = []
                while time.monotonic() < until:
                    statuses.append(give_up_early(server.port, flooder, "203.0.113.1", 0.3))
                return statuses
            time.sleep(0.5)
            answers = []
            while time.monotonic() < until:
                started = time.monotonic()
                status = server.request("POST", "/v1/auth/login", bob, {"X-Forwarded-For": "203.0.113.2"})[0]
                answers.append((status, time.monotonic() - started))
            return answers

        results = at_once(31, call)
    statuses = [status for status, _ in results[30]]
    slowest = max(elapsed for _, elapsed in results[30])
    assert statuses and set(statuses) == {200}, statuses
    assert slowest < 5, "a login waited %.1f s" % slowest
