"""cinema-admin <ini> create-user | delete-user: manage accounts, managers included.

The password of a new user is read from the CINEMA_ADMIN_PASSWORD environment variable
(for automation) or prompted for.
"""

import argparse
import getpass
import os
import sys

import colander
from pony.orm import db_session
from pyramid.paster import bootstrap, setup_logging

from cinema_api.auth.schemas import Register
from cinema_api.core.errors import DomainError
from cinema_api.users.services import Users

PASSWORD_VARIABLE = "CINEMA_ADMIN_PASSWORD"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="cinema-admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_uri", help="the ini file, e.g. production.ini")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user (manager or customer)")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=["manager", "customer"])
    create.add_argument("--age", required=True)
    delete = commands.add_parser("delete-user", help="delete a user with their sessions and tickets")
    delete.add_argument("username")
    return parser.parse_args(argv)


def read_password():
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is not None:
        return password
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise SystemExit("cinema-admin: the passwords differ")
    return password


def create_user(registry, args):
    try:
        data = Register().deserialize(
            {"username": args.username, "password": read_password(), "role": args.role, "age": args.age}
        )
    except colander.Invalid as exc:
        problems = "; ".join("%s %s" % item for item in exc.asdict().items())
        raise SystemExit("cinema-admin: %s" % problems) from None
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
        raise SystemExit("cinema-admin: no user named %s" % args.username)
    print("deleted %s" % args.username)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.config_uri)
    env = bootstrap(args.config_uri)
    try:
        action = create_user if args.command == "create-user" else delete_user
        action(env["registry"], args)
    except DomainError as exc:
        raise SystemExit("cinema-admin: %s" % exc.message) from None
    finally:
        env["closer"]()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
