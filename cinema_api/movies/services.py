"""Use cases of movies and movie sessions.

Uniqueness (movie titles, one session per room, timeslot and booking day) is checked
first, for a clear message, and backed by database constraints: a concurrent request
that slips between the check and the insert gets the same 409 from the integrity error.
"""

import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime

import colander
from pony.orm import desc, flush, select

from cinema_api.core.clock import utcnow
from cinema_api.infrastructure.cache import AnswersAlike
from cinema_api.infrastructure.pony_internals import select_rows
from cinema_api.infrastructure.sql import (
    LIKE_ESCAPE,
    fts5_phrase,
    like_pattern,
    on_sqlite,
    sql_datetime,
    sql_uuid,
    sqlite_datetime,
    substring_condition,
)
from cinema_api.movies.entities import fold_title
from cinema_api.movies.errors import (
    CancelStartedScreening,
    ChangeStartedScreening,
    MovieAlreadyExists,
    MovieHasTickets,
    MovieNotFound,
    ScreeningNotFound,
    RoomAlreadyBooked,
    ScreeningAlreadyCancelled,
    ScreeningCancelled,
    ScreeningHasLiveTickets,
    ScreeningHasTickets,
    ScreeningNotOfMovie,
    ScreeningRoomNotFound,
)

def unique_in_order(values):
    return list(dict.fromkeys(values))


class Movies:
    def __init__(self, db):
        self.db = db

    def get(self, movie_id):
        movie = self.db.Movie.get(id=uuid.UUID(movie_id))
        if movie is None:
            raise MovieNotFound()
        return movie

    def create(self, title, age_restriction):
        return self.create_many([{"title": title, "ageRestriction": age_restriction}], bulk=False)[0]

    def create_many(self, items, bulk=True):
        """Create every movie or none; titles must be new and distinct."""
        Movie = self.db.Movie
        titles = [item["title"] for item in items]
        seen = set()
        for title in titles:
            if title in seen:
                raise MovieAlreadyExists(title, bulk=bulk)
            seen.add(title)
        taken = set(select(m.title for m in Movie if m.title in titles))
        for title in titles:
            if title in taken:
                raise MovieAlreadyExists(title, bulk=bulk)
        movies = [Movie(title=item["title"], age_restriction=item["ageRestriction"]) for item in items]
        flush()  # a title taken meanwhile: the constraint's 409 (cinema_api.infrastructure.db)
        return movies

    def update(self, movie_id, changes):
        movie = self.get(movie_id)
        title = changes.get("title")
        if title is not None and title != movie.title:
            if self.db.Movie.exists(title=title):
                raise MovieAlreadyExists()
            movie.title = title
        if "ageRestriction" in changes:
            movie.age_restriction = changes["ageRestriction"]
        flush()
        return movie

    def delete_many(self, movie_ids, bulk=True):
        """Delete movies with their sessions; none if any is missing or has sold tickets."""
        ids = [uuid.UUID(movie_id) for movie_id in unique_in_order(movie_ids)]
        found = set(select(m.id for m in self.db.Movie if m.id in ids))
        for movie_id in ids:
            if movie_id not in found:
                raise MovieNotFound(movie_id, bulk=bulk) if bulk else MovieNotFound()
        ticketed = select(t.screening.movie.id for t in self.db.Ticket if t.screening.movie.id in ids).first()
        if ticketed is not None:
            raise MovieHasTickets(ticketed if bulk else None)
        for movie_id in ids:
            # The database cascades to the sessions (and refuses if a ticket appeared meanwhile).
            self.db.execute('DELETE FROM "movies" WHERE "id" = $mid', {"mid": sql_uuid(self.db, movie_id)})

    def page(self, page, sort="createdAt", order="asc", title=None, age_restriction=None):
        """``(movies, total)`` for one page of the catalogue, the page's rows as plain values
        (:class:`MovieRow`, no entity loaded).

        Without a title the total is a kept count (:func:`kept_count`: no scan, whatever the
        catalogue's size), and the page comes from an index in sorted order, read from the end
        of the list nearer to it (:meth:`~cinema_api.core.pagination.Page.walk`), so the last
        page costs what the first does. A title search finds its matches first
        (:func:`title_search`: through the trigram index for a needle of 3 characters or more,
        by reading every title for a shorter one) and sorts only them, so one query brings the
        page and, beside each row, the count of every match; only a page past the end, which has
        no row to carry it, is counted apart."""
        db = self.db
        conditions, params = [], {}
        if title:
            condition, search_params = title_search(db, fold_title(title))
            conditions.append(condition)
            params.update(search_params)
        if age_restriction is not None:
            params["age"] = age_restriction
            conditions.append('"age_restriction" >= $age')
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        column, ascending = MOVIE_SORT_COLUMNS[sort], order == "asc"
        if title:
            params.update(limit=page.size, offset=(page.number - 1) * page.size)
            rows = self._rows(where, column, ascending, params, beside=", COUNT(*) OVER ()")
            if rows:
                total = rows[0][5]
            elif page.number == 1:
                total = 0
            else:
                total = select_rows(db, 'SELECT COUNT(*) FROM "movies"' + where, params)[0][0]
            return [MovieRow.of(db, row) for row in rows], total
        total = kept_count(db, "movies", low=age_restriction)
        walk = page.walk(total)
        if walk is None:
            return [], total
        params["limit"], params["offset"], backwards = walk
        rows = self._rows(where, column, ascending != backwards, params)
        if backwards:
            rows.reverse()
        return [MovieRow.of(db, row) for row in rows], total

    def _rows(self, where, column, ascending, params, beside=""):
        """The rows of one page: the movies ``where`` says, by ``column`` then id, ``$limit`` from
        ``$offset``, each with the columns of a :class:`MovieRow` (and ``beside``)."""
        direction = "ASC" if ascending else "DESC"
        return select_rows(
            self.db,
            'SELECT "id", "title", "age_restriction", "created_at", "updated_at"%s FROM "movies"%s '
            'ORDER BY "%s" %s, "id" %s LIMIT $limit OFFSET $offset' % (beside, where, column, direction, direction),
            params,
        )


def kept_count(db, table, low=None, high=None):
    """The rows of ``table`` whose part is within ``low``..``high`` (either open), from the counts
    the writing transactions keep (migration 0010: movies by ``age_restriction``, screenings 0 on,
    1 cancelled): one read of a few rows, however many rows are counted."""
    conditions, params = ['"table_name" = $table'], {"table": table}
    if low is not None:
        conditions.append('"part" >= $low')
        params["low"] = low
    if high is not None:
        conditions.append('"part" <= $high')
        params["high"] = high
    sql = 'SELECT COALESCE(SUM("rows"), 0) FROM "kept_counts" WHERE ' + " AND ".join(conditions)
    return int(select_rows(db, sql, params, prepared=True)[0][0])


#: The length of the trigrams the title indexes are made of (migration 0009): a needle shorter
#: than that has none to look up.
TRIGRAM = 3
TITLE_FTS_TABLE = "movies_title_fts"

_title_index_tables = weakref.WeakKeyDictionary()  # Database -> whether it has TITLE_FTS_TABLE
#: SQLite: below this many movies a search reads every title instead of asking the FTS5 table. At
#: the benchmark's 200 movies the table's lookup cost more than reading every title (the search's
#: rate 2-6 % lower, more so while the write-ahead log holds recent writes); from about a thousand
#: on it costs less, and at a million it is what keeps a search flat (bench/NOTES.md).
SQLITE_INDEX_FROM_MOVIES = 1_000
#: How long the catalogue's size that chooses between the two is trusted: it chooses a plan, never
#: an answer (both give the same), so a size a few seconds old is as good as one read now.
CATALOGUE_SIZE_TTL_SEC = 5.0
_catalogue_sizes = weakref.WeakKeyDictionary()  # Database -> (movies, time.monotonic() when read)


def title_search(db, folded):
    """``(condition, params)``: the SQL condition that keeps the movies whose folded title
    contains ``folded`` literally, and its parameters (the same answers on both databases, and
    with or without an index).

    - A needle of fewer than :data:`TRIGRAM` characters (code points) has no trigram to look
      up: every title is read (``strpos``/``instr``), as before migration 0009.
    - PostgreSQL: ``LIKE`` with the needle's ``%``, ``_`` and ``\\`` escaped, which the GIN
      trigram index serves: it finds the rows that have every trigram of the needle, and the
      server checks the pattern itself on each of them (the recheck), so no false match is kept.
    - SQLite: the rowids that the FTS5 trigram table finds for the needle as a phrase (its
      trigrams in a row; quoted, so no character of it is an operator), then ``instr`` on those
      rows alone, the exact check. A database without the table (a SQLite without FTS5 when it
      was migrated), or a catalogue smaller than :data:`SQLITE_INDEX_FROM_MOVIES`, reads every
      title, as for a short needle."""
    params = {"folded": folded}
    exact = substring_condition(db, '"title_folded"', "folded")
    if len(folded) < TRIGRAM:
        return exact, params
    if not on_sqlite(db):
        return '"title_folded" LIKE $pattern ESCAPE \'%s\'' % LIKE_ESCAPE, {"pattern": like_pattern(folded)}
    if not (title_index_of(db) and sqlite_index_pays(db)):
        return exact, params
    params["phrase"] = fts5_phrase(folded)
    indexed = '"rowid" IN (SELECT "rowid" FROM "%s" WHERE "%s" MATCH $phrase)' % (TITLE_FTS_TABLE, TITLE_FTS_TABLE)
    return indexed + " AND " + exact, params


def title_index_of(db):
    """Whether ``db`` (SQLite) has the FTS5 trigram table of migration 0009, which a SQLite
    without FTS5 does not get. Asked of the database once, on the first search: the schema is
    migrated before the application starts."""
    known = _title_index_tables.get(db)
    if known is None:
        rows = select_rows(db, "SELECT 1 FROM \"sqlite_master\" WHERE \"type\" = 'table' AND \"name\" = $name", {"name": TITLE_FTS_TABLE})
        known = _title_index_tables[db] = bool(rows)
    return known


def sqlite_index_pays(db):
    """Whether the catalogue of ``db`` (SQLite) is large enough for the FTS5 table to answer a
    search for less than reading every title (:data:`SQLITE_INDEX_FROM_MOVIES`): its size from the
    kept counts, read again once it is :data:`CATALOGUE_SIZE_TTL_SEC` old."""
    known, now = _catalogue_sizes.get(db), time.monotonic()
    if known is None or now - known[1] > CATALOGUE_SIZE_TTL_SEC:
        known = _catalogue_sizes[db] = (kept_count(db, "movies"), now)
    return known[0] >= SQLITE_INDEX_FROM_MOVIES


#: Up to this many movies a process keeps every trigram of the catalogue's folded titles
#: (:class:`TitleTrigrams`): at most a few megabytes, and a read of every title once per
#: catalogue version, on the way to a search that misses the cache.
NO_MATCH_FILTER_MAX_MOVIES = 5_000


class TitleTrigrams(AnswersAlike):
    """Title searches that find nothing share one cached answer: the empty page of their other
    parameters, which no title changes (``meta`` counts nothing). A folded needle that has a
    trigram no folded title of the catalogue has cannot be a substring of any of them, so this
    knows it finds nothing without asking the database, from every trigram of the catalogue's
    ``title_folded`` (the column the search itself compares against, so the same answer on both
    databases), read with its catalogue version in one statement: one read of every title per
    catalogue version and process, up to :data:`NO_MATCH_FILTER_MAX_MOVIES` movies (above, every
    needle keeps a key of its own). A needle may still find nothing while this cannot tell: it
    then has its own key, as before.

    ``title_node`` is the query string's ``title`` node: a needle that it refuses (a 400 to
    come) is left alone, so its request is validated, never answered from the group's copy."""

    GROUP = "no-title-match"

    def __init__(self, title_node):
        self.title_node = title_node
        self.known = (None, None)  # (str(catalogue version), frozenset of trigrams, or None: too many movies)
        self.learning = threading.Lock()

    def learn(self, db, version, query):
        if "title" not in query or self.known[0] == str(version) or not self.learning.acquire(blocking=False):
            return  # no search, known already, or another thread is learning it
        try:
            if kept_count(db, "movies") > NO_MATCH_FILTER_MAX_MOVIES:
                self.known = (str(version), None)
                return
            # one statement, so one snapshot: the titles are those of the version beside them
            rows = select_rows(
                db,
                'SELECT "c"."version", "m"."title_folded" FROM "catalog_version" "c" '
                'LEFT JOIN "movies" "m" ON 1 = 1 WHERE "c"."id" = 1',
                {},
            )
            if not rows:
                return
            trigrams = set()
            for _, folded in rows:
                if folded:
                    trigrams.update(folded[at:at + TRIGRAM] for at in range(len(folded) - TRIGRAM + 1))
            self.known = (str(rows[0][0]), frozenset(trigrams))
        finally:
            self.learning.release()

    def group(self, version, query):
        title = query.get("title")
        known_version, trigrams = self.known
        if title is None or trigrams is None or known_version != str(version):
            return None, query
        try:
            folded = fold_title(self.title_node.deserialize(title))
        except colander.Invalid:
            return None, query
        for at in range(len(folded) - TRIGRAM + 1):
            if folded[at:at + TRIGRAM] not in trigrams:
                return self.GROUP, {name: value for name, value in query.items() if name != "title"}
        return None, query


MOVIE_SORT_COLUMNS = {"title": "title", "ageRestriction": "age_restriction", "createdAt": "created_at"}


@dataclass(frozen=True)
class MovieRow:
    """A movie as a list shows it: the attributes of a ``Movie`` that its body reads, from one
    row of a raw query (no entity loaded)."""

    id: uuid.UUID
    title: str
    age_restriction: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, db, row):
        movie_id, title, age_restriction, created_at, updated_at = row[:5]
        if on_sqlite(db):  # UUIDs as 16-byte blobs, datetimes as the text Pony stores
            return cls(uuid.UUID(bytes=movie_id), title, age_restriction, sqlite_datetime(created_at), sqlite_datetime(updated_at))
        return cls(movie_id, title, age_restriction, created_at, updated_at)


class Screenings:
    def __init__(self, db, movies, rooms_required=False):
        self.db = db
        self.movies = movies
        #: ROOMS_REQUIRED: a screening only in a room number that has a Room
        self.rooms_required = rooms_required

    def get(self, session_id):
        session = self.db.Screening.get(id=uuid.UUID(session_id))
        if session is None:
            raise ScreeningNotFound()
        return session

    def get_of_movie(self, movie_id, session_id):
        movie = self.movies.get(movie_id)
        session = self.get(session_id)
        if session.movie.id != movie.id:
            raise ScreeningNotOfMovie()
        return session

    def of_movie(self, movie_id):
        """Every session of a movie, in the default order (one query)."""
        mid = uuid.UUID(movie_id)
        query = select(s for s in self.db.Screening if s.movie.id == mid)
        return list(self._ordered(query, None, "asc"))

    def create(self, movie_id, item):
        return self.create_many(movie_id, [item])[0]

    def create_many(self, movie_id, items):
        """Create every session or none; each room is booked once per timeslot and day, and each
        session keeps a copy of its room's seat plan."""
        movie = self.movies.get(movie_id)
        Screening = self.db.Screening
        numbers = unique_in_order(item["roomNumber"] for item in items)
        plans = self._room_plans(numbers)
        slots = [(item["roomNumber"], item["timeslot"], item["date"].date()) for item in items]
        seen = set()
        for slot in slots:
            if slot in seen:
                raise RoomAlreadyBooked(*slot_words(slot))
            seen.add(slot)
        days = unique_in_order(day for _, _, day in slots)
        # a cancelled screening leaves its room, timeslot and day free
        booked = set(select((s.room_number, s.timeslot, s.day) for s in Screening if s.day in days and s.cancelled_at is None))
        for slot in slots:
            if slot in booked:
                raise RoomAlreadyBooked(*slot_words(slot))
        # each session copies its room's seat plan as it is now (none for a room without a Room)
        sessions = [
            Screening(
                movie=movie,
                date=item["date"],
                timeslot=item["timeslot"],
                room_number=item["roomNumber"],
                plan=plans.get(item["roomNumber"]),
            )
            for item in items
        ]
        flush()
        return sessions

    def _room_plans(self, numbers):
        """``{room number: seat plan}`` of the rooms that exist among ``numbers``; with
        ROOMS_REQUIRED, 404 for the first number that has no Room."""
        plans = {room.number: room.plan for room in select(r for r in self.db.Room if r.number in numbers)}
        if self.rooms_required:
            for number in numbers:
                if number not in plans:
                    raise ScreeningRoomNotFound(number)
        return plans

    def update(self, session_id, changes):
        """Move a screening (``date``, ``timeslot``, ``roomNumber``; those absent stay), with the
        rules of a create. Checks in the order of docs/API.md: 404 (the screening, then the room
        with ROOMS_REQUIRED), 400 started, 409 cancelled, 409 tickets, 409 room clash.

        The screening's row is locked first (PostgreSQL): a purchase in flight finishes before the
        tickets are counted, and one that comes later waits for the move."""
        Screening = self.db.Screening
        screening = Screening.get_for_update(id=uuid.UUID(session_id))
        if screening is None:
            raise ScreeningNotFound()
        room_number = changes.get("roomNumber")
        plan = None
        if room_number is not None and room_number != screening.room_number:
            plan = self._room_plans([room_number]).get(room_number)
        if not changes:
            return screening
        if screening.date <= utcnow():  # started: the instant, not the calendar day
            raise ChangeStartedScreening()
        if screening.is_cancelled:
            raise ScreeningCancelled()
        sid = screening.id
        if select(t for t in self.db.Ticket if t.screening.id == sid and t.cancelled_at is None).exists():
            raise ScreeningHasLiveTickets()
        date = changes.get("date", screening.date)
        slot = (changes.get("roomNumber", screening.room_number), changes.get("timeslot", screening.timeslot), date.date())
        room, timeslot, day = slot
        clash = select(
            s for s in Screening if s.id != sid and s.room_number == room and s.timeslot == timeslot and s.day == day and s.cancelled_at is None
        ).exists()
        if clash:
            raise RoomAlreadyBooked(*slot_words(slot))
        screening.move(changes.get("date"), changes.get("timeslot"), room_number, plan)
        flush()  # a room taken meanwhile: the constraint's 409 (cinema_api.infrastructure.db)
        return screening

    def cancel(self, session_id):
        """Cancel a screening that has not started, and each of its unused tickets.

        The screening is marked by a conditional update (of concurrent cancellations one wins);
        on PostgreSQL it waits for the purchases in flight, which hold a share lock on its row,
        and a purchase that comes later sees it cancelled (``Ticket.sell_seat``). The tickets
        are then marked in a statement of their own, which sees every ticket sold before."""
        db = self.db
        sid, now = uuid.UUID(session_id), utcnow()
        params = {"sid": sql_uuid(db, sid), "now": sql_datetime(db, now)}
        cursor = db.execute(
            'UPDATE "movie_sessions" SET "cancelled_at" = $now, "updated_at" = $now '
            'WHERE "id" = $sid AND "cancelled_at" IS NULL AND "date" > $now',
            params,
        )
        screening = self.get(session_id)  # loaded after the update: as it is now
        if cursor.rowcount != 1:
            if screening.date <= now:  # started: the instant, not the calendar day
                raise CancelStartedScreening()
            raise ScreeningAlreadyCancelled()
        db.execute(
            'UPDATE "tickets" SET "cancelled_at" = $now WHERE "session_id" = $sid AND "is_used" = $false AND "cancelled_at" IS NULL',
            dict(params, false=False),
        )
        return screening

    def delete_many(self, session_ids, bulk=True):
        """Delete sessions; none if any is missing or has tickets."""
        ids = [uuid.UUID(session_id) for session_id in unique_in_order(session_ids)]
        found = set(select(s.id for s in self.db.Screening if s.id in ids))
        for session_id in ids:
            if session_id not in found:
                raise ScreeningNotFound(session_id, bulk=bulk) if bulk else ScreeningNotFound()
        ticketed = select(t.screening.id for t in self.db.Ticket if t.screening.id in ids).first()
        if ticketed is not None:
            raise ScreeningHasTickets(ticketed if bulk else None)
        for session_id in ids:
            self.db.execute('DELETE FROM "movie_sessions" WHERE "id" = $sid', {"sid": sql_uuid(self.db, session_id)})

    def page(self, page, sort=None, order="asc", movie_id=None, date=None, timeslot=None, room_number=None, cancelled=None):
        """``(sessions, total)`` for one page of screenings; ``cancelled`` True or False keeps only
        the cancelled ones or only those that are on. Without another filter the total is a kept
        count and a page in the back half is read from the other end, as in :meth:`Movies.page`;
        the other filters count their rows through their own index."""
        query = select(s for s in self.db.Screening)
        if cancelled is True:
            query = query.filter(lambda s: s.cancelled_at is not None)
        elif cancelled is False:
            query = query.filter(lambda s: s.cancelled_at is None)
        if movie_id is not None:
            mid = uuid.UUID(movie_id)
            query = query.filter(lambda s: s.movie.id == mid)
        if date is not None:
            day = date.date()
            query = query.filter(lambda s: s.day == day)
        if timeslot is not None:
            query = query.filter(lambda s: s.timeslot == timeslot)
        if room_number is not None:
            query = query.filter(lambda s: s.room_number == room_number)
        if movie_id is None and date is None and timeslot is None and room_number is None:
            # the whole list, or the screenings on or the cancelled ones: counted by the writers
            part = None if cancelled is None else int(cancelled)
            total = kept_count(self.db, "movie_sessions", low=part, high=part)
            walk = page.walk(total)
            if walk is None:
                return [], total
            limit, offset, backwards = walk
            if backwards:
                order = "desc" if order == "asc" else "asc"
            rows = list(self._ordered(query, sort, order).limit(limit, offset=offset))
            return rows[::-1] if backwards else rows, total
        total = query.count()
        return list(self._ordered(query, sort, order).page(page.number, page.size)), total

    def _ordered(self, query, sort, order):
        Screening = self.db.Screening
        if sort is None:
            columns = [Screening.date, Screening.timeslot, Screening.room_number]
        else:
            columns = [{"date": Screening.date, "timeslot": Screening.timeslot, "roomNumber": Screening.room_number}[sort]]
        columns.append(Screening.id)
        return query.order_by(*(columns if order == "asc" else [desc(column) for column in columns]))


def slot_words(slot):
    room_number, timeslot, day = slot
    return room_number, day, timeslot
