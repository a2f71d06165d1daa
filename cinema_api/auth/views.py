"""POST /v1/auth/register | login | refresh | logout."""

from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.auth.schemas import AuthReply, LoginRequest, RefreshRequest, RegisterRequest, auth_body
from cinema_api.core.api import BEARER, ApiService, NoContent, created, no_content, responses
from cinema_api.core.trace import trace
from cinema_api.infrastructure.ratelimit import client_address

register = ApiService(name="auth_register", path="/auth/register")
login = ApiService(name="auth_login", path="/auth/login")
refresh = ApiService(name="auth_refresh", path="/auth/refresh")
logout = ApiService(name="auth_logout", path="/auth/logout")


def tokens_body(request, result):
    """The auth response; tokens must never be kept by a cache on the way."""
    request.response.cache_control = "no-store"
    return auth_body(result)



@register.post(
    schema=RegisterRequest(),
    permission=NO_PERMISSION_REQUIRED,
    tags=["auth"],
    operation_id="register",
    response_schemas=responses({"201": AuthReply(description="Registered and signed in")}, "403", "409", body=True),
)
def register_view(request):
    body = request.validated["body"]
    result = request.authentication.register(body["username"], body["password"], body["role"], body["age"], actor=request.identity)
    if result.user.role == "manager":
        trace(request, "manager created", user=result.user.id)
    return created(request, tokens_body(request, result), "/users/%s" % result.user.id)


@login.post(
    schema=LoginRequest(),
    permission=NO_PERMISSION_REQUIRED,
    tags=["auth"],
    operation_id="login",
    response_schemas=responses({"200": AuthReply(description="Signed in")}, "401", "429", body=True),
)
def login_view(request):
    body = request.validated["body"]
    address = client_address(request, request.registry["cinema.settings"].trusted_proxies)
    result = request.authentication.login(body["username"], body["password"], address)
    trace(request, "login", user=result.user.id)
    return tokens_body(request, result)


@refresh.post(
    schema=RefreshRequest(),
    permission=NO_PERMISSION_REQUIRED,
    tags=["auth"],
    operation_id="refreshToken",
    response_schemas=responses({"200": AuthReply(description="A new token pair; the presented refresh token is spent")}, "401", body=True),
)
def refresh_view(request):
    result = request.authentication.refresh(request.validated["body"]["refreshToken"])
    trace(request, "refresh", user=result.user.id)
    return tokens_body(request, result)


@logout.post(
    tags=["auth"],
    operation_id="logout",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Every session of the user is revoked")}, authenticated=True),
)
def logout_view(request):
    request.authentication.logout(request.identity.user_id)
    trace(request, "logout", user=request.identity.user_id)
    return no_content()
