"""Ownership compares canonical ids only: any other form of an id is the schema's 400, which
comes before the ownership 403 (docs/API.md section 1, "Order of checks").

``uuid.UUID()`` also accepts braces, no dashes and ``urn:uuid:``; an ACL that parsed the path
with it answered 403 for another user's id written that way.
"""

import pytest

from tests.functional.test_tickets import buy, show  # noqa: F401 (a fixture)

UNKNOWN_SESSION = "0b7e6f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"

NON_CANONICAL_FORMS = {
    "braces": lambda uid: "{%s}" % uid,
    "no dashes": lambda uid: uid.replace("-", ""),
    "urn": lambda uid: "urn:uuid:" + uid,
    "upper-case braces": lambda uid: "{%s}" % uid.upper(),
}
PATH_400 = [{"location": "path", "name": "userId", "description": "must be a UUID"}]


@pytest.mark.parametrize("form", NON_CANONICAL_FORMS, ids=list(NON_CANONICAL_FORMS))
def test_another_users_id_in_a_non_canonical_form_is_400_not_403(testapp, customer, manager, form):
    response = testapp.get("/v1/users/" + NON_CANONICAL_FORMS[form](manager.id), headers=customer.headers, status=400)
    assert response.json["errors"] == PATH_400


@pytest.mark.parametrize("form", NON_CANONICAL_FORMS, ids=list(NON_CANONICAL_FORMS))
def test_ones_own_id_in_a_non_canonical_form_is_400_too(testapp, customer, form):
    response = testapp.get("/v1/users/" + NON_CANONICAL_FORMS[form](customer.id), headers=customer.headers, status=400)
    assert response.json["errors"] == PATH_400


def test_upper_case_is_canonical_so_another_users_id_is_403_and_ones_own_200(testapp, customer, manager):
    response = testapp.get("/v1/users/" + manager.id.upper(), headers=customer.headers, status=403)
    assert response.json["message"] == "You can only access your own account"
    assert testapp.get("/v1/users/" + customer.id.upper(), headers=customer.headers).json["id"] == customer.id


@pytest.mark.parametrize("form", NON_CANONICAL_FORMS, ids=list(NON_CANONICAL_FORMS))
def test_a_non_canonical_user_id_in_a_purchase_is_400_before_the_ownership_403(testapp, customer, manager, form):
    body = {"sessionId": UNKNOWN_SESSION, "userId": NON_CANONICAL_FORMS[form](manager.id)}
    response = testapp.post_json("/v1/tickets", body, headers=customer.headers, status=400)
    assert response.json["errors"] == [{"location": "body", "name": "userId", "description": "must be a UUID"}]


def test_an_upper_case_user_id_in_a_purchase_is_compared_canonically(testapp, customer, manager):
    other = {"sessionId": UNKNOWN_SESSION, "userId": manager.id.upper()}
    response = testapp.post_json("/v1/tickets", other, headers=customer.headers, status=403)
    assert response.json["message"] == "You can only buy tickets for yourself"
    # one's own id in upper case passes ownership: the next check is the session's 404
    own = {"sessionId": UNKNOWN_SESSION, "userId": customer.id.upper()}
    testapp.post_json("/v1/tickets", own, headers=customer.headers, status=404)


@pytest.mark.parametrize("form", NON_CANONICAL_FORMS, ids=list(NON_CANONICAL_FORMS))
def test_a_non_canonical_id_of_another_users_ticket_is_400_before_the_ownership_403(testapp, customer, manager, show, form):
    ticket_id = buy(testapp, manager, show[1][0]["id"]).json["id"]
    response = testapp.delete("/v1/tickets/" + NON_CANONICAL_FORMS[form](ticket_id), headers=customer.headers, status=400)
    assert response.json["errors"][0]["name"] == "ticketId"
    testapp.delete("/v1/tickets/" + ticket_id.upper(), headers=customer.headers, status=403)


@pytest.mark.parametrize("form", NON_CANONICAL_FORMS, ids=list(NON_CANONICAL_FORMS))
def test_a_non_canonical_id_of_a_users_tickets_is_403_by_role_then_400(testapp, customer, manager, form):
    path = "/v1/users/%s/tickets" % NON_CANONICAL_FORMS[form](customer.id)
    testapp.get(path, headers=customer.headers, status=403)  # the role's 403 comes first
    assert testapp.get(path, headers=manager.headers, status=400).json["errors"] == PATH_400
