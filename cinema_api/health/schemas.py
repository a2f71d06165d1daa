"""Health check response schemas."""

import colander

STATUS_UP_DOWN = colander.OneOf(["up", "down"])


class ComponentStatus(colander.MappingSchema):
    """Whether one dependency answered."""

    status = colander.SchemaNode(colander.String(), validator=STATUS_UP_DOWN)


class HealthComponents(colander.MappingSchema):
    """The dependencies checked, by name."""

    database = ComponentStatus(missing=colander.drop)
    cache = ComponentStatus(missing=colander.drop)


class HealthCheck(colander.MappingSchema):
    """The health check: `info` lists the dependencies that are up, `error` those that are down, `details` all."""

    status = colander.SchemaNode(colander.String(), validator=colander.OneOf(["ok", "error"]))
    info = HealthComponents()
    error = HealthComponents()
    details = HealthComponents()



class Liveness(colander.MappingSchema):
    """The liveness probe: the process answers."""

    status = colander.SchemaNode(colander.String(), validator=colander.OneOf(["ok"]))
