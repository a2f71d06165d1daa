"""colander schemas as JSON Schema 2020-12, the dialect of OpenAPI 3.1.

The schemas that validate requests are the ones published: a node's type, its validators
(bounds, lengths, item counts, choices, patterns), whether it may be left out (``missing``),
its ``description`` and ``example`` become JSON Schema keywords. A node whose ``missing`` is
``None`` is nullable (a type list with ``"null"``).

Object schemas whose class is named (``class CreateMovie(ObjectSchema)``) are collected as
components under their class name and referenced by ``$ref``; anonymous mappings stay inline.
A type or validator this module does not know is an error, never a silently vague schema.
"""

import inspect

import colander

from cinema_api.core.schemas import (
    ArraySchema,
    Bounds,
    Choice,
    FirstOf,
    ItemCount,
    LengthBounds,
    Message,
    ObjectSchema,
    Pattern,
    StrictInteger,
    TrimmedString,
    UtcDateTime,
    UUIDString,
)

#: Base classes of ours that name a shape, not a DTO.
GENERIC_CLASSES = (ObjectSchema, ArraySchema)


def scalar_type(typ):
    """The JSON Schema ``type`` and ``format`` of a scalar colander type."""
    if isinstance(typ, UUIDString):
        return {"type": "string", "format": "uuid"}
    if isinstance(typ, UtcDateTime):
        return {"type": "string", "format": "date-time"}
    if isinstance(typ, (StrictInteger, colander.Integer)):
        return {"type": "integer"}
    if isinstance(typ, (TrimmedString, colander.String)):
        return {"type": "string"}
    if isinstance(typ, colander.Boolean):
        return {"type": "boolean"}
    if isinstance(typ, Message):
        return {"type": ["string", "array"], "items": {"type": "string"}}
    raise TypeError("no JSON Schema for colander type %r" % type(typ).__name__)


def validator_keywords(validator):
    """The JSON Schema keywords a validator enforces (plain functions are described in words)."""
    if validator is None:
        return {}
    if isinstance(validator, (FirstOf, colander.All)):
        keywords = {}
        for each in validator.validators:
            keywords.update(validator_keywords(each))
        return keywords
    if isinstance(validator, ItemCount):
        return _present(minItems=validator.min, maxItems=validator.max)
    if isinstance(validator, LengthBounds) and validator.unit == "bytes":
        # A character is 1 to 4 UTF-8 bytes: at most max bytes means at most max characters.
        return _present(maxLength=validator.max)
    if isinstance(validator, colander.Length):
        return _present(minLength=validator.min, maxLength=validator.max)
    if isinstance(validator, (Bounds, colander.Range)):
        return _present(minimum=validator.min, maximum=validator.max)
    if isinstance(validator, (Choice, colander.OneOf)):
        return {"enum": list(validator.choices)}
    if isinstance(validator, Pattern):
        return _present(pattern=validator.published)
    if isinstance(validator, colander.Regex):
        return {"pattern": validator.match_object.pattern}
    if inspect.isfunction(validator):  # a rule of its own (say, "in the future"): described in words
        return {}
    raise TypeError("no JSON Schema for validator %r" % validator)


def _present(**keywords):
    return {key: value for key, value in keywords.items() if value is not None}


def component_name(node):
    """The component a mapping node is published as, or None to keep it inline."""
    cls = type(node)
    if cls.__module__.startswith("colander") or cls in GENERIC_CLASSES:
        return None
    return cls.__name__


def is_optional(node):
    """True when the field may be left out of the JSON object."""
    return node.missing is colander.drop or (node.missing is not colander.required and node.missing is not None)


def is_nullable(node):
    return node.missing is None


class SchemaSet:
    """Converts nodes to JSON Schema, collecting named object schemas as components."""

    def __init__(self, ref_prefix="#/components/schemas/"):
        self.ref_prefix = ref_prefix
        self.components = {}
        self._sources = {}

    def ref(self, name):
        return {"$ref": self.ref_prefix + name}

    def convert(self, node, inline=False):
        """The JSON Schema of ``node``; a named object becomes a ``$ref`` unless ``inline``."""
        typ = node.typ
        if isinstance(typ, colander.Mapping):
            name = None if inline else component_name(node)
            schema = self._object(node)
            if name is None:
                return self._annotate(node, schema)
            self._add(name, schema, node)
            return self._annotate(node, self.ref(name), field_only=True)
        if isinstance(typ, colander.Sequence):
            (item,) = node.children
            schema = {"type": "array", "items": self.convert(item)}
        else:
            schema = scalar_type(typ)
        schema.update(validator_keywords(node.validator))
        if is_nullable(node):
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            schema["type"] = [*types, "null"]
        return self._annotate(node, schema)

    def _object(self, node):
        properties = {child.name: self.convert(child) for child in node.children}
        schema = {"type": "object", "properties": properties}
        required = [child.name for child in node.children if not is_optional(child)]
        if required:
            schema["required"] = required
        return schema

    def _annotate(self, node, schema, field_only=False):
        """Description, default and example of a field (next to a ``$ref`` too, as 2020-12 allows)."""
        if node.description:
            schema["description"] = str(node.description)
        if node.missing not in (colander.drop, colander.required, None):
            schema["default"] = node.missing
        example = getattr(node, "example", None)
        if example is not None and not field_only:
            schema["examples"] = [example]
        return schema

    def _add(self, name, schema, node):
        doc = type(node).__doc__  # a class's own docstring (never inherited)
        heading = {"title": name, "description": " ".join(doc.split())} if doc else {"title": name}
        schema = dict(heading, **schema)
        known = self.components.get(name)
        if known is not None and known != schema:
            raise ValueError("two different schemas are both named %s (%s and %s)" % (name, self._sources[name], type(node)))
        self.components[name] = schema
        self._sources[name] = type(node)


def example_of(node):
    """A JSON value valid for ``node``, built from the ``example`` of its fields.

    Optional fields without an example are left out; a required one without an example is an
    error, so every documented request comes with an example that a test can validate.
    """
    example = getattr(node, "example", None)
    if example is not None:
        return example
    typ = node.typ
    if isinstance(typ, colander.Mapping):
        value = {}
        for child in node.children:
            if is_optional(child) and getattr(child, "example", None) is None and not _has_examples(child):
                continue
            value[child.name] = example_of(child)
        return value
    if isinstance(typ, colander.Sequence):
        return [example_of(node.children[0])]
    raise ValueError("field %r has no example" % node.name)


def _has_examples(node):
    if getattr(node, "example", None) is not None:
        return True
    return bool(node.children) and all(_has_examples(child) or is_optional(child) for child in node.children)
