"""cinema-openapi: write or check the OpenAPI document, as YAML, that the API serves at /v1/api-yaml.

The document depends on the code only (never on settings or data): it is generated from an
application built on a throwaway SQLite database, without logging.

    cinema-openapi                                   print it
    cinema-openapi --output docs/openapi.yaml        rewrite the committed copy
    cinema-openapi --check docs/openapi.yaml         exit 1 with a diff when the copy is stale
"""

import argparse
import difflib
import os
import sys
import tempfile

from pyramid.paster import get_appsettings

from cinema_api import make_app
from cinema_api.core.openapi import generate_document, to_yaml
from cinema_api.settings import SettingsError, load_settings


def generated_yaml(config_uri):
    """The document the application of ``config_uri`` serves, as YAML."""
    ini = get_appsettings(config_uri)
    here = ini.global_conf.get("here") or os.path.dirname(os.path.abspath(config_uri))
    with tempfile.TemporaryDirectory() as folder:
        environ = dict(os.environ, DATABASE_URL="sqlite:///" + os.path.join(folder, "openapi.sqlite"), CACHE_URL="null://")
        try:
            settings = load_settings(ini, here, environ=environ)
        except SettingsError as exc:
            raise SystemExit("cinema_api: configuration error: %s" % exc) from None
        return to_yaml(generate_document(make_app(settings, ini).registry))


def difference(committed, generated, path):
    """A unified diff from the committed copy to the generated document ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            committed.splitlines(True), generated.splitlines(True), "%s (committed)" % path, "%s (generated)" % path
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="cinema-openapi", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config_uri", nargs="?", default="development.ini", help="the ini file (default: development.ini)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--output", metavar="PATH", help="write the document to PATH")
    target.add_argument("--check", metavar="PATH", help="compare PATH with the document; exit 1 with the diff if they differ")
    args = parser.parse_args(argv)
    generated = generated_yaml(args.config_uri)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(generated)
        return 0
    if args.check:
        try:
            with open(args.check, encoding="utf-8") as committed:
                diff = difference(committed.read(), generated, args.check)
        except FileNotFoundError:
            diff = difference("", generated, args.check)
        if diff:
            sys.stdout.write(diff)
            print("%s is stale: run `cinema-openapi --output %s` and review the diff" % (args.check, args.check), file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(generated)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
