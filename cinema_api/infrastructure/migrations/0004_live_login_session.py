"""PostgreSQL: the login-session check as a PL/pgSQL function, whose plan the server keeps.

Every authenticated request asks whether its login session is live and reads the catalogue
version (``cinema_api.infrastructure.db.live_login_session``). Sent as a query, the server
parsed and planned it each time (about 160 us of a round trip of 40 us with the plan kept);
PL/pgSQL keeps the plan of its statements for the connection's life. SQLite keeps its own
prepared statements on the client, so it keeps the query and this step does nothing there.
"""

from yoyo import step

__depends__ = {"0003_rooms_and_seats"}


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def apply_step(conn):
    if _is_sqlite(conn):
        return
    conn.cursor().execute(
        """CREATE FUNCTION "live_login_session"("p_session" uuid, "p_user" uuid, "p_now" timestamp)
        RETURNS text LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN (
                SELECT "u"."role" || ':' || (SELECT "version" FROM "catalog_version" WHERE "id" = 1)
                FROM "user_sessions" "s" JOIN "users" "u" ON "u"."id" = "s"."user_id"
                WHERE "s"."id" = "p_session" AND "s"."user_id" = "p_user"
                  AND "s"."revoked_at" IS NULL AND "s"."expires_at" > "p_now"
            );
        END $$"""
    )


def rollback_step(conn):
    if not _is_sqlite(conn):
        conn.cursor().execute('DROP FUNCTION "live_login_session"(uuid, uuid, timestamp)')


steps = [step(apply_step, rollback_step)]
