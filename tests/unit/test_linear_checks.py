"""Every check that meets client input costs time linear in its size (docs/API.md section 1).

A backtracking pattern is quadratic (or worse) on the right bytes: the body check's string
pattern once took 17 s of CPU for a 60 kB body and over an hour for 1 MiB, holding the
interpreter lock. Each check here is fed adversarial input of 1 MiB (pairs of characters at a
quarter of that) and must finish within a CPU bound that linear work meets a hundred times over
and quadratic work misses by hours. New patterns fail ``test_every_pattern_is_accounted_for``
until they are listed below, proved or said to meet no client input.
"""

import importlib
import itertools
import pkgutil
import re
import time

import colander
import pytest

import cinema_api
from cinema_api.auth.schemas import password_rules, username_rules
from cinema_api.core import body, schemas, trace
from cinema_api.core.errors import BadRequest
from cinema_api.runtime import cached_hits
from cinema_api.rooms.entities import SEAT_LABEL_RE
from cinema_api.testing import adversarial_bodies, repeated

MiB = 1024 * 1024
#: CPU seconds one check may take on 1 MiB: linear checks take milliseconds.
CPU_BOUND = 0.5


def cpu_seconds(call, *args):
    started = time.thread_time()
    try:
        call(*args)
    except (BadRequest, colander.Invalid):
        pass
    return time.thread_time() - started


def assert_linear(check, text):
    """``check`` on growing prefixes of ``text`` up to all of it, each within the bound: a
    quadratic check fails on a small prefix in seconds instead of running for hours."""
    size = 16 * 1024
    while True:
        prefix = text[:size]
        spent = cpu_seconds(check, prefix)
        assert spent < CPU_BOUND, "%d characters cost %.2f s of CPU" % (len(prefix), spent)
        if size >= len(text):
            return
        size *= 4


class RawRequest:
    """What ``parse_json_object`` reads of a request."""

    charset = "utf-8"

    def __init__(self, text):
        self.body = text.encode("utf-8", "surrogatepass")


ADVERSARIAL_BODIES = adversarial_bodies(MiB)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL_BODIES))
def test_the_body_checks_are_linear_on_adversarial_bodies(name):
    assert MiB - 32 <= len(ADVERSARIAL_BODIES[name]) <= MiB  # what the body limit lets through
    for check in (
        lambda text: body.values_exceed(text, body.MAX_JSON_VALUES),
        lambda text: body.JSON_STRING_RE.sub("", text),
        lambda text: body.parse_json_object(RawRequest(text)),
    ):
        assert_linear(check, ADVERSARIAL_BODIES[name])


def test_values_are_still_counted_outside_strings_only():
    within = '{"a":"' + "," * 20_000 + '"}'
    assert not body.values_exceed(within, body.MAX_JSON_VALUES)
    assert body.values_exceed("[" + "1," * 10_000 + "1]", body.MAX_JSON_VALUES)
    # an escaped quote does not end a string; an unterminated one hides nothing it could count
    assert not body.values_exceed('{"a":"\\",' + "," * 20_000 + '"}', body.MAX_JSON_VALUES)
    assert not body.values_exceed('{"a":"' + ",\\\"" * 20_000, body.MAX_JSON_VALUES)


#: Characters that patterns treat specially, and characters that start, end or break them.
ALPHABET = list('"\\,-0aAfT:.Z+ %_/=&~{[') + ["\ud800", "\x00", "\n", "\u00e9", "9"]

#: Every pattern that meets client input, with how the code applies it.
CLIENT_PATTERNS = {
    "core.body.JSON_STRING_RE (body)": lambda text: body.JSON_STRING_RE.sub("", text),
    "core.schemas.INTEGER_RE (query and body values)": schemas.INTEGER_RE.fullmatch,
    "core.schemas.UUID_RE (ids)": schemas.UUID_RE.fullmatch,
    "core.schemas.DATE_TIME_RE (dates)": schemas.DATE_TIME_RE.fullmatch,
    "core.schemas.DATE_RE (dates)": schemas.DATE_RE.fullmatch,
    "core.schemas.UNSTORABLE_RE (every string)": schemas.UNSTORABLE_RE.search,
    "core.trace._VALID_TRACE_ID (X-Trace-Id)": trace._VALID_TRACE_ID.fullmatch,
    "core.trace._TRACEPARENT (traceparent)": trace._TRACEPARENT.fullmatch,
    "core.trace._HEX_TRACE_ID (X-Trace-Id)": trace._HEX_TRACE_ID.fullmatch,
    "runtime.cached_hits._PLAIN (path and query)": cached_hits._PLAIN.fullmatch,
    "rooms.entities.SEAT_LABEL_RE (seat labels)": SEAT_LABEL_RE.fullmatch,
    # behind the string type, which refuses what cannot be stored before any validator runs
    "auth.schemas username_rules": lambda text: schemas.is_storable(text) and username_rules(None, text),
    "auth.schemas password_rules": lambda text: schemas.is_storable(text) and password_rules(None, text),
}

#: Patterns that never see what a client sent, and why.
NOT_CLIENT_INPUT = {
    "settings.SECRET_LINE_RE": "reads the repository's own files",
    "settings.ORIGIN_RE": "reads CORS_ORIGINS, a setting",
    "settings.KEY_PREFIX_RE": "reads CACHE_KEY_PREFIX, a setting",
    "core.openapi.PATH_PARAMETER_RE": "reads the routes' own patterns",
    "infrastructure.sql._PARAMETER": "reads our own SQL",
}


@pytest.mark.parametrize("name", sorted(CLIENT_PATTERNS))
def test_every_pattern_on_client_input_is_linear(name):
    check = CLIENT_PATTERNS[name]
    for unit in ALPHABET:
        assert_linear(check, repeated(unit, MiB) + "!")
    for pair in itertools.product(ALPHABET, repeat=2):
        assert_linear(check, repeated("".join(pair), MiB // 8) + "!")


def module_patterns():
    """``(module, NAME, pattern)`` of every compiled pattern at module level in cinema_api (an
    imported one shows under each module that imports it)."""
    found = set()
    for info in pkgutil.walk_packages(cinema_api.__path__, "cinema_api."):
        if ".migrations." in info.name or info.name.endswith(".migrations"):
            continue
        module = importlib.import_module(info.name)
        for attribute, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found.add((info.name.removeprefix("cinema_api."), attribute, value.pattern))
    return found


def test_every_pattern_is_accounted_for():
    known = {name.split(" ")[0] for name in CLIENT_PATTERNS} | set(NOT_CLIENT_INPUT)
    imported_from = {}
    for owner, attribute, pattern in sorted(module_patterns()):
        imported_from.setdefault(pattern, set()).add("%s.%s" % (owner, attribute))
    unaccounted = [names for names in imported_from.values() if not names & known]
    assert not unaccounted, "prove these linear here, or say why they never meet client input: %s" % unaccounted
