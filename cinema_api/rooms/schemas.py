"""Room schemas: the PUT body, the path, and the Room object."""

import colander

from cinema_api.core.schemas import Bounds, LengthBounds, ObjectSchema, datetime_node, format_datetime, integer_node, string_node
from cinema_api.rooms.entities import MAX_NAME_LENGTH, MAX_ROOM_NUMBER, MAX_ROWS, MAX_SEATS_PER_ROW, MIN_ROOM_NUMBER


def room_number_node(**kw):
    return integer_node(validator=Bounds(MIN_ROOM_NUMBER, MAX_ROOM_NUMBER), **kw)


def rows_node(**kw):
    return integer_node(validator=Bounds(1, MAX_ROWS), example=10, description="rows, lettered A..Z", **kw)


def seats_per_row_node(**kw):
    return integer_node(validator=Bounds(1, MAX_SEATS_PER_ROW), example=12, description="seats in each row, numbered from 1", **kw)


# ---------------------------------------------------------------- requests


class PutRoom(ObjectSchema):
    """A room's name and seat plan, as a PUT creates or replaces it."""

    name = string_node(
        missing=colander.drop,
        validator=LengthBounds(0, MAX_NAME_LENGTH),
        example="Main hall",
        description='default "Room <number>"',
    )
    rows = rows_node()
    seatsPerRow = seats_per_row_node()


class RoomPath(ObjectSchema):
    roomNumber = room_number_node()


class RoomRequest(colander.MappingSchema):
    path = RoomPath()


class PutRoomRequest(colander.MappingSchema):
    path = RoomPath()
    body = PutRoom()


# ---------------------------------------------------------------- responses


class Room(colander.MappingSchema):
    """A room of the cinema and its seat plan."""

    number = integer_node()
    name = string_node()
    rows = integer_node()
    seatsPerRow = integer_node()
    capacity = integer_node(description="rows x seatsPerRow")
    createdAt = datetime_node()
    updatedAt = datetime_node()


class RoomList(colander.SequenceSchema):
    room = Room(title="Room")


def room_body(room):
    plan = room.plan
    return {
        "number": room.number,
        "name": room.name,
        "rows": plan.rows,
        "seatsPerRow": plan.seats_per_row,
        "capacity": plan.capacity,
        "createdAt": format_datetime(room.created_at),
        "updatedAt": format_datetime(room.updated_at),
    }
