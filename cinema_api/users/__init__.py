"""Users: accounts and their tickets."""

from cinema_api.users.entities import define_entities


def includeme(config):
    config.add_entities(define_entities)
