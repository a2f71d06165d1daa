"""GET /v1/users, /v1/users/{userId}, /v1/users/{userId}/tickets."""

import colander

from cinema_api.core.api import BEARER, ApiService, responses
from cinema_api.core.pagination import ListHeaders, Page, set_list_headers
from cinema_api.core.acl import MANAGE
from cinema_api.tickets.schemas import TicketListReply
from cinema_api.tickets.views import ticket_page
from cinema_api.users.errors import NotYourAccount
from cinema_api.users.schemas import (
    DEFAULT_PER_PAGE,
    GetUserRequest,
    GetUserTicketsRequest,
    ListUsersRequest,
    UserList,
    UserWithTickets,
    user_body,
    user_with_tickets_body,
)

users = ApiService(name="users", path="/users")
user = ApiService(name="user", path="/users/{userId}")
user_tickets = ApiService(name="user_tickets", path="/users/{userId}/tickets")


class UserListResponse(colander.MappingSchema):
    body = UserList()
    headers = ListHeaders()


class UserWithTicketsReply(colander.MappingSchema):
    body = UserWithTickets()


@users.get(
    schema=ListUsersRequest(),
    permission=MANAGE,
    tags=["users"],
    operation_id="listUsers",
    api_security=BEARER,
    response_schemas=responses({"200": UserListResponse(description="Users, newest first")}, "400", authenticated=True),
)
def list_users(request):
    page = Page.from_query(request.validated["querystring"], DEFAULT_PER_PAGE)
    found, total = request.users.page(page)
    set_list_headers(request, page, total)
    return [user_body(u) for u in found]


@user.get(
    schema=GetUserRequest(),
    tags=["users"],
    operation_id="getUser",
    api_security=BEARER,
    response_schemas=responses(
        {"200": UserWithTicketsReply(description="The user with every ticket, newest first")}, "400", "404", authenticated=True
    ),
)
def get_user(request):
    user_id = request.validated["path"]["userId"]
    identity = request.identity
    if not identity.is_manager and user_id != identity.user_id:
        raise NotYourAccount()
    found = request.users.get(user_id)
    return user_with_tickets_body(found, request.tickets.of_user(user_id))


@user_tickets.get(
    schema=GetUserTicketsRequest(),
    permission=MANAGE,
    tags=["users"],
    operation_id="getUserTickets",
    api_security=BEARER,
    response_schemas=responses({"200": TicketListReply(description="The user's tickets, newest first")}, "400", "404", authenticated=True),
)
def get_user_tickets(request):
    user_id = request.validated["path"]["userId"]
    request.users.get(user_id)  # 404 for an unknown user
    return ticket_page(request, user_id=user_id)
