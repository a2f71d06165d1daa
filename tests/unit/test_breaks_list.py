"""The deliberate breaks for the NestJS service's clients (docs/API.md section 9): the README and
CHANGES.md list the same ones, and every one the contract names."""

import os

from cinema_api.testing import PROJECT_ROOT

#: What section 9 names, as each list must say it.
SECTION_9 = {
    "OpenAPI 3.1": "OpenAPI 3.1",
    "filterByUse from the query": "`filterByUse` from the query string",
    "pages of at most 100": "at most 100 rows per page",
    "passwords need a letter": "Passwords need a letter",
    "null in a PATCH": "`null` in a PATCH body is a 400",
    "role default": "`role` defaults to `customer`",
    "refresh rotation": "Refresh tokens rotate",
    "logout at once": "Logout ends the access tokens",
    "underage purchases": "Underage purchases are refused",
    "throttled logins": "429",
    "customer cancellation": "Customers may cancel their own",
    "errors and code": "`errors`",
}


def breaks_after(path, heading):
    """The bullet list that follows ``heading`` in the Markdown file ``path``, one string per item."""
    with open(os.path.join(PROJECT_ROOT, path), encoding="utf-8") as document:
        text = document.read()
    lines = text[text.index(heading) + len(heading):].splitlines()
    items = []
    for line in lines:
        if line.startswith("- "):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
        elif items:
            break
    return items


def readme_breaks():
    return breaks_after("README.md", "## Differences from the NestJS service")


def changes_breaks():
    return breaks_after("CHANGES.md", "### Deliberate breaks for the NestJS service's clients")


def test_the_readme_and_the_changes_list_the_same_breaks():
    assert readme_breaks() == changes_breaks()


def test_every_break_of_the_contract_is_listed():
    text = "\n".join(readme_breaks())
    missing = [name for name, words in SECTION_9.items() if words not in text]
    assert missing == []
    assert "`code`" in text
