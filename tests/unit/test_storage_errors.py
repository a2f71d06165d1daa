"""The storage boundary: what each driver error means. (Retries of deadlocks: tests/functional/test_retries.py.)"""

import psycopg2
import psycopg2.errors
import pytest


@pytest.mark.parametrize(
    "error",
    [
        psycopg2.DatabaseError("server closed the connection unexpectedly"),  # after a crash: no SQLSTATE
        psycopg2.OperationalError("server closed the connection unexpectedly"),
        psycopg2.InterfaceError("connection already closed"),
    ],
)
def test_a_driver_error_that_means_the_connection_is_gone_is_a_503_and_a_reconnect(error):
    from cinema_api.infrastructure.pony_internals import PostgresProvider
    from cinema_api.infrastructure.storage_errors import lost_connection

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
    from cinema_api.infrastructure.storage_errors import lost_connection

    assert not lost_connection(error)


def test_a_timeout_or_refusal_of_ours_is_no_lost_connection_to_reconnect():
    from cinema_api.infrastructure.pony_internals import PostgresProvider
    from cinema_api.infrastructure.watchdog import DatabaseTimeout, DatabaseUnavailable

    for error in (DatabaseTimeout("no answer"), DatabaseUnavailable("known down")):
        assert not PostgresProvider.should_reconnect(object.__new__(PostgresProvider), error)


class PlanningCursor:
    """A cursor that records what it is sent and fails the statements named in ``fail``."""

    def __init__(self, prepared, fail=()):
        self.connection = type("Connection", (), {"prepared": prepared, "autocommit": False})()
        self.sent, self.fail = [], dict(fail)

    def execute(self, sql, arguments=None):
        self.sent.append(sql.split()[0])
        error = self.fail.pop(sql.split()[0], None)
        if error is not None:
            raise error


def run_prepared(statement, cursor):
    return statement.execute(cursor, (1,), lambda cursor, sql, arguments: cursor.execute(sql, arguments))


def test_a_prepare_that_fails_after_its_stale_plan_was_dropped_leaves_nothing_to_drop():
    from cinema_api.infrastructure.sql import Prepared

    statement = Prepared("SELECT $a")
    prepared = {statement.name: False}  # its plan went stale
    failing = PlanningCursor(prepared, {"PREPARE": psycopg2.OperationalError("canceled")})
    with pytest.raises(psycopg2.OperationalError):
        run_prepared(statement, failing)
    assert failing.sent == ["DEALLOCATE", "PREPARE"] and statement.name not in prepared
    cursor = PlanningCursor(prepared)
    run_prepared(statement, cursor)  # the next request prepares it afresh: no DEALLOCATE of nothing
    assert cursor.sent == ["PREPARE", "EXECUTE"] and prepared[statement.name] is True


def test_a_stale_plan_the_server_no_longer_has_is_forgotten():
    from cinema_api.infrastructure.sql import Prepared

    statement = Prepared("SELECT $a")
    prepared = {statement.name: False}
    gone = PlanningCursor(prepared, {"DEALLOCATE": psycopg2.errors.InvalidSqlStatementName("does not exist")})
    with pytest.raises(psycopg2.errors.InvalidSqlStatementName):
        run_prepared(statement, gone)
    assert statement.name not in prepared
    cursor = PlanningCursor(prepared)
    run_prepared(statement, cursor)
    assert cursor.sent == ["PREPARE", "EXECUTE"]
