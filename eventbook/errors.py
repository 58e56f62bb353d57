"""The one JSON error envelope, for every error the app can produce.

    {"status": 409, "code": "sold_out", "message": "...", "errors": {}}

Views raise errors with `error(...)` (webargs' `abort`, which keeps the extra data on
the exception); this module turns every HTTPException, every database outage and every
unexpected exception into that envelope.
"""

import logging

import marshmallow as ma
from flask import g, jsonify
from webargs.flaskparser import abort

from eventbook import database
from eventbook.schemas import SeatId

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "header_too_large",
    500: "internal_error",
    503: "unavailable",
}

MESSAGES = {
    400: "The request body is not valid JSON",
    404: "Not found",
    405: "Method not allowed",
    413: "The request body is too large",
    414: "The URL is too long",
    415: "The request body must be JSON (Content-Type: application/json)",
    429: "Too many requests, try again later",
    431: "A request header is too large",
}


class ErrorSchema(ma.Schema):
    """The error envelope (documentation only). A 409 may add facts of its own at the
    top level, beside `errors`."""

    class Meta:
        unknown = ma.INCLUDE  # the document allows further facts (additionalProperties)

    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status"})
    code = ma.fields.String(required=True, metadata={"description": "machine-readable error code"})
    message = ma.fields.String(required=True, metadata={"description": "human-readable message"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        required=True,
        metadata={"description": "field name -> list of messages (validation errors; {} otherwise). A field of "
                                 "a list item nests under its index ({\"ticketTypes\": {\"0\": {\"price\": [...]}}}); "
                                 "`_schema` holds messages about the body as a whole"},
    )
    available_tickets = ma.fields.Integer(
        data_key="availableTickets",
        metadata={"description": "not_enough_tickets, sold_out, tickets_available: how many are left"})
    ticket_type_id = ma.fields.Integer(
        data_key="ticketTypeId", metadata={"description": "not_enough_tickets, sold_out, sales_closed: which type"})
    unavailable_seat_ids = ma.fields.List(
        SeatId(), data_key="unavailableSeatIds", metadata={"description": "seats_taken: the seats not free"})
    checked_in_at = ma.fields.DateTime(
        data_key="checkedInAt", metadata={"description": "already_checked_in: when the ticket was checked in"})
    sold = ma.fields.Integer(
        metadata={"description": "capacity_below_sold: the tickets already sold or held"})
    hold_id = ma.fields.Integer(
        data_key="holdId", metadata={"description": "already_holding: the customer's HELD hold of the event"})
    sales_start = ma.fields.DateTime(
        data_key="salesStart", allow_none=True, metadata={"description": "sales_closed: when the type's sales open"})
    sales_end = ma.fields.DateTime(
        data_key="salesEnd", allow_none=True, metadata={"description": "sales_closed: when the type's sales close"})


def error(status, code, message, errors=None, headers=None, **extra):
    """Stop the request with an error in the envelope."""
    abort(status, code=code, message=message, errors=errors or {}, headers=headers, **extra)


def tickets(count):
    """"1 ticket", "3 tickets": a count of tickets in a message (an error's, an email's)."""
    return f"{count} ticket" if count == 1 else f"{count} tickets"


def invalid(field, message):
    """Stop the request with a 422 naming one field (a rule no schema can check alone)."""
    error(422, "validation_error", "The request has invalid fields", errors={field: [message]})


def envelope(status, code, message, errors=None, headers=None, **extra):
    body = {"status": status, "code": code, "message": message, "errors": errors or {}}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.headers.extend(headers or {})
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = "Bearer"  # every 401 says how to authenticate (RFC 9110)
    return response


def handle_http_exception(exc):
    data = getattr(exc, "data", None) or {}
    status = exc.code or 500
    headers = dict(data.get("headers") or {})
    if status == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    extra = {k: v for k, v in data.items() if k not in ("code", "message", "errors", "headers", "messages", "exc")}
    return envelope(
        status,
        data.get("code") or CODES.get(status, "error"),
        data.get("message") or MESSAGES.get(status) or exc.description or exc.name,
        data.get("errors"),
        headers,
        **extra,
    )


# PostgreSQL's refusals of a statement that the database's limits ended: it is busy, not down.
BUSY = {
    "55P03": "a lock was not granted within DB_LOCK_TIMEOUT_SECONDS",  # lock_not_available
    # query_canceled: statement_timeout, or pg_cancel_backend() from another session
    "57014": "a statement was cancelled (it ran past DB_STATEMENT_TIMEOUT_SECONDS, or was cancelled on the server)",
}


def busy(exc):
    """Why the database ended this statement (BUSY), or None when it is not that."""
    return BUSY.get(getattr(getattr(exc, "orig", None), "pgcode", None))


def handle_database_unavailable(exc):
    reason = busy(exc)
    if reason:
        log.warning("database busy: %s", reason)
        state = "busy"
    else:
        log.warning("database unavailable: %s: %s", exc.__class__.__name__, database.reason(exc))
        state = "unavailable"
    return envelope(503, "unavailable", f"The database is {state}, try again shortly", headers={"Retry-After": "5"})


def handle_unexpected(exc):
    request_id = g.get("request_id", "-")
    log.exception("unhandled error (request id %s)", request_id)
    return envelope(500, "internal_error", f"Internal error, request id {request_id}")


def register(app):
    """HTTPExceptions reach `handle_http_exception` through `eventbook.api.Api`."""
    for db_error in database.UNAVAILABLE:
        app.register_error_handler(db_error, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
