"""/v1/tickets: buy, my tickets (the watch history), all tickets, use at the door, cancel."""

from cinema_api.core.api import BEARER, ApiService, NoContent, created, no_content, responses
from cinema_api.core.pagination import Page, set_list_headers
from cinema_api.core.trace import trace
from cinema_api.core.acl import CANCEL_TICKET, MANAGE, owned_resource
from cinema_api.tickets.schemas import (
    DEFAULT_PER_PAGE,
    BuyTicketRequest,
    GetUserTicketsRequest,
    ListTicketsRequest,
    MyTicketsRequest,
    SeatMapReply,
    SeatMapRequest,
    TicketListReply,
    TicketReply,
    TicketRequest,
    seat_map_body,
    ticket_body,
)

tickets = ApiService(name="tickets", path="/tickets")
my_tickets = ApiService(name="my_tickets", path="/tickets/me")
ticket_use = ApiService(name="ticket_use", path="/tickets/{ticketId}/use")
ticket = ApiService(
    name="ticket",
    path="/tickets/{ticketId}",
    factory=owned_resource("ticketId", lambda request, ticket_id: request.tickets.owner_of(ticket_id), CANCEL_TICKET),
)
user_tickets = ApiService(name="user_tickets", path="/users/{userId}/tickets")
session_seats = ApiService(name="session_seats", path="/movie-sessions/{sessionId}/seats")

SERVICES = (my_tickets, tickets, ticket_use, ticket, user_tickets, session_seats)



def ticket_page(request, user_id=None, session_id=None):
    query = request.validated["querystring"]
    page = Page.from_query(query, DEFAULT_PER_PAGE)
    found, total = request.tickets.page(page, query["filterByUse"], user_id=user_id, session_id=session_id)
    set_list_headers(request, page, total)
    return [ticket_body(t) for t in found]


@tickets.post(
    schema=BuyTicketRequest(),
    tags=["tickets"],
    operation_id="buyTicket",
    api_security=BEARER,
    response_schemas=responses({"201": TicketReply(description="Bought")}, "404", "409", authenticated=True, body=True),
)
def buy_ticket(request):
    """Buy a ticket for a movie session, optionally for a chosen seat.

    Any authenticated user, for themself (userId, when given, must be the caller's own id, for
    managers too: else 403). One ticket per user and session. Checks in order: 400 schema
    (seat must look like "C7"), 403 another userId, 404 unknown session, 400 session already
    started, 403 buyer younger than the movie's ageRestriction, 400 "Seat <label> does not exist
    in this session" or "This session has no seat plan", then 409 "Ticket already purchased for
    this session", 409 "Seat <label> is already taken", 409 "Movie session is sold out".
    Without seat, a session with a seat plan assigns the free seat with the lowest row, then the
    lowest number; a session without a seat plan (its room had no Room when it was created) sells
    without a limit and seat is null. Never more tickets than seats, never one seat twice, also
    under concurrent purchases.
    """
    body = request.validated["body"]
    bought = request.tickets.buy(request.identity.user_id, body["sessionId"], body.get("userId"), body.get("seat"))
    trace(request, "ticket bought", ticket=bought.id)
    return created(request, ticket_body(bought), "/tickets/%s" % bought.id)


@tickets.get(
    schema=ListTicketsRequest(),
    permission=MANAGE,
    tags=["tickets"],
    operation_id="listTickets",
    api_security=BEARER,
    response_schemas=responses({"200": TicketListReply(description="Tickets, newest purchase first")}, "400", authenticated=True),
)
def list_tickets(request):
    query = request.validated["querystring"]
    return ticket_page(request, user_id=query.get("userId"), session_id=query.get("sessionId"))


@my_tickets.get(
    schema=MyTicketsRequest(),
    tags=["tickets"],
    operation_id="listMyTickets",
    api_security=BEARER,
    response_schemas=responses(
        {"200": TicketListReply(description="The caller's tickets, newest first; filterByUse=used is the watch history")},
        "400",
        authenticated=True,
    ),
)
def list_my_tickets(request):
    return ticket_page(request, user_id=request.identity.user_id)


@ticket_use.post(
    schema=TicketRequest(),
    permission=MANAGE,
    tags=["tickets"],
    operation_id="useTicket",
    api_security=BEARER,
    response_schemas=responses({"200": TicketReply(description="Checked: isUsed is true")}, "400", "404", "409", authenticated=True),
)
def use_ticket(request):
    used = request.tickets.use(request.validated["path"]["ticketId"])
    trace(request, "ticket used", ticket=used.id)
    return ticket_body(used)


@ticket.delete(
    schema=TicketRequest(),
    permission=CANCEL_TICKET,
    tags=["tickets"],
    operation_id="deleteTicket",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted; its seat is free")}, "400", "404", "409", authenticated=True),
)
def delete_ticket(request):
    """Cancel (delete) a ticket.

    Managers delete any ticket, used ones and past sessions' included. A customer cancels their
    own ticket while it is unused and its session has not started. Checks in order: 400 malformed
    ticketId, 404 unknown ticket, 403 another user's ticket, 400 "Cannot cancel a ticket for a
    past session", 409 "Ticket has already been used". The seat is free for sale at once.
    """
    ticket_id = request.validated["path"]["ticketId"]
    if request.has_permission(MANAGE):
        request.tickets.delete(ticket_id)
    else:
        request.tickets.cancel(ticket_id)
    trace(request, "ticket deleted", ticket=ticket_id)
    return no_content()


@session_seats.get(
    schema=SeatMapRequest(),
    tags=["movie-sessions"],
    operation_id="getSessionSeats",
    api_security=BEARER,
    response_schemas=responses({"200": SeatMapReply(description="The seat map")}, "400", "404", authenticated=True),
)
def get_session_seats(request):
    """The seat map of a movie session: which seats are taken.

    Any authenticated user. capacity, sold (tickets sold), available, and every seat of the
    session's seat plan by row, then number, with taken. Read from the database on every
    request (never cached): exact after every purchase and cancellation, in every process. A
    session without a seat plan has capacity and available null and no seats; sold still counts
    its tickets.
    """
    seat_map = request.tickets.seat_map(request.validated["path"]["sessionId"])
    return seat_map_body(seat_map)


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
    request.tickets.require_user(user_id)  # 404 for an unknown user
    return ticket_page(request, user_id=user_id)
