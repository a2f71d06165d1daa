"""Authentication: user sessions and refresh tokens."""

from cinema_api.auth.entities import define_entities


def includeme(config):
    config.add_entities(define_entities)
