"""The OpenAPI generator: colander schemas as JSON Schema 2020-12, operations from Cornice services."""

import colander
import pytest
from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.acl import MANAGE, VIEW_ACCOUNT
from cinema_api.core.api import ApiService, LocationHeaders, NoContent, reply, responses
from cinema_api.core.errors import Conflict
from cinema_api.core.jsonschema import SchemaSet, example_of
from cinema_api.core.openapi import DocumentBuilder, DocumentError, camel_case
from cinema_api.core.schemas import (
    ArraySchema,
    Bounds,
    Choice,
    FirstOf,
    ItemCount,
    LengthBounds,
    ObjectSchema,
    Pattern,
    datetime_node,
    integer_node,
    string_node,
    uuid_node,
)


def convert(node, **kw):
    return SchemaSet().convert(node, **kw)


# ---------------------------------------------------------------- types and validators


@pytest.mark.parametrize(
    "node, expected",
    [
        (integer_node(), {"type": "integer"}),
        (string_node(), {"type": "string"}),
        (uuid_node(), {"type": "string", "format": "uuid"}),
        (datetime_node(), {"type": "string", "format": "date-time"}),
        (colander.SchemaNode(colander.Boolean()), {"type": "boolean"}),
        (colander.SchemaNode(colander.Integer()), {"type": "integer"}),
    ],
)
def test_scalar_types_have_their_json_schema_type_and_format(node, expected):
    assert convert(node) == expected


def test_bounds_lengths_choices_and_patterns_become_keywords():
    assert convert(integer_node(validator=Bounds(0, 21))) == {"type": "integer", "minimum": 0, "maximum": 21}
    assert convert(integer_node(validator=Bounds(1, None))) == {"type": "integer", "minimum": 1}
    assert convert(string_node(validator=LengthBounds(1, 200))) == {"type": "string", "minLength": 1, "maxLength": 200}
    assert convert(string_node(validator=Choice(["asc", "desc"]))) == {"type": "string", "enum": ["asc", "desc"]}
    assert convert(string_node(validator=Pattern("[a-z]+", "lower case only"))) == {"type": "string", "pattern": "^(?:[a-z]+)$"}


def test_validators_in_sequence_contribute_every_keyword():
    rules = FirstOf(LengthBounds(3, 50), Pattern("[A-Za-z]+", "letters only"))
    assert convert(string_node(validator=rules)) == {"type": "string", "minLength": 3, "maxLength": 50, "pattern": "^(?:[A-Za-z]+)$"}


def test_a_length_in_bytes_publishes_only_its_upper_bound_in_characters():
    # 8 bytes can be 2 characters: minLength 8 would refuse valid passwords.
    assert convert(string_node(validator=LengthBounds(8, 72, unit="bytes"))) == {"type": "string", "maxLength": 72}


def test_an_unpublished_pattern_is_left_out():
    assert convert(string_node(validator=Pattern("(?=.*[^\\W\\d_]).*", "needs a letter", published=False))) == {"type": "string"}


def test_a_rule_of_its_own_is_described_in_words_not_in_keywords():
    def in_the_future(node, value):
        pass

    assert convert(datetime_node(validator=in_the_future)) == {"type": "string", "format": "date-time"}


def test_an_unknown_type_or_validator_is_an_error_not_a_vague_schema():
    class Money(colander.SchemaType):
        pass

    with pytest.raises(TypeError, match="Money"):
        convert(colander.SchemaNode(Money()))
    with pytest.raises(TypeError, match="validator"):
        convert(string_node(validator=colander.ContainsOnly(["a"])))


def test_arrays_carry_their_item_count():
    class Ids(ArraySchema):
        id = uuid_node()

    assert convert(Ids(validator=ItemCount(1, 1000))) == {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "minItems": 1,
        "maxItems": 1000,
    }


# ---------------------------------------------------------------- objects and components


class Thing(ObjectSchema):
    """A thing."""

    name = string_node(example="lamp")
    size = integer_node(missing=colander.drop, example=3)
    order = string_node(validator=Choice(["asc", "desc"]), missing="asc")
    usedAt = datetime_node(missing=None, description="null until used")


def test_a_named_object_becomes_a_component_and_a_reference():
    schemas = SchemaSet()
    assert schemas.convert(Thing()) == {"$ref": "#/components/schemas/Thing"}
    thing = schemas.components["Thing"]
    assert thing["title"] == "Thing" and thing["description"] == "A thing."
    assert thing["required"] == ["name", "usedAt"]  # dropped and defaulted fields may be left out
    assert thing["properties"]["order"]["default"] == "asc"
    assert thing["properties"]["name"]["examples"] == ["lamp"]


def test_a_nullable_field_is_a_type_list():
    usedAt = SchemaSet().convert(Thing(), inline=True)["properties"]["usedAt"]
    assert usedAt == {"type": ["string", "null"], "format": "date-time", "description": "null until used"}


def test_an_anonymous_object_stays_inline():
    node = colander.MappingSchema(string_node(name="a"))
    schemas = SchemaSet()
    assert schemas.convert(node) == {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert schemas.components == {}


def test_two_different_schemas_cannot_share_a_name():
    schemas = SchemaSet()
    schemas.convert(Thing())

    class Other(ObjectSchema):
        other = string_node()

    Other.__name__ = "Thing"
    with pytest.raises(ValueError, match="both named Thing"):
        schemas.convert(Other())


def test_the_example_of_a_body_is_built_from_its_fields():
    class Item(ObjectSchema):
        name = string_node(example="lamp")
        size = integer_node(missing=colander.drop, example=3)
        order = string_node(missing="asc")  # optional, no example: left out

    class Many(ObjectSchema):
        things = ArraySchema(Item())

    assert example_of(Many()) == {"things": [{"name": "lamp", "size": 3}]}


def test_a_required_field_without_an_example_is_an_error():
    class Bare(ObjectSchema):
        title = string_node()

    with pytest.raises(ValueError, match="title"):
        example_of(Bare())


# ---------------------------------------------------------------- operations


class ThingBody(ObjectSchema):
    """A thing to create."""

    name = string_node(example="lamp")


class CreateThingRequest(colander.MappingSchema):
    path = ObjectSchema(uuid_node(name="shopId"))
    body = ThingBody()


TAGS = [{"name": name, "description": "The %s" % name} for name in ("shops", "things", "ping")]


def build(service):
    return DocumentBuilder(TAGS).document([service], "1.0")


class ThingExists(Conflict):
    code = "CONFLICT"


def thing_service(name, **kw):
    return ApiService(name="unit_" + name, path="/shops/{shopId}/things", **kw)


def create_thing(request):
    """Create a thing

    Things are unique.
    """


def test_an_operation_is_derived_from_the_view_the_permission_and_the_schema():
    service = thing_service("derived")
    service.add_view(
        "POST",
        create_thing,
        schema=CreateThingRequest(),
        permission=MANAGE,
        response_schemas=responses(
            {"201": reply(ThingBody(), "Created", LocationHeaders())},
            why={"409": "`Thing already exists`"},
            raises=[ThingExists],
        ),
    )
    operation = build(service)["paths"]["/v1/shops/{shopId}/things"]["post"]
    assert operation["operationId"] == "createThing"
    assert operation["tags"] == ["shops"]
    assert operation["summary"] == "Create a thing"
    assert operation["description"] == "**Who may call:** Managers only.\n\nThings are unique."
    assert operation["security"] == [{"bearer": []}]
    assert set(operation["responses"]) == {"201", "400", "401", "403", "409", "413", "415", "503"}
    assert operation["responses"]["409"]["description"] == "`Thing already exists`\n\nCodes: `CONFLICT`"
    assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}
    assert operation["responses"]["201"]["headers"]["Location"]["required"] is True
    assert operation["requestBody"]["content"]["application/json"]["example"] == {"name": "lamp"}
    assert operation["parameters"] == [
        {"name": "shopId", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    ]


def test_each_error_response_lists_its_codes_declared_and_derived():
    service = thing_service("codes")
    service.add_view(
        "POST",
        create_thing,
        schema=CreateThingRequest(),
        permission=VIEW_ACCOUNT,
        response_schemas=responses({"201": reply(ThingBody(), "Created")}, raises=[ThingExists]),
    )
    document = build(service)
    answers = document["paths"]["/v1/shops/{shopId}/things"]["post"]["responses"]

    def codes(status):
        answer = answers[status]
        if "$ref" in answer:
            answer = document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        body = answer["content"]["application/json"]["schema"]
        listed = body["allOf"][1]["properties"]["code"]["enum"]
        assert answer["description"].endswith("Codes: " + ", ".join("`%s`" % code for code in listed))
        return listed

    assert codes("400") == ["VALIDATION_FAILED", "MALFORMED_JSON"]
    assert codes("401") == ["AUTHENTICATION_REQUIRED", "INVALID_TOKEN"]
    assert codes("403") == ["NOT_OWNER"]  # an ownership permission
    assert codes("409") == ["CONFLICT"]
    assert codes("413") == ["BODY_TOO_LARGE"] and codes("415") == ["UNSUPPORTED_MEDIA_TYPE"]
    assert codes("503") == ["DATABASE_UNAVAILABLE"]
    assert answers["401"] == {"$ref": "#/components/responses/Unauthorized"}  # shared: the same codes everywhere
    assert "$ref" not in answers["403"]  # not the shared 403 (FORBIDDEN)


def test_an_error_response_that_names_no_code_is_refused():
    service = thing_service("no_code")
    service.add_view(
        "POST", create_thing, schema=CreateThingRequest(),
        response_schemas=responses({"201": reply(ThingBody(), "Created")}, why={"409": "`Thing already exists`"}),
    )
    with pytest.raises(DocumentError, match="response 409 names no error code"):
        build(service)


def test_a_raised_error_without_a_code_of_its_own_is_refused():
    class Vague(ThingExists):
        pass

    with pytest.raises(ValueError, match="Vague names no error code"):
        responses({"201": reply(ThingBody(), "Created")}, raises=[Vague])
    with pytest.raises(ValueError, match="not a registered error code"):
        type("Misspelt", (Conflict,), {"code": "CONFLIKT"})


def test_documentation_arguments_never_reach_pyramid():
    service = thing_service("pyramid")
    service.add_view(
        "POST", create_thing, schema=CreateThingRequest(), tags=["x"], operation_id="x", api_security=[], response_schemas={}
    )
    (_, _, args), = service.definitions
    assert not {"tags", "operation_id", "api_security", "response_schemas"} & set(args)


def test_a_view_may_override_tags_operation_id_and_security():
    service = thing_service("override", tags=["things"])
    service.add_view(
        "POST",
        create_thing,
        schema=CreateThingRequest(),
        permission=NO_PERMISSION_REQUIRED,
        operation_id="makeThing",
        api_security=[{}, {"bearer": []}],
        response_schemas=responses({"201": reply(ThingBody(), "Created")}),
    )
    operation = build(service)["paths"]["/v1/shops/{shopId}/things"]["post"]
    assert (operation["operationId"], operation["tags"], operation["security"]) == ("makeThing", ["things"], [{}, {"bearer": []}])
    assert "401" not in operation["responses"] and "403" not in operation["responses"]


def test_an_authenticated_user_without_a_role_rule_gets_no_403_and_no_database_no_503():
    def ping(request):
        """Ping"""

    service = ApiService(name="unit_ping", path="/ping", needs_database=False)
    service.add_view("GET", ping, response_schemas=responses({"204": NoContent(description="Pong")}))
    operation = build(service)["paths"]["/v1/ping"]["get"]
    assert set(operation["responses"]) == {"204", "401", "413", "415"}
    assert operation["description"].startswith("**Who may call:** Any authenticated user")


@pytest.mark.parametrize("permission, who", [(VIEW_ACCOUNT, "the owner"), (NO_PERMISSION_REQUIRED, "Anyone")])
def test_the_description_says_who_may_call(permission, who):
    service = thing_service("who_%s" % who.replace(" ", "_"))
    service.add_view(
        "POST", create_thing, schema=CreateThingRequest(), permission=permission,
        response_schemas=responses({"201": reply(ThingBody(), "Created")}),
    )
    operation = build(service)["paths"]["/v1/shops/{shopId}/things"]["post"]
    assert who in operation["description"].split("\n\n")[0]


def undocumented(request):
    pass


@pytest.mark.parametrize(
    "view, kwargs, complaint",
    [
        (undocumented, {"response_schemas": responses({"200": reply(None, "OK")})}, "no docstring"),
        (create_thing, {}, "no success response"),
        (create_thing, {"permission": "juggle", "response_schemas": responses({"200": reply(None, "OK")})}, "WHO_MAY_CALL"),
        (create_thing, {"tags": ["nowhere"], "response_schemas": responses({"200": reply(None, "OK")})}, "description in TAGS"),
        (create_thing, {"response_schemas": {"200": colander.MappingSchema()}}, "no description"),
    ],
)
def test_an_operation_that_is_not_documented_enough_is_refused(view, kwargs, complaint):
    service = thing_service("refused_%s" % complaint.replace(" ", "_"))
    service.add_view("POST", view, schema=CreateThingRequest(), **kwargs)
    with pytest.raises(DocumentError, match=complaint):
        build(service)


def test_path_placeholders_and_the_path_schema_must_agree():
    service = ApiService(name="unit_placeholders", path="/shops/{shopId}/things/{thingId}")
    service.add_view("POST", create_thing, schema=CreateThingRequest(), response_schemas=responses({"200": reply(None, "OK")}))
    with pytest.raises(DocumentError, match="path schema"):
        build(service)


def test_operation_ids_are_the_view_names_in_camel_case():
    assert camel_case("list_sessions_of_movie") == "listSessionsOfMovie"
    assert camel_case("logout") == "logout"
    assert camel_case("refresh_token_view") == "refreshToken"
