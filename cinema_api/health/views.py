"""GET /v1/health (alias /health)."""

from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.api import ApiService, RetryAfterHeaders, reply
from cinema_api.health.schemas import HealthCheck
from cinema_api.health.services import check_health
from cinema_api.infrastructure.db import RETRY_AFTER_SEC

health = ApiService(name="health", path="/health")
health_alias = ApiService(name="health_alias", path="/health", prefix="", documented=False)

HEALTH_RESPONSES = {
    "200": reply(HealthCheck(), "The database is up (the cache may be down)"),
    "503": reply(
        HealthCheck(),
        "The database is down: `status` is `error` and the database is listed under `error`",
        RetryAfterHeaders(),
    ),
}


def get_health(request):
    """Check the service and its dependencies

    Two real round trips: `SELECT 1` on the database, and a set and get on the default cache
    backend. A cache outage is still a 200, with `cache: down`: the API works without its
    cache, only slower. The check answers within 5 s whatever the database does.
    """
    healthy, body = check_health(request.db, request.registry["cinema.caches"])
    if not healthy:
        request.response.status = 503
        request.response.headers["Retry-After"] = RETRY_AFTER_SEC
    return body


for service in (health, health_alias):
    service.add_view(
        "GET",
        get_health,
        permission=NO_PERMISSION_REQUIRED,
        response_schemas=HEALTH_RESPONSES,
    )
