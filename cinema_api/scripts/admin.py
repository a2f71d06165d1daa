"""cinema-admin <ini> create-user | delete-user | reset-login-limits: manage accounts (managers
included) and the failed-login counts.

The password of a new user is read from the CINEMA_ADMIN_PASSWORD environment variable
(for automation) or prompted for on the terminal.
"""

import argparse
import getpass
import os
import sys

import colander
import redis
from pony.orm import db_session

from cinema_api.auth.schemas import Register
from cinema_api.core.errors import DomainError
from cinema_api.infrastructure.ratelimit import login_limiter
from cinema_api.scripts import build_registry, exit_on_storage_failure, load_script_settings, one_line
from cinema_api.users.services import Users

PROG = "cinema-admin"
PASSWORD_VARIABLE = "CINEMA_ADMIN_PASSWORD"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_uri", help="the ini file, e.g. production.ini")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user (manager or customer)")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=["manager", "customer"])
    create.add_argument("--age", required=True)
    delete = commands.add_parser("delete-user", help="delete a user with their sessions and tickets")
    delete.add_argument("username")
    commands.add_parser(
        "reset-login-limits", help="forget every failed-login count (kept in Redis when CACHE_URL is Redis)"
    )
    return parser.parse_args(argv)


def read_password():
    """CINEMA_ADMIN_PASSWORD, or the password typed twice on the terminal."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is not None:
        return password
    if sys.stdin is None or not sys.stdin.isatty():
        raise SystemExit("%s: no terminal to ask for the password on: set %s" % (PROG, PASSWORD_VARIABLE))
    try:
        password = getpass.getpass("Password: ")
        repeated = getpass.getpass("Repeat password: ")
    except (EOFError, KeyboardInterrupt):
        raise SystemExit("%s: no password given" % PROG) from None
    if repeated != password:
        raise SystemExit("%s: the passwords differ" % PROG)
    return password


def new_user(args):
    """The checked fields of the user to create (the password asked for first)."""
    try:
        return Register().deserialize({"username": args.username, "password": read_password(), "role": args.role, "age": args.age})
    except colander.Invalid as exc:
        problems = "; ".join("%s %s" % item for item in exc.asdict().items())
        raise SystemExit("%s: %s" % (PROG, problems)) from None


def create_user(registry, args):
    data = args.user
    with db_session:
        user = Users(registry["cinema.db"], registry["cinema.password_hasher"]).create(
            data["username"], data["password"], data["role"], data["age"]
        )
        print("created %s %s (%s)" % (user.role, user.username, user.id))


def delete_user(registry, args):
    """Delete a user; their tokens stop working at the next request (their login sessions go
    with them, and every request checks its login session in the database)."""
    with db_session:
        deleted = Users(registry["cinema.db"], None).delete(args.username)
    if not deleted:
        raise SystemExit("%s: no user named %s" % (PROG, args.username))
    print("deleted %s" % args.username)


def reset_login_limits(settings):
    """Forget every failed-login count. Counts kept in a server's memory (CACHE_URL is not
    Redis) are out of this process's reach: restarting the server forgets them."""
    limiter = login_limiter(settings)
    if not limiter.is_shared:
        raise SystemExit(
            "%s: the failed-login counts live in each server's memory (CACHE_URL is not Redis): "
            "restart the server to reset them" % PROG
        )
    try:
        forgotten = limiter.forget_all()
    except redis.RedisError as exc:
        raise SystemExit("%s: Redis unavailable: %s" % (PROG, one_line(exc))) from None
    print("login limits reset: %d count%s forgotten" % (forgotten, "" if forgotten == 1 else "s"))


def main(argv=None):
    args = parse_args(argv)
    if args.command == "create-user":
        args.user = new_user(args)  # before anything is opened or migrated
    settings, ini = load_script_settings(args.config_uri, PROG)
    if args.command == "reset-login-limits":  # the database is not involved
        reset_login_limits(settings)
        return 0
    registry = build_registry(settings, ini, PROG)
    try:
        (create_user if args.command == "create-user" else delete_user)(registry, args)
    except DomainError as exc:
        raise SystemExit("%s: %s" % (PROG, exc.message)) from None
    except Exception as exc:
        exit_on_storage_failure(exc, PROG)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
