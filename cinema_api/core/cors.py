"""CORS, only when ``CORS_ORIGINS`` is set: exact origins (or ``*``), preflights answered here.

Without ``CORS_ORIGINS`` no response carries CORS headers and the tween is not installed.
"""

from pyramid.response import Response

ALLOWED_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, If-None-Match, X-Trace-Id, traceparent"
EXPOSED_HEADERS = "X-Trace-Id, traceparent, X-Total-Count, Link, ETag, X-Cache, Retry-After, WWW-Authenticate"
PREFLIGHT_MAX_AGE = "600"


def cors_tween_factory(handler, registry):
    origins = frozenset(registry["cinema.settings"].cors_origins)
    if not origins:
        return handler
    any_origin = "*" in origins

    def cors_tween(request):
        origin = request.headers.get("Origin")
        if not origin or not (any_origin or origin in origins):
            response = handler(request)
            # the answer depends on Origin even when it grants nothing: shared caches must know
            response.vary = tuple(response.vary or ()) + ("Origin",)
            return response
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
            response.headers.update(
                {
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                }
            )
        else:
            response = handler(request)
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary = tuple(response.vary or ()) + ("Origin",)
        return response

    return cors_tween
