"""/v1/rooms: the rooms of the cinema and their seat plans."""

from cinema_api.core.acl import MANAGE
from cinema_api.core.api import BEARER, ApiService, NoContent, created, no_content, responses
from cinema_api.core.trace import trace
from cinema_api.rooms.schemas import PutRoomRequest, RoomListReply, RoomReply, RoomRequest, room_body

rooms = ApiService(name="rooms", path="/rooms")
room = ApiService(name="room", path="/rooms/{roomNumber}")

SERVICES = (rooms, room)


@rooms.get(
    tags=["rooms"],
    operation_id="listRooms",
    api_security=BEARER,
    response_schemas=responses({"200": RoomListReply(description="Every room, by number")}, authenticated=True),
)
def list_rooms(request):
    """List the rooms with their seat plans.

    Any authenticated user. Every room, ordered by number (at most 999: not paginated). A room
    number without a Room is still a valid roomNumber for sessions, which then have no seat plan.
    """
    return [room_body(r) for r in request.rooms.all()]


@room.get(
    schema=RoomRequest(),
    tags=["rooms"],
    operation_id="getRoom",
    api_security=BEARER,
    response_schemas=responses({"200": RoomReply(description="The room")}, "400", "404", authenticated=True),
)
def get_room(request):
    """Read one room.

    Any authenticated user. roomNumber is an integer from 1 to 999; 404 when that room has not
    been defined.
    """
    return room_body(request.rooms.get(request.validated["path"]["roomNumber"]))


@room.put(
    schema=PutRoomRequest(),
    permission=MANAGE,
    tags=["rooms"],
    operation_id="putRoom",
    api_security=BEARER,
    response_schemas=responses(
        {"201": RoomReply(description="Created"), "200": RoomReply(description="Replaced")}, authenticated=True, body=True
    ),
)
def put_room(request):
    """Create or replace a room.

    Managers only. rows 1..26 (lettered A..Z), seatsPerRow 1..50 (numbered from 1), name 0..100
    characters (default "Room <number>"); capacity is rows x seatsPerRow. 201 with Location when
    the room is new, 200 when it replaced one. A session copies its room's seat plan when it is
    created: changing a room changes only the sessions created afterwards.
    """
    number = request.validated["path"]["roomNumber"]
    body = request.validated["body"]
    saved, is_new = request.rooms.put(number, body["rows"], body["seatsPerRow"], body.get("name"))
    trace(request, "room created" if is_new else "room replaced", room=number)
    if is_new:
        return created(request, room_body(saved), "/rooms/%d" % number)
    return room_body(saved)


@room.delete(
    schema=RoomRequest(),
    permission=MANAGE,
    tags=["rooms"],
    operation_id="deleteRoom",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted")}, "400", "404", authenticated=True),
)
def delete_room(request):
    """Delete a room.

    Managers only. 404 when there is no such room. Sessions already created in it keep their
    seat plan and tickets; sessions created in that room number afterwards have no seat plan.
    """
    number = request.validated["path"]["roomNumber"]
    request.rooms.delete(number)
    trace(request, "room deleted", room=number)
    return no_content()
