"""Pagination: ``page`` (alias ``currentPage``) and ``perPage`` for every list.

Lists of movies and sessions return ``{items, meta}``; the other lists return a plain
array with ``X-Total-Count`` and an RFC 8288 ``Link`` header.
"""

import math
from urllib.parse import urlencode

import colander

from cinema_api.core.schemas import Bounds, integer_node

MAX_PAGE = 100_000
MAX_PER_PAGE = 100


def page_nodes(default_per_page):
    """The querystring children of a paginated list."""
    return [
        integer_node(name="page", missing=colander.drop, validator=Bounds(1, MAX_PAGE), description="page number, from 1 (default 1)"),
        integer_node(name="currentPage", missing=colander.drop, validator=Bounds(1, MAX_PAGE), description="alias of page; page wins"),
        integer_node(
            name="perPage",
            missing=colander.drop,
            validator=Bounds(1, MAX_PER_PAGE),
            description="items per page (default %d)" % default_per_page,
        ),
    ]


class Page:
    """One requested page: ``number`` from 1 and ``size``."""

    def __init__(self, number, size):
        self.number, self.size = number, size

    @classmethod
    def from_query(cls, query, default_size):
        return cls(query.get("page") or query.get("currentPage") or 1, query.get("perPage") or default_size)

    def walk(self, total):
        """How to read this page's rows from a list of ``total`` rows: ``(limit, offset,
        backwards)``, or ``None`` for a page past the end (no read at all).

        A page in the back half of the list is read from its other end, in the opposite order
        (then turned round): an ``OFFSET`` walks every row it skips, so the last of 40,000 pages
        would walk a million index entries, and from the other end it walks none. Needs an exact
        ``total`` read beforehand (a kept count): the rows of both ends are then the same."""
        offset = (self.number - 1) * self.size
        if offset >= total:
            return None
        limit = min(self.size, total - offset)
        after = total - offset - limit  # rows after this page
        return (limit, after, True) if after < offset else (limit, offset, False)

    def total_pages(self, total):
        return math.ceil(total / self.size)

    def meta(self, total):
        return {"currentPage": self.number, "totalPages": self.total_pages(total), "totalItems": total, "perPage": self.size}


def set_list_headers(request, page, total):
    """``X-Total-Count`` and the ``Link`` header (first, prev, next, last) of a plain-array list."""
    last = max(1, page.total_pages(total))
    params = [(key, value) for key, value in request.GET.items() if key not in ("page", "currentPage")]

    def url(number):
        return request.path_url + "?" + urlencode(params + [("page", number)])

    links = [("first", 1)]
    if page.number > 1:
        links.append(("prev", min(page.number - 1, last)))
    if page.number < last:
        links.append(("next", page.number + 1))
    links.append(("last", last))
    request.response.headers["X-Total-Count"] = str(total)
    request.response.headers["Link"] = ", ".join('<%s>; rel="%s"' % (url(number), rel) for rel, number in links)


class ListHeaders(colander.MappingSchema):
    total = colander.SchemaNode(colander.Integer(), name="X-Total-Count", description="items in the whole list")
    link = colander.SchemaNode(colander.String(), name="Link", description="RFC 8288 links: first, prev, next, last")
