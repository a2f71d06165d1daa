"""User schemas (the design's DTOs) and the User object."""

import colander

from cinema_api.core.pagination import page_nodes
from cinema_api.core.schemas import Choice, ObjectSchema, datetime_node, format_datetime, integer_node, string_node, uuid_node
from cinema_api.tickets.schemas import TicketList, ticket_body
from cinema_api.users.entities import ROLES

DEFAULT_PER_PAGE = 100


class UserResponse(colander.MappingSchema):
    """A user account (never its password or hash)."""

    id = uuid_node()
    username = string_node()
    role = string_node(validator=Choice(ROLES))
    age = integer_node()
    createdAt = datetime_node()
    updatedAt = datetime_node()


class UserWithTickets(UserResponse):
    """A user account with every ticket of it, newest first."""

    tickets = TicketList()


class UserList(colander.SequenceSchema):
    user = UserResponse(title="UserResponse")


class UserPath(ObjectSchema):
    userId = uuid_node()


class QueryUsers(ObjectSchema):
    pass


def users_query():
    query = QueryUsers()
    for node in page_nodes(DEFAULT_PER_PAGE):
        query.add(node)
    return query


class ListUsersRequest(colander.MappingSchema):
    querystring = users_query()


class GetUserRequest(colander.MappingSchema):
    path = UserPath()


def user_body(user):
    return {
        "id": str(user.id),
        "username": user.username,
        "role": user.role,
        "age": user.age,
        "createdAt": format_datetime(user.created_at),
        "updatedAt": format_datetime(user.updated_at),
    }


def user_with_tickets_body(user, tickets):
    body = user_body(user)
    body["tickets"] = [ticket_body(ticket) for ticket in tickets]
    return body
