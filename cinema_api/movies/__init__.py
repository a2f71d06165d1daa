"""Movies and movie sessions."""

from cinema_api.movies.entities import define_entities
from cinema_api.movies.errors import MovieAlreadyExists, MovieNotFound, RoomBookedMeanwhile, ScreeningHasTickets
from cinema_api.movies.schemas import QueryMovie
from cinema_api.movies.services import Movies, Screenings, TitleTrigrams


def includeme(config):
    from cinema_api.movies import views

    config.add_entities(define_entities)
    config.add_constraint_error("uq_movies_title", "movies", MovieAlreadyExists)
    config.add_constraint_error("uq_movie_sessions_room_slot_day", "movie_sessions", RoomBookedMeanwhile)
    # a ticket sold while its session (or its movie, which cascades to it) was being deleted
    config.add_constraint_error("tickets_session_id_fkey", "movie_sessions", ScreeningHasTickets)
    # a session created while its movie was being deleted
    config.add_constraint_error("movie_sessions_movie_id_fkey", "movie_sessions", MovieNotFound)
    config.add_request_service(lambda request: Movies(request.db), "movies")
    rooms_required = config.registry["cinema.settings"].rooms_required
    config.add_request_service(lambda request: Screenings(request.db, request.movies, rooms_required), "screenings")
    for service in views.SERVICES:
        config.add_cornice_service(service)
    # every title search that finds nothing shares the copy of one answer
    alike = {views.movies: TitleTrigrams(QueryMovie()["title"])}
    for service, region in views.CACHED:
        config.add_cached_route(service, region, alike.get(service))
