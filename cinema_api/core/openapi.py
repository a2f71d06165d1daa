"""The OpenAPI 3.1 document, generated from the Cornice services and their colander schemas.

One source of truth: the request schemas that validate requests are the ones documented.
What an operation must declare, and what is derived:

- **summary and description**: the view's docstring (its first line, then the rest). The
  description starts with who may call it, derived from the view's permission
  (:data:`cinema_api.core.acl.WHO_MAY_CALL`).
- **tags**: the service's (by default the first path segment); **operationId**: the view
  function's name in camelCase, less a ``_view`` suffix (``list_movies`` -> ``listMovies``);
  **security**: an HTTP bearer token unless the permission is ``NO_PERMISSION_REQUIRED``
  (:data:`cinema_api.core.api.OPTIONAL_BEARER` for a token that may be sent). A view may override each
  (``tags=``, ``operation_id=``, ``api_security=``), as Kinto's ``default_tags``,
  ``default_op_ids`` and ``default_security`` hooks do.
- **parameters and request body**: the ``path``, ``querystring`` and ``body`` children of the
  view's ``schema``; the body's example is assembled from its fields' ``example``.
- **responses**: the view's ``response_schemas`` (see :func:`cinema_api.core.api.responses`),
  plus what the generator derives: 400 for a request schema, 413 and 415 always (a body is
  checked on every request), 401 and 403 from the permission, 503 when the service needs the
  database. Every response carries ``X-Trace-Id``.
- **error codes**: every error response lists the ``code`` values it can carry
  (:mod:`cinema_api.core.error_codes`), in its description and as the ``enum`` of its body's
  ``code``: those of the domain errors the view declares (``responses(raises=...)``) and those
  derived as above (VALIDATION_FAILED and MALFORMED_JSON for a request schema and body, the
  401s and 403s of the permission, BODY_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, DATABASE_UNAVAILABLE).
  An error response naming no code is refused.

Anything missing (a docstring, a success response, an example, a tag's description, a
permission nobody described) is an error raised while generating, so the document test fails
for an endpoint that is not documented.
"""

import copy
import inspect
import json
import re
import threading

import yaml
from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.acl import OWNERSHIP_PERMISSIONS, USE, WHO_MAY_CALL
from cinema_api.core.api import error_response
from cinema_api.core.error_codes import ANY_REQUEST, ANY_WRITE, ERROR_CODES
from cinema_api.core.jsonschema import SchemaSet, example_of, is_optional

OPENAPI_VERSION = "3.1.0"
TITLE = "Cinema API"

#: Every tag an operation uses, in the order the Swagger UI shows them.
TAGS = [
    {"name": "root", "description": "What this service is and where its documentation lives"},
    {"name": "health", "description": "Liveness and dependencies"},
    {"name": "auth", "description": "Registration, login, token refresh and logout"},
    {"name": "users", "description": "User accounts and their tickets"},
    {"name": "movies", "description": "The movie catalogue"},
    {"name": "movie-sessions", "description": "Screenings of movies in rooms"},
    {"name": "tickets", "description": "Buying, checking and cancelling tickets"},
    {"name": "rooms", "description": "Rooms and their seat plans"},
]

SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The `accessToken` of an auth response (register, login or refresh), sent as "
        "`Authorization: Bearer <accessToken>`. It lives 15 minutes by default; logout and refresh-token "
        "reuse revoke it at once.",
    }
}

INFO_DESCRIPTION = """\
The back office of a cinema: movies, their screenings (movie sessions), accounts and tickets.

**Conventions.** JSON in and out, field names in camelCase. Timestamps are ISO-8601 UTC with \
milliseconds (`2026-12-23T20:00:00.000Z`). Dates sent in a body are a date-time with `T` and `Z` or \
an offset (none means UTC), or a date alone, meaning 00:00Z. Ids are UUIDs: any version, either case; \
another form is a 400, a UUID that names nothing a 404. Bodies are `application/json` (415 otherwise, \
413 over 1 MiB). String fields are trimmed before their length is checked and must not hold NUL or \
unpaired surrogates; integer fields also take a string of digits (`"21"`). Unknown body and query \
fields are ignored; an empty query value counts as absent; a repeated query parameter is a 400.

**Errors.** Every error has the body `{statusCode, error, code, message}`. `code` says what \
happened, for a program to switch on: each error response lists the codes it can carry. Any \
request may also get %s; a write may also get %s (PostgreSQL). For a 400 decided from the \
request alone, `message` lists one sentence per field, each starting with the field's dotted path, \
and `errors` locates them. Checks run in this order: 413/415, 401, 403 (role), 400 (schema), \
403 (ownership), 404, 400 (state), 403 (age), 409.

**Authentication.** Register or log in, then send the `accessToken` as a bearer token (Authorize, \
in the Swagger UI, takes the bare token). Refresh rotates the refresh token; logout ends every token \
of the user at once.

**Lists.** `page` (from 1) and `perPage` (1..100) page every list. Movies and sessions answer \
`{movies|sessions, meta}`; the other lists answer a plain array with `X-Total-Count` and a `Link` \
header (`first`, `prev`, `next`, `last`).

Every response carries `X-Trace-Id` and a W3C `traceparent`. A valid incoming `traceparent` \
(version `00`) is continued: its trace-id becomes the request's trace id, and the response's \
`traceparent` carries it with the request's own span id. Without one, an incoming `X-Trace-Id` of \
8-64 characters of `[A-Za-z0-9-]` is reused; otherwise a new UUID. An invalid `traceparent` is ignored.""" % (
    ", ".join("`%s` (%s)" % (name, ERROR_CODES[name].status or "any status") for name in ANY_REQUEST),
    ", ".join("`%s`" % name for name in ANY_WRITE),
)

CACHE_NOTE = """\
**Caching.** Served from a cache that cannot be stale: every entry is keyed by the version of the \
data that the writing transaction itself changes, so a change is seen by the very next request. \
`X-Cache` says HIT or MISS; `ETag` is a strong validator: send it back in `If-None-Match` to get \
a 304 with no body while nothing has changed."""

#: Names of the shared error responses under ``components/responses``.
SHARED_RESPONSES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "PayloadTooLarge",
    "415": "UnsupportedMediaType",
    "429": "TooManyRequests",
    "503": "ServiceUnavailable",
}

TRACE_HEADER = {
    "description": "The request's trace id: the trace-id of a valid incoming traceparent, else the incoming "
    "X-Trace-Id when well formed, else a new UUID",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{8,64}$"},
}

TRACEPARENT_HEADER = {
    "description": "W3C trace context: the request's trace-id (the incoming traceparent's when it was valid) "
    "and its own span id",
    "required": True,
    "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
}

#: The error codes of each shared response (an error response with other codes is written inline).
SHARED_CODES = {
    "400": ["VALIDATION_FAILED", "MALFORMED_JSON"],
    "401": ["AUTHENTICATION_REQUIRED", "INVALID_TOKEN"],
    "403": ["FORBIDDEN"],
    "413": ["BODY_TOO_LARGE"],
    "415": ["UNSUPPORTED_MEDIA_TYPE"],
    "503": ["DATABASE_UNAVAILABLE"],
}

ERROR_BODY_REF = "#/components/schemas/ErrorBody"

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
PATH_PARAMETER_RE = re.compile(r"{([^}:]+)")


class DocumentError(ValueError):
    """An operation is not documented enough to be published."""


def camel_case(name):
    """``list_movies`` -> ``listMovies``; a ``_view`` suffix is dropped (``login_view`` -> ``login``)."""
    head, *rest = name.removesuffix("_view").split("_")
    return head + "".join(word.capitalize() for word in rest)


def split_docstring(view, where):
    """``(summary, description)``: the first paragraph, then the others, each on one line."""
    doc = inspect.getdoc(view)
    if not doc:
        raise DocumentError("%s: the view has no docstring (its first line is the summary)" % where)
    summary, *paragraphs = [" ".join(paragraph.split()) for paragraph in doc.split("\n\n")]
    return summary.rstrip("."), "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


def documented_services(registry):
    """The services the application serves that belong in the document, by path."""
    services = {service.path: service for service in registry.cornice_services.values()}
    return [services[path] for path in sorted(services) if getattr(services[path], "documented", False)]


class DocumentBuilder:
    """Builds the document of a list of services; ``tags`` describes every tag they may use."""

    def __init__(self, tags=TAGS):
        self.described_tags = tags
        self.schemas = SchemaSet()
        self.responses = {}
        self.tags = set()

    # ------------------------------------------------------------ operations

    def path_item(self, service):
        item = {}
        definitions = {method: (view, args) for method, view, args in service.definitions}
        for method in METHODS:
            if method in definitions:
                view, args = definitions[method]
                item[method.lower()] = self.operation(service, method, view, args)
        return item

    def operation(self, service, method, view, args):
        where = "%s %s" % (method, service.path)
        documentation = service.documentation.get(method, {})
        permission = args.get("permission") or USE  # the default permission
        if permission not in WHO_MAY_CALL:
            raise DocumentError("%s: say who holds permission %r in WHO_MAY_CALL" % (where, permission))
        summary, details = split_docstring(view, where)
        declared = dict(documentation.get("response_schemas") or {})
        description = ["**Who may call:** " + WHO_MAY_CALL[permission]]
        if details:
            description.append(details)
        if "304" in declared:
            description.append(CACHE_NOTE)
        tags = list(documentation.get("tags") or service.tags)
        self.tags.update(tags)
        operation = {
            "tags": tags,
            "summary": summary,
            "description": "\n\n".join(description),
            "operationId": documentation.get("operation_id") or camel_case(view.__name__),
        }
        schema = args.get("schema")
        parts = {child.name: child for child in schema.children} if schema is not None else {}
        parameters = self.parameters(service, parts, where)
        if parameters:
            operation["parameters"] = parameters
        if "body" in parts:
            operation["requestBody"] = self.request_body(parts["body"], where)
        security = documentation.get("api_security")
        if security is None:
            security = [] if permission == NO_PERMISSION_REQUIRED else [{"bearer": []}]
        operation["security"] = security
        operation["responses"] = self.operation_responses(service, permission, parts, declared, where)
        return operation

    def parameters(self, service, parts, where):
        in_path = PATH_PARAMETER_RE.findall(service.path)
        path_nodes = {child.name: child for child in parts["path"].children} if "path" in parts else {}
        if set(in_path) != set(path_nodes):
            raise DocumentError("%s: the path schema must name exactly %s" % (where, in_path))
        parameters = [self.parameter(path_nodes[name], "path") for name in in_path]
        if "querystring" in parts:
            parameters += [self.parameter(child, "query") for child in parts["querystring"].children]
        return parameters

    def parameter(self, node, location):
        schema = self.schemas.convert(node)
        parameter = {"name": node.name, "in": location, "required": location == "path" or not is_optional(node)}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        parameter["schema"] = schema
        return parameter

    def request_body(self, node, where):
        try:
            example = example_of(node)
        except ValueError as exc:
            raise DocumentError("%s: %s" % (where, exc)) from None
        required = any(not is_optional(child) for child in node.children)
        content = {"schema": self.schemas.convert(node), "example": example}
        return {"required": required, "content": {"application/json": content}}

    def operation_responses(self, service, permission, parts, declared, where):
        if not any(code.startswith("2") for code in declared):
            raise DocumentError("%s: response_schemas declares no success response" % where)
        derived_codes = self.derived_error_codes(service, permission, parts)
        for code in derived_codes:
            declared.setdefault(code, error_response(code))
        result = {}
        for code in sorted(declared):
            node = declared[code]
            error_codes = None
            if hasattr(node, "error_codes"):  # an error body (GET /v1/health's 503 is a health check)
                named = set(node.error_codes) | derived_codes.get(code, set())
                error_codes = sorted(named, key=list(ERROR_CODES).index)
                if not error_codes:
                    raise DocumentError("%s: response %s names no error code (responses(raises=...))" % (where, code))
            result[code] = self.response(code, node, error_codes, where)
        return result

    @staticmethod
    def derived_error_codes(service, permission, parts):
        """The statuses the generator derives, each with its error codes. The body limits hold
        for every request, a GET with a body too (before authentication)."""
        codes = {"413": {"BODY_TOO_LARGE"}, "415": {"UNSUPPORTED_MEDIA_TYPE"}}
        if parts:
            codes["400"] = {"VALIDATION_FAILED", "MALFORMED_JSON"} if "body" in parts else {"VALIDATION_FAILED"}
        if permission != NO_PERMISSION_REQUIRED:
            codes["401"] = {"AUTHENTICATION_REQUIRED", "INVALID_TOKEN"}
        if permission in OWNERSHIP_PERMISSIONS:
            codes["403"] = {"NOT_OWNER"}
        elif permission not in (NO_PERMISSION_REQUIRED, USE):
            codes["403"] = {"FORBIDDEN"}
        if service.needs_database:
            codes["503"] = {"DATABASE_UNAVAILABLE"}
        return codes

    def response(self, code, node, error_codes, where):
        if getattr(node, "generic", False) and error_codes == SHARED_CODES.get(code):
            name = SHARED_RESPONSES[code]
            if name not in self.responses:
                self.responses[name] = self.response_object(node, error_codes, where)
            return {"$ref": "#/components/responses/" + name}
        return self.response_object(node, error_codes, where)

    def response_object(self, node, error_codes, where):
        """A response; an error response lists its ``error_codes`` in its description and as
        the ``enum`` of its body's ``code``."""
        if not node.description:
            raise DocumentError("%s: a response schema has no description" % where)
        parts = {child.name: child for child in node.children}
        headers = {
            "X-Trace-Id": {"$ref": "#/components/headers/X-Trace-Id"},
            "traceparent": {"$ref": "#/components/headers/traceparent"},
        }
        for header in parts["headers"].children if "headers" in parts else ():
            schema = self.schemas.convert(header, inline=True)
            headers[header.name] = {
                "description": schema.pop("description", header.name),
                "required": not is_optional(header),
                "schema": schema,
            }
        description = str(node.description)
        if error_codes:
            description += "\n\nCodes: " + ", ".join("`%s`" % name for name in error_codes)
        response = {"description": description, "headers": headers}
        if "body" in parts:
            schema = self.schemas.convert(parts["body"])
            if error_codes:
                if schema != {"$ref": ERROR_BODY_REF}:
                    raise DocumentError("%s: an error response's body must be an ErrorBody" % where)
                narrowed = {"type": "object", "properties": {"code": {"type": "string", "enum": error_codes}}, "required": ["code"]}
                schema = {"allOf": [schema, narrowed]}
            response["content"] = {"application/json": {"schema": schema}}
        return response

    # ------------------------------------------------------------ the document

    def document(self, services, version):
        paths = {service.path: self.path_item(service) for service in services}
        described = {tag["name"] for tag in self.described_tags}
        if self.tags - described:
            raise DocumentError("tags without a description in TAGS: %s" % sorted(self.tags - described))
        return {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": TITLE,
                "version": version,
                "description": INFO_DESCRIPTION,
                "license": {"name": "MIT", "identifier": "MIT"},
            },
            "servers": [{"url": "/", "description": "This server"}],
            "tags": [tag for tag in self.described_tags if tag["name"] in self.tags],
            "paths": paths,
            "components": {
                "schemas": dict(sorted(self.schemas.components.items())),
                "responses": dict(sorted(self.responses.items())),
                "headers": {"X-Trace-Id": TRACE_HEADER, "traceparent": TRACEPARENT_HEADER},
                "securitySchemes": SECURITY_SCHEMES,
            },
        }


def generate_document(registry):
    """The OpenAPI 3.1 document of every documented service of the application."""
    return DocumentBuilder().document(documented_services(registry), registry["cinema.version"])


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks; a value used twice is written twice (no aliases)."""

    def ignore_aliases(self, data):
        return True


def _represent_str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(document):
    """The document as YAML (block style, keys in the document's order, no aliases)."""

    return yaml.dump(copy.deepcopy(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class DocumentCache:
    """Generate the document once per process, on first use, as JSON and as YAML."""

    def __init__(self):
        self._bodies = None
        self._lock = threading.Lock()

    def bodies(self, registry):
        if self._bodies is None:
            with self._lock:
                if self._bodies is None:
                    document = generate_document(registry)
                    self._bodies = {
                        "json": json.dumps(document, ensure_ascii=False).encode("utf-8"),
                        "yaml": to_yaml(document).encode("utf-8"),
                    }
        return self._bodies
