"""Authentication: registration, login, token refresh with rotation, logout."""

from cinema_api.auth.entities import define_entities
from cinema_api.auth.services import Authentication
from cinema_api.infrastructure.passwords import QUEUED_SEC, SERVER_BUSY, PasswordHasher


def password_hasher(request):
    """The hasher for this request: its wait for a server thread counts against the gate, and
    while other requests are served it hashes on one core (see PasswordHasher.for_request)."""
    environ = request.environ
    return request.registry["cinema.password_hasher"].for_request(environ.get(QUEUED_SEC, 0.0), environ.get(SERVER_BUSY))


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


def includeme(config):
    from cinema_api.auth import views

    settings = config.registry["cinema.settings"]
    config.registry["cinema.password_hasher"] = PasswordHasher(settings.bcrypt_rounds, settings.bcrypt_concurrency)
    config.include("cinema_api.auth.security_policy")
    config.include("cinema_api.infrastructure.ratelimit")
    config.add_entities(define_entities)
    config.add_request_method(password_hasher, "password_hasher", reify=True)
    config.add_request_method(authentication, "authentication", reify=True)
    for service in (views.register, views.login, views.refresh, views.logout):
        config.add_cornice_service(service)
