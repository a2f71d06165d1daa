"""Production refuses every JWT secret written anywhere in the repository (docs/API.md section 7).

Every file git knows of (tracked, or new and not ignored) is scanned for candidate secrets:

- in any text file, a value assigned to ``JWT_SECRET``, ``jwt_secret``, ``cinema.jwt_secret`` or
  another name ending in ``secret`` (``KEY=value``, ``key = value``, ``key: value``, quoted or not);
- in Python, by its syntax tree, string values (literals and what ``+`` and ``*`` make of them,
  module constants followed) used as a secret: assigned to a name or key containing ``secret`` or
  ending in ``key``, passed as such a keyword argument (``secret=``, ``jwt_secret=``, ``key=``), as
  the key of ``AccessTokens(...)``, ``jwt.encode(...)`` or ``jwt.decode(...)``, following such a
  name in a call or a tuple (``setenv("JWT_SECRET", ...)``, parametrize rows), or listed in a
  ``parametrize`` argument whose name contains ``secret``.

Each must be refused by production's settings alone (an empty folder as ``here``, so no ini file
beside helps): published (:data:`cinema_api.settings.PUBLISHED_SECRETS`), too short, or of low
entropy. A test that writes a new random-looking secret must add it to ``PUBLISHED_SECRETS``.
"""

import ast
import os
import re
import subprocess

import pytest

from cinema_api.settings import SettingsError, load_settings, secret_entropy_bits
from tests.conftest import HERE

#: A name whose last word is "secret" (``JWT_SECRET``, ``other_secret``, ``SECRET_KEY``), not one that
#: merely mentions it (``SECRET_LINE_RE``, a pattern that finds secrets).
SECRET_NAME_RE = re.compile(r"secret(?:s|_?key|_?value)?$", re.IGNORECASE)
#: In tests, keys too: ``key=`` of ``jwt.encode``, ``SIGNING_KEY = ...``
TEST_SECRET_NAME_RE = re.compile(r"secret(?:s|_?key|_?value)?$|(?:^|_)key$", re.IGNORECASE)
#: ``JWT_SECRET=value``, ``cinema.jwt_secret = value``, ``"JWT_SECRET": "value"``, ``secret: value``
TEXT_ASSIGNMENT_RE = re.compile(
    r"""(?i)(?<![\w.])((?:cinema\.)?[a-z_]*secret)["']?[ \t]*[:=][ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"',;)}\]\\]+))"""
)
#: Calls whose argument at this position is a key: ``AccessTokens(key, ...)``, ``jwt.encode(claims, key)``
SECRET_CALLS = {"AccessTokens": 0, "jwt.encode": 1, "jwt.decode": 1}


def repository_files():
    """Every file git knows of: tracked, or new and not ignored (a test being written counts)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=HERE,
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8")
    return sorted({name for name in listed.split("\0") if name and os.path.isfile(os.path.join(HERE, name))})


def read_text(name):
    try:
        with open(os.path.join(HERE, name), encoding="utf-8") as source:
            return source.read()
    except UnicodeDecodeError:
        return None  # not a text file


def text_candidates(name, text):
    for number, line in enumerate(text.splitlines(), 1):
        for match in TEXT_ASSIGNMENT_RE.finditer(line):
            value = next((group for group in match.groups()[1:] if group is not None), "")
            if value:
                yield "%s:%d" % (name, number), value


class SecretUses(ast.NodeVisitor):
    """The string values a Python module uses as secrets."""

    def __init__(self, name):
        self.name = name
        self.names_re = TEST_SECRET_NAME_RE if name.startswith("tests/") else SECRET_NAME_RE
        self.constants = {}
        self.found = []

    def fold(self, node):
        """The string an expression of literals makes, or None."""
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, (str, int)) and not isinstance(node.value, bool) else None
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = self.fold(node.left), self.fold(node.right)
            if left is None or right is None:
                return None
            try:
                return left + right if isinstance(node.op, ast.Add) else left * right
            except TypeError:
                return None
        return None

    def add(self, node, value=None):
        value = self.fold(node) if value is None else value
        if isinstance(value, str) and value:
            self.found.append(("%s:%d" % (self.name, node.lineno), value))

    def visit_Assign(self, node):
        value = self.fold(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if isinstance(value, (str, int)):
                    self.constants[target.id] = value
                if self.names_re.search(target.id):
                    self.add(node.value)
            elif isinstance(target, ast.Attribute) and self.names_re.search(target.attr):
                self.add(node.value)
            elif isinstance(target, ast.Subscript) and isinstance(self.fold(target.slice), str):
                if self.names_re.search(self.fold(target.slice)):
                    self.add(node.value)
        self.generic_visit(node)

    def visit_Dict(self, node):
        for key, value in zip(node.keys, node.values, strict=True):
            if key is not None and isinstance(self.fold(key), str) and self.names_re.search(self.fold(key)):
                self.add(value)
        self.generic_visit(node)

    def visit_Call(self, node):
        for keyword in node.keywords:
            if keyword.arg and self.names_re.search(keyword.arg):
                self.add(keyword.value)
        function = ast.unparse(node.func)
        position = SECRET_CALLS.get(function)
        if position is not None and len(node.args) > position:
            self.add(node.args[position])
        if function.endswith("parametrize") and len(node.args) >= 2:
            self.parametrize(node.args[0], node.args[1])
        self.named_values(node.args)
        self.generic_visit(node)

    def visit_Tuple(self, node):
        self.named_values(node.elts)
        self.generic_visit(node)

    visit_List = visit_Tuple

    def visit_Constant(self, node):
        """A string written in Python holding ``JWT_SECRET=...``: a .env or ini file being made."""
        if isinstance(node.value, str):
            for _, value in text_candidates(self.name, node.value):
                self.add(node, value)

    def named_values(self, items):
        """``("JWT_SECRET", value)``: a value following the name of a secret."""
        for name, value in zip(items, items[1:], strict=False):
            name = self.fold(name)
            if isinstance(name, str) and re.fullmatch(r"(?:cinema\.)?[A-Za-z_]*secret", name, re.IGNORECASE):
                self.add(value)

    def parametrize(self, argnames, argvalues):
        names = self.fold(argnames)
        if not isinstance(names, str) or not isinstance(argvalues, (ast.List, ast.Tuple)):
            return
        names = [part.strip() for part in names.split(",")]
        for index, argname in enumerate(names):
            if not self.names_re.search(argname):
                continue
            for row in argvalues.elts:
                if len(names) == 1:
                    self.add(row)
                elif isinstance(row, (ast.Tuple, ast.List)) and len(row.elts) == len(names):
                    self.add(row.elts[index])


def python_candidates(name, text):
    uses = SecretUses(name)
    uses.visit(ast.parse(text, filename=name))
    return uses.found


def repository_candidates():
    found = []
    for name in repository_files():
        text = read_text(name)
        if text is None:
            continue
        if name.endswith(".py"):
            found.extend(python_candidates(name, text))
        else:
            found.extend(text_candidates(name, text))
    return found


@pytest.fixture(scope="module")
def candidates():
    return repository_candidates()


def test_the_scan_finds_the_secrets_written_in_the_repository(candidates):
    """The scanner itself: ini files, the example .env, tests' constants, expressions and keywords."""
    values = {value for _, value in candidates}
    assert {
        "development-only-secret-do-not-use-in-production",  # development.ini
        "testing-only-secret-that-is-long-enough-0123456789",  # testing.ini, tests/functional/test_auth.py
        "change-me-to-a-random-string-of-at-least-32-bytes",  # .env.example
        "another-secret-that-is-long-enough-987654321",  # a key= keyword in tests/functional/test_auth.py
        "x" * 16 + "y" * 16 + "0123456789abcdef",  # an expression in tests/unit/test_tokens.py
        "another-key-" + "z" * 40,  # AccessTokens(...) in tests/unit/test_tokens.py
    } <= values
    assert {"0123456789abcdef0123456789abcdef", "passwordpassword1234567890abcdef"} <= values  # parametrize rows


def test_the_scan_reads_python_by_its_syntax():
    source = '''
KEY = "ab" * 20
tokens = AccessTokens(KEY + "cd", lifetime=60)
environ = {"JWT_SECRET": "from-a-dict-" + "0" * 30}
os.environ["JWT_SECRET"] = "from-a-subscript"
monkeypatch.setenv("JWT_SECRET", "from-setenv")
load(ini(jwt_secret="from-a-keyword"))
jwt.encode(claims, "from-jwt-encode", algorithm="HS256")
@pytest.mark.parametrize("name, secret", [("one", "from-parametrize")])
def test(): pass
'''
    found = {value for _, value in python_candidates("tests/example.py", source)}
    assert found == {
        "ab" * 20,
        "ab" * 20 + "cd",
        "from-a-dict-" + "0" * 30,
        "from-a-subscript",
        "from-setenv",
        "from-a-keyword",
        "from-jwt-encode",
        "from-parametrize",
    }


def test_the_scan_reads_assignments_in_any_text_file():
    text = "cinema.jwt_secret = from-an-ini\nexport JWT_SECRET='from-a-shell'\n  JWT_SECRET: \"from-yaml\"\n"
    assert [value for _, value in text_candidates("x", text)] == ["from-an-ini", "from-a-shell", "from-yaml"]


def test_production_refuses_every_secret_written_in_the_repository(candidates, tmp_path):
    accepted = []
    for where, value in candidates:
        try:
            load_settings({"cinema.environment": "production", "cinema.jwt_secret": value}, str(tmp_path), environ={}, dotenv={})
        except SettingsError as error:
            assert str(error).startswith("JWT_SECRET "), (where, str(error))
        else:
            accepted.append("%s %r (estimate %d bits)" % (where, value, secret_entropy_bits(value)))
    assert not accepted, (
        "production accepts secrets written in the repository; add them to "
        "cinema_api.settings.PUBLISHED_SECRETS:\n" + "\n".join(accepted)
    )
