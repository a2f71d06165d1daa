"""Strict colander types and nodes shared by every domain's schemas.

colander is lenient by default (``"21.5"`` becomes ``21``, ``42`` becomes ``"42"``); the
contract is not. These types accept exactly what docs/API.md section 1 allows and say what is
wrong in a sentence that reads after the field's dotted path.
"""

import re
import uuid
from datetime import datetime, timezone

import colander

from cinema_api.core.error_codes import ERROR_CODES

INTEGER_RE = re.compile(r"-?[0-9]+")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATE_TIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # a date alone means 00:00Z
    r"(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


class StrictInteger(colander.SchemaType):
    """A JSON integer, or a string of ASCII digits with an optional leading ``-``."""

    def serialize(self, node, appstruct):
        return colander.null if appstruct is colander.null else int(appstruct)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if isinstance(cstruct, bool):
            raise colander.Invalid(node, "must be an integer number")
        if isinstance(cstruct, int):
            return cstruct
        if isinstance(cstruct, str) and len(cstruct) <= 40 and INTEGER_RE.fullmatch(cstruct):
            return int(cstruct)
        raise colander.Invalid(node, "must be an integer number")


#: What no string field may hold (docs/API.md section 1): NUL, which PostgreSQL cannot store, and
#: lone surrogates, which are not Unicode scalar values and cannot be encoded.
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "must not contain NUL or unpaired surrogate characters"


def is_storable(text):
    """True when ``text`` holds only Unicode scalar values other than NUL."""
    return UNSTORABLE_RE.search(text) is None


class TrimmedString(colander.SchemaType):
    """A JSON string of storable characters, trimmed of surrounding white space before any
    length check. ``storable=False`` lets through what credentials checks refuse themselves."""

    def __init__(self, storable=True):
        self.storable = storable

    def serialize(self, node, appstruct):
        return colander.null if appstruct is colander.null else str(appstruct)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str):
            raise colander.Invalid(node, "must be a string")
        if self.storable and not is_storable(cstruct):
            raise colander.Invalid(node, UNSTORABLE_MESSAGE)
        return cstruct.strip()


class UUIDString(colander.SchemaType):
    """A UUID in the canonical 8-4-4-4-12 form, any version, either case; returned lower case."""

    def serialize(self, node, appstruct):
        return colander.null if appstruct is colander.null else str(appstruct)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str) or not UUID_RE.fullmatch(cstruct):
            raise colander.Invalid(node, "must be a UUID")
        return str(uuid.UUID(cstruct))


class UtcDateTime(colander.SchemaType):
    """An ISO-8601 date-time (``T``, then ``Z`` or an offset; none means UTC) or a date alone.

    Deserialises to a naive UTC ``datetime``, the form stored in the database.
    """

    def serialize(self, node, appstruct):
        if appstruct is colander.null:
            return colander.null
        return format_datetime(appstruct)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str) or not DATE_TIME_RE.fullmatch(cstruct):
            raise colander.Invalid(node, "must be a valid ISO 8601 date string")
        try:
            value = datetime.fromisoformat(cstruct)
            if value.tzinfo is not None:
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
        except (ValueError, OverflowError):
            raise colander.Invalid(node, "must be a valid ISO 8601 date string") from None
        return value


class Message(colander.SchemaType):
    """An error's message: a string, or a list of strings for field errors (responses only)."""

    def serialize(self, node, appstruct):
        return appstruct

    def deserialize(self, node, cstruct):
        return cstruct


class StrictSequence(colander.Sequence):
    """A JSON array (never a scalar or an object)."""

    def _validate(self, node, value, accept_scalar):
        if not isinstance(value, list):
            raise colander.Invalid(node, "must be an array")
        return value


class StrictMapping(colander.Mapping):
    """A JSON object; unknown keys are ignored."""

    def _validate(self, node, value):
        if not isinstance(value, dict):
            raise colander.Invalid(node, "must be an object")
        return value


def format_datetime(value):
    """Naive UTC ``datetime`` -> ``2026-12-23T20:00:00.000Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


# ---------------------------------------------------------------- validators
#
# Subclasses of colander's own validators, so the OpenAPI document shows their bounds
# (minimum/maximum, minLength/maxLength, minItems/maxItems, enum, pattern), with messages
# that read after the field's dotted path.


class Bounds(colander.Range):
    """Inclusive bounds, said the way clients of the original service read them."""

    def __call__(self, node, value):
        if self.min is not None and value < self.min:
            raise colander.Invalid(node, "must not be less than %s" % self.min)
        if self.max is not None and value > self.max:
            raise colander.Invalid(node, "must not be greater than %s" % self.max)


class LengthBounds(colander.Length):
    """Length bounds in characters (or in UTF-8 bytes when ``unit="bytes"``)."""

    def __init__(self, min=None, max=None, unit="characters"):
        super().__init__(min=min, max=max)
        self.unit = unit

    def __call__(self, node, value):
        size = len(value.encode("utf-8")) if self.unit == "bytes" else len(value)
        if self.min is not None and size < self.min:
            if self.min == 1:
                raise colander.Invalid(node, "should not be empty")
            raise colander.Invalid(node, "must be longer than or equal to %d %s" % (self.min, self.unit))
        if self.max is not None and size > self.max:
            raise colander.Invalid(node, "must be shorter than or equal to %d %s" % (self.max, self.unit))


class Choice(colander.OneOf):
    def __call__(self, node, value):
        if value not in self.choices:
            raise colander.Invalid(node, "must be one of the following values: " + ", ".join(self.choices))


class Pattern(colander.Regex):
    """The whole value must match ``regex`` (anchored at both ends).

    ``published=False`` keeps it out of the OpenAPI document, for a regex whose meaning
    differs in JSON Schema's (ECMA-262) dialect: the rule is then described in words.
    """

    def __init__(self, regex, message, published=True):
        super().__init__("^(?:%s)$" % regex, msg=message)
        self.published = self.match_object.pattern if published else None

    def __call__(self, node, value):
        if self.match_object.fullmatch(value) is None:
            raise colander.Invalid(node, self.msg)


class ItemCount(colander.Length):
    """Bounds on the number of items of an array."""

    def __call__(self, node, value):
        if len(value) < self.min:
            raise colander.Invalid(node, "must contain at least %d elements" % self.min)
        if len(value) > self.max:
            raise colander.Invalid(node, "must contain no more than %d elements" % self.max)


class FirstOf(colander.All):
    """Run validators in order and report the first failure only."""

    def __call__(self, node, value):
        for validator in self.validators:
            validator(node, value)


# ---------------------------------------------------------------- nodes


class Node(colander.SchemaNode):
    missing_msg = "should not be empty"


def integer_node(**kw):
    return Node(StrictInteger(), **kw)


def string_node(storable=True, **kw):
    return Node(TrimmedString(storable), **kw)


def uuid_node(**kw):
    return Node(UUIDString(), **kw)


def datetime_node(**kw):
    return Node(UtcDateTime(), **kw)


class ObjectSchema(colander.MappingSchema):
    """A JSON object schema with our messages."""

    missing_msg = "should not be empty"

    @staticmethod
    def schema_type():
        return StrictMapping()


class ArraySchema(colander.SequenceSchema):
    missing_msg = "should not be empty"

    @staticmethod
    def schema_type():
        return StrictSequence()


# ---------------------------------------------------------------- shared response schemas


class ErrorBody(colander.MappingSchema):
    """The body of every error: `code` says what happened; `message` is a string, or a list of
    strings for field errors."""

    statusCode = colander.SchemaNode(colander.Integer(), example=404)
    error = colander.SchemaNode(colander.String(), example="Not Found", description="the HTTP reason phrase")
    code = colander.SchemaNode(
        colander.String(),
        validator=colander.OneOf(list(ERROR_CODES)),
        example="MOVIE_NOT_FOUND",
        description="what happened, for a program to switch on: one code per situation, listed with each response "
        "(docs/API.md section 11 says what each means)",
    )
    message = colander.SchemaNode(
        Message(), example="Movie not found", description="a sentence, or one per field, each starting with its dotted path"
    )
    errors = colander.SequenceSchema(
        colander.MappingSchema(
            colander.SchemaNode(colander.String(), name="location", validator=colander.OneOf(["body", "querystring", "path"])),
            colander.SchemaNode(colander.String(), name="name", description="the field's dotted path"),
            colander.SchemaNode(colander.String(), name="description"),
        ),
        missing=colander.drop,
        description="present on 400s decided from the request alone",
    )


class PaginationMeta(colander.MappingSchema):
    """Where a page stands: totalPages is ceil(totalItems / perPage), 0 for an empty list."""

    currentPage = colander.SchemaNode(colander.Integer())
    totalPages = colander.SchemaNode(colander.Integer())
    totalItems = colander.SchemaNode(colander.Integer())
    perPage = colander.SchemaNode(colander.Integer())
