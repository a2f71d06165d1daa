"""Domain error types and the one place that turns every error into the JSON error body.

Services raise :class:`DomainError` subclasses; views never build error responses
themselves. Every 4xx and 5xx the application produces has the shape
``{"statusCode": 404, "error": "Not Found", "code": "MOVIE_NOT_FOUND", "message": "..."}``:
``code`` is one of :data:`cinema_api.core.error_codes.ERROR_CODES`, carried by each concrete
error class (``code = "..."``) or named where a view answers without one.
"""

import logging

from pony.orm.core import IsolationError
from pyramid.httpexceptions import HTTPException
from pyramid.response import Response
from pyramid_retry import is_error_retryable
from webob.util import status_reasons

from cinema_api.core.acl import DENIED_MESSAGES, OWNERSHIP_PERMISSIONS
from cinema_api.core.error_codes import check_code
from cinema_api.core.state import request_state
from cinema_api.core.trace import safe_path, trace

log = logging.getLogger(__name__)


class DomainError(Exception):
    """An error a use case reports to its caller; ``status`` is its HTTP status and ``code`` the
    error code of its situation. The classes below, one per status, are bases with no code:
    what is raised is a subclass naming its own ``code`` (a test walks the tree)."""

    status = 400
    code = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("code") is not None:
            check_code(cls.code, cls.status)  # a code that is not registered fails at import

    def __init__(self, message, headers=None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class PayloadTooLarge(DomainError):
    status = 413
    code = "BODY_TOO_LARGE"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(DomainError):
    status = 429


class ServiceUnavailable(DomainError):
    status = 503


class FieldError(DomainError):
    """A 400 decided from the request alone, about named fields.

    ``errors`` is a list of ``(location, dotted_name, description)``.
    """

    status = 400
    code = "VALIDATION_FAILED"

    def __init__(self, errors):
        self.errors = list(errors)
        super().__init__([join_field_message(name, text) for _, name, text in self.errors])


class MalformedJson(BadRequest):
    """A body that is not JSON, not a JSON object, nested too deep or holding too many values."""

    code = "MALFORMED_JSON"


class StorageUnavailable(ServiceUnavailable):
    """The database does not answer (the readiness check; requests get theirs at the storage boundary)."""

    code = "DATABASE_UNAVAILABLE"


def join_field_message(name, description):
    """``("movies.3.title", "must be a string")`` -> ``"movies.3.title must be a string"``."""
    return "%s %s" % (name, description) if name else description


def reason(status):
    """The reason phrase of the status line (WebOb's table): the same on every Python, where
    ``http.HTTPStatus`` renames some (413 became "Content Too Large" in Python 3.13)."""
    return status_reasons.get(status, "Error")


def error_response(request, status, message, headers=None, errors=None, *, code):
    """Build the JSON error response; ``message`` is a string or a list of strings, ``code`` a
    registered error code (:mod:`cinema_api.core.error_codes`): every call names one."""
    body = {"statusCode": status, "error": reason(status), "code": code, "message": message}
    if errors is not None:
        body["errors"] = [
            {"location": location, "name": name, "description": description}
            for location, name, description in errors
        ]
    response = Response(status=status, json_body=body, charset="utf-8")
    if headers:
        response.headers.update(headers)
    if request is not None:
        trace(request, "error", status=status, message=message if isinstance(message, str) else "; ".join(message))
        request.add_finished_callback(release_exception)
    return response


def release_exception(request):
    """Let go of the request's exception once the request is answered.

    ``request.exception`` and ``request.exc_info`` hold the traceback, whose frames hold their
    locals, the request among them: a cycle that only the garbage collector's next pass over
    old objects would free, and with it the request's body and whatever those frames read (a
    refused body of 1 MiB, three times: WebOb's copy, bytes and text). A server refusing ten
    such bodies in a row kept several MiB. An error that will be retried keeps it: the retry
    policy reads it after the request is finished, to run the request again."""
    if is_error_retryable(request, request.exception):
        return
    request.exception = request.exc_info = None


def unauthorized_headers():
    return {"WWW-Authenticate": "Bearer"}


# ---------------------------------------------------------------- exception views


def domain_error_view(exc, request):
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.update(unauthorized_headers())
    errors = exc.errors if isinstance(exc, FieldError) else None
    return error_response(request, exc.status, exc.message, headers, errors, code=exc.code)


def forbidden_view(exc, request):
    """Pyramid denies by raising HTTPForbidden: 401 for who you are, 403 for what you may."""
    if request.authenticated_userid is None:
        why = request_state(request.environ).auth_error  # a token was sent, and refused
        if why is None:
            return error_response(request, 401, "Authentication required", unauthorized_headers(), code="AUTHENTICATION_REQUIRED")
        return error_response(request, 401, why, unauthorized_headers(), code="INVALID_TOKEN")
    permission = getattr(exc.result, "permission", None)
    message = DENIED_MESSAGES.get(permission, "You are not allowed to do this")
    return error_response(request, 403, message, code="NOT_OWNER" if permission in OWNERSHIP_PERMISSIONS else "FORBIDDEN")


def notfound_view(exc, request):
    return error_response(request, 404, "Cannot %s %s" % (request.method, safe_path(request)), code="NOT_FOUND")


#: The code of an HTTP exception a view or the framework raised, by status (others: HTTP_ERROR).
HTTP_EXCEPTION_CODES = {405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}


def http_exception_view(exc, request):
    headers = {}
    if exc.code == 405:
        headers["Allow"] = ", ".join(sorted(set(exc.allow or ())))
        message = "Method %s is not allowed on %s" % (request.method, safe_path(request))
    else:
        message = exc.detail or exc.explanation or reason(exc.code)
    if exc.code < 400:
        return exc
    return error_response(request, exc.code, str(message), headers, code=HTTP_EXCEPTION_CODES.get(exc.code, "HTTP_ERROR"))


def optimistic_error_view(exc, request):
    return error_response(request, 409, "The resource was changed by another request; retry", code="CONFLICT_RETRY")


def undecodable_request_view(exc, request):
    """A path or query string that is not valid UTF-8 (pyramid's URLDecodeError included)."""
    return error_response(request, 400, "The request URL is not valid UTF-8", code="MALFORMED_URL")


def unexpected_error_view(exc, request):
    log.error("unexpected error [trace %s]", request.trace_id, exc_info=exc)
    return error_response(request, 500, "Internal server error", code="INTERNAL_ERROR")


def includeme(config):
    # Registered here, at the root configurator level: cornice's own exception views are
    # switched off (handle_exceptions = false) so these are the only ones.
    config.add_forbidden_view(forbidden_view)
    config.add_notfound_view(notfound_view)
    config.add_exception_view(domain_error_view, context=DomainError)
    config.add_exception_view(http_exception_view, context=HTTPException)
    config.add_exception_view(optimistic_error_view, context=IsolationError)
    # storage errors: cinema_api.infrastructure.db (the boundary that knows the drivers)
    config.add_exception_view(undecodable_request_view, context=UnicodeDecodeError)
    config.add_exception_view(unexpected_error_view, context=Exception)
