"""Raw SQL, dialect by dialect: parameters as each driver takes them, statements a PostgreSQL server
plans once per connection (:class:`Prepared`), and the few places where SQLite and PostgreSQL differ."""

import hashlib
import re
from datetime import datetime

import psycopg2.errors
from pony.utils import datetime2timestamp


def on_sqlite(db):
    """Whether ``db`` is bound to SQLite (else PostgreSQL): where raw SQL differs."""
    return db.provider.dialect == "SQLite"


def sql_uuid(db, value):
    """A UUID as a raw SQL parameter on this database (SQLite stores UUIDs as 16-byte blobs)."""
    return value.bytes if on_sqlite(db) else value


def sql_datetime(db, value):
    """A naive UTC datetime as a raw SQL parameter: on SQLite, the text Pony stores (and compares
    as text), not the ISO form with a ``T`` that the driver would send."""
    return datetime2timestamp(value) if on_sqlite(db) else value


def sqlite_datetime(text):
    """A datetime as SQLite stores it (Pony's text form) -> naive UTC ``datetime``; None (an
    optional column's NULL) stays None."""
    return datetime.fromisoformat(text) if text is not None else None


_PARAMETER = re.compile(r"\$(\w+)")
_driver_statements = {}  # (sql, paramstyle, prepared) -> (the driver's SQL, the parameters' names in order)


def _driver_statement(db, sql, params, prepared=False):
    """``sql`` with ``$name`` parameters and their values in ``params``, in the driver's style:
    ``?`` and a tuple (SQLite), or ``%(name)s`` (``%`` doubled) and the mapping (psycopg2). A
    ``prepared`` statement on PostgreSQL is the :class:`Prepared` statement and a tuple."""
    paramstyle = db.provider.paramstyle
    key = (sql, paramstyle, prepared)
    statement = _driver_statements.get(key)
    if statement is None:
        if paramstyle == "qmark":
            statement = (_PARAMETER.sub("?", sql), _PARAMETER.findall(sql))
        elif prepared:
            statement = Prepared(sql)
            statement = (statement, statement.names)
        else:
            statement = (_PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%")), None)
        _driver_statements[key] = statement
    text, names = statement
    return text, params if names is None else tuple([params[name] for name in names])


class Prepared:
    """A statement that a PostgreSQL server parses and plans once per connection, not once per
    call: ``PREPARE`` the first time a connection runs it, ``EXECUTE`` with the values after.
    For the hot paths' statements whose planning costs the server more than running them
    (the read of a purchase: about 140 us of planning for 80 of work; its insert about 65 us).
    The server plans a prepared statement again by itself when a table it uses changes.
    SQLite needs none of this: its driver keeps the statements it compiled."""

    def __init__(self, sql):
        self.names = list(dict.fromkeys(_PARAMETER.findall(sql)))
        self.name = "cinema_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        self.body = _PARAMETER.sub(lambda match: "$%d" % (self.names.index(match.group(1)) + 1), sql)
        values = " (%s)" % ", ".join(["%s"] * len(self.names)) if self.names else ""
        self.call = "EXECUTE " + self.name + values

    def execute(self, cursor, arguments, execute):
        """Run it on ``cursor`` through ``execute(cursor, sql, arguments)``. A connection
        prepares it once. If a table it reads has changed its columns since (a
        migration run beside the server), the server refuses the old plan: it is prepared
        again, and run once more where no transaction was open to be spoilt by the refusal
        (in one, the request fails and the next use prepares it again)."""
        prepared = cursor.connection.prepared  # name -> True, or False once its plan went stale
        if not prepared.get(self.name):
            self._prepare(cursor, prepared)
        try:
            return execute(cursor, self.call, arguments)
        except Exception as exc:
            if not _stale_plan(exc):
                raise
            prepared[self.name] = False
            if not cursor.connection.autocommit:
                raise
            self._prepare(cursor, prepared)
            return execute(cursor, self.call, arguments)

    def _prepare(self, cursor, prepared):
        """Prepare it on the cursor's connection, dropping a stale plan first. The name is
        forgotten as soon as the server has none by it (dropped, or never there), so a PREPARE
        that fails (a timeout, an aborted transaction) leaves nothing to drop next time: a name
        kept after its statement was dropped made every later DEALLOCATE fail, and every
        purchase on that connection answer 503 until a restart."""
        if self.name in prepared:
            try:
                cursor.execute("DEALLOCATE %s" % self.name)
            except psycopg2.errors.InvalidSqlStatementName:
                del prepared[self.name]
                raise
            del prepared[self.name]
        cursor.execute("PREPARE %s AS %s" % (self.name, self.body))
        prepared[self.name] = True


def _stale_plan(exc):
    """Whether ``exc`` (psycopg2's, or Pony's wrapping of it) is the server's refusal of a
    prepared plan whose result columns changed."""
    original = getattr(exc, "original_exc", exc)
    return isinstance(original, psycopg2.errors.FeatureNotSupported) and "must not change result type" in str(original)


def _cursor_execute(cursor, sql, arguments):
    return cursor.execute(sql, arguments)


def _execute(cursor, statement, arguments, execute=_cursor_execute):
    """Run a statement from :func:`_driver_statement` on ``cursor``, through
    ``execute(cursor, sql, arguments)`` (the cursor's own, or Pony's ``provider.execute``)."""
    if isinstance(statement, Prepared):
        return statement.execute(cursor, arguments, execute)
    return execute(cursor, statement, arguments)


def substring_condition(db, column, parameter):
    """SQL: ``column`` contains the value of ``$parameter`` literally (no LIKE wildcards)."""
    function = "instr" if on_sqlite(db) else "strpos"
    return "%s(%s, $%s) > 0" % (function, column, parameter)


#: The escape character of :func:`like_pattern`'s patterns: write ``LIKE $p ESCAPE '\'``.
LIKE_ESCAPE = "\\"


def like_pattern(text):
    """A ``LIKE`` pattern for the values that contain ``text`` literally: its ``%``, ``_`` and
    ``\\`` escaped (with :data:`LIKE_ESCAPE`), between two ``%``."""
    escaped = text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")
    return "%" + escaped + "%"


def fts5_phrase(text):
    """``text`` as an FTS5 string (a phrase of its tokens, in a row): between double quotes,
    each double quote doubled; nothing in it is read as a query operator (AND, NEAR, ``*``, ...)."""
    return '"' + text.replace('"', '""') + '"'
