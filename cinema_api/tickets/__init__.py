"""Tickets and watch history."""

from cinema_api.tickets.entities import define_entities


def includeme(config):
    config.add_entities(define_entities)
