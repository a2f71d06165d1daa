"""The client addresses from which each user signed in: the per-username login budget spares them.

A username whose failed-login budget an attacker has spent from other addresses still signs in from
an address it signed in from successfully in the last 30 days (docs/API.md section 11). The table is
written on every successful login (an upsert of ``last_success_at``) and read only when the
per-username budget would refuse, so every process sees the same addresses. ``address`` is the
client address the login throttle counts (``cinema_api.infrastructure.ratelimit.client_address``).
"""

from yoyo import step

__depends__ = {"0006_kept_rows"}


def _is_sqlite(conn):
    return type(conn).__module__.startswith("sqlite3")


def apply_step(conn):
    timestamp = "DATETIME" if _is_sqlite(conn) else "TIMESTAMP"
    cursor = conn.cursor()
    cursor.execute(
        f"""CREATE TABLE "known_login_addresses" (
            "user_id" UUID NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
            "address" VARCHAR(100) NOT NULL,
            "last_success_at" {timestamp} NOT NULL,
            PRIMARY KEY ("user_id", "address")
        )"""
    )


def rollback_step(conn):
    conn.cursor().execute('DROP TABLE "known_login_addresses"')


steps = [step(apply_step, rollback_step)]
