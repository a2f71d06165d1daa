"""The server's UTC clock: every stored datetime is naive UTC."""

from datetime import datetime, timezone


def utcnow():
    """Now, as a naive UTC datetime with millisecond precision (what the API shows)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
