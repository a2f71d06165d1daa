"""Errors of the movies domain."""

from cinema_api.core.errors import BadRequest, Conflict, NotFound


class MovieNotFound(NotFound):
    code = "MOVIE_NOT_FOUND"

    def __init__(self, movie_id=None, bulk=False):
        super().__init__("Movie with ID %s not found" % movie_id if bulk else "Movie not found")


class ScreeningNotFound(NotFound):
    code = "SESSION_NOT_FOUND"

    def __init__(self, session_id=None, bulk=False):
        super().__init__("Movie session with ID %s not found" % session_id if bulk else "Movie session not found")


class MovieAlreadyExists(Conflict):
    code = "MOVIE_EXISTS"

    def __init__(self, title=None, bulk=False):
        super().__init__('Movie with title "%s" already exists' % title if bulk else "Movie already exists")


class RoomAlreadyBooked(Conflict):
    code = "ROOM_BOOKED"

    def __init__(self, room_number, day, timeslot):
        super().__init__("Room %d is already booked for %s %s" % (room_number, day.isoformat(), timeslot))


class RoomBookedMeanwhile(Conflict):
    code = "ROOM_BOOKED"  # by a concurrent request: the same situation once it committed

    def __init__(self):
        super().__init__("A room of this request was booked by another request meanwhile")


class ScreeningNotOfMovie(Conflict):
    code = "SESSION_OF_ANOTHER_MOVIE"

    def __init__(self):
        super().__init__("Movie session does not belong to the movie")


class MovieHasTickets(Conflict):
    code = "HAS_TICKETS"

    def __init__(self, movie_id=None):
        text = "Movie with ID %s has sessions with tickets" % movie_id if movie_id else "Movie has sessions with tickets"
        super().__init__(text + " and cannot be deleted")


class ScreeningHasTickets(Conflict):
    code = "HAS_TICKETS"

    def __init__(self, session_id=None):
        text = "Movie session with ID %s has tickets" % session_id if session_id else "Movie session has tickets"
        super().__init__(text + " and cannot be deleted")


class ScreeningCancelled(Conflict):
    """The screening was cancelled: no ticket is sold for it, and it is no longer changed."""

    code = "SESSION_CANCELLED"

    def __init__(self):
        super().__init__("Movie session is cancelled")


class ScreeningAlreadyCancelled(Conflict):
    code = "SESSION_CANCELLED"

    def __init__(self):
        super().__init__("Movie session is already cancelled")


class CancelStartedScreening(BadRequest):
    code = "SESSION_STARTED"

    def __init__(self):
        super().__init__("Cannot cancel a past session")


class ChangeStartedScreening(BadRequest):
    code = "SESSION_STARTED"

    def __init__(self):
        super().__init__("Cannot change a past session")


class ScreeningHasLiveTickets(Conflict):
    """A screening whose buyers hold seats for its time and room is not moved: it is cancelled."""

    code = "HAS_TICKETS"

    def __init__(self):
        super().__init__("Movie session has tickets")


class ScreeningRoomNotFound(NotFound):
    """With ROOMS_REQUIRED, a screening goes only into a room that has a Room."""

    code = "ROOM_NOT_FOUND"

    def __init__(self, room_number):
        super().__init__("Room %d not found" % room_number)
