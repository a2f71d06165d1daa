"""Use cases of user accounts."""

import uuid

from pony.orm import desc, flush

from cinema_api.users.errors import UserNotFound, UsernameTaken


class Users:
    def __init__(self, db, hasher):
        self.db = db
        self.hasher = hasher

    def create(self, username, password, role, age):
        """A new user; 409 when the username is taken (also under concurrent creates)."""
        User = self.db.User
        if User.exists(username=username):
            raise UsernameTaken()
        user = User(username=username, password_hash=self.hasher.hash(password), role=role, age=age)
        flush()  # a name taken meanwhile: the constraint's 409 (cinema_api.infrastructure.db)
        return user

    def get(self, user_id):
        user = self.db.User.get(id=uuid.UUID(user_id))
        if user is None:
            raise UserNotFound()
        return user

    def by_username(self, username):
        """The user named exactly ``username``, or None (an empty name names nobody)."""
        return self.db.User.get(username=username) if username else None

    def page(self, page):
        """``(users, total)``: newest first."""
        query = self.db.User.select().order_by(lambda u: (desc(u.created_at), desc(u.id)))
        return list(query.page(page.number, page.size)), self.db.User.select().count()

    def delete(self, username):
        """Delete a user with their login sessions and tickets; False when there is no such user."""
        user = self.by_username(username)
        if user is None:
            return False
        user.delete()
        return True
