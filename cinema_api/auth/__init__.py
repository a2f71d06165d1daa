"""Authentication: registration, login, token refresh with rotation, logout, password change."""

from cinema_api.auth.entities import define_entities
from cinema_api.auth.services import Authentication
from cinema_api.infrastructure.passwords import HashingGate, PasswordHasher, RequestsInFlight
from cinema_api.infrastructure.ratelimit import client_address


def authentication(request):
    registry = request.registry
    settings = registry["cinema.settings"]
    return Authentication(
        request.db,
        request.users,
        request.password_hasher,
        registry["cinema.access_tokens"],
        registry["cinema.login_limiter"],
        settings.refresh_token_ttl_sec,
        settings.allow_manager_signup,
    )


def password_hasher(request):
    """The hasher on behalf of this request's client (the address the login throttle counts):
    its share of the hashing gate, which it leaves once waitress says the client has gone."""
    address = client_address(request, request.registry["cinema.settings"].trusted_proxies)
    return request.registry["cinema.password_hasher"].for_client(address, request.environ.get("waitress.client_disconnected"))


def includeme(config):
    from cinema_api.auth import views

    settings = config.registry["cinema.settings"]
    # While other requests are in progress, logins hash on one core (see the hashing gate).
    in_flight = RequestsInFlight(view.path for view in (views.login, views.register, views.password))
    config.registry["cinema.requests_in_flight"] = in_flight
    gate = HashingGate(settings.bcrypt_concurrency)
    metrics = config.registry["cinema.metrics"]
    gate.waits, gate.rejections = metrics.login_gate_wait, metrics.login_gate_rejections
    gate.hashes, gate.verifications = metrics.bcrypt_hashes.labels("hash"), metrics.bcrypt_hashes.labels("verify")
    config.registry["cinema.password_hasher"] = PasswordHasher(settings.bcrypt_rounds, None, gate=gate, busy=in_flight.busy)
    config.add_tween("cinema_api.infrastructure.passwords.requests_in_flight_tween_factory")
    config.include("cinema_api.auth.security_policy")
    config.include("cinema_api.infrastructure.ratelimit")
    config.add_entities(define_entities)
    config.add_request_service(password_hasher, "password_hasher")
    config.add_request_service(authentication, "authentication")
    for service in (views.register, views.login, views.refresh, views.logout, views.password):
        config.add_cornice_service(service)
