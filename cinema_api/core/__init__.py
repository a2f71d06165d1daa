"""What every domain shares: errors, request checks, trace ids, metrics, the API description."""

from pyramid.tweens import EXCVIEW, INGRESS


def includeme(config):
    config.include("cinema_api.core.request")
    config.include("cinema_api.core.errors")
    config.include("cinema_api.core.metrics")
    config.add_tween("cinema_api.core.trace.trace_id_tween_factory", under=INGRESS)
    config.add_tween(
        "cinema_api.core.cors.cors_tween_factory",
        under="cinema_api.core.trace.trace_id_tween_factory",
        over=EXCVIEW,
    )
    # Every request, error responses included: its log context, access line and metrics.
    config.add_tween(
        "cinema_api.core.logs.request_context_tween_factory",
        under="cinema_api.core.trace.trace_id_tween_factory",
        over=EXCVIEW,
    )
    # Under the exception view tween, so its 413 and 415 are rendered as JSON errors.
    config.add_tween("cinema_api.core.body.body_limits_tween_factory", under=EXCVIEW)
    config.include("cinema_api.core.docs")
    config.include("cinema_api.core.root")
