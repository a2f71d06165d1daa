"""Ticket schemas: requests, the Ticket object with its session and movie summary."""

import colander

from cinema_api.core.pagination import ListHeaders, page_nodes
from cinema_api.core.schemas import DateTime, Integer, Mapping, OneOf, String, UUID, format_datetime

USE_FILTERS = ("all", "used", "unused")
DEFAULT_PER_PAGE = 100


class TicketMovie(colander.MappingSchema):
    id = UUID()
    title = String()
    ageRestriction = Integer()


class TicketSession(colander.MappingSchema):
    id = UUID()
    date = DateTime()
    timeslot = String()
    roomNumber = Integer()
    movie = TicketMovie(title="TicketMovie")


class TicketResponse(colander.MappingSchema):
    id = UUID()
    userId = UUID()
    sessionId = UUID()
    purchasedAt = DateTime()
    isUsed = colander.SchemaNode(colander.Boolean())
    usedAt = DateTime(missing=None, description="null until used")
    session = TicketSession(title="TicketSession")


class TicketList(colander.SequenceSchema):
    ticket = TicketResponse(title="TicketResponse")


class TicketReply(colander.MappingSchema):
    body = TicketResponse()


class TicketListReply(colander.MappingSchema):
    body = TicketList()
    headers = ListHeaders()


def use_filter_node():
    return String(name="filterByUse", validator=OneOf(USE_FILTERS), missing="all", description="all | used | unused")


class GetUserTickets(Mapping):
    """The query of ticket lists: which tickets, which page."""


class QueryTickets(GetUserTickets):
    """The managers' ticket list adds filters by user and session."""


def ticket_query(query=None):
    query = query if query is not None else GetUserTickets()
    query.add(use_filter_node())
    for node in page_nodes(DEFAULT_PER_PAGE):
        query.add(node)
    return query


class BuyTicket(Mapping):
    sessionId = UUID()
    userId = UUID(missing=colander.drop, description="must be the caller's own id when given")


class TicketPath(Mapping):
    ticketId = UUID()


class BuyTicketRequest(colander.MappingSchema):
    body = BuyTicket()


class TicketRequest(colander.MappingSchema):
    path = TicketPath()


class MyTicketsRequest(colander.MappingSchema):
    querystring = ticket_query()


def _all_tickets_query():
    query = QueryTickets()
    query.add(UUID(name="userId", missing=colander.drop))
    query.add(UUID(name="sessionId", missing=colander.drop))
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
    userId = UUID()


class GetUserTicketsRequest(colander.MappingSchema):
    path = UserTicketsPath()
    querystring = ticket_query()
