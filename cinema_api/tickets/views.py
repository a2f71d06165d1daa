"""/v1/tickets: buy, my tickets (the watch history), all tickets, use at the door, cancel."""

from cinema_api.core.api import ApiService, LocationHeaders, NoContent, created, no_content, reply, responses
from cinema_api.core.pagination import ListHeaders, Page, set_list_headers
from cinema_api.core.trace import trace
from cinema_api.core.acl import MANAGE
from cinema_api.tickets.schemas import (
    DEFAULT_PER_PAGE,
    BuyTicketRequest,
    GetUserTicketsRequest,
    ListTicketsRequest,
    MyTicketsRequest,
    TicketList,
    TicketRequest,
    TicketResponse,
    ticket_body,
)

tickets = ApiService(name="tickets", path="/tickets")
my_tickets = ApiService(name="my_tickets", path="/tickets/me")
ticket_use = ApiService(name="ticket_use", path="/tickets/{ticketId}/use")
ticket = ApiService(name="ticket", path="/tickets/{ticketId}")
user_tickets = ApiService(name="user_tickets", path="/users/{userId}/tickets")

SERVICES = (my_tickets, tickets, ticket_use, ticket, user_tickets)


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
            "400": "Invalid body (see `errors`), or `Cannot buy a ticket for a past session`",
            "403": "`You can only buy tickets for yourself` (a `userId` that is not the caller's), or "
            "`You must be at least <n> years old to watch this movie`",
            "404": "`Movie session not found`",
            "409": "`Ticket already purchased for this session`",
        },
    ),
)
def buy_ticket(request):
    """Buy a ticket for a movie session

    The ticket is the caller's: `userId`, when given, must be the caller's own id (managers
    included). Rules, checked in this order: the session exists (404); it has not started yet
    (`date` in the future, else 400); the buyer is at least the movie's `ageRestriction` years
    old (403); one ticket per user and session (409).
    """
    body = request.validated["body"]
    bought = request.tickets.buy(request.identity.user_id, body["sessionId"], body.get("userId"))
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
        why={"404": "`Ticket not found`", "409": "`Ticket has already been used`"},
    ),
)
def use_ticket(request):
    """Check a ticket at the door

    One-shot: the first use answers 200 and marks the ticket used; any later one, concurrent
    ones included, answers 409. Accepted at any time, before or after the session starts.
    """
    used = request.tickets.use(request.validated["path"]["ticketId"])
    trace(request, "ticket used", ticket=used.id)
    return ticket_body(used)


@ticket.delete(
    schema=TicketRequest(),
    permission=MANAGE,
    response_schemas=responses({"204": NoContent(description="Deleted")}, why={"404": "`Ticket not found`"}),
)
def delete_ticket(request):
    """Delete a ticket

    Deletes any ticket, used ones included; the buyer may then buy a ticket for that session again.
    """
    ticket_id = request.validated["path"]["ticketId"]
    request.tickets.delete(ticket_id)
    trace(request, "ticket deleted", ticket=ticket_id)
    return no_content()


@user_tickets.get(
    schema=GetUserTicketsRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"200": ticket_list_reply("The user's tickets, newest first")}, why={"404": "`User not found`"}
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
