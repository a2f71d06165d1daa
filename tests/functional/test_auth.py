"""Registration, login, tokens, refresh rotation, logout (docs/API.md section 5)."""

import threading
import time
import uuid

import jwt
import pytest
from webtest import TestApp

from cinema_api import make_app
from cinema_api.infrastructure.passwords import PasswordHasher
from cinema_api.testing import at_once
from tests.conftest import PASSWORD, bearer, build_settings, ini_settings, register

SECRET = "testing-only-secret-that-is-long-enough-0123456789"


def test_register_returns_an_auth_response(testapp):
    response = testapp.post_json("/v1/auth/register", {"username": "alice", "password": PASSWORD, "age": 30}, status=201)
    body = response.json
    assert set(body) == {"accessToken", "refreshToken", "expiresAt", "user"}
    assert body["user"] == {"id": body["user"]["id"], "username": "alice", "role": "customer", "age": 30}
    assert uuid.UUID(body["user"]["id"]).version == 4
    claims = jwt.decode(body["accessToken"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == body["user"]["id"] and claims["role"] == "customer" and claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert set(claims) == {"sub", "role", "sid", "jti", "iat", "exp", "typ"}
    assert body["expiresAt"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(claims["exp"]))
    assert "password" not in response.text and "$2b$" not in response.text


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("username", "ab", "username must be longer than or equal to 3 characters"),
        ("username", "a" * 51, "username must be shorter than or equal to 50 characters"),
        ("username", "bad name", "username must contain only letters, digits, '.', '_' and '-'"),
        ("username", "émile", "username must contain only letters, digits, '.', '_' and '-'"),
        ("username", 42, "username must be a string"),
        ("username", None, "username must be a string"),
        ("password", "short1", "password must be longer than or equal to 8 bytes"),
        ("password", "a1" + "x" * 71, "password must be shorter than or equal to 72 bytes"),
        ("password", "é1" + "é" * 35, "password must be shorter than or equal to 72 bytes"),
        ("password", "onlyletters", "password must contain at least one letter and one digit"),
        ("password", "12345678", "password must contain at least one letter and one digit"),
        ("age", -1, "age must not be less than 0"),
        ("age", 151, "age must not be greater than 150"),
        ("age", 30.0, "age must be an integer number"),
        ("age", "thirty", "age must be an integer number"),
        ("age", True, "age must be an integer number"),
        ("role", "admin", "role must be one of the following values: manager, customer"),
    ],
)
def test_register_validation(testapp, field, value, message):
    body = {"username": "alice", "password": PASSWORD, "age": 30, "role": "customer"}
    body[field] = value
    response = testapp.post_json("/v1/auth/register", body, status=400)
    assert response.json["message"] == [message]
    assert response.json["errors"] == [{"location": "body", "name": field, "description": message.split(" ", 1)[1]}]
    assert testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=401)


def test_register_requires_username_password_and_age(testapp):
    response = testapp.post_json("/v1/auth/register", {}, status=400)
    assert sorted(response.json["message"]) == [
        "age should not be empty",
        "password should not be empty",
        "username should not be empty",
    ]


def test_register_accepts_digit_strings_and_trims(testapp):
    body = {"username": "  alice  ", "password": PASSWORD, "age": "21", "extra": "ignored"}
    user = testapp.post_json("/v1/auth/register", body, status=201).json["user"]
    assert user["username"] == "alice" and user["age"] == 21


def test_register_malformed_json_is_400_with_a_string_message(testapp):
    response = testapp.post("/v1/auth/register", "{nope", headers={"Content-Type": "application/json"}, status=400)
    assert isinstance(response.json["message"], str)


def test_register_body_without_content_type_is_read_as_json(testapp, app):
    from webob import Request

    request = Request.blank("/v1/auth/register", method="POST", body=b'{"username": "alice", "password": "secret123", "age": 30}')
    assert "Content-Type" not in request.headers
    assert request.get_response(app).status_int == 201


def test_register_json_with_charset_is_accepted(testapp):
    body = b'{"username": "alice", "password": "secret123", "age": 30}'
    testapp.post("/v1/auth/register", body, headers={"Content-Type": "application/json; charset=utf-8"}, status=201)


def test_duplicate_username_is_409_and_usernames_are_case_sensitive(testapp):
    register(testapp, "alice")
    response = testapp.post_json("/v1/auth/register", {"username": "alice", "password": "other1234", "age": 20}, status=409)
    assert response.json == {"statusCode": 409, "error": "Conflict", "code": "USERNAME_TAKEN", "message": "Username already exists"}
    register(testapp, "Alice")


def test_login_with_the_right_password(testapp):
    account = register(testapp, "alice")
    body = testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}).json
    assert body["user"]["id"] == account.id
    testapp.get("/v1/users/" + account.id, headers=bearer(body["accessToken"]))


@pytest.mark.parametrize(
    "username, password",
    [("alice", "wrong1234"), ("nobody", PASSWORD), ("alice", "x" * 100 + "1"), ("ALICE", PASSWORD), ("alice", ""), ("", PASSWORD), ("  ", PASSWORD)],
)
def test_login_failures_are_alike(testapp, username, password):
    register(testapp, "alice")
    response = testapp.post_json("/v1/auth/login", {"username": username, "password": password}, status=401)
    assert response.json == {"statusCode": 401, "error": "Unauthorized", "code": "INVALID_CREDENTIALS", "message": "Invalid credentials"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_login_requires_string_fields(testapp):
    response = testapp.post_json("/v1/auth/login", {"username": 1}, status=400)
    assert sorted(response.json["message"]) == ["password should not be empty", "username must be a string"]


def test_an_unknown_user_still_costs_one_bcrypt_check(monkeypatch):
    import bcrypt

    hasher = PasswordHasher(rounds=4, concurrency=1)
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    assert hasher.verify("secret123", None) is False
    assert hasher.verify("x" * 80, hasher.hash("secret123")) is False
    assert len(calls) == 2


# ---------------------------------------------------------------- bearer tokens


def forge(claims, key=SECRET, algorithm="HS256"):
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(account, **changes):
    claims = jwt.decode(account.access_token, SECRET, algorithms=["HS256"])
    claims.update(changes)
    return claims


def assert_401(response):
    assert response.status_int == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json["statusCode"] == 401 and isinstance(response.json["message"], str)


def test_no_token_is_401(testapp):
    assert_401(testapp.get("/v1/users", status=401))
    assert testapp.get("/v1/users", status=401).json["message"] == "Authentication required"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "bearer not.a.jwt"])
def test_malformed_authorization_is_401(testapp, header):
    assert_401(testapp.get("/v1/users", headers={"Authorization": header}, status=401))


def test_alg_none_is_401(testapp, manager):
    token = jwt.encode(valid_claims(manager), key=None, algorithm="none")
    assert_401(testapp.get("/v1/users", headers=bearer(token), status=401))


def test_another_key_is_401(testapp, manager):
    token = forge(valid_claims(manager), key="another-secret-that-is-long-enough-987654321")
    assert_401(testapp.get("/v1/users", headers=bearer(token), status=401))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_another_algorithm_is_401(testapp, manager):
    token = forge(valid_claims(manager), algorithm="HS512")
    assert_401(testapp.get("/v1/users", headers=bearer(token), status=401))


def test_expired_token_is_401_beyond_the_leeway(testapp, manager):
    now = int(time.time())
    token = forge(valid_claims(manager, iat=now - 100, exp=now - 6))
    response = testapp.get("/v1/users", headers=bearer(token), status=401)
    assert_401(response)
    assert response.json["message"] == "Token has expired"
    # within the 5 s leeway it still works
    testapp.get("/v1/users", headers=bearer(forge(valid_claims(manager, exp=now - 2))))


@pytest.mark.parametrize("claim", ["sub", "role", "sid", "jti", "iat", "exp", "typ"])
def test_a_token_missing_a_claim_is_401(testapp, manager, claim):
    claims = valid_claims(manager)
    del claims[claim]
    assert_401(testapp.get("/v1/users", headers=bearer(forge(claims)), status=401))


def test_a_token_of_another_type_is_401(testapp, manager):
    assert_401(testapp.get("/v1/users", headers=bearer(forge(valid_claims(manager, typ="refresh"))), status=401))


def test_a_refresh_token_is_not_a_bearer_token(testapp, manager):
    assert_401(testapp.get("/v1/users", headers=bearer(manager.refresh_token), status=401))


def test_a_forged_role_does_not_grant_more(testapp, customer):
    # The signature is right, but the role comes from the account, not from the claim.
    token = forge(valid_claims(customer, role="manager"))
    testapp.get("/v1/users", headers=bearer(token), status=403)


def test_a_token_for_a_deleted_user_is_401(testapp, app, customer):
    from pony.orm import db_session

    from cinema_api.users.services import Users

    testapp.get("/v1/users/" + customer.id, headers=customer.headers)
    with db_session:
        assert Users(app.registry["cinema.db"], None).delete("customer1")
    assert_401(testapp.get("/v1/users/" + customer.id, headers=customer.headers, status=401))


def test_customer_is_403_on_manager_routes(testapp, customer):
    response = testapp.get("/v1/users", headers=customer.headers, status=403)
    assert response.json == {"statusCode": 403, "error": "Forbidden", "code": "FORBIDDEN", "message": "You are not allowed to do this"}
    assert "WWW-Authenticate" not in response.headers


# ---------------------------------------------------------------- refresh and logout


def refresh(testapp, token, status=200):
    return testapp.post_json("/v1/auth/refresh", {"refreshToken": token}, status=status)


def test_refresh_rotates_the_refresh_token(testapp, customer):
    body = refresh(testapp, customer.refresh_token).json
    assert body["refreshToken"] != customer.refresh_token
    assert body["accessToken"] != customer.access_token
    assert body["user"]["id"] == customer.id
    testapp.get("/v1/users/" + customer.id, headers=bearer(body["accessToken"]))
    second = refresh(testapp, body["refreshToken"]).json
    assert second["refreshToken"] not in (body["refreshToken"], customer.refresh_token)


@pytest.mark.parametrize("body", [{}, {"refreshToken": 42}, {"refreshToken": None}, {"refreshToken": ["x"]}])
def test_refresh_requires_a_string(testapp, body):
    testapp.post_json("/v1/auth/refresh", body, status=400)


def test_an_unknown_refresh_token_is_401(testapp):
    assert_401(refresh(testapp, "not-a-token", status=401))


def test_reusing_a_spent_refresh_token_revokes_the_session(testapp, customer):
    rotated = refresh(testapp, customer.refresh_token).json
    response = refresh(testapp, customer.refresh_token, status=401)
    assert_401(response)
    # the whole user session is gone: the rotated pair and the first access token
    assert_401(refresh(testapp, rotated["refreshToken"], status=401))
    assert_401(testapp.get("/v1/users/" + customer.id, headers=bearer(rotated["accessToken"]), status=401))
    assert_401(testapp.get("/v1/users/" + customer.id, headers=customer.headers, status=401))


def test_reuse_revokes_only_that_session(testapp, customer):
    other = testapp.post_json("/v1/auth/login", {"username": "customer1", "password": PASSWORD}).json
    refresh(testapp, customer.refresh_token)
    refresh(testapp, customer.refresh_token, status=401)
    testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]))
    refresh(testapp, other["refreshToken"])


def test_refresh_does_not_extend_the_session(testapp, app, customer):
    from datetime import timedelta

    from pony.orm import db_session

    db = app.registry["cinema.db"]
    with db_session:
        session = db.LoginSession.select().first()
        expires = session.expires_at
    body = refresh(testapp, customer.refresh_token).json
    with db_session:
        assert db.LoginSession.select().count() == 1
        assert db.LoginSession.select().first().expires_at == expires
        # once the session has expired, refresh answers 401
        db.LoginSession.select().first().expires_at = expires - timedelta(days=8)
    assert_401(refresh(testapp, body["refreshToken"], status=401))


def test_refresh_tokens_are_stored_hashed(testapp, app, customer):
    from pony.orm import db_session

    from cinema_api.infrastructure.tokens import hash_refresh_token

    db = app.registry["cinema.db"]
    with db_session:
        stored = [t.token_hash for t in db.RefreshToken.select()]
    assert stored == [hash_refresh_token(customer.refresh_token)]
    assert customer.refresh_token not in stored


def test_concurrent_refreshes_of_one_token_have_exactly_one_winner(app, testapp, customer):
    def attempt(_):
        return TestApp(app).post_json("/v1/auth/refresh", {"refreshToken": customer.refresh_token}, expect_errors=True).status_int

    assert sorted(at_once(8, attempt, timeout=60)) == [200] + [401] * 7


def login(testapp, username="customer1", password=PASSWORD, status=200, **kwargs):
    return testapp.post_json("/v1/auth/login", {"username": username, "password": password}, status=status, **kwargs)


def test_logout_ends_the_callers_login_session_only(testapp, customer):
    other = login(testapp).json  # the same user on another device
    testapp.post("/v1/auth/logout", headers=customer.headers, status=204)
    # this session: its access token and its refresh token answer 401 from the next request on
    assert_401(testapp.get("/v1/users/" + customer.id, headers=customer.headers, status=401))
    assert_401(refresh(testapp, customer.refresh_token, status=401))
    assert_401(testapp.post("/v1/auth/logout", headers=customer.headers, status=401))
    # the other device keeps working: its access token, and its refresh token
    testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]))
    rotated = refresh(testapp, other["refreshToken"]).json
    testapp.get("/v1/users/" + customer.id, headers=bearer(rotated["accessToken"]))


def test_logout_ends_every_access_token_of_the_session(testapp, customer):
    rotated = refresh(testapp, customer.refresh_token).json  # a second access token of the same session
    testapp.post("/v1/auth/logout", headers=bearer(rotated["accessToken"]), status=204)
    for token in (customer.access_token, rotated["accessToken"]):
        assert_401(testapp.get("/v1/users/" + customer.id, headers=bearer(token), status=401))
    assert_401(refresh(testapp, rotated["refreshToken"], status=401))


def test_logout_everywhere_ends_every_session_of_the_user(testapp, customer):
    second = login(testapp).json
    someone_else = register(testapp, "bystander")
    testapp.post_json("/v1/auth/logout", {"everywhere": True}, headers=customer.headers, status=204)
    for token in (customer.access_token, second["accessToken"]):
        assert_401(testapp.get("/v1/users/" + customer.id, headers=bearer(token), status=401))
    for token in (customer.refresh_token, second["refreshToken"]):
        assert_401(refresh(testapp, token, status=401))
    assert_401(testapp.post("/v1/auth/logout", headers=customer.headers, status=401))
    testapp.get("/v1/users/" + someone_else.id, headers=someone_else.headers)  # another user's sessions are not touched
    # signing in again works
    fresh = login(testapp).json
    testapp.get("/v1/users/" + customer.id, headers=bearer(fresh["accessToken"]))


@pytest.mark.parametrize("body", [b"", b"{}", b'{"everywhere": false}'])
def test_a_logout_without_everywhere_is_a_plain_logout(testapp, customer, body):
    other = login(testapp).json
    testapp.post("/v1/auth/logout", body, headers=dict(customer.headers, **{"Content-Type": "application/json"}), status=204)
    assert_401(testapp.get("/v1/users/" + customer.id, headers=customer.headers, status=401))
    testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]))


@pytest.mark.parametrize("value", ["true", 1, 0, None, [], {}])
def test_logout_everywhere_must_be_a_json_boolean(testapp, customer, value):
    response = testapp.post_json("/v1/auth/logout", {"everywhere": value}, headers=customer.headers, status=400)
    assert response.json["message"] == ["everywhere must be a boolean value"]
    assert response.json["errors"] == [{"location": "body", "name": "everywhere", "description": "must be a boolean value"}]
    testapp.get("/v1/users/" + customer.id, headers=customer.headers)  # nothing was revoked


def test_logout_body_is_empty(testapp, customer):
    response = testapp.post("/v1/auth/logout", headers=customer.headers, status=204)
    assert response.body == b""


# ---------------------------------------------------------------- manager signup policy


@pytest.fixture
def closed_signup(test_environ):
    settings = build_settings(dict(test_environ, ALLOW_MANAGER_SIGNUP="false"))
    return TestApp(make_app(settings, ini_settings()))


def test_manager_signup_is_open_in_development_and_tests(testapp):
    assert register(testapp, "boss", role="manager").body["user"]["role"] == "manager"


def test_manager_signup_needs_a_managers_token_when_closed(testapp, closed_signup, manager, customer):
    body = {"username": "boss2", "password": PASSWORD, "age": 40, "role": "manager"}
    response = closed_signup.post_json("/v1/auth/register", body, status=403)
    assert response.json["message"] == "Registering as a manager requires a manager's token"
    closed_signup.post_json("/v1/auth/register", body, headers=customer.headers, status=403)
    created = closed_signup.post_json("/v1/auth/register", body, headers=manager.headers, status=201).json
    assert created["user"]["role"] == "manager"
    # customers may still sign up
    closed_signup.post_json("/v1/auth/register", {"username": "cust2", "password": PASSWORD, "age": 20}, status=201)


# ---------------------------------------------------------------- login throttling


def fail_login(client, username, status=401, **kwargs):
    return client.post_json("/v1/auth/login", {"username": username, "password": "wrong1234"}, status=status, **kwargs)


def test_ten_failures_per_username_then_429_before_any_password_check(testapp, monkeypatch):
    register(testapp, "alice")
    for index in range(10):
        fail_login(testapp, "alice", extra_environ={"REMOTE_ADDR": "10.0.0.%d" % index})
    import bcrypt

    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: pytest.fail("password checked while throttled"))
    response = testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=429, extra_environ={"REMOTE_ADDR": "10.0.1.1"})
    assert response.json["statusCode"] == 429 and response.json["error"] == "Too Many Requests"
    assert 890 <= int(response.headers["Retry-After"]) <= 900


def test_ten_failures_per_address_then_429_for_any_username(testapp):
    register(testapp, "alice")
    for index in range(10):
        fail_login(testapp, "user%d" % index, extra_environ={"REMOTE_ADDR": "10.9.9.9"})
    fail_login(testapp, "alice", status=429, extra_environ={"REMOTE_ADDR": "10.9.9.9"})
    # another address still may try
    testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, extra_environ={"REMOTE_ADDR": "10.9.9.10"})


def test_a_successful_login_clears_the_username_count(testapp):
    register(testapp, "alice")
    for index in range(9):
        fail_login(testapp, "alice", extra_environ={"REMOTE_ADDR": "10.0.0.%d" % index})
    testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, extra_environ={"REMOTE_ADDR": "10.0.2.1"})
    for index in range(9):
        fail_login(testapp, "alice", extra_environ={"REMOTE_ADDR": "10.0.3.%d" % index})


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(test_environ):
    settings = build_settings(dict(test_environ, TRUSTED_PROXIES="127.0.0.1"))
    client = TestApp(make_app(settings, ini_settings()))
    client.app.registry["cinema.login_limiter"].reset()
    for index in range(10):
        fail_login(client, "u%d" % index, headers={"X-Forwarded-For": "203.0.113.7"}, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    fail_login(client, "other", status=429, headers={"X-Forwarded-For": "203.0.113.7"}, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    # a spoofed header from an untrusted peer is ignored: that peer has its own budget
    fail_login(client, "other2", headers={"X-Forwarded-For": "203.0.113.7"}, extra_environ={"REMOTE_ADDR": "198.51.100.1"})
    client.app.registry["cinema.login_limiter"].reset()


def test_client_address_takes_the_hop_added_by_the_trusted_proxy():
    import ipaddress

    from cinema_api.infrastructure.ratelimit import client_address

    class Request:
        def __init__(self, peer, forwarded):
            self.remote_addr = peer
            self.headers = {"X-Forwarded-For": forwarded} if forwarded else {}

    trusted = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8"))
    assert client_address(Request("127.0.0.1", "1.1.1.1, 203.0.113.7"), trusted) == "203.0.113.7"
    assert client_address(Request("127.0.0.1", "203.0.113.7, 10.1.1.1"), trusted) == "203.0.113.7"
    assert client_address(Request("198.51.100.1", "203.0.113.7"), trusted) == "198.51.100.1"
    assert client_address(Request("127.0.0.1", None), trusted) == "127.0.0.1"
    assert client_address(Request("127.0.0.1", "1.1.1.1"), ()) == "127.0.0.1"


def test_logins_proceed_when_the_limiter_storage_is_down(test_environ, caplog):
    settings = build_settings(dict(test_environ, CACHE_URL="redis://127.0.0.1:9/0"))
    client = TestApp(make_app(settings, ini_settings()))
    register(client, "down_user")
    for _ in range(12):
        fail_login(client, "down_user")
    client.post_json("/v1/auth/login", {"username": "down_user", "password": PASSWORD})
    assert any("login limiter storage is unavailable" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- the hashing gate


def occupied_hasher(wait, max_admitted=None):
    """A hasher with one slot, kept busy until the returned event is set."""
    from cinema_api.infrastructure.passwords import HashingGate

    hasher = PasswordHasher(rounds=4, concurrency=None, wait=wait, gate=HashingGate(1, max_admitted))
    release = threading.Event()
    hasher.gate.pool.submit(release.wait)
    return hasher, release


def test_hashing_gate_answers_503_with_retry_after(testapp, app, monkeypatch):
    register(testapp, "alice")
    hasher, release = occupied_hasher(wait=0.05)
    monkeypatch.setitem(app.registry, "cinema.password_hasher", hasher)
    try:
        response = testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=503)
        assert response.headers["Retry-After"] == "5"
        assert response.json["statusCode"] == 503
        testapp.post_json("/v1/auth/register", {"username": "bob", "password": PASSWORD, "age": 3}, status=503)
    finally:
        release.set()
    testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD})
    testapp.post_json("/v1/auth/login", {"username": "bob", "password": PASSWORD}, status=401)  # nothing half-written


# ---------------------------------------------------------------- concurrency


def test_parallel_registrations_of_one_username_give_one_201(app, testapp, monkeypatch):
    from cinema_api.infrastructure.passwords import HashingGate

    # a gate that admits all 20 at once, from one address, and lets each wait as long as a loaded
    # machine needs: the race is on the username, not on the gate
    gate = HashingGate(4, max_admitted=20, share=1)
    monkeypatch.setitem(app.registry, "cinema.password_hasher", PasswordHasher(4, None, wait=60, gate=gate))
    def attempt(_):
        body = {"username": "racer", "password": PASSWORD, "age": 20}
        return TestApp(app).post_json("/v1/auth/register", body, expect_errors=True).status_int

    assert sorted(at_once(20, attempt)) == [201] + [409] * 19


def test_hashing_gate_refuses_at_once_when_the_queue_cannot_start_in_time():
    from cinema_api.core.errors import ServiceUnavailable

    hasher, release = occupied_hasher(wait=5, max_admitted=10)
    hasher.gate.typical = 2.0  # recent hashes took 2 s each
    results = []
    waiters = [threading.Thread(target=lambda: results.append(hasher.verify("secret123", None))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.2)  # three wait: the next would start after about 6 s
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        hasher.verify("secret123", None)
    assert time.monotonic() - started < 1
    release.set()
    for waiter in waiters:
        waiter.join(10)
    assert results == [False, False, False]


def test_a_busy_server_hashes_one_at_a_time_and_an_idle_one_on_every_slot():
    from cinema_api.infrastructure.passwords import HashingGate

    def spans_of(busy):
        gate = HashingGate(concurrency=2)
        gate.typical = 0.1
        spans = []

        def hash_():
            began = time.monotonic()
            time.sleep(0.2)
            spans.append((began, time.monotonic()))

        threads = [threading.Thread(target=gate.run, args=(5, busy, hash_)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        return sorted(spans)

    first, second = spans_of(lambda: True)
    assert second[0] >= first[1]  # one after the other while other requests are served
    first, second = spans_of(lambda: False)
    assert second[0] < first[1]  # side by side on an idle server


def test_thirty_simultaneous_failures_from_one_address_get_at_most_ten_password_checks(app, testapp, monkeypatch):
    """Count first, then check: the budget is exact under concurrency (docs/API.md section 5)."""
    from cinema_api.infrastructure.passwords import HashingGate
    from tests.functional.test_movies import run_parallel

    # a gate that admits every attempt, from one address: what limits the checks here is the budget alone
    monkeypatch.setitem(app.registry, "cinema.password_hasher", PasswordHasher(4, None, gate=HashingGate(4, max_admitted=30, share=1)))
    register(testapp, "alice")
    attempt = lambda client: client.post_json(  # noqa: E731
        "/v1/auth/login", {"username": "alice", "password": "wrong1234"}, extra_environ={"REMOTE_ADDR": "10.7.7.7"}, expect_errors=True
    )
    results = run_parallel(app, 30, attempt)
    assert results.count(401) == 10 and results.count(429) == 20
    testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, extra_environ={"REMOTE_ADDR": "10.7.7.8"}, status=429)


def test_a_login_refused_by_the_hashing_gate_is_not_counted_as_a_failure(testapp, app, monkeypatch):
    register(testapp, "alice")
    hasher, release = occupied_hasher(wait=0.01)
    monkeypatch.setitem(app.registry, "cinema.password_hasher", hasher)
    try:
        for _ in range(12):
            testapp.post_json("/v1/auth/login", {"username": "alice", "password": "wrong1234"}, status=503)
    finally:
        release.set()
    monkeypatch.undo()
    testapp.post_json("/v1/auth/login", {"username": "alice", "password": PASSWORD}, status=200)


def test_the_hashing_gate_admits_twice_its_threads_and_refuses_more_at_once():
    """A login flood cannot hold the server's threads: past the gate's capacity, 503 at once."""
    from cinema_api.core.errors import ServiceUnavailable

    hasher, release = occupied_hasher(wait=5)  # one hashing thread, busy
    results = []

    def login():
        try:
            results.append(hasher.verify("secret123", None))
        except ServiceUnavailable:
            results.append("503")

    admitted = [threading.Thread(target=login) for _ in range(2)]  # both wait for the busy thread
    for thread in admitted:
        thread.start()
    deadline = time.monotonic() + 5
    while hasher.gate.admitted < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    login()  # the third: the gate is full
    assert results == ["503"] and time.monotonic() - started < 0.5
    release.set()
    for thread in admitted:
        thread.join(10)
    assert results == ["503", False, False]


# ---------------------------------------------------------------- changing one's password


NEW_PASSWORD = "n3w-secret"


def change_password(testapp, account, current=PASSWORD, new=NEW_PASSWORD, status=204, **kwargs):
    body = {"currentPassword": current, "newPassword": new}
    return testapp.post_json("/v1/auth/password", body, headers=account.headers, status=status, **kwargs)


def test_changing_the_password_ends_every_other_session_and_keeps_the_callers(testapp, customer):
    other = login(testapp).json  # the same user on another device
    bystander = register(testapp, "bystander")
    response = change_password(testapp, customer)
    assert response.body == b""
    # the other device: its access token and its refresh token answer 401 at once
    assert_401(testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]), status=401))
    assert_401(refresh(testapp, other["refreshToken"], status=401))
    # the caller's session goes on, refresh included
    testapp.get("/v1/users/" + customer.id, headers=customer.headers)
    rotated = refresh(testapp, customer.refresh_token).json
    testapp.get("/v1/users/" + customer.id, headers=bearer(rotated["accessToken"]))
    testapp.get("/v1/users/" + bystander.id, headers=bystander.headers)  # another user's sessions are not touched


def test_the_new_password_signs_in_and_the_old_one_no_longer_does(testapp, customer):
    change_password(testapp, customer)
    assert login(testapp, password=PASSWORD, status=401).json["message"] == "Invalid credentials"
    assert login(testapp, password=NEW_PASSWORD).json["user"]["id"] == customer.id


def test_the_new_password_is_stored_as_a_bcrypt_hash(testapp, app, customer):
    from pony.orm import db_session

    change_password(testapp, customer)
    with db_session:
        stored = app.registry["cinema.db"].User.get(username="customer1").password_hash
    assert stored.startswith("$2b$") and NEW_PASSWORD not in stored


def test_a_wrong_current_password_is_401_invalid_credentials_and_changes_nothing(testapp, customer):
    other = login(testapp).json
    response = change_password(testapp, customer, current="wrong1234", status=401)
    assert response.json == {"statusCode": 401, "error": "Unauthorized", "message": "Invalid credentials", "code": "INVALID_CREDENTIALS"}
    assert response.headers["WWW-Authenticate"] == "Bearer"
    testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]))  # no session was ended
    login(testapp, password=PASSWORD)
    login(testapp, password=NEW_PASSWORD, status=401)


@pytest.mark.parametrize(
    "new, message",
    [
        ("short1", "newPassword must be longer than or equal to 8 bytes"),
        ("a1" + "x" * 71, "newPassword must be shorter than or equal to 72 bytes"),
        ("é1" + "é" * 35, "newPassword must be shorter than or equal to 72 bytes"),
        ("onlyletters", "newPassword must contain at least one letter and one digit"),
        ("12345678", "newPassword must contain at least one letter and one digit"),
        (12345678, "newPassword must be a string"),
        ("bad\u0000pass1", "newPassword must not contain NUL or unpaired surrogate characters"),
    ],
)
def test_the_new_password_follows_the_registration_rules(testapp, customer, new, message):
    other = login(testapp).json
    response = change_password(testapp, customer, new=new, status=400)
    assert response.json["message"] == [message]
    assert response.json["errors"] == [{"location": "body", "name": "newPassword", "description": message.split(" ", 1)[1]}]
    testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]))
    login(testapp, password=PASSWORD)


def test_changing_the_password_needs_both_fields_and_a_token(testapp, customer):
    response = testapp.post_json("/v1/auth/password", {}, headers=customer.headers, status=400)
    assert sorted(response.json["message"]) == ["currentPassword should not be empty", "newPassword should not be empty"]
    body = {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}
    assert_401(testapp.post_json("/v1/auth/password", body, status=401))
    login(testapp, password=PASSWORD)


def test_a_revoked_session_cannot_change_the_password(testapp, customer):
    testapp.post("/v1/auth/logout", headers=customer.headers, status=204)
    assert_401(change_password(testapp, customer, status=401))
    login(testapp, password=PASSWORD)


def test_wrong_current_passwords_count_as_failed_logins_per_address(testapp, customer):
    for _ in range(10):
        change_password(testapp, customer, current="wrong1234", status=401, extra_environ={"REMOTE_ADDR": "10.8.0.1"})
    # the eleventh is 429 before any password check, even with the right password
    response = change_password(testapp, customer, status=429, extra_environ={"REMOTE_ADDR": "10.8.0.1"})
    assert response.json["message"] == "Too many failed login attempts, retry later"
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    # that address's budget is spent for every username
    register(testapp, "someone")
    login(testapp, "someone", status=429, extra_environ={"REMOTE_ADDR": "10.8.0.1"})


def test_wrong_current_passwords_count_as_failed_logins_per_username(testapp, customer):
    for index in range(10):
        change_password(testapp, customer, current="wrong1234", status=401, extra_environ={"REMOTE_ADDR": "10.8.1.%d" % index})
    change_password(testapp, customer, status=429, extra_environ={"REMOTE_ADDR": "10.8.2.1"})
    login(testapp, status=429, extra_environ={"REMOTE_ADDR": "10.8.2.2"})


def test_failed_logins_count_against_changing_the_password(testapp, customer):
    for index in range(10):
        fail_login(testapp, "customer1", extra_environ={"REMOTE_ADDR": "10.8.3.%d" % index})
    change_password(testapp, customer, status=429, extra_environ={"REMOTE_ADDR": "10.8.4.1"})


def test_a_password_change_refused_by_the_hashing_gate_is_503_and_changes_nothing(testapp, app, customer, monkeypatch):
    other = login(testapp).json
    hasher, release = occupied_hasher(wait=0.01)
    monkeypatch.setitem(app.registry, "cinema.password_hasher", hasher)
    try:
        for _ in range(12):  # not failed logins: never throttled
            response = change_password(testapp, customer, status=503)
        assert response.headers["Retry-After"] == "5"
    finally:
        release.set()
    monkeypatch.undo()
    testapp.get("/v1/users/" + customer.id, headers=bearer(other["accessToken"]))
    login(testapp, password=PASSWORD)
    change_password(testapp, customer)


def test_concurrent_password_changes_of_one_user_have_one_winner(app, testapp, monkeypatch):
    """Four devices change the password at once: one change wins, its session goes on, every other
    session ends, and only the winner's new password signs in (on PostgreSQL they race for real)."""
    from cinema_api.infrastructure.passwords import HashingGate

    # a gate that admits all four at once, from one address: the race is on the user's row
    monkeypatch.setitem(app.registry, "cinema.password_hasher", PasswordHasher(4, None, gate=HashingGate(4, max_admitted=8, share=1)))
    register(testapp, "alice")
    tokens = [login(testapp, "alice").json["accessToken"] for _ in range(4)]

    def attempt(index):
        body = {"currentPassword": PASSWORD, "newPassword": "n3w-secret%d" % index}
        return TestApp(app).post_json("/v1/auth/password", body, headers=bearer(tokens[index]), expect_errors=True).status_int

    statuses = at_once(4, attempt, timeout=60)
    assert statuses.count(204) == 1 and all(status in (401, 409) for status in statuses if status != 204)
    winner = statuses.index(204)
    for index, token in enumerate(tokens):
        testapp.get("/v1/users", headers=bearer(token), status=403 if index == winner else 401)
    for index in range(4):
        login(testapp, "alice", "n3w-secret%d" % index, status=200 if index == winner else 401)
    login(testapp, "alice", PASSWORD, status=401)


class PausingHasher(PasswordHasher):
    """Pauses the first password check it makes, once bcrypt has answered, until released."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.checked, self.release, self.paused = threading.Event(), threading.Event(), []

    def verify(self, password, password_hash):
        matches = super().verify(password, password_hash)
        if not self.paused:
            self.paused.append(password)
            self.checked.set()
            self.release.wait(10)
        return matches


def test_a_login_that_checked_the_old_password_while_it_was_changed_opens_no_session(app, testapp, customer, db, monkeypatch):
    """Someone holding the old password logs in while its owner changes it: the old password was
    right when bcrypt checked it, but the change committed before the login did. The login is
    refused (401) and leaves no session: the change revoked the sessions there were, and a later
    one may not open on a password that is no longer the user's."""
    from pony.orm import db_session

    from cinema_api.infrastructure.passwords import HashingGate

    hasher = PausingHasher(4, None, gate=HashingGate(4, max_admitted=8, share=1))
    monkeypatch.setitem(app.registry, "cinema.password_hasher", hasher)
    statuses = []
    late_login = threading.Thread(target=lambda: statuses.append(login(TestApp(app), status="*").status_int), daemon=True)
    late_login.start()
    try:
        assert hasher.checked.wait(10)  # bcrypt said yes to the old password
        change_password(testapp, customer)  # and the owner's change commits meanwhile
    finally:
        hasher.release.set()
    late_login.join(20)
    assert statuses == [401]
    with db_session:
        live = db.select('SELECT COUNT(*) FROM "user_sessions" WHERE "revoked_at" IS NULL')
    assert live == [1]  # the owner's, which the change keeps
    login(testapp, password=NEW_PASSWORD)
