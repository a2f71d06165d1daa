"""Health check response schemas."""

import colander

STATUS_UP_DOWN = colander.OneOf(["up", "down"])


class ComponentStatus(colander.MappingSchema):
    status = colander.SchemaNode(colander.String(), validator=STATUS_UP_DOWN)


class HealthComponents(colander.MappingSchema):
    database = ComponentStatus(missing=colander.drop)
    cache = ComponentStatus(missing=colander.drop)


class HealthCheck(colander.MappingSchema):
    status = colander.SchemaNode(colander.String(), validator=colander.OneOf(["ok", "error"]))
    info = HealthComponents()
    error = HealthComponents()
    details = HealthComponents()


class HealthResponse(colander.MappingSchema):
    body = HealthCheck()
