"""Health checks: GET /v1/health and its alias /health; the probes /v1/health/live and /ready."""


def includeme(config):
    from cinema_api.health.views import health, health_alias, liveness, readiness

    for service in (health, health_alias, liveness, readiness):
        config.add_cornice_service(service)
