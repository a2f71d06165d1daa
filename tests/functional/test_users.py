"""GET /v1/users, /v1/users/{userId}, /v1/users/{userId}/tickets."""

import pytest

from tests.conftest import register

UNKNOWN = "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"


def test_manager_lists_users_newest_first(testapp, manager, customer):
    response = testapp.get("/v1/users", headers=manager.headers)
    assert [u["username"] for u in response.json] == ["customer1", "manager1"]
    assert set(response.json[0]) == {"id", "username", "role", "age", "createdAt", "updatedAt"}
    assert response.headers["X-Total-Count"] == "2"
    assert response.headers["Link"] == '<http://localhost/v1/users?page=1>; rel="first", <http://localhost/v1/users?page=1>; rel="last"'


def test_users_list_paginates_with_link_headers(testapp, manager):
    for index in range(4):
        register(testapp, "user%d" % index)
    response = testapp.get("/v1/users?perPage=2&page=2&foo=bar", headers=manager.headers)
    assert [u["username"] for u in response.json] == ["user1", "user0"]
    assert response.headers["X-Total-Count"] == "5"
    links = dict((rel.split('"')[1], url.strip("<> ")) for url, rel in (part.split(";") for part in response.headers["Link"].split(",")))
    assert links == {
        "first": "http://localhost/v1/users?perPage=2&foo=bar&page=1",
        "prev": "http://localhost/v1/users?perPage=2&foo=bar&page=1",
        "next": "http://localhost/v1/users?perPage=2&foo=bar&page=3",
        "last": "http://localhost/v1/users?perPage=2&foo=bar&page=3",
    }
    assert testapp.get("/v1/users?perPage=2&page=9", headers=manager.headers).json == []
    # currentPage is an alias; page wins
    assert [u["username"] for u in testapp.get("/v1/users?perPage=2&currentPage=3", headers=manager.headers).json] == ["manager1"]
    assert [u["username"] for u in testapp.get("/v1/users?perPage=2&currentPage=3&page=1", headers=manager.headers).json] == ["user3", "user2"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("page=0", "page must not be less than 1"),
        ("page=100001", "page must not be greater than 100000"),
        ("perPage=101", "perPage must not be greater than 100"),
        ("perPage=1.5", "perPage must be an integer number"),
        ("page=1&page=2", "page must not be repeated"),
    ],
)
def test_users_list_rejects_bad_pagination(testapp, manager, query, message):
    response = testapp.get("/v1/users?" + query, headers=manager.headers, status=400)
    assert response.json["message"] == [message]
    assert response.json["errors"][0]["location"] == "querystring"


def test_empty_query_values_count_as_absent(testapp, manager):
    assert testapp.get("/v1/users?page=&perPage=", headers=manager.headers).headers["X-Total-Count"] == "1"


def test_a_customer_reads_their_own_account_with_tickets(testapp, customer):
    body = testapp.get("/v1/users/" + customer.id, headers=customer.headers).json
    assert body["username"] == "customer1" and body["tickets"] == []


def test_a_customer_cannot_read_another_account(testapp, customer, manager):
    response = testapp.get("/v1/users/" + manager.id, headers=customer.headers, status=403)
    assert response.json["message"] == "You can only access your own account"
    # ownership (403) comes before existence (404)
    testapp.get("/v1/users/" + UNKNOWN, headers=customer.headers, status=403)


def test_user_ids_are_case_insensitive(testapp, customer):
    assert testapp.get("/v1/users/" + customer.id.upper(), headers=customer.headers).json["id"] == customer.id


def test_a_manager_reads_any_account(testapp, manager, customer):
    assert testapp.get("/v1/users/" + customer.id, headers=manager.headers).json["id"] == customer.id
    response = testapp.get("/v1/users/" + UNKNOWN, headers=manager.headers, status=404)
    assert response.json == {"statusCode": 404, "error": "Not Found", "code": "USER_NOT_FOUND", "message": "User not found"}


def test_a_malformed_user_id_is_400_before_ownership(testapp, customer):
    response = testapp.get("/v1/users/not-a-uuid", headers=customer.headers, status=400)
    assert response.json["errors"] == [{"location": "path", "name": "userId", "description": "must be a UUID"}]


def test_user_tickets_are_for_managers(testapp, manager, customer):
    testapp.get("/v1/users/%s/tickets" % customer.id, headers=customer.headers, status=403)
    response = testapp.get("/v1/users/%s/tickets?filterByUse=used" % customer.id, headers=manager.headers)
    assert response.json == [] and response.headers["X-Total-Count"] == "0"
    testapp.get("/v1/users/%s/tickets" % UNKNOWN, headers=manager.headers, status=404)
    bad = testapp.get("/v1/users/%s/tickets?filterByUse=some" % customer.id, headers=manager.headers, status=400)
    assert bad.json["message"] == ["filterByUse must be one of the following values: all, used, unused"]


def test_users_list_requires_a_token(testapp):
    testapp.get("/v1/users", status=401)
