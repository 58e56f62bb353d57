"""flask-smorest, fitted to the contract in API.md.

- `Api` documents the bearer scheme and the one error envelope.
- `Blueprint.auth(...)` declares who may call a view and documents the 401/403.
- `ArgsParser` reads JSON bodies through `eventbook.web.Request.get_json` (every body
  that is not a JSON object is a 400 there) and keys field errors by field name.
"""

import http
from functools import wraps

import flask_smorest
import marshmallow as ma
from flask_jwt_extended import current_user, verify_jwt_in_request
from webargs.flaskparser import FlaskParser

from eventbook.errors import ErrorSchema, error


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


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *, spec_kwargs=None):
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )

    def _register_error_handlers(self):
        # errors.register() installs the one envelope for every error instead.
        pass


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgsParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_auth_doc)

    @staticmethod
    def auth(*roles, refresh=False, any_token=False):
        """Require a valid token (of one of `roles` when given).

        403 when the caller's role is not allowed; 401 for any token problem."""

        def decorator(view):
            @wraps(view)
            def wrapper(*args, **kwargs):
                verify_jwt_in_request(refresh=refresh, verify_type=not any_token)
                if roles and current_user.role not in roles:
                    error(403, "forbidden", "Your role does not allow this")
                return view(*args, **kwargs)

            apidoc = getattr(wrapper, "_apidoc", {})
            wrapper._apidoc = {**apidoc, "auth": {"roles": roles}}
            return wrapper

        return decorator

    @staticmethod
    def _prepare_auth_doc(doc, doc_info, **kwargs):
        auth = doc_info.get("auth")
        if auth is not None:
            responses = doc.setdefault("responses", {})
            responses["401"] = http.HTTPStatus(401).name
            if auth["roles"]:
                responses["403"] = http.HTTPStatus(403).name
            doc["security"] = [{"bearerAuth": []}]
        return doc
