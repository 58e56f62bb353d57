"""flask-smorest, fitted to the contract in API.md.

- `Api` documents the bearer scheme, the one error envelope, the server and the request
  examples (eventbook/examples.py), and serves the document with its own address.
- `Blueprint.auth(...)` declares who may call a view and documents the 401/403;
  `Blueprint.no_body` marks a view that takes no body (any field sent is unknown: 422).
- `ArgsParser` reads JSON bodies through `eventbook.web.Request.get_json` (every body
  that is not a JSON object is a 400 there) and keys field errors by field name.
- `docs_assets` serves Swagger UI's files from the installed package (no CDN).
"""

import http
from functools import wraps

import flask
import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask_jwt_extended import current_user, decode_token, verify_jwt_in_request
from flask_jwt_extended.exceptions import CSRFError
from swagger_ui_bundle import swagger_ui_path
from webargs.flaskparser import FlaskParser

from eventbook.errors import ErrorSchema, error, handle_http_exception
from eventbook.examples import ExamplesPlugin


class ArgsParser(FlaskParser):
    def load_json(self, req, schema):
        # No JSON content type: no body (a body of another type is a 415 in eventbook.web).
        if not req.is_json:
            return ma.missing
        return req.get_json()

    def handle_error(self, err, req, schema, *, error_status_code, error_headers):
        # Field errors keyed by field name (not by location), as API.md shows.
        errors = {}
        for location_errors in err.messages.values():
            if isinstance(location_errors, dict):
                errors.update(location_errors)
            else:
                errors["_schema"] = location_errors
        error(422, "validation_error", "The request has invalid fields", errors=errors)


# `make run`'s address: where a document written by `flask openapi write` points. The
# document served at /api/openapi.json names the server that served it instead.
SERVER = {
    "url": "http://127.0.0.1:5000",
    "description": "make run",
    # Not part of the URL: Postman's import makes server variables collection variables,
    # which declares the one its bearer auth sends ({{bearerToken}}).
    "variables": {"bearerToken": {"default": "", "description": "Postman: the token of POST /api/auth/login"}},
}


def self_documenting(config):
    """The document itself and Swagger UI, where the settings serve them (none when
    OPENAPI_URL_PREFIX is None): path -> (summary, media type, schema). The document
    lists both (`Api.document_itself`); they are its only operations that do not read
    the database."""
    prefix = config.get("OPENAPI_URL_PREFIX")
    if prefix is None:
        return {}

    def url(path):
        return "/" + "/".join(part.strip("/") for part in (prefix, path) if part.strip("/"))

    served = {url(config["OPENAPI_JSON_PATH"]): ("The OpenAPI 3 document of this API, naming this server",
                                                 "application/json", {"type": "object"})}
    if config.get("OPENAPI_SWAGGER_UI_PATH"):
        served[url(config["OPENAPI_SWAGGER_UI_PATH"])] = ("Swagger UI on this document, served without any CDN",
                                                          "text/html", {"type": "string"})
    return served


# Every operation that reads the database may answer 503 (with Retry-After) without it.
UNAVAILABLE = {"description": "unavailable: the database cannot be reached, or is busy (a row lock not granted in "
                           "time, a statement past DB_STATEMENT_TIMEOUT_SECONDS); try again after Retry-After "
                           "seconds"}

BODY_ERRORS = {
    "400": "bad_request: the body is not JSON, or not a JSON object, or an object in it names a member twice",
    "413": "payload_too_large: the body is over MAX_BODY_BYTES (64 KiB)",
    "415": "unsupported_media_type: a body without a JSON Content-Type, or with a Content-Encoding (compressed)",
}


REQUEST_ID = {"description": "the request's id, as the logs show it: the client's X-Request-ID when it is made of "
                             "up to 128 letters, digits and '. _ : = + / @ -', else a new one",
              "schema": {"type": "string"}}
RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
WWW_AUTHENTICATE = {"description": "how to authenticate: `Bearer`", "schema": {"type": "string"}}
# Sent by a rate-limited operation's answers only when RATELIMIT_HEADERS_ENABLED is true.
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": "the requests the tightest limit allows in its window (with RATELIMIT_HEADERS_ENABLED)",
    "X-RateLimit-Remaining": "the requests left in that window (with RATELIMIT_HEADERS_ENABLED)",
    "X-RateLimit-Reset": "when that window ends, in seconds since the epoch (with RATELIMIT_HEADERS_ENABLED)",
}


class ErrorsPlugin(BasePlugin):
    """Every error response the document lists answers the envelope: a 4xx or 5xx
    declared with a description only (`alt_response(409, description=...)`) gets the
    Error schema as its JSON body, through apispec's public plugin hooks. An operation
    that takes a body lists the errors of a body that cannot be read (BODY_ERRORS), and
    every operation the 503 of a database out of reach. Every response has its
    X-Request-ID header, a 429 or 503 its Retry-After, a 401 its WWW-Authenticate; the
    answers of a rate-limited operation (one that documents a 429) its X-RateLimit-*
    headers, sent when RATELIMIT_HEADERS_ENABLED is on."""

    def __init__(self, self_documenting):
        self.self_documenting = self_documenting

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if path not in self.self_documenting:
                operation.setdefault("responses", {}).setdefault("503", dict(UNAVAILABLE))
            if "requestBody" in operation:
                for status, description in BODY_ERRORS.items():
                    operation.setdefault("responses", {}).setdefault(status, {"description": description})
            rate_limited = "429" in {str(status) for status in operation.get("responses", {})}
            for status, response in operation.get("responses", {}).items():
                if not isinstance(response, dict) or "$ref" in response:
                    continue  # a component: response_helper
                if str(status)[0] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": "Error"}}  # ERROR_SCHEMA's component
                response.update(self._headers(status, response))
                if rate_limited and str(status)[0] in "234":
                    response["headers"].update({name: {"$ref": f"#/components/headers/{name}"}
                                                for name in RATE_LIMIT_HEADERS})

    def response_helper(self, response, **kwargs):
        return self._headers(None, response)

    @staticmethod
    def _headers(status, response):
        headers = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}, **(response.get("headers") or {})}
        if str(status) in ("429", "503"):
            headers.setdefault("Retry-After", {"$ref": "#/components/headers/Retry-After"})
        if str(status) == "401":
            headers.setdefault("WWW-Authenticate", {"$ref": "#/components/headers/WWW-Authenticate"})
        return {"headers": headers}


# Settings a field's limits in the document may name (`{"maximum": "MAX_TICKETS_PER_BOOKING"}`):
# the document states this server's value.
DOCUMENTED_SETTINGS = ("MAX_TICKETS_PER_BOOKING",)


class RulesPlugin(BasePlugin):
    """Writes into the document the rules a schema states beyond its fields: its
    `OPENAPI_RULES` (JSON Schema keywords, such as `oneOf`); that every read-only
    property is always sent (`required`: OpenAPI applies a read-only one to responses
    only; a null value is sent as null); and the value of a setting a property's limit
    names (`DOCUMENTED_SETTINGS`). Through apispec's public plugin hook, which sees the
    definition the marshmallow plugin made."""

    def __init__(self, config):
        super().__init__()
        self.settings = {name: config[name] for name in DOCUMENTED_SETTINGS}

    def schema_helper(self, name, definition, schema=None, **kwargs):
        rules = dict(getattr(schema, "OPENAPI_RULES", None) or {})
        properties = (definition or {}).get("properties", {})
        always = [key for key, prop in properties.items() if isinstance(prop, dict) and prop.get("readOnly")]
        required = list(dict.fromkeys([*(definition or {}).get("required", []), *always]))
        if required:
            rules["required"] = required
        filled = {key: self._filled(prop) for key, prop in properties.items()}
        if filled != properties:
            rules["properties"] = filled
        return rules or None

    def _filled(self, prop):
        if not isinstance(prop, dict):
            return prop
        return {keyword: self.settings.get(value, value) if isinstance(value, str) else value
                for keyword, value in prop.items()}


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, exc):
        """Every HTTP error in the one envelope (flask-smorest registers this for
        HTTPException; its own body has `code` the number)."""
        return handle_http_exception(exc)

    def init_app(self, app, *, spec_kwargs=None):
        self.self_documenting = self_documenting(app.config)
        plugins = [ExamplesPlugin(), RulesPlugin(app.config), ErrorsPlugin(self.self_documenting)]
        spec_kwargs = {"servers": [SERVER], "extra_plugins": plugins, **(spec_kwargs or {})}
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.header("X-Request-ID", REQUEST_ID)
        self.spec.components.header("Retry-After", RETRY_AFTER)
        self.spec.components.header("WWW-Authenticate", WWW_AUTHENTICATE)
        for name, description in RATE_LIMIT_HEADERS.items():
            self.spec.components.header(name, {"description": description, "schema": {"type": "integer"}})
        self.spec.components.security_scheme(
            "bearerAuth",
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
             "description": "the `token` of POST /api/auth/login (a `refreshToken` for POST /api/auth/refresh)"},
        )
        # The browser's session: the refresh cookie, with its CSRF value echoed in a header.
        self.spec.components.security_scheme(
            "refreshCookie", {"type": "apiKey", "in": "cookie", "name": app.config["JWT_REFRESH_COOKIE_NAME"]}
        )
        self.spec.components.security_scheme("csrfHeader", {
            "type": "apiKey", "in": "header", "name": app.config["JWT_REFRESH_CSRF_HEADER_NAME"],
            "description": f"the value of the {app.config['JWT_REFRESH_CSRF_COOKIE_NAME']} cookie",
        })
        if self.self_documenting:  # the document is served
            json_url = next(iter(self.self_documenting))  # the document's own path comes first
            endpoint, _ = app.url_map.bind("localhost").match(json_url)
            app.view_functions[endpoint] = self.served_document
            self.document_itself(app)

    def document_itself(self, app):
        """GET /api/openapi.json and GET /api/docs are endpoints of the API too: the
        document lists them (flask-smorest serves both, outside its own document)."""
        self.spec.tag({"name": "docs", "description": "This document, and Swagger UI to read and try it"})
        for path, (summary, media, schema) in self.self_documenting.items():
            rule, _ = app.url_map.bind("localhost").match(path, return_rule=True)
            self.spec.path(rule=rule, operations={"get": {
                "summary": summary, "tags": ["docs"],
                "responses": {"200": {"description": "OK", "content": {media: {"schema": schema}}}},
            }})

    def served_document(self):
        """The document, its server being this deployment: PUBLIC_URL, or relative to
        where the document is read (never the request's Host header)."""
        document = self.spec.to_dict()  # apispec's own options dict: changed in a copy only
        url = flask.current_app.config["PUBLIC_URL"] or "/"
        document = {**document, "servers": [{**server, "url": url, "description": "this server"}
                                            for server in document["servers"][:1]]}
        return flask.current_app.response_class(flask.json.dumps(document, indent=2, sort_keys=False),
                                                mimetype="application/json")


def _csrf_uncomparable():
    """Did the session cookie's CSRF check fail because hmac.compare_digest refuses to
    compare its two values: a header of text that is not ASCII, or a token whose `csrf`
    claim is not ASCII text (only a holder of our key could sign one)? A value that
    cannot match is a wrong one."""
    config = flask.current_app.config
    if not flask.request.headers.get(config["JWT_REFRESH_CSRF_HEADER_NAME"], "").isascii():
        return True
    try:
        claim = decode_token(flask.request.cookies[config["JWT_REFRESH_COOKIE_NAME"]], allow_expired=True).get("csrf")
    except Exception:  # noqa: BLE001 - no cookie, or not a token of ours: the TypeError came from elsewhere
        return False
    return not (isinstance(claim, str) and claim.isascii())


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgsParser()

    def auth(self, *roles, refresh=False, any_token=False, cookie=False, unauthorized=None):
        """Require a valid token (of one of `roles` when given); with `cookie`, the
        refresh token may come from the session cookie instead, with its CSRF header.

        403 when the caller's role is not allowed; 401 for any token problem (the codes
        a view adds to it: `unauthorized`). Both, and the security scheme, are
        documented through flask-smorest's own decorators."""
        locations = ("headers", "cookies") if cookie else None
        security = [{"bearerAuth": []}, *([{"refreshCookie": [], "csrfHeader": []}] if cookie else [])]

        def decorator(view):
            @wraps(view)
            def wrapper(*args, **kwargs):
                try:
                    verify_jwt_in_request(refresh=refresh, verify_type=not any_token, locations=locations)
                except TypeError:
                    if cookie and _csrf_uncomparable():
                        raise CSRFError("CSRF double submit tokens do not match") from None
                    raise
                if roles and current_user.role not in roles:
                    error(403, "forbidden", "Your role does not allow this")
                return view(*args, **kwargs)

            documented = self.alt_response(401, description=unauthorized or "unauthorized: no token, or one that is "
                                           "malformed, expired or revoked")(wrapper)
            if roles:
                documented = self.alt_response(403, response=http.HTTPStatus(403).name)(documented)
            return self.doc(security=security)(documented)

        return decorator

    def no_body(self, view):
        """A view that takes no body: a JSON object with fields in it is a 422, as unknown
        fields are anywhere (no body, or `{}`, is fine). A body sent anyway is read, so
        the document lists what a body that cannot be read answers too (BODY_ERRORS)."""

        @wraps(view)
        def wrapper(*args, **kwargs):
            sent = flask.request.content_length or flask.request.headers.get("Transfer-Encoding")
            body = flask.request.get_json() if sent and flask.request.is_json else None
            if body:
                error(422, "validation_error", "The request has invalid fields",
                      errors={name: ["Unknown field."] for name in body})
            return view(*args, **kwargs)

        documented = self.alt_response(
            422, description="validation_error: a body with fields (this takes none), or an invalid parameter or header",
        )(wrapper)
        for status, description in BODY_ERRORS.items():
            documented = self.alt_response(int(status), description=description)(documented)
        return documented


# Not part of the API: a plain Flask blueprint, so it stays out of the OpenAPI document.
docs_assets = flask.Blueprint("docs_assets", __name__, url_prefix="/api/docs/assets")


@docs_assets.route("/<path:filename>")
def swagger_ui_assets(filename):
    """Swagger UI's files, served from the installed package: no CDN"""
    return flask.send_from_directory(swagger_ui_path, filename)
