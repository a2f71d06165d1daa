"""Every error the API can give carries a registered code: the class tree, every call that builds
an error body, and the documents that list the codes (docs/API.md section 11, the OpenAPI document)."""

import ast
import importlib
import os
import pkgutil
import re

import pytest

import cinema_api
from cinema_api.core import errors
from cinema_api.core.error_codes import ANY_REQUEST, ANY_WRITE, ERROR_CODES, check_code

PACKAGE_ROOT = os.path.dirname(cinema_api.__file__)
PROJECT_ROOT = os.path.dirname(PACKAGE_ROOT)

#: The list of the contract (docs/API.md section 11, "Error codes"): each must be registered.
CONTRACT_CODES = """
VALIDATION_FAILED MALFORMED_JSON AUTHENTICATION_REQUIRED INVALID_TOKEN INVALID_CREDENTIALS
INVALID_REFRESH_TOKEN FORBIDDEN NOT_OWNER AGE_RESTRICTED NOT_FOUND MOVIE_NOT_FOUND SESSION_NOT_FOUND
TICKET_NOT_FOUND USER_NOT_FOUND ROOM_NOT_FOUND METHOD_NOT_ALLOWED USERNAME_TAKEN MOVIE_EXISTS ROOM_BOOKED
ALREADY_PURCHASED SEAT_TAKEN SOLD_OUT SEAT_NOT_IN_PLAN NO_SEAT_PLAN SESSION_STARTED SESSION_CANCELLED
TICKET_USED TICKET_CANCELLED HAS_TICKETS SESSION_OF_ANOTHER_MOVIE BODY_TOO_LARGE UNSUPPORTED_MEDIA_TYPE
TOO_MANY_FAILED_LOGINS DATABASE_UNAVAILABLE BUSY INTERNAL_ERROR
""".split()

#: The bases of core/errors.py, one per status: they carry no code and are never raised themselves.
STATUS_BASES = {
    errors.DomainError,
    errors.BadRequest,
    errors.Unauthorized,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.TooManyRequests,
    errors.ServiceUnavailable,
}


def application_modules():
    """Every module of the package but the migrations (yoyo reads those itself)."""
    for info in pkgutil.walk_packages([PACKAGE_ROOT], "cinema_api."):
        if ".migrations" not in info.name:
            yield importlib.import_module(info.name)


def every_subclass(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from every_subclass(sub)


def domain_error_classes():
    modules = list(application_modules())  # every class of the package is defined
    assert modules
    return [cls for cls in set(every_subclass(errors.DomainError)) if cls.__module__.startswith("cinema_api.")]


def source_files():
    for folder, _, names in os.walk(PACKAGE_ROOT):
        if "migrations" in folder:
            continue
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as source:
                    yield os.path.relpath(path, PROJECT_ROOT), ast.parse(source.read(), path)


# ---------------------------------------------------------------- the registry


def test_every_code_is_upper_snake_case_with_a_status_and_a_meaning():
    for name, code in ERROR_CODES.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", name) and code.name == name
        assert code.status is None or 400 <= code.status <= 599, name
        assert code.meaning.strip(), name


def test_the_contracts_codes_are_all_registered():
    assert not set(CONTRACT_CODES) - set(ERROR_CODES)
    assert set(ANY_REQUEST) | set(ANY_WRITE) <= set(ERROR_CODES)


def test_a_code_is_checked_against_the_registry_and_its_status():
    assert check_code("SEAT_TAKEN", 409) == "SEAT_TAKEN"
    with pytest.raises(ValueError, match="not a registered"):
        check_code("SEAT_GONE")
    with pytest.raises(ValueError, match="comes with 409"):
        check_code("SEAT_TAKEN", 400)


# ---------------------------------------------------------------- every error carries one


def test_every_domain_error_class_names_a_registered_code_of_its_status():
    """Walk the class tree: what can be raised names its own code; only the status bases have none."""
    classes = domain_error_classes()
    assert len(classes) > 30
    missing = []
    for cls in classes:
        if cls in STATUS_BASES:
            assert cls.code is None, cls
            continue
        code = cls.__dict__.get("code")
        if code is None:
            missing.append("%s.%s" % (cls.__module__, cls.__qualname__))
            continue
        assert ERROR_CODES[code].status in (None, cls.status), (cls, code)
    assert not missing, "domain errors without a code of their own: %s" % ", ".join(sorted(missing))


def test_the_domain_codes_of_the_contract_are_carried_by_classes():
    carried = {cls.code for cls in domain_error_classes()}
    view_codes = {"AUTHENTICATION_REQUIRED", "INVALID_TOKEN", "FORBIDDEN", "NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL_ERROR"}
    reserved = {"SESSION_CANCELLED", "TICKET_CANCELLED"}  # the screening cancellations to come
    assert set(CONTRACT_CODES) - view_codes - reserved <= carried


def test_no_status_base_is_raised_or_built_without_a_code():
    names = {cls.__name__ for cls in STATUS_BASES}
    built = [
        "%s:%d %s" % (path, node.lineno, node.func.id)
        for path, tree in source_files()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
    ]
    assert not built, "raise a subclass with a code instead: %s" % built


def error_response_calls():
    """Every call of core.errors.error_response: in that module, and where it is imported."""
    for path, tree in source_files():
        imported = path.endswith(os.path.join("core", "errors.py")) or any(
            isinstance(node, ast.ImportFrom)
            and node.module == "cinema_api.core.errors"
            and any(alias.name == "error_response" for alias in node.names)
            for node in ast.walk(tree)
        )
        if not imported:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "error_response":
                yield "%s:%d" % (path, node.lineno), node


def test_every_error_response_call_names_a_registered_code():
    calls = list(error_response_calls())
    assert len(calls) >= 10
    for where, call in calls:
        (code,) = [keyword.value for keyword in call.keywords if keyword.arg == "code"] or [None]
        assert code is not None, "%s: error_response without code=" % where
        literals = [node.value for node in ast.walk(code) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
        for literal in literals:
            assert literal in ERROR_CODES, "%s: %s is not registered" % (where, literal)
        status = call.args[1].value if isinstance(call.args[1], ast.Constant) else None
        for literal in literals:
            assert ERROR_CODES[literal].status in (None, status) or status is None, (where, literal)
        if not literals:  # the code of the error class, or of the table below
            assert ast.unparse(code) in ("exc.code", "HTTP_EXCEPTION_CODES.get(exc.code, 'HTTP_ERROR')"), where
    for status, code in errors.HTTP_EXCEPTION_CODES.items():
        assert ERROR_CODES[code].status == status


# ---------------------------------------------------------------- documented


def test_every_code_is_documented_in_docs_api_md_with_its_status():
    with open(os.path.join(PROJECT_ROOT, "docs/API.md"), encoding="utf-8") as contract:
        text = contract.read()
    section = text[text.index("## 11."):]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    rows = dict(re.findall(r"^\| `([A-Z_0-9]+)` \| (\d{3}|any) \|", section, re.M))
    for name, code in ERROR_CODES.items():
        assert rows.get(name) == str(code.status or "any"), "docs/API.md section 11 does not list %s" % name
    assert set(rows) == set(ERROR_CODES), "docs/API.md lists codes that are not registered: %s" % (set(rows) - set(ERROR_CODES))
