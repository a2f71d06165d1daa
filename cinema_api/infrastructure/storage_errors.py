"""Storage errors, at one boundary: what each failure of the database answers."""

import logging
import re
import sqlite3

import psycopg2
import psycopg2.errors
from pony.orm.core import CacheIndexError, CommitException, RollbackException, TransactionIntegrityError, UnexpectedError
from pony.orm.dbapiprovider import DBException
from pyramid.exceptions import ConfigurationExecutionError

from cinema_api.core.errors import domain_error_view, error_response

log = logging.getLogger("cinema_api.infrastructure.db")  # the storage's log lines keep the name they had


# ---------------------------------------------------------------- storage errors, at one boundary
#
# Pony wraps what the driver raised (TransactionIntegrityError, CommitException,
# UnexpectedError, its own DB-API classes). Whatever the wrapping, the answer is decided here
# from the driver's error: an integrity error is the 409 (or 404) of the constraint that fired,
# as the domains registered it (``config.add_constraint_error``); a lost, frozen or timed-out
# database is 503 with Retry-After; a deadlock or serialization failure is a 409 to retry.

#: SQLite names the columns of a failed unique constraint, not the constraint.
SQLITE_UNIQUE_CONSTRAINTS = {
    "users.username": "uq_users_username",
    "movies.title": "uq_movies_title",
    "movie_sessions.room_number, movie_sessions.timeslot, movie_sessions.day": "uq_movie_sessions_room_slot_day",
    "tickets.user_id, tickets.session_id": "uq_tickets_user_session",
    "tickets.session_id, tickets.seat": "uq_tickets_session_seat",
    "refresh_tokens.token_hash": "uq_refresh_tokens_token_hash",
}
#: SQLite names no foreign key either: a new ticket can only miss its session (its buyer is the
#: caller), a new session its movie, and the only restricting key is a ticket's session, when a
#: session is deleted.
SQLITE_FOREIGN_KEYS = {
    "Ticket": ("tickets_session_id_fkey", "tickets"),
    "Screening": ("movie_sessions_movie_id_fkey", "movie_sessions"),
}
SQLITE_RESTRICTING_KEY = ("tickets_session_id_fkey", "movie_sessions")
#: A rule a SQLite trigger enforces is raised under its constraint's name (PostgreSQL's triggers
#: name it in the error's diagnostics), with the table whose write it refused.
SQLITE_TRIGGER_CONSTRAINTS = {
    "ck_tickets_seat_in_plan": "tickets",
    "ck_catalog_version_kept": "catalog_version",
    "ck_movie_sessions_seat_plan_kept": "movie_sessions",
}

RETRY_AFTER_SEC = "5"


def driver_error(exc):
    """The DB-API driver's exception under Pony's wrappers, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sqlite3.Error, psycopg2.Error)):
            return exc
        if isinstance(exc, (CommitException, RollbackException)) and exc.exceptions:
            exc = exc.exceptions[0][1]
        else:
            exc = getattr(exc, "original_exc", None) or exc.__cause__ or exc.__context__
    return None


def unusable_database(exc):
    """One line saying why the database cannot be used at all (unreachable, refused, a SQLite
    folder that cannot be created), whatever wraps the error; None for any other error. For
    start-up, where there is no request to answer 503."""
    if isinstance(exc, ConfigurationExecutionError):
        exc = exc.evalue
    error = driver_error(exc)
    if error is None and isinstance(exc, OSError):
        error = exc
    if error is None:
        return None
    return "database unavailable: " + " ".join(str(error).split())


def is_retryable(exc):
    """A deadlock or serialization failure: the transaction was rolled back as a whole."""
    return isinstance(driver_error(exc), psycopg2.errors.TransactionRollbackError)


def violated_constraint(exc):
    """``(constraint, table)`` of an integrity error: the constraint that fired and the table whose
    write it refused (for a foreign key, the referencing table on insert, the referenced one on delete)."""
    error = driver_error(exc)
    diag = getattr(error, "diag", None)
    if diag is not None:
        return diag.constraint_name, diag.table_name
    text = str(error or exc)
    if text in SQLITE_TRIGGER_CONSTRAINTS:
        return text, SQLITE_TRIGGER_CONSTRAINTS[text]
    unique = re.search(r"UNIQUE constraint failed: (.+)$", text)
    if unique:
        columns = unique.group(1).strip()
        return SQLITE_UNIQUE_CONSTRAINTS.get(columns), columns.split(".")[0]
    if "FOREIGN KEY constraint failed" in text:
        entity = re.match(r"Object (\w+)\[.*\] cannot be stored", str(exc))
        return SQLITE_FOREIGN_KEYS.get(entity.group(1)) if entity else SQLITE_RESTRICTING_KEY
    return None, None


def add_constraint_error(config, constraint, table, error):
    """Directive: a violation of ``constraint`` by a write to ``table`` answers ``error()``."""
    config.registry.setdefault("cinema.constraint_errors", {})[(constraint, table)] = error


def storage_error_view(exc, request):
    """The one place where a storage failure becomes an answer."""
    error = driver_error(exc)
    if isinstance(exc, (TransactionIntegrityError, CacheIndexError)) or isinstance(
        error, (sqlite3.IntegrityError, psycopg2.IntegrityError)
    ):
        known = request.registry.get("cinema.constraint_errors", {}).get(violated_constraint(exc))
        if known is not None:
            return domain_error_view(known(), request)
        log.info("integrity conflict [trace %s]: %s", request.trace_id, exc)
        return error_response(request, 409, "The request conflicts with the current state of the resource", code="CONFLICT")
    if is_retryable(exc):  # still failing after ATTEMPTS tries
        return error_response(request, 409, "The request conflicted with a concurrent one; retry", {"Retry-After": "1"}, code="CONFLICT_RETRY")
    if isinstance(error, (sqlite3.OperationalError, psycopg2.OperationalError, psycopg2.InterfaceError)) or (
        error is not None and lost_connection(error)
    ):
        log.error("database unavailable [trace %s]: %s", request.trace_id, exc)
        request.registry["cinema.metrics"].database_unavailable.inc()
        return error_response(request, 503, "Database unavailable", {"Retry-After": RETRY_AFTER_SEC}, code="DATABASE_UNAVAILABLE")
    log.error("database error [trace %s]", request.trace_id, exc_info=exc)
    return error_response(request, 500, "Internal server error", code="INTERNAL_ERROR")


def lost_connection(exc):
    """Whether the driver error ``exc`` means that its connection is gone: a driver error with no
    SQLSTATE from the server (the server never answered it), other than a timeout of ours."""
    return (
        isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError))
        or type(exc) is psycopg2.DatabaseError
    ) and getattr(exc, "pgcode", None) is None


def includeme(config):
    config.add_directive("add_constraint_error", add_constraint_error)
    wrappers = (TransactionIntegrityError, CacheIndexError, CommitException, RollbackException, UnexpectedError)
    for storage_error in (*wrappers, DBException, sqlite3.Error, psycopg2.Error):
        config.add_exception_view(storage_error_view, context=storage_error)
