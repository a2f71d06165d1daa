"""Errors of the users domain."""

from cinema_api.core.errors import Conflict, Forbidden, NotFound


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"

    def __init__(self):
        super().__init__("User not found")


class UsernameTaken(Conflict):
    code = "USERNAME_TAKEN"

    def __init__(self):
        super().__init__("Username already exists")


class ManagerSignupClosed(Forbidden):
    code = "MANAGER_SIGNUP_CLOSED"

    def __init__(self):
        super().__init__("Registering as a manager requires a manager's token")
