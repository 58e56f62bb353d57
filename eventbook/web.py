"""What every request gets: a request id, body checks, security headers, an access log."""

import logging
import os
import re
import time

from flask import current_app, g, request

from eventbook.errors import error

log = logging.getLogger("eventbook.access")

MAX_URL_BYTES = 4096  # gunicorn lets request lines up to 8190 bytes through (gunicorn.conf.py)
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
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
PAGE_HEADERS = (*SECURITY_HEADERS, ("Content-Security-Policy", PAGE_CSP))
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def before_request():
    g.started = time.perf_counter()
    if current_app.config["NOTIFY_AUTOSTART"]:  # once per process; a no-op after
        current_app.extensions["notifications"].start()
        current_app.extensions["eventbook.sweeper"].start()
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if SAFE_REQUEST_ID.match(sent) else os.urandom(16).hex()  # uuid4().hex's form, cheaper
    if len(request.full_path) > MAX_URL_BYTES:
        error(414, "uri_too_long", "The URL is too long")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        length = request.content_length
        if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
            error(413, "payload_too_large", "The request body is too large")
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if (length or chunked) and not request.is_json:
            error(415, "unsupported_media_type", "The request body must be JSON (Content-Type: application/json)")
        if chunked and length is None:
            # Without a Content-Length werkzeug stops reading at the limit instead of
            # refusing: read it here so that an oversized body is a 413, not truncated.
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            if len(request.get_data(cache=True)) >= limit:
                error(413, "payload_too_large", "The request body is too large")


def after_request(response):
    headers = response.headers
    headers["X-Request-ID"] = g.get("request_id", "-")
    docs = request.path == "/api/docs" or request.path.startswith("/api/docs/")
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


def register(app):
    app.before_request(before_request)
    app.after_request(after_request)
