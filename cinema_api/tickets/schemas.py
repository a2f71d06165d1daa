"""Ticket schemas: requests, the Ticket object with its session and movie summary."""

import colander

from cinema_api.core.pagination import page_nodes
from cinema_api.core.schemas import Choice, ObjectSchema, datetime_node, format_datetime, integer_node, string_node, uuid_node

USE_FILTERS = ("all", "used", "unused")
DEFAULT_PER_PAGE = 100


class TicketMovie(colander.MappingSchema):
    """The movie of a ticket's session, in short."""

    id = uuid_node()
    title = string_node()
    ageRestriction = integer_node()


class TicketSession(colander.MappingSchema):
    """The session a ticket is for, with its movie."""

    id = uuid_node()
    date = datetime_node()
    timeslot = string_node()
    roomNumber = integer_node()
    movie = TicketMovie(title="TicketMovie")


class TicketResponse(colander.MappingSchema):
    """A ticket, with its session and movie so that a watch history reads without further calls."""

    id = uuid_node()
    userId = uuid_node()
    sessionId = uuid_node()
    purchasedAt = datetime_node()
    isUsed = colander.SchemaNode(colander.Boolean())
    usedAt = datetime_node(missing=None, description="null until used")
    session = TicketSession(title="TicketSession")


class TicketList(colander.SequenceSchema):
    ticket = TicketResponse(title="TicketResponse")


def use_filter_node():
    return string_node(name="filterByUse", validator=Choice(USE_FILTERS), missing="all", description="all | used | unused")


class GetUserTickets(ObjectSchema):
    """The query of ticket lists: which tickets, which page."""


class QueryTickets(GetUserTickets):
    """The managers' ticket list adds filters by user and session."""


def ticket_query(query=None):
    query = query if query is not None else GetUserTickets()
    query.add(use_filter_node())
    for node in page_nodes(DEFAULT_PER_PAGE):
        query.add(node)
    return query


class BuyTicket(ObjectSchema):
    """A ticket to buy, for the caller."""

    sessionId = uuid_node(example="5b3c4e9a-8f1d-4b2a-9c7e-1d2f3a4b5c6d")
    userId = uuid_node(missing=colander.drop, description="must be the caller's own id when given")


class TicketPath(ObjectSchema):
    ticketId = uuid_node()


class BuyTicketRequest(colander.MappingSchema):
    body = BuyTicket()


class TicketRequest(colander.MappingSchema):
    path = TicketPath()


class MyTicketsRequest(colander.MappingSchema):
    querystring = ticket_query()


def _all_tickets_query():
    query = QueryTickets()
    query.add(uuid_node(name="userId", missing=colander.drop))
    query.add(uuid_node(name="sessionId", missing=colander.drop))
    return ticket_query(query)


class ListTicketsRequest(colander.MappingSchema):
    querystring = _all_tickets_query()


def ticket_body(ticket):
    session = ticket.screening
    movie = session.movie
    return {
        "id": str(ticket.id),
        "userId": str(ticket.user.id),
        "sessionId": str(session.id),
        "purchasedAt": format_datetime(ticket.purchased_at),
        "isUsed": ticket.is_used,
        "usedAt": format_datetime(ticket.used_at) if ticket.used_at else None,
        "session": {
            "id": str(session.id),
            "date": format_datetime(session.date),
            "timeslot": session.timeslot,
            "roomNumber": session.room_number,
            "movie": {"id": str(movie.id), "title": movie.title, "ageRestriction": movie.age_restriction},
        },
    }


class UserTicketsPath(colander.MappingSchema):
    userId = uuid_node()


class GetUserTicketsRequest(colander.MappingSchema):
    path = UserTicketsPath()
    querystring = ticket_query()
