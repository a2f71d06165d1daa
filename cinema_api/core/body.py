"""Request bodies: size and media type checked before anything else, JSON parsed strictly.

The size (413) and media type (415) are decided by a tween, before authentication; the
JSON itself is parsed by the validator, after the permission check, so the order of
checks is 413/415 -> 401 -> 403 -> 400.
"""

import json
import re

from cinema_api.core.errors import MalformedJson, PayloadTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
#: A body costs work in proportion to what the endpoint reads: at most this many JSON values.
MAX_JSON_VALUES = 10_000
#: A JSON string, or what is left of the text from an unterminated one: every match consumes what it
#: scans (possessive, and the closing quote optional), so a scan of the whole text is linear in its
#: size whatever its bytes. A required closing quote made each ``"`` of an unterminated string of
#: escaped quotes start a match that ran to the end: 60 kB cost 17 s of CPU.
JSON_STRING_RE = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
JSON_MEDIA_TYPE = "application/json"


def is_chunked(request):
    """Whether the body comes in chunks, of no length known in advance."""
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def has_body(request):
    return bool(request.content_length) or is_chunked(request)


def check_body(request):
    """Raise 413 for a body over 1 MiB and 415 for a body that is not JSON; buffer the body."""
    if not has_body(request):
        return
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise PayloadTooLarge("Request body is larger than %d bytes" % MAX_BODY_BYTES)
    # Read it ourselves, bounded (a chunked body has no length): WebOb would spool a large
    # body to a temporary file it never closes.
    data = request.body_file_raw.read(MAX_BODY_BYTES + 1 if length is None else length)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge("Request body is larger than %d bytes" % MAX_BODY_BYTES)
    request.body = data
    content_type = request.headers.get("Content-Type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            raise UnsupportedMediaType("Content-Type must be application/json")


def body_limits_tween_factory(handler, registry):
    def body_limits_tween(request):
        check_body(request)
        return handler(request)

    return body_limits_tween


def _depth_exceeds(value, limit):
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def values_exceed(text, limit):
    """True when ``text`` may hold more than ``limit`` JSON values (arrays and objects
    included): outside strings, every value but the first follows a ``,`` or opens a
    container, so this bound costs one scan and no parsing. Counted over the whole text first
    (strings included, an upper bound): only a body that may exceed is counted again without
    its strings."""
    if _structural_count(text) <= limit:
        return False
    return _structural_count(JSON_STRING_RE.sub("", text)) > limit


def _structural_count(text):
    return text.count(",") + text.count("[") + text.count("{") + 1


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def parse_json_object(request):
    """The request body as a dict; an empty body is ``{}``. Malformed input is a 400."""
    raw = request.body
    if not raw or not raw.strip():
        return {}
    try:
        text = raw.decode(request.charset or "utf-8")
        if values_exceed(text, MAX_JSON_VALUES):
            raise MalformedJson("Request body holds more than %d JSON values" % MAX_JSON_VALUES)
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedJson("Request body is nested deeper than %d levels" % MAX_JSON_DEPTH) from None
    except (ValueError, UnicodeDecodeError, LookupError) as exc:
        raise MalformedJson("Malformed JSON in request body: %s" % exc) from None
    # depth first: a parser that does not recurse (Python 3.13's) hands back deep arrays too
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise MalformedJson("Request body is nested deeper than %d levels" % MAX_JSON_DEPTH)
    if not isinstance(value, dict):
        raise MalformedJson("Request body must be a JSON object")
    return value
