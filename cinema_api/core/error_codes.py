"""The error codes: the ``code`` of every error body, each with its status and what it means.

A client switches on ``code`` instead of parsing ``message``. A code names one situation and
never changes meaning; a new situation gets a new code. Each domain error class carries its
code as a class attribute (``cinema_api.*.errors``); the error views of ``cinema_api.core.errors``
and the storage boundary (``cinema_api.infrastructure.db``) name theirs at the call. The OpenAPI
document (``ErrorBody.code`` and each error response) and docs/API.md section 11 list them from
here; a test holds the three together.
"""


class ErrorCode:
    """One code: its name, the HTTP status it comes with (None: the status says) and its meaning."""

    __slots__ = ("name", "status", "meaning")

    def __init__(self, name, status, meaning):
        self.name, self.status, self.meaning = name, status, meaning

    def __repr__(self):
        return "ErrorCode(%r, %r)" % (self.name, self.status)


#: Every code, in the order docs/API.md lists them (by status).
ERROR_CODES = {
    code.name: code
    for code in (
        ErrorCode("VALIDATION_FAILED", 400, "The request failed a schema check: `message` and `errors` name each field"),
        ErrorCode("MALFORMED_JSON", 400, "The body is not JSON, not a JSON object, nested too deep or holds too many values"),
        ErrorCode("MALFORMED_URL", 400, "The path or query string is not valid UTF-8"),
        ErrorCode("SESSION_STARTED", 400, "The screening has started: it can no longer be bought, cancelled or changed"),
        ErrorCode("SEAT_NOT_IN_PLAN", 400, "The seat does not exist in the session's seat plan"),
        ErrorCode("NO_SEAT_PLAN", 400, "A seat was given for a session without a seat plan"),
        ErrorCode("AUTHENTICATION_REQUIRED", 401, "No bearer token was sent"),
        ErrorCode("INVALID_TOKEN", 401, "The bearer token is malformed, foreign, expired or revoked"),
        ErrorCode("INVALID_CREDENTIALS", 401, "Unknown username or wrong password (not told apart)"),
        ErrorCode("INVALID_REFRESH_TOKEN", 401, "The refresh token is unknown, expired, revoked or already spent"),
        ErrorCode("FORBIDDEN", 403, "The caller's role may not do this (managers only)"),
        ErrorCode("NOT_OWNER", 403, "The resource belongs to another user"),
        ErrorCode("AGE_RESTRICTED", 403, "The buyer is younger than the movie's age restriction"),
        ErrorCode("MANAGER_SIGNUP_CLOSED", 403, "Registering as a manager needs a manager's token"),
        ErrorCode("NOT_FOUND", 404, "No such route (an unknown path)"),
        ErrorCode("MOVIE_NOT_FOUND", 404, "No movie has this id"),
        ErrorCode("SESSION_NOT_FOUND", 404, "No movie session (screening) has this id"),
        ErrorCode("TICKET_NOT_FOUND", 404, "No ticket has this id"),
        ErrorCode("USER_NOT_FOUND", 404, "No user has this id"),
        ErrorCode("ROOM_NOT_FOUND", 404, "No room has this number"),
        ErrorCode("METHOD_NOT_ALLOWED", 405, "The route does not take this method (see `Allow`)"),
        ErrorCode("USERNAME_TAKEN", 409, "Another user has this username"),
        ErrorCode("MOVIE_EXISTS", 409, "Another movie has this title"),
        ErrorCode("ROOM_BOOKED", 409, "The room is already booked for this day and timeslot"),
        ErrorCode("ALREADY_PURCHASED", 409, "The buyer already holds a ticket for this session"),
        ErrorCode("SEAT_TAKEN", 409, "The seat is already sold"),
        ErrorCode("SOLD_OUT", 409, "Every seat of the session is sold"),
        ErrorCode("SESSION_CANCELLED", 409, "The screening is cancelled"),
        ErrorCode("TICKET_USED", 409, "The ticket has already been used"),
        ErrorCode("TICKET_CANCELLED", 409, "The ticket's screening is cancelled"),
        ErrorCode("HAS_TICKETS", 409, "The movie or session has tickets, so it cannot be deleted or changed"),
        ErrorCode("SESSION_OF_ANOTHER_MOVIE", 409, "The session belongs to another movie than the path's"),
        ErrorCode("CONFLICT", 409, "The write conflicts with the current state of the data (another constraint)"),
        ErrorCode("CONFLICT_RETRY", 409, "A concurrent request got in the way: retry after `Retry-After` seconds"),
        ErrorCode("BODY_TOO_LARGE", 413, "The request body is over 1 MiB"),
        ErrorCode("UNSUPPORTED_MEDIA_TYPE", 415, "The request body's Content-Type is not application/json"),
        ErrorCode("TOO_MANY_FAILED_LOGINS", 429, "Too many failed logins: retry after `Retry-After` seconds"),
        ErrorCode("INTERNAL_ERROR", 500, "An unexpected error of the server (its trace id is logged)"),
        ErrorCode("HTTP_ERROR", None, "Another HTTP error of the framework (not expected: the status says which)"),
        ErrorCode("DATABASE_UNAVAILABLE", 503, "The database does not answer: retry after `Retry-After` seconds"),
        ErrorCode("BUSY", 503, "Too many password checks in progress (the login gate): retry after `Retry-After` seconds"),
        ErrorCode("CLIENT_GONE", 503, "The client closed the connection while its password check waited (never received)"),
    )
}

#: Codes any request may get, whatever the operation: not repeated in each operation's responses.
ANY_REQUEST = ("MALFORMED_URL", "NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL_ERROR", "HTTP_ERROR")
#: Codes any write may get on a database that reports a conflict the domain did not name.
ANY_WRITE = ("CONFLICT", "CONFLICT_RETRY")


def check_code(name, status=None):
    """``name`` when it is a registered code (of ``status``, when given); ValueError otherwise."""
    code = ERROR_CODES.get(name)
    if code is None:
        raise ValueError("%r is not a registered error code (cinema_api.core.error_codes)" % (name,))
    if status is not None and code.status not in (None, status):
        raise ValueError("error code %s comes with %s, not %s" % (name, code.status, status))
    return name
