"""Errors of the tickets domain."""

from cinema_api.core.errors import BadRequest, Conflict, Forbidden, NotFound


class TicketNotFound(NotFound):
    def __init__(self):
        super().__init__("Ticket not found")


class TicketAlreadyPurchased(Conflict):
    def __init__(self):
        super().__init__("Ticket already purchased for this session")


class TicketAlreadyUsed(Conflict):
    def __init__(self):
        super().__init__("Ticket has already been used")


class TicketCancelled(Conflict):
    """The ticket's screening was cancelled: it can no longer be used."""

    code = "TICKET_CANCELLED"

    def __init__(self):
        super().__init__("Ticket is cancelled")


class ScreeningAlreadyStarted(BadRequest):
    def __init__(self):
        super().__init__("Cannot buy a ticket for a past session")


class TooYoung(Forbidden):
    def __init__(self, age_restriction):
        super().__init__("You must be at least %d years old to watch this movie" % age_restriction)


class NotYourTicket(Forbidden):
    def __init__(self):
        super().__init__("You can only buy tickets for yourself")


class UserNotFound(NotFound):
    """A user named by a ticket request does not exist (the buyer, deleted meanwhile, included)."""

    def __init__(self):
        super().__init__("User not found")


class CancelAfterStart(BadRequest):
    def __init__(self):
        super().__init__("Cannot cancel a ticket for a past session")


class NoSeatPlan(BadRequest):
    def __init__(self):
        super().__init__("This session has no seat plan")


class SeatNotInPlan(BadRequest):
    def __init__(self, seat=None):
        super().__init__("Seat %s does not exist in this session" % seat if seat else "The seat does not exist in this session")


class SeatAlreadyTaken(Conflict):
    def __init__(self, seat=None):
        super().__init__("Seat %s is already taken" % seat if seat else "The seat is already taken")


class SoldOut(Conflict):
    def __init__(self):
        super().__init__("Movie session is sold out")


class SeatsChangedMeanwhile(Conflict):
    """Free seats kept being sold by concurrent purchases while this one looked for one."""

    def __init__(self):
        super().__init__("The seats of this session changed while the purchase was being made; retry", {"Retry-After": "1"})
