"""The Cornice service base every domain uses, and its request validation.

A request schema is a colander mapping with ``body``, ``querystring`` and ``path``
children (the form :mod:`cinema_api.core.openapi` documents). :func:`validate_request`
deserialises the request against it after the permission check and stores the result in
``request.validated`` as ``{"body": ..., "querystring": ..., "path": ...}``.
"""

import colander
from cornice import Service
from pyramid.response import Response

from cinema_api.core.body import parse_json_object
from cinema_api.core.errors import FieldError
from cinema_api.core.schemas import Bounds, ErrorBody, StrictInteger

API_PREFIX = "/v1"

#: View arguments that only describe an operation in the OpenAPI document. The service keeps
#: them; they never reach Pyramid (as view predicates they would run on every request).
#: ``tags`` and ``operation_id`` override what the generator derives from the path and the
#: view's name, ``api_security`` what it derives from the permission.
DOC_ARGUMENTS = ("tags", "operation_id", "api_security", "response_schemas")

#: ``api_security`` values: a bearer token (what any permission but NO_PERMISSION_REQUIRED
#: derives), and a bearer token that may be sent but is not needed.
BEARER = [{"bearer": []}]
OPTIONAL_BEARER = [{}, {"bearer": []}]


def query_params(request, known):
    """The query string as a dict: empty values are absent; a repeated known parameter is a 400."""
    params = {}
    repeated = []
    for key, value in request.GET.items():
        if value == "":
            continue
        if key in params:
            if key in known and key not in repeated:
                repeated.append(key)
            continue
        params[key] = value
    if repeated:
        raise FieldError([("querystring", key, "must not be repeated") for key in repeated])
    return params


def _locations(schema):
    return {child.name: child for child in schema.children}


def validate_request(request, schema=None, **kwargs):
    """Cornice validator: deserialise the request or raise a :class:`FieldError`."""
    if schema is None:
        return
    parts = _locations(schema)
    cstruct = {}
    if "path" in parts:
        cstruct["path"] = dict(request.matchdict or {})
    if "querystring" in parts:
        known = {child.name for child in parts["querystring"].children}
        cstruct["querystring"] = query_params(request, known)
    if "body" in parts:
        cstruct["body"] = parse_json_object(request)
    try:
        request.validated = schema.deserialize(cstruct)
    except colander.Invalid as exc:
        errors = []
        for dotted, text in exc.asdict(separator="; ").items():
            location, _, name = dotted.partition(".")
            errors.append((location, name, text))
        raise FieldError(errors) from None


class ApiService(Service):
    """A Cornice service under ``/v1``, validated by :func:`validate_request`.

    Service-wide documentation (Kinto's default hooks, as arguments): ``tags`` defaults to
    the first segment of the path (``/v1/movies/{movieId}`` is tagged ``movies``);
    ``documented=False`` keeps aliases and the documentation routes out of the document;
    ``needs_database=False`` says that no answer of it waits on the database (no 503).
    """

    default_validators = [validate_request]

    def __init__(self, name, path, prefix=API_PREFIX, documented=True, tags=None, needs_database=True, **kwargs):
        kwargs.setdefault("renderer", "json")
        super().__init__(name=name, path=prefix + path, **kwargs)
        self.documented = documented
        self.tags = list(tags) if tags else [default_tag(path)]
        self.needs_database = needs_database
        #: ``{method: {documentation argument: value}}``, read by :mod:`cinema_api.core.openapi`.
        self.documentation = {}

    def add_view(self, method, view, **kwargs):
        documentation = {key: kwargs.pop(key) for key in DOC_ARGUMENTS if key in kwargs}
        super().add_view(method, view, **kwargs)
        self.documentation[method.upper()] = documentation


def default_tag(path):
    """``/movies/{movieId}/sessions`` -> ``movies``; ``/`` -> ``root``."""
    return path.strip("/").split("/")[0] or "root"


def created(request, body, location=None):
    """201 with ``body``; ``location`` is the new resource's path (bulk creates have none)."""
    request.response.status = 201
    if location is not None:
        request.response.location = request.application_url + API_PREFIX + location
    return body


def no_content():
    """204: no body, so no Content-Type either."""
    return Response(status=204)


class NoContent(colander.MappingSchema):
    """A 204 response: no body."""


# ---------------------------------------------------------------- documented responses
#
# A response schema is a colander mapping with an optional ``body`` child (the JSON body) and
# an optional ``headers`` child (one node per header, named after it), and a description.


def reply(body, description, headers=None):
    """The response schema of a success: ``body`` (a schema instance or None) and ``headers``."""
    node = colander.MappingSchema(description=description)
    if body is not None:
        body.name = "body"
        node.add(body)
    if headers is not None:
        headers.name = "headers"
        node.add(headers)
    return node


class ErrorResponse(colander.MappingSchema):
    body = ErrorBody()


class CacheHeaders(colander.MappingSchema):
    etag = colander.SchemaNode(
        colander.String(), name="ETag", description="A strong validator of the body: send it back in If-None-Match"
    )
    x_cache = colander.SchemaNode(
        colander.String(),
        name="X-Cache",
        validator=colander.OneOf(["HIT", "MISS"]),
        description="HIT when served from the cache (never stale: keyed by the data's version)",
    )
    cache_control = colander.SchemaNode(
        colander.String(), name="Cache-Control", description="private, no-cache: revalidate with If-None-Match"
    )


class NotModified(colander.MappingSchema):
    """304 to an If-None-Match that matches: no body."""

    headers = CacheHeaders()


class LocationHeaders(colander.MappingSchema):
    location = colander.SchemaNode(colander.String(), name="Location", description="The new resource's absolute URL")


class NoStoreHeaders(colander.MappingSchema):
    cache_control = colander.SchemaNode(
        colander.String(), name="Cache-Control", description="no-store: the body carries tokens"
    )


class RetryAfterHeaders(colander.MappingSchema):
    retry_after = colander.SchemaNode(
        StrictInteger(), name="Retry-After", validator=Bounds(0, None), description="Seconds to wait before retrying"
    )


class UnauthorizedHeaders(colander.MappingSchema):
    www_authenticate = colander.SchemaNode(colander.String(), name="WWW-Authenticate", description="Bearer")


class ErrorWithRetry(colander.MappingSchema):
    body = ErrorBody()
    headers = RetryAfterHeaders()


class ErrorUnauthorized(colander.MappingSchema):
    body = ErrorBody()
    headers = UnauthorizedHeaders()


#: What each error status means wherever it is answered: the generic description.
ERROR_DESCRIPTIONS = {
    "400": "Invalid request: `message` lists each field's problem, `errors` locates them",
    "401": "Missing, malformed, expired or revoked access token",
    "403": "Authenticated, but not allowed to do this",
    "404": "Not found",
    "409": "Conflict with the current state",
    "413": "Request body over 1 MiB (checked on every request, before authentication)",
    "415": "Request body sent with a Content-Type other than application/json",
    "429": "Too many failed logins: retry after Retry-After seconds",
    "503": "Database (or password hashing) unavailable: retry after Retry-After seconds",
}


def error_response(code, description=None, error_codes=()):
    """The response schema of an error status; ``generic`` when it says nothing specific.
    ``error_codes`` are the error codes (``cinema_api.core.error_codes``) this operation's rules
    answer with it; the generator adds those it derives (see :mod:`cinema_api.core.openapi`)."""
    generic = description is None
    description = description or ERROR_DESCRIPTIONS[code]
    if code in ("429", "503"):
        node = ErrorWithRetry(description=description, generic=generic)
    elif code == "401":
        node = ErrorUnauthorized(description=description, generic=generic)
    else:
        node = ErrorResponse(description=description, generic=generic)
    node.error_codes = tuple(error_codes)
    return node


def responses(success, *errors, why=None, raises=(), cached=False, authenticated=False, body=False):
    """The ``response_schemas`` of an operation: its successes and the errors its rules answer.

    ``success`` maps status codes to response schemas (see :func:`reply`). ``errors`` are
    further error codes with the generic description; ``why`` maps error codes to what they
    mean for this operation (``{"409": "`Movie already exists`"}``). ``raises`` lists the domain
    error classes the operation's use case raises: each adds its status and its ``code`` to the
    response's error codes. ``cached`` adds 304.
    The OpenAPI generator adds what it derives itself: 400 for a request schema, 413 and 415
    always, 401 and 403 from the permission, 503 for a service that needs the database.
    ``authenticated`` and ``body`` add those same codes explicitly.
    """
    why = dict(why or {})
    error_codes = {}
    for error in raises:
        if error.__dict__.get("code") is None:
            raise ValueError("%s names no error code of its own" % error.__name__)
        error_codes.setdefault(str(error.status), []).append(error.code)
    codes = set(errors) | set(why) | set(error_codes)
    if cached:
        success = dict(success, **{"304": NotModified(description="Not modified: the ETag matches If-None-Match")})
    if authenticated:
        codes |= {"401", "403"}
    if body:
        codes |= {"400", "413", "415"}
    result = dict(success)
    for code in sorted(codes):
        result[code] = error_response(code, why.get(code), error_codes.get(code, ()))
    return result
