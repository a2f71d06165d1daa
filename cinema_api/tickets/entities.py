"""Tickets: one per user and movie session, one per seat, used at most once."""

import uuid
from datetime import datetime

from pony.orm import Optional, PrimaryKey, Required, composite_key

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.pony_internals import execute_alone, select_rows
from cinema_api.infrastructure.sql import on_sqlite, sql_datetime, sql_uuid, sqlite_datetime

# What a purchase needs to know, in one read: the session, its movie and the buyer's age.
_PURCHASE_FACTS = (
    'SELECT "s"."date", "s"."timeslot", "s"."room_number", "s"."seat_rows", "s"."seats_per_row", '
    '"m"."id", "m"."title", "m"."age_restriction", (SELECT "u"."age" FROM "users" "u" WHERE "u"."id" = $uid), '
    '"s"."cancelled_at" '
    'FROM "movie_sessions" "s" JOIN "movies" "m" ON "m"."id" = "s"."movie_id" WHERE "s"."id" = $sid'
)

# PostgreSQL, a purchase without a chosen seat in one round trip: the same read and, in the same
# statement, the sale, made only where every check of ``Tickets.buy`` passes on what it read. A
# session with a seat plan sells its first free seat (the lowest row, then the lowest number, as
# ``SeatPlan.first_free``; the seats of its tickets read once, hashed for the probes); one taken
# meanwhile (the unique key on session and seat) sells nothing, and ``Tickets.buy`` goes on as
# before, reading the seats again. Row n of a plan is the letter chr(64 + n), as ``ROW_LETTERS``.
_READ_AND_SELL = (
    'WITH "f" ("date", "timeslot", "room_number", "seat_rows", "seats_per_row", "movie_id", "title", "age_restriction", '
    '"age", "cancelled_at") AS (' + _PURCHASE_FACTS + '), '
    '"free" AS (SELECT chr(64 + "r") || "n" AS "seat" FROM "f", generate_series(1, "f"."seat_rows") "r", '
    'generate_series(1, "f"."seats_per_row") "n" WHERE chr(64 + "r") || "n" NOT IN '
    '(SELECT "t"."seat" FROM "tickets" "t" WHERE "t"."session_id" = $sid AND "t"."seat" IS NOT NULL) '
    'ORDER BY "r", "n" LIMIT 1), '
    '"sold" AS (INSERT INTO "tickets" ("id", "user_id", "session_id", "seat", "purchased_at", "is_used") '
    'SELECT $tid, $uid, $sid, "free"."seat", $now, $false FROM "movie_sessions" "s" CROSS JOIN "f" LEFT JOIN "free" ON TRUE '
    'WHERE "s"."id" = $sid AND "s"."cancelled_at" IS NULL AND "f"."cancelled_at" IS NULL '
    'AND ("f"."seat_rows" IS NULL OR "free"."seat" IS NOT NULL) '
    'AND "f"."date" > $now AND "f"."age" >= "f"."age_restriction" FOR SHARE OF "s" '
    'ON CONFLICT ("session_id", "seat") DO NOTHING RETURNING "seat") '
    'SELECT "f".*, (SELECT COUNT(*) FROM "sold"), (SELECT "seat" FROM "sold") FROM "f"'
)

# The same, for a request whose login session nobody has checked yet (``cinema_api.auth.identity``,
# deferred checks): the statement checks it first, as the security policy would have (the
# function of migration 0004), sells only while it is live, and says whether it was. Its one
# row comes also without such a screening (the facts then NULL): the 401 goes before the 404.
_CHECK_LOGIN_READ_AND_SELL = (
    'WITH "l" ("live") AS (SELECT "live_login_session"($lsid, $uid, $now)), '
    + _READ_AND_SELL[len("WITH "):]
    .replace('FOR SHARE OF "s" ', 'AND (SELECT "live" FROM "l") IS NOT NULL FOR SHARE OF "s" ')
    .replace(
        'SELECT "f".*, (SELECT COUNT(*) FROM "sold"), (SELECT "seat" FROM "sold") FROM "f"',
        'SELECT "f".*, (SELECT COUNT(*) FROM "sold"), (SELECT "seat" FROM "sold"), "l"."live" '
        'FROM "l" LEFT JOIN "f" ON TRUE',
    )
)
assert _CHECK_LOGIN_READ_AND_SELL.count('"l"') == 4  # both replacements took


def define_entities(db):
    class Ticket(db.Entity):
        _table_ = "tickets"
        id = PrimaryKey(uuid.UUID, default=uuid.uuid4)
        user = Required("User", column="user_id")
        screening = Required("Screening", column="session_id")
        # the seat's label (``C7``); None for a session without a seat plan. The database keeps
        # it unique per session and inside the session's plan (migration 0003).
        seat = Optional(str, max_len=3, nullable=True)
        purchased_at = Required(datetime, default=utcnow)
        is_used = Required(bool, default=False)
        used_at = Optional(datetime)
        # set on each unused ticket of a screening when the screening is cancelled
        cancelled_at = Optional(datetime)
        composite_key(user, screening)

        @classmethod
        def use_once(cls, ticket_id, now):
            """Mark the ticket used, in one conditional update that only an unused ticket that is not
            cancelled matches: of concurrent uses exactly one changes a row, and a ticket whose
            screening was cancelled meanwhile none. True when this call used it."""
            cursor = db.execute(
                'UPDATE "tickets" SET "is_used" = $true, "used_at" = $now '
                'WHERE "id" = $tid AND "is_used" = $false AND "cancelled_at" IS NULL',
                {"true": True, "false": False, "now": sql_datetime(db, now), "tid": sql_uuid(db, ticket_id)},
            )
            return cursor.rowcount == 1

        @classmethod
        def purchase_facts(cls, user_id, session_id):
            """``(date, timeslot, room number, seat rows, seats per row, movie id, title, age
            restriction, buyer's age, cancelled at)`` of the session, read now as plain values (no entity is
            loaded); None when there is no such session. The buyer's age is None without a buyer."""
            params = {"uid": sql_uuid(db, user_id), "sid": sql_uuid(db, session_id)}
            rows = select_rows(db, _PURCHASE_FACTS, params, prepared=True)
            row = rows[0] if rows else None
            if row is None or not on_sqlite(db):
                return row
            # SQLite: UUIDs are 16-byte blobs and datetimes the text Pony stores
            (day, *middle, movie_id, title, restriction, age, cancelled_at) = row
            return (sqlite_datetime(day), *middle, uuid.UUID(bytes=movie_id), title, restriction, age, sqlite_datetime(cancelled_at))

        @classmethod
        def read_and_sell(cls, ticket_id, user_id, session_id, now, login_session_id=None):
            """PostgreSQL: ``(facts, sold, seat)``, where ``facts`` is what :meth:`purchase_facts`
            reads, ``sold`` whether the same statement sold ticket ``ticket_id`` and ``seat`` the
            seat it sold (None without a seat plan): only to a buyer there and old enough, for a
            session there, on sale (not cancelled) and not started at ``now`` (the checks of
            ``Tickets.buy``); with a seat plan, the first free seat, unless another sale took it
            meanwhile. One round trip where reading, then selling take two (three with a seat
            plan: the seats sold are read too). The session's row is locked for share, as
            :meth:`sell_seat` locks it; the buyer's second ticket raises, as from :meth:`sell_seat`.
            ``(None, False, None)`` without such a session.

            With ``login_session_id``, the buyer's login session is checked in the same statement
            (``live_login_session``) and ``(facts, sold, seat, live)`` comes back: ``live`` the
            function's answer (None once revoked, expired or its user deleted), and nothing is
            sold without it."""
            params = {"tid": ticket_id, "uid": user_id, "sid": session_id, "now": now, "false": False}
            if login_session_id is None:
                row = execute_alone(db, _READ_AND_SELL, params, prepared=True).fetchone()
                if row is None:
                    return None, False, None
                return row[:-2], row[-2] == 1, row[-1]
            params["lsid"] = login_session_id
            row = execute_alone(db, _CHECK_LOGIN_READ_AND_SELL, params, prepared=True).fetchone()
            facts = row[:-3] if row[0] is not None else None  # a screening's date is never NULL
            return facts, row[-3] == 1, row[-2], row[-1]

        @classmethod
        def sell_seat(cls, ticket_id, user_id, session_id, seat, now):
            """Insert ticket ``ticket_id`` for ``seat`` unless that seat of the session is sold, in one
            conditional insert: of concurrent sales of one seat exactly one inserts a row (the others
            wait for it on the unique index, then insert nothing). True when this call sold the seat.
            Other violations (the buyer's second ticket, a seat outside the plan) still raise.
            ``seat`` None sells a ticket without a seat: several nulls never clash, so only the
            other keys and the plan's trigger can refuse it.

            Only a screening that is on (not cancelled, still there) sells: the insert reads it in
            the same statement, and on PostgreSQL holds a share lock on its row, so a cancellation
            either waits for this sale (and then cancels the ticket with the others) or is seen by
            it (nothing is inserted). On SQLite writers are serialised. False, then, too."""
            cursor = execute_alone(
                db,
                'INSERT INTO "tickets" ("id", "user_id", "session_id", "seat", "purchased_at", "is_used") '
                'SELECT $tid, $uid, $sid, $seat, $now, $false FROM "movie_sessions" '
                'WHERE "id" = $sid AND "cancelled_at" IS NULL%s '
                'ON CONFLICT ("session_id", "seat") DO NOTHING' % ("" if on_sqlite(db) else " FOR SHARE"),
                {
                    "tid": sql_uuid(db, ticket_id),
                    "uid": sql_uuid(db, user_id),
                    "sid": sql_uuid(db, session_id),
                    "seat": seat,
                    "now": sql_datetime(db, now),
                    "false": False,
                },
                prepared=True,
            )
            return cursor.rowcount == 1

        @classmethod
        def screening_state(cls, session_id):
            """``"on"``, ``"cancelled"`` or ``"gone"``: the screening as committed now."""
            rows = select_rows(
                db, 'SELECT "cancelled_at" IS NULL FROM "movie_sessions" WHERE "id" = $sid', {"sid": sql_uuid(db, session_id)}
            )
            if not rows:
                return "gone"
            return "on" if rows[0][0] else "cancelled"

        @classmethod
        def seats_sold(cls, session_id):
            """The seat of every ticket of a session (None for tickets without a seat), read now."""
            return db.select('SELECT "seat" FROM "tickets" WHERE "session_id" = $sid', {"sid": sql_uuid(db, session_id)})

        @classmethod
        def holds(cls, user_id, session_id):
            """True when the user has a ticket for the session, as committed now (not Pony's cache)."""
            rows = db.select(
                'SELECT COUNT(*) FROM "tickets" WHERE "user_id" = $uid AND "session_id" = $sid',
                {"uid": sql_uuid(db, user_id), "sid": sql_uuid(db, session_id)},
            )
            return rows[0] > 0

        @classmethod
        def exists_now(cls, ticket_id):
            """Whether the ticket's row is there now (a read of the database, not of the session's
            cache, which still holds the ticket a concurrent delete removed)."""
            return bool(select_rows(db, 'SELECT 1 FROM "tickets" WHERE "id" = $tid', {"tid": sql_uuid(db, ticket_id)}))

        @classmethod
        def cancel_unused(cls, ticket_id):
            """Delete the ticket in one conditional delete that only an unused ticket matches: a
            ticket checked at the door meanwhile stays. True when this call deleted it."""
            cursor = db.execute(
                'DELETE FROM "tickets" WHERE "id" = $tid AND "is_used" = $false',
                {"false": False, "tid": sql_uuid(db, ticket_id)},
            )
            return cursor.rowcount == 1

    return Ticket
