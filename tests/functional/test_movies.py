"""Movies: create, bulk, read, update, delete, list (docs/API.md sections 3-5)."""

import threading
import time
import uuid

import pytest
from webtest import TestApp

from cinema_api.testing import at_once

UNKNOWN = "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"


def create(testapp, manager, title="Alien", age=16, status=201):
    return testapp.post_json("/v1/movies", {"title": title, "ageRestriction": age}, headers=manager.headers, status=status)


def titles(response):
    return [m["title"] for m in response.json["movies"]]


def count_movies(testapp, manager):
    return testapp.get("/v1/movies", headers=manager.headers).json["meta"]["totalItems"]


def test_create_movie(testapp, manager):
    body = create(testapp, manager, "  Alien  ").json
    assert set(body) == {"id", "title", "ageRestriction", "createdAt", "updatedAt"}
    assert body["title"] == "Alien" and body["ageRestriction"] == 16
    assert uuid.UUID(body["id"]).version == 4
    assert body["createdAt"].endswith("Z") and len(body["createdAt"]) == 24


def test_titles_are_stored_nfc_normalised(testapp, manager):
    assert create(testapp, manager, "Cafe\u0301").json["title"] == "Caf\u00e9"
    create(testapp, manager, "Caf\u00e9", status=409)


def test_duplicate_title_is_409(testapp, manager):
    create(testapp, manager)
    response = create(testapp, manager, status=409)
    assert response.json == {"statusCode": 409, "error": "Conflict", "code": "MOVIE_EXISTS", "message": "Movie already exists"}
    create(testapp, manager, "alien")  # exact match only


@pytest.mark.parametrize(
    "body, message",
    [
        ({"title": "", "ageRestriction": 1}, "title should not be empty"),
        ({"title": "   ", "ageRestriction": 1}, "title should not be empty"),
        ({"title": "x" * 201, "ageRestriction": 1}, "title must be shorter than or equal to 200 characters"),
        ({"title": 42, "ageRestriction": 1}, "title must be a string"),
        ({"ageRestriction": 1}, "title should not be empty"),
        ({"title": "A", "ageRestriction": 22}, "ageRestriction must not be greater than 21"),
        ({"title": "A", "ageRestriction": -1}, "ageRestriction must not be less than 0"),
        ({"title": "A", "ageRestriction": 21.0}, "ageRestriction must be an integer number"),
        ({"title": "A", "ageRestriction": None}, "ageRestriction must be an integer number"),
        ({"title": "A"}, "ageRestriction should not be empty"),
    ],
)
def test_create_movie_validation(testapp, manager, body, message):
    response = testapp.post_json("/v1/movies", body, headers=manager.headers, status=400)
    assert response.json["message"] == [message]
    assert count_movies(testapp, manager) == 0


def test_200_character_titles_and_digit_strings_are_accepted(testapp, manager):
    body = testapp.post_json("/v1/movies", {"title": "x" * 200, "ageRestriction": "21"}, headers=manager.headers, status=201).json
    assert body["ageRestriction"] == 21


def test_customers_cannot_create_and_role_comes_before_schema(testapp, customer):
    testapp.post_json("/v1/movies", {"title": "A", "ageRestriction": 1}, headers=customer.headers, status=403)
    testapp.post_json("/v1/movies", {"title": "", "ageRestriction": 99}, headers=customer.headers, status=403)
    testapp.post_json("/v1/movies", {"title": "A", "ageRestriction": 1}, status=401)


def test_get_movie_with_its_sessions_in_order(testapp, manager, customer):
    movie = create(testapp, manager).json
    for date, slot, room in [("2031-01-02T10:00:00Z", "10:00-12:00", 1), ("2031-01-01T20:00:00Z", "20:00-22:00", 2), ("2031-01-01T20:00:00Z", "20:00-22:00", 1)]:
        testapp.post_json("/v1/movies/%s/sessions" % movie["id"], {"date": date, "timeslot": slot, "roomNumber": room}, headers=manager.headers)
    body = testapp.get("/v1/movies/" + movie["id"], headers=customer.headers).json
    assert {k: body[k] for k in movie} == movie
    assert [(s["date"], s["roomNumber"]) for s in body["sessions"]] == [
        ("2031-01-01T20:00:00.000Z", 1),
        ("2031-01-01T20:00:00.000Z", 2),
        ("2031-01-02T10:00:00.000Z", 1),
    ]


def test_get_movie_errors(testapp, customer):
    assert testapp.get("/v1/movies/" + UNKNOWN, headers=customer.headers, status=404).json["message"] == "Movie not found"
    bad = testapp.get("/v1/movies/12345", headers=customer.headers, status=400).json
    assert bad["errors"] == [{"location": "path", "name": "movieId", "description": "must be a UUID"}]
    testapp.get("/v1/movies/" + UNKNOWN, status=401)


# ---------------------------------------------------------------- PATCH


def test_patch_changes_fields(testapp, manager):
    movie = create(testapp, manager).json
    time.sleep(0.002)  # the answer shows milliseconds: the update is in a later one
    body = testapp.patch_json("/v1/movies/" + movie["id"], {"title": " Aliens ", "ageRestriction": 18}, headers=manager.headers).json
    assert body["title"] == "Aliens" and body["ageRestriction"] == 18
    assert body["createdAt"] == movie["createdAt"] and body["updatedAt"] > movie["updatedAt"]
    assert testapp.get("/v1/movies?title=aliens", headers=manager.headers).json["meta"]["totalItems"] == 1


def test_patch_empty_changes_nothing(testapp, manager):
    movie = create(testapp, manager).json
    assert testapp.patch_json("/v1/movies/" + movie["id"], {}, headers=manager.headers).json == movie


def test_patch_null_is_400(testapp, manager):
    movie = create(testapp, manager).json
    response = testapp.patch_json("/v1/movies/" + movie["id"], {"title": None, "ageRestriction": None}, headers=manager.headers, status=400)
    assert sorted(response.json["message"]) == ["ageRestriction must be an integer number", "title must be a string"]


def test_patch_to_own_title_is_fine_and_to_another_is_409(testapp, manager):
    movie = create(testapp, manager).json
    create(testapp, manager, "Heat")
    testapp.patch_json("/v1/movies/" + movie["id"], {"title": "Alien"}, headers=manager.headers, status=200)
    response = testapp.patch_json("/v1/movies/" + movie["id"], {"title": "Heat"}, headers=manager.headers, status=409)
    assert response.json["message"] == "Movie already exists"
    assert testapp.get("/v1/movies/" + movie["id"], headers=manager.headers).json["title"] == "Alien"


def test_patch_order_of_checks(testapp, manager, customer):
    testapp.patch_json("/v1/movies/" + UNKNOWN, {"title": "X"}, headers=customer.headers, status=403)
    testapp.patch_json("/v1/movies/" + UNKNOWN, {"ageRestriction": 99}, headers=manager.headers, status=400)
    testapp.patch_json("/v1/movies/" + UNKNOWN, {"title": "X"}, headers=manager.headers, status=404)


# ---------------------------------------------------------------- DELETE


def test_delete_movie_deletes_its_sessions(testapp, manager):
    movie = create(testapp, manager).json
    session = testapp.post_json(
        "/v1/movies/%s/sessions" % movie["id"], {"date": "2031-01-01T20:00:00Z", "timeslot": "20:00-22:00", "roomNumber": 1}, headers=manager.headers
    ).json
    response = testapp.delete("/v1/movies/" + movie["id"], headers=manager.headers, status=204)
    assert response.body == b""
    testapp.get("/v1/movies/" + movie["id"], headers=manager.headers, status=404)
    assert testapp.get("/v1/movie-sessions", headers=manager.headers).json["meta"]["totalItems"] == 0
    testapp.delete("/v1/movie-sessions/" + session["id"], headers=manager.headers, status=404)
    testapp.delete("/v1/movies/" + movie["id"], headers=manager.headers, status=404)


def test_customers_cannot_delete(testapp, manager, customer):
    movie = create(testapp, manager).json
    testapp.delete("/v1/movies/" + movie["id"], headers=customer.headers, status=403)
    testapp.delete_json("/v1/movies/bulk", {"movieIds": [movie["id"]]}, headers=customer.headers, status=403)


# ---------------------------------------------------------------- bulk


def test_bulk_create_in_request_order(testapp, manager):
    items = [{"title": "Movie %03d" % i, "ageRestriction": i % 22} for i in range(50)]
    body = testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=201).json
    assert [m["title"] for m in body] == [i["title"] for i in items]
    assert count_movies(testapp, manager) == 50


def test_bulk_create_a_thousand(testapp, manager):
    items = [{"title": "Film %04d" % i, "ageRestriction": 0} for i in range(1000)]
    assert len(testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=201).json) == 1000


@pytest.mark.parametrize(
    "movies, message",
    [
        ([], "movies must contain at least 1 elements"),
        ([{"title": "x", "ageRestriction": 0}] * 1001, "movies must contain no more than 1000 elements"),
        ([{"title": "ok", "ageRestriction": 0}, {"title": "bad", "ageRestriction": 99}], "movies.1.ageRestriction must not be greater than 21"),
        ([{"title": "ok", "ageRestriction": 0}, "nope"], "movies.1 must be an object"),
        ("nope", "movies must be an array"),
    ],
)
def test_bulk_create_validation_is_all_or_nothing(testapp, manager, movies, message):
    response = testapp.post_json("/v1/movies/bulk", {"movies": movies}, headers=manager.headers, status=400)
    assert message in response.json["message"]
    assert count_movies(testapp, manager) == 0


def test_bulk_create_duplicates_roll_back_everything(testapp, manager):
    items = [{"title": "One", "ageRestriction": 0}, {"title": "Two", "ageRestriction": 0}, {"title": "One", "ageRestriction": 3}]
    response = testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=409)
    assert response.json["message"] == 'Movie with title "One" already exists'
    assert count_movies(testapp, manager) == 0
    create(testapp, manager, "Two")
    items = [{"title": "Three", "ageRestriction": 0}, {"title": "Two", "ageRestriction": 0}]
    response = testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers, status=409)
    assert response.json["message"] == 'Movie with title "Two" already exists'
    assert count_movies(testapp, manager) == 1


def test_bulk_delete(testapp, manager):
    ids = [create(testapp, manager, "M%d" % i).json["id"] for i in range(3)]
    testapp.delete_json("/v1/movies/bulk", {"movieIds": [ids[0], ids[1].upper(), ids[0]]}, headers=manager.headers, status=204)
    assert titles(testapp.get("/v1/movies", headers=manager.headers)) == ["M2"]


def test_bulk_delete_with_a_missing_id_deletes_nothing(testapp, manager):
    ids = [create(testapp, manager, "M%d" % i).json["id"] for i in range(2)]
    response = testapp.delete_json("/v1/movies/bulk", {"movieIds": [ids[0], UNKNOWN, ids[1]]}, headers=manager.headers, status=404)
    assert response.json["message"] == "Movie with ID %s not found" % UNKNOWN
    assert count_movies(testapp, manager) == 2
    bad = testapp.delete_json("/v1/movies/bulk", {"movieIds": [ids[0], "nope"]}, headers=manager.headers, status=400)
    assert bad.json["message"] == ["movieIds.1 must be a UUID"]
    testapp.delete_json("/v1/movies/bulk", {"movieIds": []}, headers=manager.headers, status=400)


# ---------------------------------------------------------------- lists


@pytest.fixture
def catalogue(testapp, manager):
    items = [
        {"title": "b-movie", "ageRestriction": 12},
        {"title": "Apollo 13", "ageRestriction": 0},
        {"title": "Straße der Sehnsucht", "ageRestriction": 16},
        {"title": "Émile", "ageRestriction": 18},
        {"title": "100% Wolf", "ageRestriction": 6},
        {"title": "Cat_Dog", "ageRestriction": 21},
    ]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers)
    return [item["title"] for item in items]


def test_list_defaults_to_creation_order_with_meta(testapp, customer, catalogue):
    response = testapp.get("/v1/movies", headers=customer.headers)
    assert titles(response) == catalogue
    assert response.json["meta"] == {"currentPage": 1, "totalPages": 1, "totalItems": 6, "perPage": 25}
    assert titles(testapp.get("/v1/movies?order=desc", headers=customer.headers)) == catalogue[::-1]


def test_list_sorts_titles_by_code_point(testapp, customer, catalogue):
    expected = sorted(catalogue)
    assert expected == ["100% Wolf", "Apollo 13", "Cat_Dog", "Straße der Sehnsucht", "b-movie", "Émile"]
    assert titles(testapp.get("/v1/movies?sort=title", headers=customer.headers)) == expected
    assert titles(testapp.get("/v1/movies?sort=title&order=desc", headers=customer.headers)) == expected[::-1]


def test_list_sorts_by_age_restriction(testapp, customer, catalogue):
    ages = [m["ageRestriction"] for m in testapp.get("/v1/movies?sort=ageRestriction&order=desc", headers=customer.headers).json["movies"]]
    assert ages == [21, 18, 16, 12, 6, 0]


@pytest.mark.parametrize(
    "search, expected",
    [
        ("MOVIE", ["b-movie"]),
        ("strasse", ["Straße der Sehnsucht"]),
        ("STRASSE", ["Straße der Sehnsucht"]),
        ("émi", ["Émile"]),
        ("ÉMILE", ["Émile"]),
        ("%", ["100% Wolf"]),
        ("_", ["Cat_Dog"]),
        ("t_d", ["Cat_Dog"]),
        ("o", ["b-movie", "Apollo 13", "100% Wolf", "Cat_Dog"]),
        ("zzz", []),
    ],
)
def test_title_search_is_case_insensitive_and_literal(testapp, customer, catalogue, search, expected):
    assert titles(testapp.get("/v1/movies", {"title": search}, headers=customer.headers)) == expected


def test_age_restriction_filter_means_at_least(testapp, customer, catalogue):
    response = testapp.get("/v1/movies?ageRestriction=16&sort=ageRestriction", headers=customer.headers)
    assert titles(response) == ["Straße der Sehnsucht", "Émile", "Cat_Dog"]
    assert response.json["meta"]["totalItems"] == 3


def test_pages_never_repeat_or_skip(testapp, manager, customer):
    items = [{"title": "Same %02d" % i, "ageRestriction": 7} for i in range(23)]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers)
    for sort in ("ageRestriction", "createdAt", "title"):
        for order in ("asc", "desc"):
            seen = []
            for page in range(1, 6):
                response = testapp.get("/v1/movies?perPage=5&page=%d&sort=%s&order=%s" % (page, sort, order), headers=customer.headers)
                seen += [m["id"] for m in response.json["movies"]]
                assert response.json["meta"] == {"currentPage": page, "totalPages": 5, "totalItems": 23, "perPage": 5}
            assert len(seen) == 23 and len(set(seen)) == 23
    past_end = testapp.get("/v1/movies?perPage=5&page=6", headers=customer.headers).json
    assert past_end["movies"] == [] and past_end["meta"]["totalPages"] == 5


def test_a_title_search_counts_every_match_on_every_page(testapp, manager, customer):
    """The page and its count come from one query; a page past the end is counted apart."""
    items = [{"title": "Match %02d" % i, "ageRestriction": i % 3} for i in range(7)] + [{"title": "Other", "ageRestriction": 0}]
    testapp.post_json("/v1/movies/bulk", {"movies": items}, headers=manager.headers)
    for page, count in ((1, 3), (2, 3), (3, 1), (4, 0)):
        body = testapp.get("/v1/movies", {"title": "match", "perPage": 3, "page": page}, headers=customer.headers).json
        assert len(body["movies"]) == count
        assert body["meta"] == {"currentPage": page, "totalPages": 3, "totalItems": 7, "perPage": 3}
    body = testapp.get("/v1/movies", {"title": "match", "ageRestriction": 2, "page": 2}, headers=customer.headers).json
    assert body["movies"] == [] and body["meta"]["totalItems"] == 2


def test_list_items_are_the_movies_as_read_by_id(testapp, manager, customer):
    created = testapp.post_json("/v1/movies", {"title": "Heat", "ageRestriction": 16}, headers=manager.headers).json
    time.sleep(0.002)
    updated = testapp.patch_json("/v1/movies/" + created["id"], {"ageRestriction": 18}, headers=manager.headers).json
    for query in ({}, {"title": "hea"}):
        assert testapp.get("/v1/movies", query, headers=customer.headers).json["movies"] == [updated]
    assert testapp.get("/v1/movies/" + created["id"], headers=customer.headers).json == dict(updated, sessions=[])


def test_empty_list_meta(testapp, customer):
    assert testapp.get("/v1/movies", headers=customer.headers).json == {
        "movies": [],
        "meta": {"currentPage": 1, "totalPages": 0, "totalItems": 0, "perPage": 25},
    }


@pytest.mark.parametrize(
    "query, message",
    [
        ("sort=rating", "sort must be one of the following values: title, ageRestriction, createdAt"),
        ("order=up", "order must be one of the following values: asc, desc"),
        ("ageRestriction=x", "ageRestriction must be an integer number"),
        ("ageRestriction=22", "ageRestriction must not be greater than 21"),
        ("perPage=0", "perPage must not be less than 1"),
        ("title=a&title=b", "title must not be repeated"),
    ],
)
def test_list_query_validation(testapp, customer, query, message):
    assert testapp.get("/v1/movies?" + query, headers=customer.headers, status=400).json["message"] == [message]


def test_unknown_query_parameters_are_ignored(testapp, customer, catalogue):
    assert len(titles(testapp.get("/v1/movies?foo=bar&foo=baz", headers=customer.headers))) == 6


# ---------------------------------------------------------------- concurrency


def run_parallel(app, count, request):
    return sorted(at_once(count, lambda _: request(TestApp(app)).status_int))


def test_parallel_creates_of_one_title_give_one_201(app, testapp, manager):
    results = run_parallel(
        app, 20, lambda client: client.post_json("/v1/movies", {"title": "Race", "ageRestriction": 1}, headers=manager.headers, expect_errors=True)
    )
    assert results == [201] + [409] * 19
    assert count_movies(testapp, manager) == 1


def test_overlapping_bulk_creates_are_only_201_or_409(app, testapp, manager):
    """30 batches at once, each sharing titles with others in another order: whatever locks
    they take, every answer is a 201 or a 409 (deadlocks are retried), and titles stay unique."""
    titles = ["Overlap %d" % i for i in range(12)]
    batches = [[titles[(i + k * (1 + i % 5)) % len(titles)] for k in range(4)] for i in range(30)]
    batches = [list(dict.fromkeys(batch)) for batch in batches]
    turn = iter(range(len(batches)))
    lock = threading.Lock()

    def create(client):
        with lock:
            batch = batches[next(turn)]
        body = {"movies": [{"title": title, "ageRestriction": 1} for title in batch]}
        return client.post_json("/v1/movies/bulk", body, headers=manager.headers, expect_errors=True)

    results = run_parallel(app, len(batches), create)
    assert set(results) <= {201, 409} and 201 in results
    listed = [m["title"] for m in testapp.get("/v1/movies?perPage=100", headers=manager.headers).json["movies"]]
    assert len(listed) == len(set(listed))
