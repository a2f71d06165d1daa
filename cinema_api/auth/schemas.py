"""Request and response schemas of authentication (the design's DTOs)."""

from datetime import datetime, timezone

import colander

from cinema_api.core.schemas import (
    Bounds,
    Choice,
    FirstOf,
    LengthBounds,
    Node,
    ObjectSchema,
    Pattern,
    datetime_node,
    format_datetime,
    integer_node,
    string_node,
    uuid_node,
)
from cinema_api.users.entities import ROLES

#: A letter (any script: a word character that is neither a digit nor "_") and an ASCII digit.
LETTER_AND_DIGIT = r"(?=[\s\S]*[^\W\d_])(?=[\s\S]*[0-9])[\s\S]*"

username_rules = FirstOf(LengthBounds(3, 50), Pattern(r"[A-Za-z0-9._-]+", "must contain only letters, digits, '.', '_' and '-'"))
# Published in words: JSON Schema's regex dialect has no Unicode letter class.
password_rules = FirstOf(
    LengthBounds(8, 72, unit="bytes"),
    Pattern(LETTER_AND_DIGIT, "must contain at least one letter and one digit", published=False),
)


class Register(ObjectSchema):
    """A new account."""

    username = string_node(validator=username_rules, example="alice", description="3-50 characters of A-Za-z0-9._-, unique")
    password = string_node(
        validator=password_rules, example="secret123", description="8-72 UTF-8 bytes with at least one letter and one digit"
    )
    age = integer_node(validator=Bounds(0, 150), example=30)
    role = string_node(validator=Choice(ROLES), missing="customer", example="customer", description="manager needs a manager's token or manager sign-up")


# Credentials that cannot be valid (NUL, lone surrogates) are answered 401 by the use case.
class Login(ObjectSchema):
    """Credentials."""

    username = string_node(storable=False, example="alice")
    password = string_node(storable=False, example="secret123")


class RefreshToken(ObjectSchema):
    """A refresh token to exchange."""

    refreshToken = string_node(
        storable=False, example="Qm9va2luZ3MtYXJlLWZ1bi1idXQtdGhpcy1pcy1mYWtl", description="from the last auth response"
    )


class JsonBoolean(colander.Boolean):
    """A JSON ``true`` or ``false``, nothing else (colander's Boolean takes any value)."""

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, bool):
            raise colander.Invalid(node, "must be a boolean value")
        return cstruct


class Logout(ObjectSchema):
    """What to sign out: this login session (the default), or every one of the user."""

    everywhere = Node(
        JsonBoolean(), missing=False, example=False, description="true: end every login session of the user, not only this one"
    )


class ChangePassword(ObjectSchema):
    """The current password and the new one."""

    # Checked against the stored hash by the use case: any string, as at login.
    currentPassword = string_node(storable=False, example="secret123")
    newPassword = string_node(
        validator=password_rules, example="n3w-secret", description="8-72 UTF-8 bytes with at least one letter and one digit"
    )


class RegisterRequest(colander.MappingSchema):
    body = Register()


class LoginRequest(colander.MappingSchema):
    body = Login()


class RefreshRequest(colander.MappingSchema):
    body = RefreshToken()


class LogoutRequest(colander.MappingSchema):
    body = Logout()


class ChangePasswordRequest(colander.MappingSchema):
    body = ChangePassword()


class AuthUser(colander.MappingSchema):
    """The signed-in user."""

    id = uuid_node()
    username = string_node()
    role = string_node(validator=Choice(ROLES))
    age = integer_node()


class AuthResponse(colander.MappingSchema):
    """A token pair and the user it belongs to."""

    accessToken = string_node(description="a JWT: send it as `Authorization: Bearer <accessToken>`")
    refreshToken = string_node(description="opaque, single use: exchange it at /v1/auth/refresh")
    expiresAt = datetime_node(description="the access token's expiry")
    user = AuthUser(title="AuthUser")


def auth_body(result):
    user = result.user
    return {
        "accessToken": result.access_token,
        "refreshToken": result.refresh_token,
        "expiresAt": format_datetime(datetime.fromtimestamp(result.expires_at, timezone.utc)),
        "user": {"id": str(user.id), "username": user.username, "role": user.role, "age": user.age},
    }
