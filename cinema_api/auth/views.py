"""POST /v1/auth/register | login | refresh | logout | password."""

from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.auth.errors import InvalidCredentials, InvalidRefreshToken, RefreshTokenReused, TooManyFailedLogins
from cinema_api.auth.schemas import (
    AuthResponse,
    ChangePasswordRequest,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    auth_body,
)
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
password = ApiService(name="auth_password", path="/auth/password")


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
    schema=LogoutRequest(),
    response_schemas=responses(
        {"204": NoContent(description="This login session (with `everywhere`: every one of the user) is revoked")}
    ),
)
def logout_view(request):
    """Sign out

    Revokes the caller's login session: its refresh token and every access token of it answer
    401 from the next request on, in every process. The user's other login sessions (other
    devices) keep working. With `{"everywhere": true}` every login session of the user is
    revoked. The body is optional: none, or `{}`, is a plain logout; `everywhere` must be a
    JSON boolean.
    """
    identity = request.identity
    everywhere = request.validated["body"]["everywhere"]
    request.authentication.logout(identity.user_id, identity.login_session_id, everywhere)
    trace(request, "logout", user=identity.user_id, everywhere=everywhere)
    return no_content()


@password.post(
    schema=ChangePasswordRequest(),
    response_schemas=responses(
        {"204": NoContent(description="Password changed; every other login session of the user is revoked")},
        "429",
        why={
            "401": "`Invalid credentials`: the current password is wrong (a failed login for the throttle); "
            "or the access token is missing, expired or revoked",
            "503": "Password hashing is saturated (or the database is down): retry after Retry-After seconds",
        },
        raises=[InvalidCredentials, TooManyFailedLogins, GateFull],
    ),
)
def change_password_view(request):
    """Change one's password

    Any authenticated user changes their own password, proving it with the current one.
    `newPassword` follows the registration rules: 8 to 72 UTF-8 bytes with at least one letter
    and one digit. A wrong `currentPassword` is 401 `Invalid credentials` and counts as a failed
    login (per client address and per username: after 10 in 15 minutes, 429 with
    `Retry-After`). On success every other login session of the user ends at once (their
    access and refresh tokens answer 401 from the next request on); the caller's goes on. From
    then on the new password signs in and the old one does not.
    """
    body = request.validated["body"]
    identity = request.identity
    address = client_address(request, request.registry["cinema.settings"].trusted_proxies)
    request.authentication.change_password(
        identity.user_id, identity.login_session_id, body["currentPassword"], body["newPassword"], address
    )
    trace(request, "password changed", user=identity.user_id)
    return no_content()
