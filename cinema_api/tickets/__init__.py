"""Tickets and watch history."""

from cinema_api.movies.errors import ScreeningNotFound
from cinema_api.tickets.entities import define_entities
from cinema_api.tickets.errors import SeatAlreadyTaken, SeatNotInPlan, TicketAlreadyPurchased
from cinema_api.tickets.services import Tickets


def includeme(config):
    from cinema_api.tickets import views

    config.add_entities(define_entities)
    config.add_constraint_error("uq_tickets_user_session", "tickets", TicketAlreadyPurchased)
    # sales go through a conditional insert (Ticket.sell_seat): these answer any other writer
    config.add_constraint_error("uq_tickets_session_seat", "tickets", SeatAlreadyTaken)
    config.add_constraint_error("ck_tickets_seat_in_plan", "tickets", SeatNotInPlan)
    # a purchase racing its session's deletion
    config.add_constraint_error("tickets_session_id_fkey", "tickets", ScreeningNotFound)
    config.add_request_service(lambda request: Tickets(request.db, request.registry["cinema.metrics"]), "tickets")
    for service in views.SERVICES:
        config.add_cornice_service(service)
    # a purchase's statement checks the buyer's login session (PostgreSQL): one round trip
    config.add_login_checking_view(views.tickets.name, "POST")
