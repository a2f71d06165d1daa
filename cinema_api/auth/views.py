"""POST /v1/auth/register | login | refresh | logout."""

from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.auth.errors import InvalidCredentials, InvalidRefreshToken, RefreshTokenReused, TooManyFailedLogins
from cinema_api.auth.schemas import AuthResponse, LoginRequest, RefreshRequest, RegisterRequest, auth_body
from cinema_api.core.api import (
    OPTIONAL_BEARER,
    ApiService,
    LocationHeaders,
    NoContent,
    NoStoreHeaders,
    created,
    no_content,
    reply,
    responses,
)
from cinema_api.core.trace import trace
from cinema_api.infrastructure.passwords import GateFull
from cinema_api.infrastructure.ratelimit import client_address
from cinema_api.users.errors import ManagerSignupClosed, UsernameTaken

register = ApiService(name="auth_register", path="/auth/register")
login = ApiService(name="auth_login", path="/auth/login")
refresh = ApiService(name="auth_refresh", path="/auth/refresh")
logout = ApiService(name="auth_logout", path="/auth/logout")


def tokens_body(request, result):
    """The auth response; tokens must never be kept by a cache on the way."""
    request.response.cache_control = "no-store"
    return auth_body(result)


def auth_reply(description, with_location=False):
    """An auth response: never stored by a cache; a registration's also says where the user is."""
    headers = NoStoreHeaders()
    if with_location:
        for node in LocationHeaders().children:
            headers.add(node)
    return reply(AuthResponse(), description, headers)


@register.post(
    schema=RegisterRequest(),
    permission=NO_PERMISSION_REQUIRED,
    api_security=OPTIONAL_BEARER,
    response_schemas=responses(
        {"201": auth_reply("Registered and signed in; Location is the new user's URL", with_location=True)},
        why={
            "403": "`Registering as a manager requires a manager's token`: manager sign-up is off and "
            "no manager's token was sent",
            "409": "`Username already exists`",
            "503": "Password hashing is saturated (or the database is down): retry after Retry-After seconds",
        },
        raises=[ManagerSignupClosed, UsernameTaken, GateFull],
    ),
)
def register_view(request):
    """Create an account and sign in

    Creates a user and answers with a token pair, as a login would. `username`: 3 to 50
    characters of `A-Za-z0-9._-`, unique (case-sensitive). `password`: 8 to 72 UTF-8 bytes with
    at least one letter and one digit. `age`: 0 to 150 (tickets of age-restricted movies need
    it). `role` defaults to `customer`; registering a `manager` needs a manager's bearer token
    unless the server allows manager sign-up (`ALLOW_MANAGER_SIGNUP`).
    """
    body = request.validated["body"]
    result = request.authentication.register(body["username"], body["password"], body["role"], body["age"], actor=request.identity)
    if result.user.role == "manager":
        trace(request, "manager created", user=result.user.id)
    return created(request, tokens_body(request, result), "/users/%s" % result.user.id)


@login.post(
    schema=LoginRequest(),
    permission=NO_PERMISSION_REQUIRED,
    response_schemas=responses(
        {"200": auth_reply("Signed in: a new user session with its token pair")},
        "429",
        why={
            "401": "`Invalid credentials`: unknown user or wrong password (the two are not told apart)",
            "503": "Password hashing is saturated (or the database is down): retry after Retry-After seconds",
        },
        raises=[InvalidCredentials, TooManyFailedLogins, GateFull],
    ),
)
def login_view(request):
    """Sign in with a username and password

    Answers an access token (`accessToken`, valid `expiresAt`) and a refresh token. Failed
    logins are throttled: after 10 failures in 15 minutes from one client address, or for one
    username, every login for it answers 429 with `Retry-After` until the oldest failure
    leaves the window. A successful login clears the username's count.
    """
    body = request.validated["body"]
    address = client_address(request, request.registry["cinema.settings"].trusted_proxies)
    result = request.authentication.login(body["username"], body["password"], address)
    trace(request, "login", user=result.user.id)
    return tokens_body(request, result)


@refresh.post(
    schema=RefreshRequest(),
    permission=NO_PERMISSION_REQUIRED,
    response_schemas=responses(
        {"200": auth_reply("A new token pair; the presented refresh token is spent")},
        why={"401": "The refresh token is unknown, expired, revoked or already spent (which revokes its session)"},
        raises=[InvalidRefreshToken, RefreshTokenReused],
    ),
)
def refresh_token_view(request):
    """Exchange a refresh token for a new token pair

    Refresh tokens rotate: the one presented is spent and a new one returned. A spent token
    presented again is taken as stolen: its user session, and every access token of it, is
    revoked (401). Of two concurrent refreshes with one token, exactly one succeeds. The user
    session expires 7 days (by default) after login; refreshing does not extend it.
    """
    result = request.authentication.refresh(request.validated["body"]["refreshToken"])
    trace(request, "refresh", user=result.user.id)
    return tokens_body(request, result)


@logout.post(
    response_schemas=responses({"204": NoContent(description="Every session of the user is revoked")}),
)
def logout_view(request):
    """Sign out everywhere

    Revokes every user session and refresh token of the caller: from the next request on,
    in every process, each of the user's access tokens answers 401.
    """
    request.authentication.logout(request.identity.user_id)
    trace(request, "logout", user=request.identity.user_id)
    return no_content()
