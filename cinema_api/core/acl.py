"""Permissions, principals and the contexts that carry ``__acl__``: deny by default.

Roles become principals in the security policy (``cinema_api.auth.security_policy``); every
rule of who may do what is an ACL here, ownership included (the owner's ``user:<id>``
principal), so no view checks roles or owners by hand.
"""

import uuid

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated
from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.schemas import UUID_RE

#: Any signed-in user may "use" the API; managers may "manage" it.
USE = "use"
MANAGE = "manage"
#: Reading an account with its tickets: managers, and the account's owner.
VIEW_ACCOUNT = "view_account"
#: Cancelling a ticket: managers, and the ticket's buyer.
CANCEL_TICKET = "cancel_ticket"
#: Reading one ticket: managers, and the ticket's buyer.
VIEW_TICKET = "view_ticket"

#: Who may call an operation guarded by each permission: the first line of its description in
#: the OpenAPI document, so the document says what the ACL does.
WHO_MAY_CALL = {
    NO_PERMISSION_REQUIRED: "Anyone: no token is needed.",
    USE: "Any authenticated user (a bearer access token).",
    MANAGE: "Managers only.",
    VIEW_ACCOUNT: "Managers, and the user themself (the owner of the account).",
    CANCEL_TICKET: "Managers (any ticket), and the ticket's buyer (the owner), under the rules below.",
    VIEW_TICKET: "Managers (any ticket), and the ticket's buyer (the owner).",
}

#: What a 403 says when a permission is denied (default: "You are not allowed to do this").
DENIED_MESSAGES = {
    VIEW_ACCOUNT: "You can only access your own account",
    CANCEL_TICKET: "You can only cancel your own tickets",
    VIEW_TICKET: "You can only view your own tickets",
}

#: Permissions granted to an owner: their 403 says NOT_OWNER (the others', FORBIDDEN: the role).
OWNERSHIP_PERMISSIONS = frozenset((VIEW_ACCOUNT, CANCEL_TICKET))

ROLE_PRINCIPALS = {
    "manager": ("role:manager",),
    "customer": ("role:customer",),
}


def user_principal(user_id):
    return "user:%s" % user_id


class Root:
    """The context of every API route: deny by default, grant by role."""

    __acl__ = [
        (Allow, "role:manager", ALL_PERMISSIONS),
        (Allow, Authenticated, USE),
    ]

    def __init__(self, request):
        pass  # the request keeps its context: a context keeping the request would be a cycle


def canonical_id(value):
    """The id as a :class:`uuid.UUID` when ``value`` is in the form the schemas accept (the
    canonical 8-4-4-4-12 hex form, either case), else None.

    ``uuid.UUID()`` alone also takes braces, no dashes and ``urn:uuid:``: an ACL built from
    such a form would answer the ownership 403 where the contract puts the schema's 400 first.
    Ownership only ever compares ids that passed this check."""
    if isinstance(value, str) and UUID_RE.fullmatch(value):
        return uuid.UUID(value)
    return None


def owner_of_path(name):
    """A context factory for routes whose ``{name}`` path segment names the owning user."""

    class OwnedByPathUser(Root):
        def __init__(self, request):
            super().__init__(request)
            owner_id = canonical_id(request.matchdict.get(name))
            # A malformed id is the schema's 400, which comes before the ownership 403.
            owner = user_principal(owner_id) if owner_id is not None else Authenticated
            self.__acl__ = Root.__acl__ + [(Allow, owner, VIEW_ACCOUNT)]

    return OwnedByPathUser


def owned_resource(name, find_owner, permission):
    """A context factory for routes whose ``{name}`` path segment names a resource owned by a
    user: ``find_owner(request, resource_id)`` gives the owner's id, or None when there is no
    such resource. The owner is granted ``permission`` (one, or a tuple of them).

    A malformed id (the schema's 400) and a missing resource (the view's 404) grant it to every
    authenticated user, so those answers are not hidden behind a 403.
    """

    class OwnedResource(Root):
        def __init__(self, request):
            super().__init__(request)
            resource_id = canonical_id(request.matchdict.get(name))
            # only the canonical form the schema accepts: any other is its 400
            owner = find_owner(request, resource_id) if resource_id is not None else None
            grantee = user_principal(owner) if owner is not None else Authenticated
            self.__acl__ = Root.__acl__ + [(Allow, grantee, permission)]

    return OwnedResource
