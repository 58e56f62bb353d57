"""What every request gets: a request id, size and body checks, security headers, an
access log; and the one way a JSON body is read (`Request`, `JSONProvider`)."""

import json
import logging
import os
import re
import sys
import time

import flask
from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import IntegerConverter

from eventbook.errors import error
from eventbook.schemas import MAX_INT


class AsciiInteger(IntegerConverter):
    """Flask's `int` path converter for ids, reading ASCII digits only: Python's int()
    also reads the digits of other scripts, and /api/events/١ (Arabic-Indic one) was
    event 1. Written without leading zeros, so that one resource has one URL
    (/api/events/07 is a 404, as is 0). At most MAX_INT unless a route says otherwise: a
    larger id is a 404, not a database integer overflow (500)."""

    regex = r"[1-9][0-9]*"

    def __init__(self, url_map, fixed_digits=0, min=1, max=MAX_INT, signed=False):  # noqa: A002 - werkzeug's names
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def configure_urls(app):
    """Before any route is added: `int` reads ASCII digits only, and a path with a
    doubled slash (/api//events) is a 404 in the envelope, not a redirect whose address
    Werkzeug builds from the Host header."""
    app.url_map.converters["int"] = AsciiInteger
    app.url_map.merge_slashes = False

log = logging.getLogger("eventbook.access")

# gunicorn.conf.py lets longer request lines and headers through, so that the app, not
# gunicorn, refuses these in the JSON envelope (docs/operations.md).
MAX_URL_BYTES = 4096  # path and query string
MAX_HEADER_BYTES = 8192  # the value of one header
DRAINED_BYTES = 1 << 20  # a body refused as too large, up to this size, is read (and dropped) first
# a tracing system's id as it is (a UUID, base64, "Root=1-abc"): no space, no separator, no markup
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,128}")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI is served from /api/docs/assets; its page starts it with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'")
# The web page (eventbook/page): its own scripts and styles only, nothing inline; blob: for
# the QR codes and the CSV it fetches with the access token.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
API_HEADERS = (*SECURITY_HEADERS, ("Content-Security-Policy", API_CSP))
DOCS_HEADERS = (*SECURITY_HEADERS, ("Content-Security-Policy", DOCS_CSP))
SWAGGER_UI = "api-docs.openapi_swagger_ui"  # flask-smorest's endpoint, at OPENAPI_SWAGGER_UI_PATH
PAGE_HEADERS = (*SECURITY_HEADERS, ("Content-Security-Policy", PAGE_CSP))
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


class BodyError(ValueError):
    """Why a request body is not JSON, in words a client can act on."""


def _not_json(name):
    raise BodyError(f"{name} is not a JSON value")


def _names_once(pairs):
    """An object whose names are all different. RFC 8259 leaves an object that names a
    member twice to each parser, and parsers differ on which one counts: a proxy or a
    firewall in front could check one value while the app acted on the other."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise BodyError(f"it names {twice[:64]!r} more than once in one object")
    return members


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, strict where it reads (RFC 8259): UTF-8 only, no NaN or Infinity,
    no object with a name twice. Every body it cannot read raises a ValueError, so that
    Flask's `get_json` hands it to `Request.on_json_loading_failed` (or, with
    silent=True, returns None): a body nested too deeply (RecursionError) or with too
    long an integer included."""

    sort_keys = False  # responses keep the schemas' field order

    def loads(self, s, **kwargs):
        kwargs.setdefault("parse_constant", _not_json)
        kwargs.setdefault("object_pairs_hook", _names_once)
        try:
            if isinstance(s, (bytes, bytearray)):
                s = s.decode("utf-8-sig")
            return super().loads(s, **kwargs)
        except BodyError:
            raise
        except UnicodeDecodeError:
            raise BodyError("it is not UTF-8 text") from None
        except RecursionError:
            raise BodyError("it is nested too deeply") from None
        except json.JSONDecodeError as exc:
            if not exc.doc.strip():
                raise BodyError("it is empty") from None
            raise BodyError(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        except ValueError:  # int() refusing more digits than sys.get_int_max_str_digits()
            raise BodyError(f"a number in it has more than {sys.get_int_max_str_digits()} digits") from None


class Request(flask.Request):
    """A JSON body is an object or an error: whoever reads it (the body parser, the
    login limit's key) gets a dict, or the 400 envelope (None when reading silently)."""

    def get_json(self, force=False, silent=False, cache=True):
        body = super().get_json(force=force, silent=silent, cache=cache)
        if isinstance(body, dict) or (silent and body is None):
            return body
        if silent:
            return None
        error(400, "bad_request", "The request body must be a JSON object")

    def on_json_loading_failed(self, e):
        if e is None:
            error(415, "unsupported_media_type", "The request body must be JSON (Content-Type: application/json)")
        reason = e if isinstance(e, BodyError) else "it cannot be read"
        error(400, "bad_request", f"The request body is not valid JSON: {reason}")


def before_request():
    g.started = time.perf_counter()
    if current_app.config["NOTIFY_AUTOSTART"]:  # once per process; a no-op after
        current_app.extensions["notifications"].start()
        current_app.extensions["eventbook.sweeper"].start()
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if SAFE_REQUEST_ID.fullmatch(sent) else os.urandom(16).hex()  # uuid4().hex's form, cheaper
    scheme = request.environ.get("HTTP_AUTHORIZATION", "")[:7]
    if scheme.lower() == "bearer " and scheme != "Bearer ":  # a scheme is case-insensitive (RFC 9110);
        # flask-jwt-extended matches "Bearer" exactly
        request.environ["HTTP_AUTHORIZATION"] = "Bearer " + request.environ["HTTP_AUTHORIZATION"][7:]
    _check_sizes()
    if request.environ.get("PATH_INFO", "").startswith("//"):
        raise NotFound()  # Werkzeug would match it as the path with one slash: a doubled slash anywhere is a 404
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        _check_body()


def _check_sizes():
    """414 for a URL, 431 for a header value, over the limits the app answers itself."""
    if len(request.full_path) > MAX_URL_BYTES:
        error(414, "uri_too_long", f"The URL is too long (at most {MAX_URL_BYTES} bytes)")
    for key, value in request.environ.items():
        if key.startswith("HTTP_") and len(value) > MAX_HEADER_BYTES:
            name = key[5:].replace("_", "-").title()
            error(431, "header_too_large", f"The {name} header is too large (at most {MAX_HEADER_BYTES} bytes)")


def _check_body():
    """A body's size (413), framing (400) and type (415), before anyone reads it."""
    length = request.content_length
    if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
        _drain(length)
        error(413, "payload_too_large", "The request body is too large")
    codings = [coding.strip().lower() for coding in request.headers.get("Transfer-Encoding", "").split(",")]
    if codings != [""] and set(codings) != {"chunked"} and request.routing_exception is None:  # 404, 405 first
        # gunicorn undoes the chunking of "gzip, chunked" and hands over the body still
        # compressed: read as it is, it would be taken for another body.
        error(400, "bad_request", "The request body's Transfer-Encoding must be chunked alone (no gzip, "
                                  "deflate, compress or identity)")
    chunked = codings == ["chunked"]
    if (length or chunked) and request.routing_exception is None:  # 404 and 405 first
        if not request.is_json:
            error(415, "unsupported_media_type", "The request body must be JSON (Content-Type: application/json)")
        if request.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity"):
            error(415, "unsupported_media_type", "The request body must be sent uncompressed (no Content-Encoding)")
    if chunked and length is None:
        # Without a Content-Length werkzeug stops reading at the limit instead of
        # refusing: read it here so that an oversized body is a 413, not truncated.
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if len(_read_body()) >= limit:
            _drain()
            error(413, "payload_too_large", "The request body is too large")


def _drain(length=None):
    """Read the rest of a refused body off the connection, unless more than
    DRAINED_BYTES are left: gunicorn reads only 64 KiB of what the app left unread,
    and closes a connection it has already answered as kept alive when there is more,
    so that the client's next request on it would fail. `length`: the Content-Length,
    None for a chunked body."""
    if length is not None and length > DRAINED_BYTES:
        return
    stream, left = request.environ["wsgi.input"], DRAINED_BYTES if length is None else length
    try:
        while left > 0 and (chunk := stream.read(min(left, 65536))):
            left -= len(chunk)
    except Exception:  # noqa: BLE001 - whatever the server's input stream raises: the 413 is the answer
        return


def _read_body():
    try:
        return request.get_data(cache=True)
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - whatever the server's input stream raises: the framing is the client's
        error(400, "bad_request", "The request body could not be read: its chunked encoding is malformed")


def after_request(response):
    headers = response.headers
    if request.method == "OPTIONS" and response.status_code == 200 and response.calculate_content_length() == 0:
        response.status_code = 204  # Flask's automatic answer: the Allow header, no content
    if response.status_code == 204:
        headers.remove("Content-Type")  # no content, so no type (flask-smorest sets JSON's)
    headers["X-Request-ID"] = g.get("request_id", "-")
    docs = request.endpoint == SWAGGER_UI or request.blueprint == "docs_assets"
    defaults = DOCS_HEADERS if docs else PAGE_HEADERS if request.blueprint == "page" else API_HEADERS
    if request.is_secure:
        defaults = (*defaults, HSTS)
    present = {name.lower() for name, _ in headers.items()}  # one pass, not one per header
    headers.extend([(name, value) for name, value in defaults if name.lower() not in present])
    duration_ms = round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)
    log.info(
        "%s %s %s %sms", request.method, request.path, response.status_code, duration_ms,
        extra={"status": response.status_code, "duration_ms": duration_ms},
    )
    return response


def vary_by_origin(response):
    """With CORS on, an API answer's CORS headers depend on the Origin that asked: say so
    to caches. flask-cors does only when it lists several origins; registered before its
    hook, this runs after it (Flask runs them in reverse) and adds `Origin` once."""
    if request.path.startswith("/api/"):
        response.vary.add("Origin")
    return response


def register(app):
    app.request_class = Request
    app.json = JSONProvider(app)
    app.before_request(before_request)
    app.after_request(after_request)
