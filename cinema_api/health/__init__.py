"""Health checks: GET /v1/health and its alias /health."""


def includeme(config):
    from cinema_api.health.views import health, health_alias

    config.add_cornice_service(health)
    config.add_cornice_service(health_alias)
