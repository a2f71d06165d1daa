"""GET /v1/users, /v1/users/{userId}, /v1/users/{userId}/tickets."""

from cinema_api.core.api import ApiService, reply, responses
from cinema_api.core.pagination import ListHeaders, Page, set_list_headers
from cinema_api.core.acl import MANAGE, VIEW_ACCOUNT, owner_of_path
from cinema_api.users.errors import UserNotFound
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


@users.get(
    schema=ListUsersRequest(),
    permission=MANAGE,
    response_schemas=responses({"200": reply(UserList(), "Users, newest first", ListHeaders())}),
)
def list_users(request):
    """List user accounts

    Newest first (by `createdAt`, then `id`), 100 per page by default. The total is in
    `X-Total-Count`; `Link` carries the `first`, `prev`, `next` and `last` pages. Never shows
    a password or its hash.
    """
    page = Page.from_query(request.validated["querystring"], DEFAULT_PER_PAGE)
    found, total = request.users.page(page)
    set_list_headers(request, page, total)
    return [user_body(u) for u in found]


@user.get(
    schema=GetUserRequest(),
    permission=VIEW_ACCOUNT,
    response_schemas=responses(
        {"200": reply(UserWithTickets(), "The user with every ticket, newest first")},
        why={"403": "`You can only access your own account`: a customer asked for another user", "404": "`User not found`"},
        raises=[UserNotFound],
    ),
)
def get_user(request):
    """Get a user account with its tickets

    The account and every ticket of it, newest purchase first, each with its session and
    movie. A customer may read only their own account (403 for another user's id, even one
    that does not exist).
    """
    user_id = request.validated["path"]["userId"]
    found = request.users.get(user_id)
    return user_with_tickets_body(found, request.tickets.of_user(user_id))
