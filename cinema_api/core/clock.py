"""The server's UTC clock: every stored datetime is naive UTC."""

from datetime import datetime, timezone


def utcnow():
    """Now, as a naive UTC datetime (microseconds kept, so creation order is stable)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
