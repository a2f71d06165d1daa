"""Movie and movie session schemas (the design's DTOs) and their response bodies."""

import colander

from cinema_api.core.clock import utcnow
from cinema_api.core.pagination import page_nodes
from cinema_api.core.schemas import (
    ArraySchema,
    Bounds,
    Choice,
    ItemCount,
    LengthBounds,
    ObjectSchema,
    PaginationMeta,
    datetime_node,
    format_datetime,
    integer_node,
    string_node,
    uuid_node,
)
from cinema_api.movies.entities import TIMESLOTS, normalise_title

MAX_BULK = 1000
DEFAULT_PER_PAGE = 25
MOVIE_SORTS = ("title", "ageRestriction", "createdAt")
SESSION_SORTS = ("date", "timeslot", "roomNumber")
ORDERS = ("asc", "desc")


def in_the_future(node, value):
    if value <= utcnow():
        raise colander.Invalid(node, "must be in the future")


def nfc_title(value):
    return normalise_title(value) if isinstance(value, str) else value


def title_node(**kw):
    return string_node(validator=LengthBounds(1, 200), preparer=nfc_title, example="Alien", **kw)


def age_restriction_node(**kw):
    return integer_node(validator=Bounds(0, 21), example=16, **kw)


# ---------------------------------------------------------------- requests


class CreateMovie(ObjectSchema):
    """A movie to add."""

    title = title_node()
    ageRestriction = age_restriction_node()


class UpdateMovie(ObjectSchema):
    """The fields of a movie to change; those left out stay as they are."""

    title = title_node(missing=colander.drop)
    ageRestriction = age_restriction_node(missing=colander.drop)


class MovieItems(ArraySchema):
    movie = CreateMovie()


class CreateMovies(ObjectSchema):
    """Movies to add together, all or none."""

    movies = MovieItems(validator=ItemCount(1, MAX_BULK))


class MovieIds(ArraySchema):
    movieId = uuid_node(example="0b6f1c9e-3d2a-4e8b-9f7c-2a1b3c4d5e6f")


class DeleteMovie(ObjectSchema):
    """Movies to delete together, all or none."""

    movieIds = MovieIds(validator=ItemCount(1, MAX_BULK))


class CreateMovieSession(ObjectSchema):
    """A session (screening) of a movie to schedule."""

    date = datetime_node(validator=in_the_future, example="2030-12-23T20:00:00.000Z", description="the start instant; must be in the future")
    timeslot = string_node(validator=Choice(TIMESLOTS), example="20:00-22:00")
    roomNumber = integer_node(validator=Bounds(1, 999), example=1)


class UpdateMovieSession(ObjectSchema):
    """Where and when to move a screening; the fields left out stay as they are."""

    date = datetime_node(
        validator=in_the_future, missing=colander.drop, example="2030-12-23T20:00:00.000Z", description="the new start instant; must be in the future"
    )
    timeslot = string_node(validator=Choice(TIMESLOTS), missing=colander.drop, example="20:00-22:00")
    roomNumber = integer_node(validator=Bounds(1, 999), missing=colander.drop, example=1, description="a new room brings its seat plan (or none)")


class SessionItems(ArraySchema):
    session = CreateMovieSession()


class CreateMovieSessions(ObjectSchema):
    """Sessions of one movie to schedule together, all or none."""

    sessions = SessionItems(validator=ItemCount(1, MAX_BULK))


class SessionIds(ArraySchema):
    sessionId = uuid_node(example="5b3c4e9a-8f1d-4b2a-9c7e-1d2f3a4b5c6d")


class DeleteMovieSession(ObjectSchema):
    """Sessions to delete together, all or none."""

    sessionIds = SessionIds(validator=ItemCount(1, MAX_BULK))


class MoviePath(ObjectSchema):
    movieId = uuid_node()


class MovieSessionPath(ObjectSchema):
    movieId = uuid_node()
    sessionId = uuid_node()


class SessionPath(ObjectSchema):
    sessionId = uuid_node()


class QueryMovie(ObjectSchema):
    sort = string_node(validator=Choice(MOVIE_SORTS), missing="createdAt")
    order = string_node(validator=Choice(ORDERS), missing="asc")
    title = string_node(missing=colander.drop, validator=LengthBounds(1, 200), description="case-insensitive substring")
    ageRestriction = integer_node(missing=colander.drop, validator=Bounds(0, 21), description="movies with at least this restriction")


class QueryMovieSession(ObjectSchema):
    sort = string_node(validator=Choice(SESSION_SORTS), missing=colander.drop, description="default: date, timeslot, roomNumber")
    order = string_node(validator=Choice(ORDERS), missing="asc")
    date = datetime_node(missing=colander.drop, description="a date or date-time: sessions on that UTC day")
    timeslot = string_node(validator=Choice(TIMESLOTS), missing=colander.drop)
    roomNumber = integer_node(validator=Bounds(1, 999), missing=colander.drop)


    cancelled = string_node(
        validator=Choice(("true", "false")), missing=colander.drop, description="true: only cancelled screenings; false: only those that are on"
    )


class QueryAllMovieSessions(QueryMovieSession):
    movieId = uuid_node(missing=colander.drop)


def with_pages(query):
    for node in page_nodes(DEFAULT_PER_PAGE):
        query.add(node)
    return query


class ListMoviesRequest(colander.MappingSchema):
    querystring = with_pages(QueryMovie())


class CreateMovieRequest(colander.MappingSchema):
    body = CreateMovie()


class CreateMoviesRequest(colander.MappingSchema):
    body = CreateMovies()


class DeleteMoviesRequest(colander.MappingSchema):
    body = DeleteMovie()


class MovieRequest(colander.MappingSchema):
    path = MoviePath()


class UpdateMovieRequest(colander.MappingSchema):
    path = MoviePath()
    body = UpdateMovie()


class ListMovieSessionsRequest(colander.MappingSchema):
    path = MoviePath()
    querystring = with_pages(QueryMovieSession())


class ListAllMovieSessionsRequest(colander.MappingSchema):
    querystring = with_pages(QueryAllMovieSessions())


class CreateMovieSessionRequest(colander.MappingSchema):
    path = MoviePath()
    body = CreateMovieSession()


class CreateMovieSessionsRequest(colander.MappingSchema):
    path = MoviePath()
    body = CreateMovieSessions()


class MovieSessionRequest(colander.MappingSchema):
    path = MovieSessionPath()


class SessionRequest(colander.MappingSchema):
    path = SessionPath()


class UpdateMovieSessionRequest(colander.MappingSchema):
    path = SessionPath()
    body = UpdateMovieSession()


class DeleteMovieSessionsRequest(colander.MappingSchema):
    body = DeleteMovieSession()


# ---------------------------------------------------------------- responses


class MovieSessionResponse(colander.MappingSchema):
    """A session (screening) of a movie."""

    id = uuid_node()
    movieId = uuid_node()
    date = datetime_node()
    timeslot = string_node(validator=Choice(TIMESLOTS))
    roomNumber = integer_node()
    capacity = integer_node(missing=None, description="seats of the session's seat plan; null without one (no limit)")
    cancelledAt = datetime_node(missing=None, description="when the screening was cancelled; null while it is on")
    createdAt = datetime_node()
    updatedAt = datetime_node()


class MovieSessionList(colander.SequenceSchema):
    session = MovieSessionResponse(title="MovieSessionResponse")


class MovieResponse(colander.MappingSchema):
    """A movie."""

    id = uuid_node()
    title = string_node()
    ageRestriction = integer_node()
    createdAt = datetime_node()
    updatedAt = datetime_node()


class MovieWithSessions(MovieResponse):
    """A movie with every session of it."""

    sessions = MovieSessionList()


class MovieList(colander.SequenceSchema):
    movie = MovieResponse(title="MovieResponse")


class MoviePage(colander.MappingSchema):
    """One page of movies."""

    movies = MovieList()
    meta = PaginationMeta(title="PaginationMeta")


class MovieSessionPage(colander.MappingSchema):
    """One page of sessions."""

    sessions = MovieSessionList()
    meta = PaginationMeta(title="PaginationMeta")


def movie_body(movie):
    return {
        "id": str(movie.id),
        "title": movie.title,
        "ageRestriction": movie.age_restriction,
        "createdAt": format_datetime(movie.created_at),
        "updatedAt": format_datetime(movie.updated_at),
    }


def session_body(session):
    return {
        "id": str(session.id),
        "movieId": str(session.movie.id),
        "date": format_datetime(session.date),
        "timeslot": session.timeslot,
        "roomNumber": session.room_number,
        "capacity": session.capacity,
        "cancelledAt": format_datetime(session.cancelled_at) if session.cancelled_at else None,
        "createdAt": format_datetime(session.created_at),
        "updatedAt": format_datetime(session.updated_at),
    }
