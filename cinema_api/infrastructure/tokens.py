"""Access tokens (HS256 JWTs) and opaque refresh tokens."""

import base64
import hashlib
import secrets
import time
import uuid

import jwt

ALGORITHM = "HS256"
LEEWAY_SEC = 5
REQUIRED_CLAIMS = ["sub", "role", "sid", "jti", "iat", "exp", "typ"]


class InvalidToken(Exception):
    """The bearer token cannot authenticate anybody."""


class AccessTokens:
    def __init__(self, secret, lifetime):
        self.secret = secret
        self.lifetime = lifetime

    def issue(self, user_id, role, session_id, now=None):
        """``(token, exp)`` for a user session."""
        now = int(now if now is not None else time.time())
        exp = now + self.lifetime
        claims = {
            "sub": str(user_id),
            "role": role,
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": exp,
            "typ": "access",
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), exp

    def decode(self, token):
        """The claims of a valid access token; :class:`InvalidToken` otherwise."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                leeway=LEEWAY_SEC,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Token has expired") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("Invalid token") from None
        if claims.get("typ") != "access":
            raise InvalidToken("Invalid token")
        try:
            claims["sub"] = str(uuid.UUID(claims["sub"]))
            claims["sid"] = str(uuid.UUID(claims["sid"]))
        except (TypeError, ValueError, AttributeError):
            raise InvalidToken("Invalid token") from None
        return claims


def new_refresh_token():
    """32 random bytes in base64url (no padding): the value handed to the client."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def hash_refresh_token(token):
    """What is stored: the SHA-256 of the token, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
