"""Errors of the tickets domain."""

from cinema_api.core.errors import BadRequest, Conflict, Forbidden, NotFound


class TicketNotFound(NotFound):
    code = "TICKET_NOT_FOUND"

    def __init__(self):
        super().__init__("Ticket not found")


class TicketAlreadyPurchased(Conflict):
    code = "ALREADY_PURCHASED"

    def __init__(self):
        super().__init__("Ticket already purchased for this session")


class TicketAlreadyUsed(Conflict):
    code = "TICKET_USED"

    def __init__(self):
        super().__init__("Ticket has already been used")


class TicketCancelled(Conflict):
    """The ticket's screening was cancelled: it can no longer be used."""

    code = "TICKET_CANCELLED"

    def __init__(self):
        super().__init__("Ticket is cancelled")


class ScreeningAlreadyStarted(BadRequest):
    code = "SESSION_STARTED"

    def __init__(self):
        super().__init__("Cannot buy a ticket for a past session")


class TooYoung(Forbidden):
    code = "AGE_RESTRICTED"

    def __init__(self, age_restriction):
        super().__init__("You must be at least %d years old to watch this movie" % age_restriction)


class NotYourTicket(Forbidden):
    code = "NOT_OWNER"

    def __init__(self):
        super().__init__("You can only buy tickets for yourself")


class UserNotFound(NotFound):
    """A user named by a ticket request does not exist (the buyer, deleted meanwhile, included)."""

    code = "USER_NOT_FOUND"

    def __init__(self):
        super().__init__("User not found")


class CancelAfterStart(BadRequest):
    code = "SESSION_STARTED"

    def __init__(self):
        super().__init__("Cannot cancel a ticket for a past session")


class NoSeatPlan(BadRequest):
    code = "NO_SEAT_PLAN"

    def __init__(self):
        super().__init__("This session has no seat plan")


class SeatNotInPlan(BadRequest):
    code = "SEAT_NOT_IN_PLAN"

    def __init__(self, seat=None):
        super().__init__("Seat %s does not exist in this session" % seat if seat else "The seat does not exist in this session")


class SeatAlreadyTaken(Conflict):
    code = "SEAT_TAKEN"

    def __init__(self, seat=None):
        super().__init__("Seat %s is already taken" % seat if seat else "The seat is already taken")


class SoldOut(Conflict):
    code = "SOLD_OUT"

    def __init__(self):
        super().__init__("Movie session is sold out")


class SeatsChangedMeanwhile(Conflict):
    """Free seats kept being sold by concurrent purchases while this one looked for one."""

    code = "CONFLICT_RETRY"

    def __init__(self):
        super().__init__("The seats of this session changed while the purchase was being made; retry", {"Retry-After": "1"})
