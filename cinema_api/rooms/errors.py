"""Errors of the rooms domain."""

from cinema_api.core.errors import BadRequest, NotFound


class RoomNotFound(NotFound):
    code = "ROOM_NOT_FOUND"

    def __init__(self):
        super().__init__("Room not found")


class InvalidSeatPlan(BadRequest):
    """A seat plan outside the bounds of docs/API.md section 10 (the schemas refuse it first)."""

    code = "VALIDATION_FAILED"
