"""Health: real round trips to the database and the cache; liveness needs neither."""

import logging

from cinema_api.core.errors import StorageUnavailable
from cinema_api.infrastructure.db import ping
from cinema_api.infrastructure.storage_errors import RETRY_AFTER_SEC

log = logging.getLogger(__name__)

UP = {"status": "up"}


def database_status(db):
    """``{"status": "up"}``, or ``down`` when ``SELECT 1`` failed (within DATABASE_TIMEOUT_SEC)."""
    try:
        ping(db)
    except Exception as exc:  # any failure of the round trip means the database is down
        log.warning("database health check failed: %s", exc)
        return {"status": "down", "message": "database unreachable"}
    return UP


def cache_status(caches):
    """``{"status": "up"}``, or ``down`` when a set and get on the default cache backend failed."""
    return UP if caches.ping() else {"status": "down"}


def components(database, cache):
    """The health check's body parts: ``info`` lists what is up, ``error`` what is down,
    ``details`` everything."""
    details = {"database": database, "cache": cache}
    info = {name: status for name, status in details.items() if status["status"] == "up"}
    error = {name: status for name, status in details.items() if status["status"] != "up"}
    return {"info": info, "error": error, "details": details}


def check_health(db, caches):
    """``(healthy, body)``: unhealthy only when the database check fails; ``error`` names
    whatever is down, the cache included."""
    database = database_status(db)
    body = components(database, cache_status(caches))
    healthy = database["status"] == "up"
    return healthy, dict(status="ok" if healthy else "error", **body)


def check_readiness(db, caches):
    """The body of a ready process (the database answers; a cache outage is named under
    ``error``: degraded, still serving); 503 ``Database unavailable`` when the database does not."""
    database = database_status(db)
    if database["status"] != "up":
        raise StorageUnavailable("Database unavailable", {"Retry-After": RETRY_AFTER_SEC})
    return dict(status="ok", **components(database, cache_status(caches)))
