"""GET /v1/users, /v1/users/{userId}, /v1/users/{userId}/tickets."""

import colander

from cinema_api.core.api import BEARER, ApiService, responses
from cinema_api.core.pagination import ListHeaders, Page, set_list_headers
from cinema_api.core.acl import MANAGE, VIEW_ACCOUNT, owner_of_path
from cinema_api.users.schemas import (
    DEFAULT_PER_PAGE,
    GetUserRequest,
    ListUsersRequest,
    UserList,
    UserWithTickets,
    user_body,
    user_with_tickets_body,
)

users = ApiService(name="users", path="/users")
user = ApiService(name="user", path="/users/{userId}", factory=owner_of_path("userId"))


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
    permission=VIEW_ACCOUNT,
    tags=["users"],
    operation_id="getUser",
    api_security=BEARER,
    response_schemas=responses(
        {"200": UserWithTicketsReply(description="The user with every ticket, newest first")}, "400", "404", authenticated=True
    ),
)
def get_user(request):
    user_id = request.validated["path"]["userId"]
    found = request.users.get(user_id)
    return user_with_tickets_body(found, request.tickets.of_user(user_id))
