"""Movies and movie sessions."""

from cinema_api.movies.entities import define_entities


def includeme(config):
    config.add_entities(define_entities)
