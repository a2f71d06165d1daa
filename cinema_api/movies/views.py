"""Movies and movie sessions: /v1/movies..., /v1/movie-sessions..."""

from cinema_api.core.api import ApiService, CacheHeaders, LocationHeaders, NoContent, created, no_content, reply, responses
from cinema_api.core.pagination import Page
from cinema_api.core.trace import trace
from cinema_api.core.acl import MANAGE
from cinema_api.movies import schemas
from cinema_api.movies.errors import (
    CancelStartedScreening,
    ChangeStartedScreening,
    MovieAlreadyExists,
    MovieHasTickets,
    MovieNotFound,
    RoomAlreadyBooked,
    RoomBookedMeanwhile,
    ScreeningAlreadyCancelled,
    ScreeningCancelled,
    ScreeningHasLiveTickets,
    ScreeningHasTickets,
    ScreeningNotFound,
    ScreeningNotOfMovie,
    ScreeningRoomNotFound,
)
from cinema_api.movies.schemas import DEFAULT_PER_PAGE, movie_body, session_body

SESSIONS_TAG = ["movie-sessions"]

# Bulk routes first: /movies/bulk must not be read as /movies/{movieId}.
movies_bulk = ApiService(name="movies_bulk", path="/movies/bulk")
movies = ApiService(name="movies", path="/movies")
movie = ApiService(name="movie", path="/movies/{movieId}")
movie_sessions_bulk = ApiService(name="movie_sessions_bulk", path="/movies/{movieId}/sessions/bulk", tags=SESSIONS_TAG)
movie_sessions = ApiService(name="movie_sessions", path="/movies/{movieId}/sessions", tags=SESSIONS_TAG)
movie_session = ApiService(name="movie_session", path="/movies/{movieId}/sessions/{sessionId}", tags=SESSIONS_TAG)
all_sessions_bulk = ApiService(name="all_sessions_bulk", path="/movie-sessions/bulk")
all_sessions = ApiService(name="all_sessions", path="/movie-sessions")
session_by_id = ApiService(name="session_by_id", path="/movie-sessions/{sessionId}")
session_cancel = ApiService(name="session_cancel", path="/movie-sessions/{sessionId}/cancel")

#: The reads served from the caches, and their regions.
CACHED = ((movies, "movies"), (movie, "movies"), (movie_sessions, "sessions"), (movie_session, "sessions"), (all_sessions, "sessions"))

SERVICES = (
    movies_bulk,
    movies,
    movie,
    movie_sessions_bulk,
    movie_sessions,
    movie_session,
    all_sessions_bulk,
    all_sessions,
    session_by_id,
    session_cancel,
)


def cached_reply(body, description):
    """The 200 of a cached read: it carries the cache headers."""
    return reply(body, description, CacheHeaders())


MOVIE_409 = "`Movie already exists`: another movie has this exact title"
SESSION_ROOM_409 = "`Room <n> is already booked for <YYYY-MM-DD> <timeslot>`"
ROOM_404 = "`Room <n> not found` (only with `ROOMS_REQUIRED`: a room number that has no Room)"


# ---------------------------------------------------------------- movies


@movies.get(
    schema=schemas.ListMoviesRequest(),
    response_schemas=responses({"200": cached_reply(schemas.MoviePage(), "One page of movies")}, cached=True),
)
def list_movies(request):
    """List movies, one page at a time

    25 per page by default, with `meta` (`currentPage`, `totalPages`, `totalItems`, `perPage`).
    Order: `sort` = `title` (by code point), `ageRestriction` or `createdAt` (the default), in
    `order` `asc` (default) or `desc`, then by `id`. Filters: `title`, a case-insensitive
    substring (`%` and `_` match themselves); `ageRestriction`, movies with at least that
    restriction.
    """
    query = request.validated["querystring"]
    page = Page.from_query(query, DEFAULT_PER_PAGE)
    found, total = request.movies.page(
        page, query["sort"], query["order"], title=query.get("title"), age_restriction=query.get("ageRestriction")
    )
    return {"movies": [movie_body(m) for m in found], "meta": page.meta(total)}


@movies.post(
    schema=schemas.CreateMovieRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"201": reply(schemas.MovieResponse(), "Created; Location is the movie's URL", LocationHeaders())},
        why={"409": MOVIE_409},
        raises=[MovieAlreadyExists],
    ),
)
def create_movie(request):
    """Add a movie

    `title`: 1 to 200 characters after trimming, stored NFC-normalised, unique by exact
    match (409). `ageRestriction`: the minimum age of a ticket buyer, 0 to 21.
    """
    body = request.validated["body"]
    created_movie = request.movies.create(body["title"], body["ageRestriction"])
    trace(request, "movie created", movie=created_movie.id)
    return created(request, movie_body(created_movie), "/movies/%s" % created_movie.id)


@movies_bulk.post(
    schema=schemas.CreateMoviesRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"201": reply(schemas.MovieList(), "Created, in request order")},
        why={"409": '`Movie with title "<title>" already exists`: in the database or twice in the batch'},
        raises=[MovieAlreadyExists],
    ),
)
def create_movies(request):
    """Add up to 1,000 movies at once

    All or nothing: one invalid item (400, naming it as `movies.<index>.<field>`) or one
    duplicate title, in the batch or in the database (409), adds none. The rules of each
    movie are those of a single create.
    """
    created_movies = request.movies.create_many(request.validated["body"]["movies"])
    trace(request, "movies created", count=len(created_movies))
    return created(request, [movie_body(m) for m in created_movies])


@movies_bulk.delete(
    schema=schemas.DeleteMoviesRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"204": NoContent(description="Deleted with their sessions")},
        why={
            "404": "`Movie with ID <id> not found`: the first unknown id, in request order",
            "409": "`Movie with ID <id> has sessions with tickets and cannot be deleted`",
        },
        raises=[MovieNotFound, MovieHasTickets],
    ),
)
def delete_movies(request):
    """Delete up to 1,000 movies at once

    All or nothing: deletes the movies and their sessions, or nothing when one id names no
    movie (404) or a movie has sold tickets (409). A repeated id counts once.
    """
    movie_ids = request.validated["body"]["movieIds"]
    request.movies.delete_many(movie_ids)
    trace(request, "movies deleted", count=len(set(movie_ids)))
    return no_content()


@movie.get(
    schema=schemas.MovieRequest(),
    response_schemas=responses(
        {"200": cached_reply(schemas.MovieWithSessions(), "The movie with every session")},
        why={"404": "`Movie not found`"},
        cached=True,
        raises=[MovieNotFound],
    ),
)
def get_movie(request):
    """Get a movie with its sessions

    The movie and every session of it, past ones included, in the default session order
    (`date`, `timeslot`, `roomNumber`).
    """
    movie_id = request.validated["path"]["movieId"]
    found = request.movies.get(movie_id)
    body = movie_body(found)
    body["sessions"] = [session_body(s) for s in request.screenings.of_movie(movie_id)]
    return body


@movie.patch(
    schema=schemas.UpdateMovieRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"200": reply(schemas.MovieResponse(), "Updated")}, why={"404": "`Movie not found`", "409": MOVIE_409},
        raises=[MovieNotFound, MovieAlreadyExists],
    ),
)
def update_movie(request):
    """Change a movie's title or age restriction

    Only the fields sent change: `{}` changes nothing and answers 200; `null` for a field is
    a 400. The title rules are those of a create; renaming a movie to its own title is not a
    conflict.
    """
    updated = request.movies.update(request.validated["path"]["movieId"], request.validated["body"])
    trace(request, "movie updated", movie=updated.id)
    return movie_body(updated)


@movie.delete(
    schema=schemas.MovieRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"204": NoContent(description="Deleted with its sessions")},
        why={"404": "`Movie not found`", "409": "`Movie has sessions with tickets and cannot be deleted`"},
        raises=[MovieNotFound, MovieHasTickets],
    ),
)
def delete_movie(request):
    """Delete a movie with its sessions

    Deletes the movie and every session of it, unless one of them has tickets (409, and
    nothing is deleted).
    """
    movie_id = request.validated["path"]["movieId"]
    request.movies.delete_many([movie_id], bulk=False)
    trace(request, "movie deleted", movie=movie_id)
    return no_content()


# ---------------------------------------------------------------- sessions of a movie


@movie_sessions.get(
    schema=schemas.ListMovieSessionsRequest(),
    response_schemas=responses(
        {"200": cached_reply(schemas.MovieSessionPage(), "One page of the movie's sessions")},
        why={"404": "`Movie not found`"},
        cached=True,
        raises=[MovieNotFound],
    ),
)
def list_sessions_of_movie(request):
    """List a movie's sessions, one page at a time

    25 per page by default, with `meta`. Past sessions are listed too. Order: `sort` = `date`,
    `timeslot` or `roomNumber` (default: all three, in that order), in `order` `asc` or
    `desc`, then by `id`. Filters: `date` (a date or date-time: the sessions of that UTC day),
    `timeslot`, `roomNumber`, `cancelled` (`true`: only cancelled screenings; `false`: only
    those that are on).
    """
    movie_id = request.validated["path"]["movieId"]
    request.movies.get(movie_id)  # 404 for an unknown movie
    return sessions_page(request, movie_id)


@movie_sessions.post(
    schema=schemas.CreateMovieSessionRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"201": reply(schemas.MovieSessionResponse(), "Created; Location is the session's URL", LocationHeaders())},
        why={
            "400": "Invalid body (see `errors`), e.g. `date must be in the future`",
            "404": "`Movie not found`, or " + ROOM_404,
            "409": SESSION_ROOM_409,
        },
        raises=[MovieNotFound, RoomAlreadyBooked, ScreeningRoomNotFound],
    ),
)
def create_movie_session(request):
    """Schedule a session of a movie

    `date` is the start instant and must be in the future. `timeslot` is one of the seven
    two-hour slots from `10:00-12:00` to `22:00-00:00`; it is not checked against `date`. A
    room (`roomNumber`, 1 to 999) holds one session per timeslot and booking day (the UTC day
    of `date`): another one is a 409, unless that one was cancelled. With `ROOMS_REQUIRED` on,
    the room number must have a Room (404 otherwise).
    """
    screening = request.screenings.create(request.validated["path"]["movieId"], request.validated["body"])
    trace(request, "session created", session=screening.id)
    return created(request, session_body(screening), "/movies/%s/sessions/%s" % (screening.movie.id, screening.id))


@movie_sessions_bulk.post(
    schema=schemas.CreateMovieSessionsRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"201": reply(schemas.MovieSessionList(), "Created, in request order")},
        why={"404": "`Movie not found`, or " + ROOM_404, "409": SESSION_ROOM_409 + ": in the database or twice in the batch"},
        raises=[MovieNotFound, RoomAlreadyBooked, ScreeningRoomNotFound],
    ),
)
def create_movie_sessions(request):
    """Schedule up to 1,000 sessions of a movie at once

    All or nothing: one invalid item (400, named `sessions.<index>.<field>`) or one room
    clash, in the batch or with the database (409), schedules none. The rules of each session
    are those of a single create (`createMovieSession`).
    """
    sessions = request.screenings.create_many(request.validated["path"]["movieId"], request.validated["body"]["sessions"])
    trace(request, "sessions created", count=len(sessions))
    return created(request, [session_body(s) for s in sessions])


@movie_session.get(
    schema=schemas.MovieSessionRequest(),
    response_schemas=responses(
        {"200": cached_reply(schemas.MovieSessionResponse(), "The session")},
        why={
            "404": "`Movie not found` or `Movie session not found`",
            "409": "`Movie session does not belong to the movie`",
        },
        cached=True,
        raises=[MovieNotFound, ScreeningNotFound, ScreeningNotOfMovie],
    ),
)
def get_movie_session(request):
    """Get a session of a movie

    Past sessions stay readable. A session of another movie is a 409.
    """
    path = request.validated["path"]
    return session_body(request.screenings.get_of_movie(path["movieId"], path["sessionId"]))


# ---------------------------------------------------------------- all sessions


@all_sessions.get(
    schema=schemas.ListAllMovieSessionsRequest(),
    response_schemas=responses(
        {"200": cached_reply(schemas.MovieSessionPage(), "One page of sessions")}, cached=True
    ),
)
def list_movie_sessions(request):
    """List the sessions of every movie, one page at a time

    25 per page by default, with `meta`. Past sessions are listed too (there is no implicit
    date filter). Order and filters are those of a movie's sessions, plus `movieId` (an id
    that names no movie gives an empty list). Cancelled screenings are listed with their
    `cancelledAt`; `cancelled=true` keeps only them, `cancelled=false` only those that are on.
    """
    return sessions_page(request, request.validated["querystring"].get("movieId"))


@all_sessions_bulk.delete(
    schema=schemas.DeleteMovieSessionsRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"204": NoContent(description="Deleted")},
        why={
            "404": "`Movie session with ID <id> not found`: the first unknown id, in request order",
            "409": "`Movie session with ID <id> has tickets and cannot be deleted`",
        },
        raises=[ScreeningNotFound, ScreeningHasTickets],
    ),
)
def delete_movie_sessions(request):
    """Delete up to 1,000 sessions at once

    All or nothing: deletes every session, or none when one id names no session (404) or a
    session has tickets (409). A repeated id counts once.
    """
    session_ids = request.validated["body"]["sessionIds"]
    request.screenings.delete_many(session_ids)
    trace(request, "sessions deleted", count=len(set(session_ids)))
    return no_content()


@session_by_id.get(
    schema=schemas.SessionRequest(),
    response_schemas=responses(
        {"200": reply(schemas.MovieSessionResponse(), "The session")}, why={"404": "`Movie session not found`"},
        raises=[ScreeningNotFound],
    ),
)
def get_session(request):
    """Get a session

    Any session, past and cancelled ones included (`cancelledAt` says when it was cancelled).
    """
    return session_body(request.screenings.get(request.validated["path"]["sessionId"]))


@session_by_id.patch(
    schema=schemas.UpdateMovieSessionRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"200": reply(schemas.MovieSessionResponse(), "Moved (or unchanged for `{}`)")},
        why={
            "400": "Invalid body (see `errors`), e.g. `date must be in the future`, or `Cannot change a past session`",
            "404": "`Movie session not found`, or " + ROOM_404,
            "409": "`Movie session is cancelled`, `Movie session has tickets` (cancel it instead), or " + SESSION_ROOM_409,
        },
        raises=[ScreeningNotFound, ScreeningRoomNotFound, ChangeStartedScreening, ScreeningCancelled, ScreeningHasLiveTickets,
                RoomAlreadyBooked, RoomBookedMeanwhile],
    ),
)
def update_movie_session(request):
    """Move a session to another date, timeslot or room

    Only the fields sent change: `{}` changes nothing and answers 200; `null` for a field is a
    400. The rules of a create hold (`date` in the future, the seven timeslots, rooms 1 to 999,
    one session per room, timeslot and booking day: 409). Checks in this order: 404, 400 the
    session has started (`Cannot change a past session`), 409 `Movie session is cancelled`, 409
    `Movie session has tickets` (its buyers hold seats for that time and room: cancel it
    instead), 409 room clash. A session keeps its seat plan unless its room changes; then it
    takes the new room's plan, or none when that room number has no Room.
    """
    moved = request.screenings.update(request.validated["path"]["sessionId"], request.validated["body"])
    trace(request, "session updated", session=moved.id)
    return session_body(moved)


@session_cancel.post(
    schema=schemas.SessionRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"200": reply(schemas.MovieSessionResponse(), "Cancelled: `cancelledAt` is set")},
        why={
            "400": "`Cannot cancel a past session` (it has started)",
            "404": "`Movie session not found`",
            "409": "`Movie session is already cancelled`",
        },
        raises=[ScreeningNotFound, CancelStartedScreening, ScreeningAlreadyCancelled],
    ),
)
def cancel_movie_session(request):
    """Cancel a session

    Marks the session and each of its unused tickets cancelled (`cancelledAt`); their buyers see
    it on their tickets (`/v1/tickets/me`, `GET /v1/tickets/{ticketId}`). Afterwards buying is
    409 `Movie session is cancelled`, using one of its tickets is 409 `Ticket is cancelled`, its
    seat map shows no seat available, and its room, timeslot and day are free for a new
    session. Checks in this order: 404, 400 the session has started, 409 already cancelled. A
    cancelled session can be deleted only when it has no tickets, as any session.
    """
    cancelled = request.screenings.cancel(request.validated["path"]["sessionId"])
    trace(request, "session cancelled", session=cancelled.id)
    return session_body(cancelled)


@session_by_id.delete(
    schema=schemas.SessionRequest(),
    permission=MANAGE,
    response_schemas=responses(
        {"204": NoContent(description="Deleted")},
        why={"404": "`Movie session not found`", "409": "`Movie session has tickets and cannot be deleted`"},
        raises=[ScreeningNotFound, ScreeningHasTickets],
    ),
)
def delete_movie_session(request):
    """Delete a session

    Refused (409) while the session has tickets.
    """
    session_id = request.validated["path"]["sessionId"]
    request.screenings.delete_many([session_id], bulk=False)
    trace(request, "session deleted", session=session_id)
    return no_content()


def sessions_page(request, movie_id):
    query = request.validated["querystring"]
    page = Page.from_query(query, DEFAULT_PER_PAGE)
    found, total = request.screenings.page(
        page,
        query.get("sort"),
        query["order"],
        movie_id=movie_id,
        date=query.get("date"),
        timeslot=query.get("timeslot"),
        room_number=query.get("roomNumber"),
        cancelled={"true": True, "false": False}.get(query.get("cancelled")),
    )
    return {"sessions": [session_body(s) for s in found], "meta": page.meta(total)}
