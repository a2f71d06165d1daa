"""/v1/tickets: buy, my tickets (the watch history), all tickets, use at the door, cancel."""

from cinema_api.auth.identity import deferred_login_check
from cinema_api.core.api import ApiService, LocationHeaders, NoContent, created, no_content, reply, responses
from cinema_api.core.pagination import ListHeaders, Page, set_list_headers
from cinema_api.core.trace import trace
from cinema_api.core.acl import CANCEL_TICKET, MANAGE, VIEW_TICKET, owned_resource
from cinema_api.movies.errors import ScreeningCancelled, ScreeningNotFound
from cinema_api.tickets.errors import (
    CancelAfterStart,
    NoSeatPlan,
    NotYourTicket,
    ScreeningAlreadyStarted,
    SeatAlreadyTaken,
    SeatNotInPlan,
    SeatsChangedMeanwhile,
    SoldOut,
    TicketAlreadyPurchased,
    TicketAlreadyUsed,
    TicketCancelled,
    TicketNotFound,
    TooYoung,
    UserNotFound,
)
from cinema_api.tickets.schemas import (
    DEFAULT_PER_PAGE,
    BuyTicketRequest,
    GetUserTicketsRequest,
    ListTicketsRequest,
    MyTicketsRequest,
    SeatMapRequest,
    SeatMap,
    TicketList,
    TicketRequest,
    TicketResponse,
    seat_map_body,
    ticket_body,
)

tickets = ApiService(name="tickets", path="/tickets")
my_tickets = ApiService(name="my_tickets", path="/tickets/me")
ticket_use = ApiService(name="ticket_use", path="/tickets/{ticketId}/use")
ticket = ApiService(
    name="ticket",
    path="/tickets/{ticketId}",
    factory=owned_resource(
        "ticketId", lambda request, ticket_id: request.tickets.owner_of(ticket_id), (VIEW_TICKET, CANCEL_TICKET)
    ),
)
user_tickets = ApiService(name="user_tickets", path="/users/{userId}/tickets")
session_seats = ApiService(name="session_seats", path="/movie-sessions/{sessionId}/seats")

SERVICES = (my_tickets, tickets, ticket_use, ticket, user_tickets, session_seats)


def ticket_list_reply(description):
    return reply(TicketList(), description, ListHeaders())



def ticket_page(request, user_id=None, session_id=None):
    query = request.validated["querystring"]
    page = Page.from_query(query, DEFAULT_PER_PAGE)
    found, total = request.tickets.page(page, query["filterByUse"], user_id=user_id, session_id=session_id)
    set_list_headers(request, page, total)
    return [ticket_body(t) for t in found]


@tickets.post(
    schema=BuyTicketRequest(),
    response_schemas=responses(
        {"201": reply(TicketResponse(), "Bought; Location is the ticket's URL", LocationHeaders())},
        why={
            "400": "Invalid body (see `errors`), `Cannot buy a ticket for a past session`, "
            "`Seat <label> does not exist in this session`, or `This session has no seat plan`",
            "403": "`You can only buy tickets for yourself` (a `userId` that is not the caller's), or "
            "`You must be at least <n> years old to watch this movie`",
            "404": "`Movie session not found`",
            "409": "`Movie session is cancelled`, `Ticket already purchased for this session`, "
            "`Seat <label> is already taken`, or `Movie session is sold out`",
        },
        raises=[ScreeningAlreadyStarted, SeatNotInPlan, NoSeatPlan, NotYourTicket, TooYoung, ScreeningNotFound, UserNotFound, TicketAlreadyPurchased, SeatAlreadyTaken, SoldOut, SeatsChangedMeanwhile, ScreeningCancelled],
    ),
)
def buy_ticket(request):
    """Buy a ticket for a movie session, optionally a chosen seat

    The ticket is the caller's: `userId`, when given, must be the caller's own id (managers
    included), and there is one ticket per user and session. Rules, checked in this order: the seat label is
    well formed (400); the session exists (404); it has not started yet (`date` in the future,
    else 400); the buyer is at least the movie's `ageRestriction` years old (403); the seat is in
    the session's seat plan (400 `Seat <label> does not exist in this session`), and a seat is
    asked for only where the session has a plan (400 `This session has no seat plan`); then 409
    `Movie session is cancelled`, 409 `Ticket already purchased for this session`, 409 `Seat <label> is already taken`, 409
    `Movie session is sold out`.

    Without `seat`, a session with a seat plan gives the free seat with the lowest row, then the
    lowest number. A session without a seat plan (its room had no Room when the session was
    created) sells without a limit, and its tickets' `seat` is null. Never more tickets than
    seats, never one seat twice, also under concurrent purchases in several processes.
    """
    body = request.validated["body"]
    bought = request.tickets.buy(
        request.identity.user_id, body["sessionId"], body.get("userId"), body.get("seat"), deferred_login_check(request)
    )
    trace(request, "ticket bought", ticket=bought.id)
    return created(request, ticket_body(bought), "/tickets/%s" % bought.id)


@tickets.get(
    schema=ListTicketsRequest(),
    permission=MANAGE,
    response_schemas=responses({"200": ticket_list_reply("Tickets, newest purchase first")}),
)
def list_tickets(request):
    """List every ticket

    Newest purchase first, 100 per page by default, with `X-Total-Count` and `Link`.
    Filters: `filterByUse` (`all`, `used`, `unused`), `userId`, `sessionId` (an id that names
    nothing gives an empty list).
    """
    query = request.validated["querystring"]
    return ticket_page(request, user_id=query.get("userId"), session_id=query.get("sessionId"))


@my_tickets.get(
    schema=MyTicketsRequest(),
    response_schemas=responses(
        {"200": ticket_list_reply("The caller's tickets, newest first; filterByUse=used is the watch history")}
    ),
)
def list_my_tickets(request):
    """List my tickets (the watch history with filterByUse=used)

    The caller's own tickets, newest purchase first, 100 per page by default, with
    `X-Total-Count` and `Link`. `filterByUse=used` lists the movies the caller has seen.
    """
    return ticket_page(request, user_id=request.identity.user_id)


@ticket_use.post(
    schema=TicketRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"200": reply(TicketResponse(), "Checked: `isUsed` is true and `usedAt` set")},
        why={"404": "`Ticket not found`", "409": "`Ticket has already been used`, or `Ticket is cancelled` (its session was cancelled)"},
        raises=[TicketNotFound, TicketAlreadyUsed, TicketCancelled],
    ),
)
def use_ticket(request):
    """Check a ticket at the door

    One-shot: the first use answers 200 and marks the ticket used; any later one, concurrent
    ones included, answers 409. Accepted at any time, before or after the session starts, but
    not for a ticket of a cancelled session (409 `Ticket is cancelled`).
    """
    used = request.tickets.use(request.validated["path"]["ticketId"])
    trace(request, "ticket used", ticket=used.id)
    return ticket_body(used)


@ticket.get(
    schema=TicketRequest(),
    permission=VIEW_TICKET,
    response_schemas=responses(
        {"200": reply(TicketResponse(), "The ticket, as in the lists")},
        why={"403": "Another user's ticket (customers)", "404": "`Ticket not found`"},
        raises=[TicketNotFound],
    ),
)
def get_ticket(request):
    """Get a ticket

    The same Ticket object as in the lists (with `cancelledAt` set when its session was
    cancelled): the `Location` of a purchase names this URL. Managers read any ticket, a
    customer their own; checks in this order: 400 malformed id, 404 unknown ticket, 403
    another user's ticket.
    """
    return ticket_body(request.tickets.get(request.validated["path"]["ticketId"]))


@ticket.delete(
    schema=TicketRequest(),
    permission=CANCEL_TICKET,
    response_schemas=responses(
        {"204": NoContent(description="Deleted; its seat is free for sale at once")},
        why={
            "400": "`Cannot cancel a ticket for a past session` (a customer's own ticket whose session has started)",
            "403": "Another user's ticket (customers)",
            "404": "`Ticket not found`",
            "409": "`Ticket has already been used` (a customer's own used ticket)",
        },
        raises=[CancelAfterStart, TicketNotFound, TicketAlreadyUsed],
    ),
)
def delete_ticket(request):
    """Cancel (delete) a ticket

    Managers delete any ticket, used ones and past sessions' included. A customer cancels their
    own ticket while it is unused and its session has not started; checks in this order: 404
    unknown ticket, 403 another user's ticket, 400 the session has started, 409 the ticket was
    used. The seat is free for sale at once, and the buyer may buy a ticket for that session
    again.
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
    response_schemas=responses(
        {"200": reply(SeatMap(), "The seat map, as sold right now")},
        why={"404": "`Movie session not found`"},
        raises=[ScreeningNotFound],
    ),
)
def get_session_seats(request):
    """Read the seat map of a movie session

    `capacity`, `sold` (tickets sold), `available`, and every seat of the session's seat plan
    by row, then number, with `taken`. Read from the database on every request, never cached:
    exact after every purchase and cancellation, in every process. A session without a seat
    plan has `capacity` and `available` null and no seats; `sold` still counts its tickets.
    """
    seat_map = request.tickets.seat_map(request.validated["path"]["sessionId"])
    return seat_map_body(seat_map)


@user_tickets.get(
    schema=GetUserTicketsRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"200": ticket_list_reply("The user's tickets, newest first")}, why={"404": "`User not found`"},
        raises=[UserNotFound],
    ),
)
def get_user_tickets(request):
    """List a user's tickets

    Newest purchase first, 100 per page by default, with `X-Total-Count` and `Link`;
    `filterByUse` (`all`, `used`, `unused`) is read from the query string.
    """
    user_id = request.validated["path"]["userId"]
    request.tickets.require_user(user_id)  # 404 for an unknown user
    return ticket_page(request, user_id=user_id)
