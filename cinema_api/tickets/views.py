"""/v1/tickets: buy, my tickets (the watch history), all tickets, use at the door, cancel."""

from cinema_api.core.api import BEARER, ApiService, NoContent, created, no_content, responses
from cinema_api.core.pagination import Page, set_list_headers
from cinema_api.core.trace import trace
from cinema_api.core.acl import MANAGE
from cinema_api.tickets.schemas import (
    DEFAULT_PER_PAGE,
    BuyTicketRequest,
    GetUserTicketsRequest,
    ListTicketsRequest,
    MyTicketsRequest,
    TicketListReply,
    TicketReply,
    TicketRequest,
    ticket_body,
)

tickets = ApiService(name="tickets", path="/tickets")
my_tickets = ApiService(name="my_tickets", path="/tickets/me")
ticket_use = ApiService(name="ticket_use", path="/tickets/{ticketId}/use")
ticket = ApiService(name="ticket", path="/tickets/{ticketId}")
user_tickets = ApiService(name="user_tickets", path="/users/{userId}/tickets")

SERVICES = (my_tickets, tickets, ticket_use, ticket, user_tickets)



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
    body = request.validated["body"]
    bought = request.tickets.buy(request.identity.user_id, body["sessionId"], body.get("userId"))
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
    permission=MANAGE,
    tags=["tickets"],
    operation_id="deleteTicket",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted")}, "400", "404", authenticated=True),
)
def delete_ticket(request):
    ticket_id = request.validated["path"]["ticketId"]
    request.tickets.delete(ticket_id)
    trace(request, "ticket deleted", ticket=ticket_id)
    return no_content()


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
