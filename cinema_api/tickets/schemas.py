"""Ticket schemas: requests, the Ticket object with its session and movie summary."""

import colander

from cinema_api.core.pagination import page_nodes
from cinema_api.core.schemas import Choice, ObjectSchema, Pattern, datetime_node, format_datetime, integer_node, string_node, uuid_node
from cinema_api.rooms.entities import SEAT_LABEL_PATTERN

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
    seat = string_node(missing=None, description='the seat, such as "C7"; null for a session without a seat plan')
    purchasedAt = datetime_node()
    isUsed = colander.SchemaNode(colander.Boolean())
    usedAt = datetime_node(missing=None, description="null until used")
    cancelledAt = datetime_node(missing=None, description="when its screening was cancelled; null otherwise (and for a ticket used before)")
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


def seat_label_node(**kw):
    return string_node(
        validator=Pattern(SEAT_LABEL_PATTERN, "must be a seat label: a row letter A-Z then a seat number, such as C7"),
        example="C7",
        **kw,
    )


class BuyTicket(ObjectSchema):
    """A ticket to buy, for the caller."""

    sessionId = uuid_node(example="5b3c4e9a-8f1d-4b2a-9c7e-1d2f3a4b5c6d")
    userId = uuid_node(missing=colander.drop, description="must be the caller's own id when given")
    seat = seat_label_node(
        missing=colander.drop,
        description="a seat of the session's seat plan; without it, the free seat with the lowest row, then number",
    )


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
        "seat": ticket.seat,
        "purchasedAt": format_datetime(ticket.purchased_at),
        "isUsed": ticket.is_used,
        "usedAt": format_datetime(ticket.used_at) if ticket.used_at else None,
        "cancelledAt": format_datetime(ticket.cancelled_at) if ticket.cancelled_at else None,
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


# ---------------------------------------------------------------- the seat map of a session


class SessionSeatsPath(ObjectSchema):
    sessionId = uuid_node()


class SeatMapRequest(colander.MappingSchema):
    path = SessionSeatsPath()


class Seat(colander.MappingSchema):
    """One seat of a session's seat plan."""

    seat = string_node(example="C7")
    row = string_node(example="C", description="the row letter")
    number = integer_node(example=7, description="the seat number in its row, from 1")
    taken = colander.SchemaNode(colander.Boolean())


class SeatList(colander.SequenceSchema):
    seat = Seat(title="Seat")


class SeatMap(colander.MappingSchema):
    """The seats of a session as sold right now."""

    sessionId = uuid_node()
    capacity = integer_node(missing=None, description="null for a session without a seat plan")
    sold = integer_node(description="tickets sold for the session")
    available = integer_node(missing=None, description="free seats; null for a session without a seat plan")
    seats = SeatList(description="by row, then number; empty for a session without a seat plan")


def seat_map_body(seat_map):
    return {
        "sessionId": str(seat_map.session_id),
        "capacity": seat_map.capacity,
        "sold": seat_map.sold,
        "available": seat_map.available,
        "seats": [{"seat": label, "row": row, "number": number, "taken": taken} for label, row, number, taken in seat_map.seats()],
    }
