"""The storage boundary: retries of deadlocks, and what each driver error answers."""

import psycopg2
import psycopg2.errors
import pytest
from pony.orm.dbapiprovider import OperationalError as PonyOperationalError
from pyramid.response import Response

from cinema_api.infrastructure.db import ATTEMPTS, db_session_tween_factory, is_retryable


class Request:
    trace_id = "unit"


def failing_handler(failures, error):
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) <= failures:
            raise PonyOperationalError(error)  # as Pony wraps what the driver raised
        return Response("ok")

    return handler, calls


@pytest.mark.parametrize("error", [psycopg2.errors.DeadlockDetected("deadlock detected"), psycopg2.errors.SerializationFailure("could not serialize")])
def test_a_deadlock_or_serialization_failure_runs_the_whole_request_again(error):
    handler, calls = failing_handler(ATTEMPTS - 1, error)
    assert db_session_tween_factory(handler, None)(Request()).status_code == 200
    assert len(calls) == ATTEMPTS


def test_retries_stop_after_three_attempts():
    handler, calls = failing_handler(ATTEMPTS, psycopg2.errors.DeadlockDetected("deadlock detected"))
    with pytest.raises(PonyOperationalError) as info:
        db_session_tween_factory(handler, None)(Request())
    assert is_retryable(info.value) and len(calls) == ATTEMPTS


def test_other_errors_are_not_retried():
    handler, calls = failing_handler(1, psycopg2.OperationalError("server closed the connection"))
    with pytest.raises(PonyOperationalError):
        db_session_tween_factory(handler, None)(Request())
    assert len(calls) == 1


@pytest.mark.parametrize(
    "error",
    [
        psycopg2.DatabaseError("server closed the connection unexpectedly"),  # after a crash: no SQLSTATE
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        psycopg2.InterfaceError("connection already closed"),
    ],
)
def test_a_driver_error_that_means_the_connection_is_gone_is_a_503_and_a_reconnect(error):
    from cinema_api.infrastructure.db import PostgresProvider, lost_connection

    assert lost_connection(error)
    assert PostgresProvider.should_reconnect(object.__new__(PostgresProvider), error)


@pytest.mark.parametrize(
    "error",
    [
        psycopg2.errors.UniqueViolation("duplicate key"),
        psycopg2.errors.SyntaxError("syntax error"),
    ],
)
def test_an_error_the_server_answered_is_no_lost_connection(error):
    from cinema_api.infrastructure.db import lost_connection

    assert not lost_connection(error)


def test_a_timeout_or_refusal_of_ours_is_no_lost_connection_to_reconnect():
    from cinema_api.infrastructure.db import DatabaseTimeout, DatabaseUnavailable, PostgresProvider

    for error in (DatabaseTimeout("no answer"), DatabaseUnavailable("known down")):
        assert not PostgresProvider.should_reconnect(object.__new__(PostgresProvider), error)
