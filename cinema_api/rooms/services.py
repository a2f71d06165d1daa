"""Use cases of rooms: list, read, create or replace, delete."""

from cinema_api.core.clock import utcnow
from cinema_api.rooms.entities import SeatPlan, default_room_name
from cinema_api.rooms.errors import RoomNotFound


class Rooms:
    def __init__(self, db):
        self.db = db

    def all(self):
        """Every room, by number."""
        Room = self.db.Room
        return list(Room.select().order_by(Room.number))

    def get(self, number):
        room = self.db.Room.get(number=number)
        if room is None:
            raise RoomNotFound()
        return room

    def put(self, number, rows, seats_per_row, name=None):
        """Create or replace room ``number``: ``(room, created)``. Sessions already created keep
        the plan they copied; only sessions created from now on take the new one."""
        plan = SeatPlan(rows, seats_per_row)
        created = self.db.Room.put(number, default_room_name(number) if name is None else name, plan, utcnow())
        return self.get(number), created

    def delete(self, number):
        if not self.db.Room.remove(number):
            raise RoomNotFound()
