"""Every document that the code, the tests and the docs mention is a file of the repository."""

import os
import re

from cinema_api.testing import PROJECT_ROOT

#: A relative path to a Markdown file, as text mentions one: `docs/API.md`, (bench/NOTES.md).
MENTION_RE = re.compile(r"(?:^|(?<=[\s`'\"(\[]))((?:[\w.-]+/)*[A-Za-z][\w.-]*\.md)\b")

SOURCES = ("cinema_api", "tests", "bench", "docs", "deploy", ".ci", ".github")
TOP_LEVEL = ("README.md", "CHANGES.md", "setup.py", "MANIFEST.in", "development.ini", "production.ini", "testing.ini", ".env.example")
#: Reports written by a run (they quote its command line), and this file's own examples.
SKIPPED = ("bench/RESULTS.md", "bench/results", "tests/unit/test_documents.py")


def repository_texts():
    paths = [os.path.join(PROJECT_ROOT, name) for name in TOP_LEVEL]
    for top in SOURCES:
        for folder, subfolders, files in os.walk(os.path.join(PROJECT_ROOT, top)):
            subfolders[:] = [name for name in subfolders if name != "__pycache__"]
            paths += [os.path.join(folder, name) for name in files if not name.endswith((".pyc", ".js", ".css", ".png"))]
    for path in paths:
        relative = os.path.relpath(path, PROJECT_ROOT)
        if not relative.startswith(SKIPPED) and os.path.isfile(path):
            with open(path, encoding="utf-8") as source:
                yield relative, source.read()


def test_the_contract_is_in_the_repository():
    with open(os.path.join(PROJECT_ROOT, "docs", "API.md"), encoding="utf-8") as contract:
        text = contract.read()
    for section in ("## 1. Conventions", "## 5. Rules", "## 6. Caching", "## 9. Deliberate breaks", "## 10. Rooms"):
        assert section in text


def test_every_mentioned_document_exists():
    missing = []
    for relative, text in repository_texts():
        for mention in MENTION_RE.findall(text):
            candidates = (os.path.join(PROJECT_ROOT, mention), os.path.join(PROJECT_ROOT, os.path.dirname(relative), mention))
            if not any(os.path.isfile(candidate) for candidate in candidates):
                missing.append("%s mentions %s" % (relative, mention))
    assert missing == []


def test_the_mention_pattern_finds_what_it_must():
    text = "see `docs/API.md`, (bench/NOTES.md) and API.md section 5; not /tmp/smoke.md nor %s.md"
    assert MENTION_RE.findall(text) == ["docs/API.md", "bench/NOTES.md", "API.md"]
