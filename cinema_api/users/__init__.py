"""Users: accounts and their tickets."""

from cinema_api.users.entities import define_entities
from cinema_api.users.errors import UsernameTaken
from cinema_api.users.services import Users


def includeme(config):
    from cinema_api.users import views

    config.add_entities(define_entities)
    config.add_constraint_error("uq_users_username", "users", UsernameTaken)
    config.add_request_service(lambda request: Users(request.db, request.password_hasher), "users")
    for service in (views.users, views.user):
        config.add_cornice_service(service)
