"""The API description served by the app itself: the OpenAPI document as JSON and YAML, and the
Swagger UI whose assets (from the swagger-ui-py package) are served locally: the page asks
nothing of any other host, and its Content-Security-Policy says so to the browser.
"""

import base64
import hashlib
import os
from importlib.util import find_spec

from pyramid.httpexceptions import HTTPNotFound
from pyramid.response import FileResponse, Response
from pyramid.security import NO_PERMISSION_REQUIRED

from cinema_api.core.api import ApiService
from cinema_api.core.openapi import DocumentCache

DOCS_PATH = "/v1/api"
SPEC_PATH = "/v1/api-json"
YAML_PATH = "/v1/api-yaml"
ASSETS_PATH = "/v1/api/assets"
#: Swagger UI 5 (it renders OpenAPI 3.1), located without importing the package's web handlers.
ASSETS_DIR = os.path.join(find_spec("swagger_ui").submodule_search_locations[0], "static")
#: The files the page uses; the package's stock index.html, initializer (which loads a demo
#: document from another host), OAuth2 redirect page and editor are not served.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
ASSET_MAX_AGE = 86400


def openapi_json_view(request):
    body = request.registry["cinema.openapi"].bodies(request.registry)["json"]
    return Response(body=body, content_type="application/json", charset="utf-8")


def openapi_yaml_view(request):
    body = request.registry["cinema.openapi"].bodies(request.registry)["yaml"]
    return Response(body=body, content_type="application/yaml")


SWAGGER_UI_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Cinema API</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/swagger-ui-standalone-preset.js"></script>
  <script>{initializer}</script>
</body>
</html>
"""

# The token typed into Authorize lives in the page's memory only (no persistAuthorization).
INITIALIZER = """
    window.ui = SwaggerUIBundle({
      url: "%s",
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  """ % SPEC_PATH

#: Only this origin, and only the one inline script above (by its hash); no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'sha256-%s'" % base64.b64encode(hashlib.sha256(INITIALIZER.encode()).digest()).decode(),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


def swagger_ui_view(request):
    page = SWAGGER_UI_PAGE.format(assets=ASSETS_PATH, initializer=INITIALIZER)
    response = Response(body=page.encode("utf-8"), content_type="text/html", charset="utf-8")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def asset_view(request):
    """One file of the Swagger UI, by name; anything else is a 404."""
    name = request.matchdict["name"]
    if name not in ASSETS:
        raise HTTPNotFound()
    path = os.path.join(ASSETS_DIR, name)
    return FileResponse(path, request=request, cache_max_age=ASSET_MAX_AGE, content_type=ASSETS[name])


def _documentation_services():
    for name, path, view in (
        ("openapi", SPEC_PATH, openapi_json_view),
        ("openapi_alias", "/api-json", openapi_json_view),
        ("openapi_yaml", YAML_PATH, openapi_yaml_view),
        ("openapi_yaml_alias", "/api-yaml", openapi_yaml_view),
        ("docs", DOCS_PATH, swagger_ui_view),
        ("docs_alias", "/api", swagger_ui_view),
    ):
        service = ApiService(name=name, path=path, prefix="", documented=False, needs_database=False)
        service.add_view("GET", view, permission=NO_PERMISSION_REQUIRED)
        yield service


def includeme(config):
    config.registry["cinema.openapi"] = DocumentCache()
    config.add_route("docs_assets", ASSETS_PATH + "/{name}")
    config.add_view(asset_view, route_name="docs_assets", request_method="GET", permission=NO_PERMISSION_REQUIRED)
    for service in _documentation_services():
        config.add_cornice_service(service)
