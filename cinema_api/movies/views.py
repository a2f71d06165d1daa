"""Movies and movie sessions: /v1/movies..., /v1/movie-sessions..."""

import colander

from cinema_api.core.api import BEARER, ApiService, CacheHeaders, NoContent, created, no_content, responses
from cinema_api.core.pagination import Page
from cinema_api.core.trace import trace
from cinema_api.core.acl import MANAGE
from cinema_api.movies import schemas
from cinema_api.movies.schemas import DEFAULT_PER_PAGE, movie_body, session_body

# Bulk routes first: /movies/bulk must not be read as /movies/{movieId}.
movies_bulk = ApiService(name="movies_bulk", path="/movies/bulk")
movies = ApiService(name="movies", path="/movies")
movie = ApiService(name="movie", path="/movies/{movieId}")
movie_sessions_bulk = ApiService(name="movie_sessions_bulk", path="/movies/{movieId}/sessions/bulk")
movie_sessions = ApiService(name="movie_sessions", path="/movies/{movieId}/sessions")
movie_session = ApiService(name="movie_session", path="/movies/{movieId}/sessions/{sessionId}")
all_sessions_bulk = ApiService(name="all_sessions_bulk", path="/movie-sessions/bulk")
all_sessions = ApiService(name="all_sessions", path="/movie-sessions")
session_by_id = ApiService(name="session_by_id", path="/movie-sessions/{sessionId}")

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
)


def body_response(name, body_schema, **children):
    """A response schema class named ``name`` whose body is ``body_schema``."""
    return type(name, (colander.MappingSchema,), dict(children, body=body_schema))


MovieReply = body_response("MovieReply", schemas.MovieResponse())
MovieListReply = body_response("MovieListReply", schemas.MovieList())
MovieSessionReply = body_response("MovieSessionReply", schemas.MovieSessionResponse())
MovieSessionListReply = body_response("MovieSessionListReply", schemas.MovieSessionList())
# Cached reads: their 200s carry the cache headers.
MovieWithSessionsReply = body_response("MovieWithSessionsReply", schemas.MovieWithSessions(), headers=CacheHeaders())
MoviePageReply = body_response("MoviePageReply", schemas.MoviePage(), headers=CacheHeaders())
CachedSessionReply = body_response("CachedSessionReply", schemas.MovieSessionResponse(), headers=CacheHeaders())
MovieSessionPageReply = body_response("MovieSessionPageReply", schemas.MovieSessionPage(), headers=CacheHeaders())



# ---------------------------------------------------------------- movies


@movies.get(
    schema=schemas.ListMoviesRequest(),
    tags=["movies"],
    operation_id="listMovies",
    api_security=BEARER,
    response_schemas=responses({"200": MoviePageReply(description="One page of movies")}, "400", authenticated=True, cached=True),
)
def list_movies(request):
    query = request.validated["querystring"]
    page = Page.from_query(query, DEFAULT_PER_PAGE)
    found, total = request.movies.page(
        page, query["sort"], query["order"], title=query.get("title"), age_restriction=query.get("ageRestriction")
    )
    return {"movies": [movie_body(m) for m in found], "meta": page.meta(total)}


@movies.post(
    schema=schemas.CreateMovieRequest(),
    permission=MANAGE,
    tags=["movies"],
    operation_id="createMovie",
    api_security=BEARER,
    response_schemas=responses({"201": MovieReply(description="Created")}, "409", authenticated=True, body=True),
)
def create_movie(request):
    body = request.validated["body"]
    created_movie = request.movies.create(body["title"], body["ageRestriction"])
    trace(request, "movie created", movie=created_movie.id)
    return created(request, movie_body(created_movie), "/movies/%s" % created_movie.id)


@movies_bulk.post(
    schema=schemas.CreateMoviesRequest(),
    permission=MANAGE,
    tags=["movies"],
    operation_id="createMovies",
    api_security=BEARER,
    response_schemas=responses({"201": MovieListReply(description="Created, in request order")}, "409", authenticated=True, body=True),
)
def create_movies(request):
    created_movies = request.movies.create_many(request.validated["body"]["movies"])
    trace(request, "movies created", count=len(created_movies))
    return created(request, [movie_body(m) for m in created_movies])


@movies_bulk.delete(
    schema=schemas.DeleteMoviesRequest(),
    permission=MANAGE,
    tags=["movies"],
    operation_id="deleteMovies",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted with their sessions")}, "404", "409", authenticated=True, body=True),
)
def delete_movies(request):
    movie_ids = request.validated["body"]["movieIds"]
    request.movies.delete_many(movie_ids)
    trace(request, "movies deleted", count=len(set(movie_ids)))
    return no_content()


@movie.get(
    schema=schemas.MovieRequest(),
    tags=["movies"],
    operation_id="getMovie",
    api_security=BEARER,
    response_schemas=responses(
        {"200": MovieWithSessionsReply(description="The movie with every session")}, "400", "404", authenticated=True, cached=True
    ),
)
def get_movie(request):
    movie_id = request.validated["path"]["movieId"]
    found = request.movies.get(movie_id)
    body = movie_body(found)
    body["sessions"] = [session_body(s) for s in request.screenings.of_movie(movie_id)]
    return body


@movie.patch(
    schema=schemas.UpdateMovieRequest(),
    permission=MANAGE,
    tags=["movies"],
    operation_id="updateMovie",
    api_security=BEARER,
    response_schemas=responses({"200": MovieReply(description="Updated")}, "404", "409", authenticated=True, body=True),
)
def update_movie(request):
    updated = request.movies.update(request.validated["path"]["movieId"], request.validated["body"])
    trace(request, "movie updated", movie=updated.id)
    return movie_body(updated)


@movie.delete(
    schema=schemas.MovieRequest(),
    permission=MANAGE,
    tags=["movies"],
    operation_id="deleteMovie",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted with its sessions")}, "400", "404", "409", authenticated=True),
)
def delete_movie(request):
    movie_id = request.validated["path"]["movieId"]
    request.movies.delete_many([movie_id], bulk=False)
    trace(request, "movie deleted", movie=movie_id)
    return no_content()


# ---------------------------------------------------------------- sessions of a movie


@movie_sessions.get(
    schema=schemas.ListMovieSessionsRequest(),
    tags=["movie-sessions"],
    operation_id="listSessionsOfMovie",
    api_security=BEARER,
    response_schemas=responses(
        {"200": MovieSessionPageReply(description="One page of the movie's sessions")}, "400", "404", authenticated=True, cached=True
    ),
)
def list_sessions_of_movie(request):
    movie_id = request.validated["path"]["movieId"]
    request.movies.get(movie_id)  # 404 for an unknown movie
    return sessions_page(request, movie_id)


@movie_sessions.post(
    schema=schemas.CreateMovieSessionRequest(),
    permission=MANAGE,
    tags=["movie-sessions"],
    operation_id="createMovieSession",
    api_security=BEARER,
    response_schemas=responses({"201": MovieSessionReply(description="Created")}, "404", "409", authenticated=True, body=True),
)
def create_session(request):
    screening = request.screenings.create(request.validated["path"]["movieId"], request.validated["body"])
    trace(request, "session created", session=screening.id)
    return created(request, session_body(screening), "/movies/%s/sessions/%s" % (screening.movie.id, screening.id))


@movie_sessions_bulk.post(
    schema=schemas.CreateMovieSessionsRequest(),
    permission=MANAGE,
    tags=["movie-sessions"],
    operation_id="createMovieSessions",
    api_security=BEARER,
    response_schemas=responses({"201": MovieSessionListReply(description="Created, in request order")}, "404", "409", authenticated=True, body=True),
)
def create_sessions(request):
    sessions = request.screenings.create_many(request.validated["path"]["movieId"], request.validated["body"]["sessions"])
    trace(request, "sessions created", count=len(sessions))
    return created(request, [session_body(s) for s in sessions])


@movie_session.get(
    schema=schemas.MovieSessionRequest(),
    tags=["movie-sessions"],
    operation_id="getMovieSession",
    api_security=BEARER,
    response_schemas=responses({"200": CachedSessionReply(description="The session")}, "400", "404", "409", authenticated=True, cached=True),
)
def get_session(request):
    path = request.validated["path"]
    return session_body(request.screenings.get_of_movie(path["movieId"], path["sessionId"]))


# ---------------------------------------------------------------- all sessions


@all_sessions.get(
    schema=schemas.ListAllMovieSessionsRequest(),
    tags=["movie-sessions"],
    operation_id="listMovieSessions",
    api_security=BEARER,
    response_schemas=responses({"200": MovieSessionPageReply(description="One page of sessions")}, "400", authenticated=True, cached=True),
)
def list_sessions(request):
    return sessions_page(request, request.validated["querystring"].get("movieId"))


@all_sessions_bulk.delete(
    schema=schemas.DeleteMovieSessionsRequest(),
    permission=MANAGE,
    tags=["movie-sessions"],
    operation_id="deleteMovieSessions",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted")}, "404", "409", authenticated=True, body=True),
)
def delete_sessions(request):
    session_ids = request.validated["body"]["sessionIds"]
    request.screenings.delete_many(session_ids)
    trace(request, "sessions deleted", count=len(set(session_ids)))
    return no_content()


@session_by_id.delete(
    schema=schemas.SessionRequest(),
    permission=MANAGE,
    tags=["movie-sessions"],
    operation_id="deleteMovieSession",
    api_security=BEARER,
    response_schemas=responses({"204": NoContent(description="Deleted")}, "400", "404", "409", authenticated=True),
)
def delete_session(request):
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
    )
    return {"sessions": [session_body(s) for s in found], "meta": page.meta(total)}
