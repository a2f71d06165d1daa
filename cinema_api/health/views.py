"""GET /v1/health (alias /health), and the probes GET /v1/health/live and /v1/health/ready."""

from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.api import ApiService, RetryAfterHeaders, reply
from cinema_api.core.errors import ServiceUnavailable
from cinema_api.health.schemas import HealthCheck, Liveness
from cinema_api.health.services import check_health, check_readiness
from cinema_api.infrastructure.storage_errors import RETRY_AFTER_SEC

health = ApiService(name="health", path="/health")
health_alias = ApiService(name="health_alias", path="/health", prefix="", documented=False)
liveness = ApiService(name="health_live", path="/health/live", needs_database=False)
readiness = ApiService(name="health_ready", path="/health/ready")

HEALTH_RESPONSES = {
    "200": reply(HealthCheck(), "The database is up; a cache that is down is listed under `error`"),
    "503": reply(
        HealthCheck(),
        "The database is down: `status` is `error` and the database is listed under `error`",
        RetryAfterHeaders(),
    ),
}


def get_health(request):
    """Check the service and its dependencies

    Two real round trips: `SELECT 1` on the database, and a set and get on the default cache
    backend. `info` lists what is up, `error` what is down, `details` both. A cache outage is
    still a 200, with the cache under `error`: the API works without its cache, only slower.
    The check answers within 5 s whatever the database does.
    """
    healthy, body = check_health(request.db, request.registry["cinema.caches"])
    if not healthy:
        request.registry["cinema.metrics"].database_unavailable.inc()
        request.response.status = 503
        request.response.headers["Retry-After"] = RETRY_AFTER_SEC
    return body


def get_liveness(request):
    """Liveness probe: the process answers

    No database and no cache call: 200 while the process can answer at all, within 1 s
    whatever its dependencies do (it has threads of its own). A failing liveness probe means:
    restart the process.
    """
    return {"status": "ok"}


def get_readiness(request):
    """Readiness probe: the process can serve

    200 when the database answers `SELECT 1`; 503 `Database unavailable` with `Retry-After`
    when it does not, within DATABASE_TIMEOUT_SEC + 1 s (at once while the database is known
    to be down). A cache outage is still a 200, with the cache under `error`: degraded, still
    serving. A failing readiness probe means: send no traffic here for now.
    """
    try:
        return check_readiness(request.db, request.registry["cinema.caches"])
    except ServiceUnavailable:
        request.registry["cinema.metrics"].database_unavailable.inc()
        raise


for service in (health, health_alias):
    service.add_view(
        "GET",
        get_health,
        permission=NO_PERMISSION_REQUIRED,
        response_schemas=HEALTH_RESPONSES,
    )

liveness.add_view(
    "GET",
    get_liveness,
    permission=NO_PERMISSION_REQUIRED,
    response_schemas={"200": reply(Liveness(), "The process answers")},
)
readiness.add_view(
    "GET",
    get_readiness,
    permission=NO_PERMISSION_REQUIRED,
    response_schemas={"200": reply(HealthCheck(), "The database is up; a cache that is down is listed under `error`")},
)
