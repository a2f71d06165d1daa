"""cinema-migrate <ini>: apply the pending schema migrations to DATABASE_URL.

A new database records the ini file's environment; one made for another environment is refused
with one line. One migrated before environments were recorded is recorded as this ini file's
(the operator names it), with a warning in the log."""

import argparse
import sys

from cinema_api.infrastructure import migrate
from cinema_api.scripts import exit_on_storage_failure, load_script_settings

PROG = "cinema-migrate"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_uri", help="the ini file, e.g. production.ini")
    parser.add_argument("--list", action="store_true", help="only list the pending migrations")
    args = parser.parse_args(argv)
    settings, _ = load_script_settings(args.config_uri, PROG)
    try:
        if args.list:
            pending = migrate.pending(settings.database_url)
            print("\n".join(pending) if pending else "no pending migrations")
            return 0
        applied = migrate.apply(settings.database_url, settings.environment, claim_unrecorded=True)
    except Exception as exc:
        exit_on_storage_failure(exc, PROG)
    print("applied: %s" % (", ".join(applied) if applied else "nothing, the schema is up to date"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
