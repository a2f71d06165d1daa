"""Request and response schemas of authentication (the design's DTOs)."""

from datetime import datetime, timezone

import colander

from cinema_api.core.schemas import (
    DateTime,
    Integer,
    Length,
    Mapping,
    FirstOf,
    OneOf,
    Pattern,
    Range,
    String,
    UUID,
    format_datetime,
)
from cinema_api.users.entities import ROLES

#: A letter (any script: a word character that is neither a digit nor "_") and an ASCII digit.
LETTER_AND_DIGIT = r"(?=[\s\S]*[^\W\d_])(?=[\s\S]*[0-9])[\s\S]*"

username_rules = FirstOf(Length(3, 50), Pattern(r"[A-Za-z0-9._-]+", "must contain only letters, digits, '.', '_' and '-'"))
password_rules = FirstOf(Length(8, 72, unit="bytes"), Pattern(LETTER_AND_DIGIT, "must contain at least one letter and one digit"))


class Register(Mapping):
    username = String(validator=username_rules, example="alice")
    password = String(validator=password_rules, example="secret123", description="8-72 UTF-8 bytes, a letter and a digit")
    age = Integer(validator=Range(0, 150), example=30)
    role = String(validator=OneOf(ROLES), missing="customer", example="customer")


class Login(Mapping):
    username = String(example="alice")
    password = String(example="secret123")


class RefreshToken(Mapping):
    refreshToken = String()


class RegisterRequest(colander.MappingSchema):
    body = Register()


class LoginRequest(colander.MappingSchema):
    body = Login()


class RefreshRequest(colander.MappingSchema):
    body = RefreshToken()


class AuthUser(colander.MappingSchema):
    id = UUID()
    username = String()
    role = String(validator=OneOf(ROLES))
    age = Integer()


class AuthResponse(colander.MappingSchema):
    accessToken = String()
    refreshToken = String()
    expiresAt = DateTime(description="the access token's expiry")
    user = AuthUser(title="AuthUser")


class AuthReply(colander.MappingSchema):
    body = AuthResponse()


def auth_body(result):
    user = result.user
    return {
        "accessToken": result.access_token,
        "refreshToken": result.refresh_token,
        "expiresAt": format_datetime(datetime.fromtimestamp(result.expires_at, timezone.utc)),
        "user": {"id": str(user.id), "username": user.username, "role": user.role, "age": user.age},
    }
