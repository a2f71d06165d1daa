"""Rooms and their seat plans."""

from cinema_api.rooms.entities import define_entities
from cinema_api.rooms.services import Rooms


def includeme(config):
    from cinema_api.rooms import views

    config.add_entities(define_entities)
    config.add_request_service(lambda request: Rooms(request.db), "rooms")
    for service in views.SERVICES:
        config.add_cornice_service(service)
