"""Logging set-up from LOG_LEVEL (and LOG_FORMAT)."""

import logging


def configure_logging(settings):
    """Apply ``LOG_LEVEL`` to the application's loggers."""
    logging.getLogger("cinema_api").setLevel(settings.log_level)
