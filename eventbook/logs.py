"""Logging: one JSON object per line in production, plain text in development; every
line carries the request id (and the user id once the token has been read)."""

import logging
import sys

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from eventbook import database


class RequestContext(logging.Filter):
    def filter(self, record):
        if has_request_context():
            record.request_id = g.get("request_id", "-")
            record.user_id = g.get("user_id")
            record.method = getattr(record, "method", request.method)
            record.path = getattr(record, "path", request.path)
        else:
            record.request_id = getattr(record, "request_id", "-")
            record.user_id = getattr(record, "user_id", None)
        return True


class NoRows(logging.Filter):
    """SQLAlchemy's echo at DEBUG prints fetched rows, password hashes included: never."""

    def filter(self, record):
        return not str(record.msg).startswith("Row ")


def configure(app):
    logging.getLogger("sqlalchemy.engine.Engine").addFilter(NoRows())
    root = logging.getLogger("eventbook")
    root.handlers[:] = [handler(app)]
    root.setLevel(app.config["LOG_LEVEL"].upper())
    root.propagate = False


def handler(app):
    """A handler writing the app's lines to stderr, as LOG_FORMAT says."""
    stream = logging.StreamHandler(sys.stderr)
    stream.addFilter(RequestContext())
    if app.config["LOG_FORMAT"] == "json" and not app.debug:
        stream.setFormatter(JsonFormatter(
            "{asctime}{levelname}{name}{message}", style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    return stream


def round_failed(logger, what):
    """From a background loop's `except`: log that this round of `what` failed (the next
    round tries again). What makes a request answer 503 (database.UNAVAILABLE: the database
    cannot be reached, it went away, a connection it closed, a deadlock, no pooled
    connection free) gets one line, the first of its message, not a traceback every few
    seconds until it is back; anything else gets the traceback."""
    failure = sys.exc_info()[1]
    if isinstance(failure, database.UNAVAILABLE):
        logger.warning("%s failed, the next round tries again: %s", what, database.reason(failure))
    else:
        logger.warning("%s failed", what, exc_info=True)
