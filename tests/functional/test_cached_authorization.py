"""A cached answer is authorized like any other (docs/API.md section 6): whichever path serves the
copy (the fast path of cached hits, or the cache tween of the whole way), it goes only to a caller
whom the route's permission admits, through the same security policy and ACL."""

import pytest
from webtest import TestApp

from cinema_api import make_app
from cinema_api.core.acl import MANAGE
from cinema_api.movies import views
from cinema_api.testing import RedisServer
from tests.conftest import build_settings, ini_settings

#: A Content-Type on a GET (no body) sends it the whole way, past the fast path, to the cache tween.
WHOLE_WAY = {"Content-Type": "application/json"}


@pytest.fixture(params=["memory", "redis"])
def cache_url(request):
    if request.param == "memory":
        yield "memory://"
        return
    with RedisServer() as redis_server:  # a private one: this test writes nowhere else
        yield redis_server.url


@pytest.fixture
def managers_only_movie_list(monkeypatch):
    """``GET /v1/movies`` made managers-only, as a future cached route might be."""
    for method, _, args in views.movies.definitions:
        if method == "GET":
            monkeypatch.setitem(args, "permission", MANAGE)


def test_a_managers_only_cached_route_stays_403_for_a_customer_after_a_manager_filled_the_cache(
    test_environ, testapp, manager, customer, cache_url, managers_only_movie_list
):
    app = TestApp(make_app(build_settings(dict(test_environ, CACHE_URL=cache_url)), ini_settings()),
                  extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    testapp.post_json("/v1/movies", {"title": "Alien", "ageRestriction": 16}, headers=manager.headers)
    assert app.get("/v1/movies", headers=customer.headers, status=403).json["statusCode"] == 403
    assert app.get("/v1/movies", headers=manager.headers).headers["X-Cache"] == "MISS"
    for extra in ({}, WHOLE_WAY):  # the fast path, then the cache tween
        hit = app.get("/v1/movies", headers=dict(manager.headers, **extra))
        assert hit.headers["X-Cache"] == "HIT" and hit.json["movies"][0]["title"] == "Alien"
        refused = app.get("/v1/movies", headers=dict(customer.headers, **extra), status=403)
        assert "X-Cache" not in refused.headers and "Alien" not in refused.text


def test_a_cached_route_whose_context_depends_on_the_request_is_refused_at_configuration(test_environ, monkeypatch):
    from pyramid.exceptions import ConfigurationError

    from cinema_api.core.acl import owner_of_path

    monkeypatch.setattr(views.movie, "factory", owner_of_path("movieId"), raising=False)
    with pytest.raises(ConfigurationError, match="movie.*context"):
        make_app(build_settings(test_environ), ini_settings())


def test_a_root_acl_that_names_a_user_is_asked_for_every_caller():
    """The answer is kept per role only where the ACL grants by role alone."""
    from pyramid.authorization import Allow
    from pyramid.interfaces import IDefaultPermission, IRootFactory
    from pyramid.registry import Registry

    from cinema_api.auth.identity import Identity
    from cinema_api.auth.security_policy import JWTSecurityPolicy
    from cinema_api.infrastructure.cache import CachedRoute

    class NamesAUser:
        __acl__ = [(Allow, "role:manager", "view"), (Allow, "user:alice", "view")]

        def __init__(self, request):
            pass

    registry = Registry()
    registry.registerUtility(NamesAUser, IRootFactory)
    registry.registerUtility("view", IDefaultPermission)
    route = CachedRoute("probe", "movies", [])
    route.resolve(registry)
    policy = JWTSecurityPolicy(None)
    assert route.admits_identity(policy, Identity("alice", "customer", "s1"))
    assert not route.admits_identity(policy, Identity("bob", "customer", "s2"))  # same role, another answer
    assert route.admits_identity(policy, Identity("alice", "customer", "s3"))


def test_the_root_acl_is_asked_once_per_role_and_permission():
    """Root grants by authentication and role alone: the policy keeps its answers, and they are
    the ACL's. An identity whose role is not known yet (a deferred login-session check) is kept
    apart from the anonymous caller: sharing a key once let a request without a token through."""
    from pyramid.authorization import ACLHelper

    from cinema_api.auth.identity import Identity
    from cinema_api.auth.security_policy import JWTSecurityPolicy, principals_of
    from cinema_api.core.acl import MANAGE, USE, VIEW_TICKET, Root

    policy = JWTSecurityPolicy(None)
    root = Root(None)
    people = [
        Identity("u4", None, "s4"),  # first: what it is granted must not be kept for the anonymous caller
        None,
        Identity("u1", "customer", "s1"),
        Identity("u2", "customer", "s2"),
        Identity("u3", "manager", "s3"),
    ]
    for _ in range(2):  # asked, then answered from what was kept
        for identity in people:
            for permission in (USE, MANAGE, VIEW_TICKET):
                expected = ACLHelper().permits(root, principals_of(identity), permission)
                assert bool(policy.permits_identity(identity, root, permission)) == bool(expected), (identity, permission)
    kept = {(i is not None, i.role if i else None, p) for i in people for p in (USE, MANAGE, VIEW_TICKET)}
    assert sorted(policy._root_answers, key=str) == sorted(kept, key=str)
    assert policy.permits_identity(Identity("u4", None, "s4"), root, USE)
    assert not policy.permits_identity(None, root, USE)
