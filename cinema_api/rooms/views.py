"""/v1/rooms: the rooms of the cinema and their seat plans."""

from cinema_api.core.acl import MANAGE
from cinema_api.core.api import ApiService, LocationHeaders, NoContent, created, no_content, reply, responses
from cinema_api.core.trace import trace
from cinema_api.rooms.errors import RoomNotFound
from cinema_api.rooms.schemas import PutRoomRequest, Room, RoomList, RoomRequest, room_body

rooms = ApiService(name="rooms", path="/rooms")
room = ApiService(name="room", path="/rooms/{roomNumber}")

SERVICES = (rooms, room)


@rooms.get(response_schemas=responses({"200": reply(RoomList(), "Every room, by number")}))
def list_rooms(request):
    """List the rooms with their seat plans

    Every room, ordered by number (at most 999: not paginated). A room number without a Room is
    still a valid `roomNumber` for sessions, which then have no seat plan.
    """
    return [room_body(r) for r in request.rooms.all()]


@room.get(
    schema=RoomRequest(),
    response_schemas=responses({"200": reply(Room(), "The room")}, why={"404": "`Room not found`"}, raises=[RoomNotFound]),
)
def get_room(request):
    """Read one room

    `roomNumber` is an integer from 1 to 999; 404 when that room has not been defined.
    """
    return room_body(request.rooms.get(request.validated["path"]["roomNumber"]))


@room.put(
    schema=PutRoomRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"201": reply(Room(), "Created; Location is the room's URL", LocationHeaders()), "200": reply(Room(), "Replaced")}
    ),
)
def put_room(request):
    """Create or replace a room

    `rows` 1..26 (lettered A..Z), `seatsPerRow` 1..50 (numbered from 1), `name` 0..100
    characters (default `Room <number>`: a PUT replaces the whole room); `capacity` is rows x
    seatsPerRow. 201 with `Location` when the room is new, 200 when it replaced one, also under
    concurrent PUTs. A session copies its room's seat plan when it is created: changing a room
    changes only the sessions created afterwards.
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
    response_schemas=responses({"204": NoContent(description="Deleted")}, why={"404": "`Room not found`"}, raises=[RoomNotFound]),
)
def delete_room(request):
    """Delete a room

    Sessions already created in it keep their seat plan and tickets; sessions created in that
    room number afterwards have no seat plan.
    """
    number = request.validated["path"]["roomNumber"]
    request.rooms.delete(number)
    trace(request, "room deleted", room=number)
    return no_content()
