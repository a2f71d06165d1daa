"""GET /v1/health (alias /health)."""

from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.api import ApiService
from cinema_api.health.schemas import HealthResponse
from cinema_api.health.services import check_health

health = ApiService(name="health", path="/health", description="Liveness and dependencies")
health_alias = ApiService(name="health_alias", path="/health", prefix="", documented=False)

HEALTH_RESPONSES = {
    "200": HealthResponse(description="Database up (the cache may be down)"),
    "503": HealthResponse(description="Database down"),
}


def get_health(request):
    healthy, body = check_health(request.db, request.registry["cinema.caches"])
    if not healthy:
        request.response.status = 503
    return body


for service in (health, health_alias):
    service.add_view(
        "GET",
        get_health,
        permission=NO_PERMISSION_REQUIRED,
        tags=["health"],
        operation_id="getHealth",
        response_schemas=HEALTH_RESPONSES,
    )
