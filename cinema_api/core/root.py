"""GET /: what this service is and where its documentation lives."""

import colander
from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.api import ApiService
from cinema_api.core.openapi import DOCS_PATH, SPEC_PATH

root = ApiService(name="root", path="/", prefix="")


class ServiceDescription(colander.MappingSchema):
    name = colander.SchemaNode(colander.String())
    description = colander.SchemaNode(colander.String())
    version = colander.SchemaNode(colander.String())
    availableVersions = colander.SequenceSchema(colander.SchemaNode(colander.String(), name="version"))
    docsUrl = colander.SchemaNode(colander.String())
    openapiUrl = colander.SchemaNode(colander.String())


class ServiceDescriptionResponse(colander.MappingSchema):
    body = ServiceDescription()


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
    tags=["root"],
    operation_id="getRoot",
    response_schemas={"200": ServiceDescriptionResponse(description="Service description")},
)
def get_root(request):
    return request.registry["cinema.root_body"]


def includeme(config):
    config.registry["cinema.root_body"] = service_description(config.registry["cinema.version"])
    config.add_cornice_service(root)
