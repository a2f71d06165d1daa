"""The Cornice service base every domain uses, and its request validation.

A request schema is a colander mapping with ``body``, ``querystring`` and ``path``
children (the form cornice_swagger documents). :func:`validate_request` deserialises the
request against it after the permission check and stores the result in
``request.validated`` as ``{"body": ..., "querystring": ..., "path": ...}``.
"""

import colander
from cornice import Service
from pyramid.response import Response

from cinema_api.core.body import parse_json_object
from cinema_api.core.errors import FieldError
from cinema_api.core.schemas import ErrorBody

API_PREFIX = "/v1"

#: The ``api_security`` of every operation that needs a bearer token.
BEARER = [{"bearer": []}]


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
    """A Cornice service under ``/v1``, validated by :func:`validate_request`."""

    default_validators = [validate_request]

    def __init__(self, name, path, prefix=API_PREFIX, documented=True, **kwargs):
        kwargs.setdefault("renderer", "json")
        super().__init__(name=name, path=prefix + path, **kwargs)
        #: False for aliases and the documentation routes themselves.
        self.documented = documented


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


class ErrorResponse(colander.MappingSchema):
    body = ErrorBody()


_ERROR_DESCRIPTIONS = {
    "400": "Invalid request: see message and errors",
    "401": "Missing, malformed, expired or revoked token",
    "403": "Not allowed",
    "404": "Not found",
    "409": "Conflict with the current state",
    "413": "Request body over 1 MiB",
    "415": "Request body is not application/json",
    "429": "Too many failed logins: retry after Retry-After seconds",
    "503": "Service unavailable: retry after Retry-After seconds",
}


class CacheHeaders(colander.MappingSchema):
    etag = colander.SchemaNode(colander.String(), name="ETag", description="strong validator of the body")
    x_cache = colander.SchemaNode(colander.String(), name="X-Cache", description="HIT or MISS")
    cache_control = colander.SchemaNode(colander.String(), name="Cache-Control", description="private, no-cache")


class NotModified(colander.MappingSchema):
    """304 to an If-None-Match that matches: no body."""

    headers = CacheHeaders()


class RetryAfterHeaders(colander.MappingSchema):
    retry_after = colander.SchemaNode(colander.Integer(), name="Retry-After", description="seconds")


class UnauthorizedHeaders(colander.MappingSchema):
    www_authenticate = colander.SchemaNode(colander.String(), name="WWW-Authenticate", description="Bearer")


class ErrorWithRetry(colander.MappingSchema):
    body = ErrorBody()
    headers = RetryAfterHeaders()


class ErrorUnauthorized(colander.MappingSchema):
    body = ErrorBody()
    headers = UnauthorizedHeaders()


def responses(success, *errors, authenticated=False, body=False, cached=False):
    """The ``response_schemas`` of an operation: its success responses plus error codes.

    ``success`` maps status codes to response schema instances. ``authenticated`` adds
    401 and 403; ``body`` adds 400, 413 and 415; ``cached`` adds 304. 503 is always
    possible (database down).
    """
    codes = set(errors) | {"503"}
    if cached:
        success = dict(success, **{"304": NotModified(description="Not modified: the ETag matches If-None-Match")})
    if authenticated:
        codes |= {"401", "403"}
    if body:
        codes |= {"400", "413", "415"}
    result = dict(success)
    for code in sorted(codes):
        if code in ("429", "503"):
            schema = ErrorWithRetry(description=_ERROR_DESCRIPTIONS[code])
        elif code == "401":
            schema = ErrorUnauthorized(description=_ERROR_DESCRIPTIONS[code])
        else:
            schema = ErrorResponse(description=_ERROR_DESCRIPTIONS[code])
        result[code] = schema
    return result
