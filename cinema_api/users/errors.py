"""Errors of the users domain."""

from cinema_api.core.errors import Conflict, Forbidden, NotFound


class UserNotFound(NotFound):
    def __init__(self):
        super().__init__("User not found")


class UsernameTaken(Conflict):
    def __init__(self):
        super().__init__("Username already exists")


class ManagerSignupClosed(Forbidden):
    def __init__(self):
        super().__init__("Registering as a manager requires a manager's token")
