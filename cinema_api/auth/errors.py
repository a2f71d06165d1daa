"""Errors of authentication."""

from cinema_api.core.errors import TooManyRequests, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"

    def __init__(self):
        super().__init__("Invalid credentials")


class InvalidRefreshToken(Unauthorized):
    code = "INVALID_REFRESH_TOKEN"

    def __init__(self, message="Invalid refresh token"):
        super().__init__(message)


class RefreshTokenReused(InvalidRefreshToken):
    code = "INVALID_REFRESH_TOKEN"

    def __init__(self):
        super().__init__("Refresh token has already been used; the session is revoked")


class TooManyFailedLogins(TooManyRequests):
    code = "TOO_MANY_FAILED_LOGINS"

    def __init__(self, retry_after):
        super().__init__("Too many failed login attempts, retry later", {"Retry-After": str(retry_after)})


class TokenRevoked(Unauthorized):
    """The 401 of a token whose login session is no longer live, found by a deferred check (the
    security policy's own answer is the same: ``cinema_api.core.errors.forbidden_view``)."""

    code = "INVALID_TOKEN"
    MESSAGE = "Token has been revoked"

    def __init__(self):
        super().__init__(self.MESSAGE)
