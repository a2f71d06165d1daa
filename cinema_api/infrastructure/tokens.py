"""Access tokens (HS256 JWTs) and opaque refresh tokens."""

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections import OrderedDict

import jwt

ALGORITHM = "HS256"
LEEWAY_SEC = 5
REQUIRED_CLAIMS = ["sub", "role", "sid", "jti", "iat", "exp", "typ"]


class InvalidToken(Exception):
    """The bearer token cannot authenticate anybody."""


#: Access tokens whose signature and claims were checked, by token: a client sends the same one
#: for every request of its lifetime, and checking it again would cost every request.
CHECKED_TOKENS = 10_000


class AccessTokens:
    def __init__(self, secret, lifetime):
        self.secret = secret
        self.lifetime = lifetime
        self.checked = OrderedDict()  # token -> claims, least recently used first
        self.lock = threading.Lock()

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
        with self.lock:
            claims = self.checked.get(token)
            if claims is not None:
                self.checked.move_to_end(token)
        if claims is None:
            claims = self._check(token)
            with self.lock:
                self.checked[token] = claims
                if len(self.checked) > CHECKED_TOKENS:
                    self.checked.popitem(last=False)
        elif claims["exp"] + LEEWAY_SEC <= time.time():  # a checked token still expires
            raise InvalidToken("Token has expired")
        return claims

    def _check(self, token):
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


def bearer_token(header):
    """The token of an ``Authorization`` header of the form ``Bearer <token>``, else None."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def new_refresh_token():
    """32 random bytes in base64url (no padding): the value handed to the client."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def hash_refresh_token(token):
    """What is stored: the SHA-256 of the token, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
