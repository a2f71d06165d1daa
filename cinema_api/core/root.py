"""GET /: what this service is and where its documentation lives."""

import colander
from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.api import ApiService, reply, responses
from cinema_api.core.docs import DOCS_PATH, SPEC_PATH

root = ApiService(name="root", path="/", prefix="", needs_database=False)


class ServiceDescription(colander.MappingSchema):
    """What this service is, its version and where its documentation lives."""

    name = colander.SchemaNode(colander.String())
    description = colander.SchemaNode(colander.String())
    version = colander.SchemaNode(colander.String())
    availableVersions = colander.SequenceSchema(colander.SchemaNode(colander.String(), name="version"))
    docsUrl = colander.SchemaNode(colander.String())
    openapiUrl = colander.SchemaNode(colander.String())


def service_description(version):
    return {
        "name": "cinema_api",
        "description": "Cinema back office API: movies, screenings, accounts and tickets",
        "version": version,
        "availableVersions": ["v1"],
        "docsUrl": DOCS_PATH,
        "openapiUrl": SPEC_PATH,
    }


@root.get(
    permission=NO_PERMISSION_REQUIRED,
    response_schemas=responses({"200": reply(ServiceDescription(), "Service description")}),
)
def get_root(request):
    """Describe the service

    The name and version of the service, the API versions it serves, and where its
    documentation lives: the Swagger UI (`docsUrl`) and this OpenAPI document (`openapiUrl`;
    the same as YAML at `/v1/api-yaml`). Needs no database: it answers while the database is down.
    """
    return request.registry["cinema.root_body"]


def includeme(config):
    config.registry["cinema.root_body"] = service_description(config.registry["cinema.version"])
    config.add_cornice_service(root)
