"""Health: real round trips to the database and the cache."""

import logging

from cinema_api.infrastructure.db import ping

log = logging.getLogger(__name__)


def check_health(db, caches):
    """``(healthy, body)``: unhealthy only when the database check fails."""
    try:
        ping(db)
        database = {"status": "up"}
    except Exception as exc:  # any failure of the round trip means the database is down
        log.warning("database health check failed: %s", exc)
        database = {"status": "down", "message": "database unreachable"}
    cache = {"status": "up" if caches.ping() else "down"}
    if database["status"] == "up":
        info = {"database": database, "cache": cache}
        return True, {"status": "ok", "info": info, "error": {}, "details": info}
    return False, {
        "status": "error",
        "info": {"cache": cache},
        "error": {"database": database},
        "details": {"database": database, "cache": cache},
    }
