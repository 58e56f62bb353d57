"""gunicorn settings, read from the environment the way a PaaS (Render) sets it, and
from `.env` and `instance/.env` as the app reads its own (config.py).

gthread workers: each worker process serves GUNICORN_THREADS requests at once and
runs its own notification pool and sweeper.
"""

import errno
import os
import socket
import sys
from pathlib import Path

from gunicorn.glogging import Logger

sys.path.insert(0, str(Path(__file__).resolve().parent))
import config as _app_config  # noqa: E402 - reads .env and instance/.env into the environment

_problems = []  # every bad setting below, named together in one line before gunicorn starts


def _int(name, default, minimum=0, maximum=None):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        _problems.append(f"{name} must be a whole number, got {raw!r}")
        return default
    if int(raw) < minimum or (maximum is not None and int(raw) > maximum):
        limits = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        _problems.append(f"{name} must be {limits}, got {raw}")
        return default
    return int(raw)


def _bool(name, default):
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        _problems.append(f"{name} must be true or false, got {raw!r}")
        return default
    return raw in ("1", "true", "yes", "on")


def _host(name, default):
    """An address or host name this machine can bind: with reuse_port each worker binds
    its own socket, and a name that never resolves would have them fail and respawn
    forever instead of stopping."""
    host = os.environ.get(name, "").strip() or default
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        _problems.append(f"{name} must be an address or host name of this machine, got {host!r}")
    return host


bind = f"{_host('HOST', '0.0.0.0')}:{_int('PORT', 8000, 1, 65535)}"
# One process per core, each with GUNICORN_THREADS threads that overlap their database
# waits: more processes contend with PostgreSQL for the cores (docs/performance.md).
workers = _int("WEB_CONCURRENCY", os.cpu_count() or 1, 1)
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4, 1)
timeout = _int("GUNICORN_TIMEOUT", 30, 0, 86400)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20, 0, 86400)
keepalive = _int("GUNICORN_KEEPALIVE", 5, 0, 86400)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads new
# connections over the workers. On one shared socket the first worker to wake up takes
# them, and keep-alive clients then stay on it: one process under one GIL doing the work
# of all. But the connections waiting on a worker's own socket are reset when it exits,
# so a worker recycled every GUNICORN_MAX_REQUESTS shares one socket by default
# (docs/operations.md).
reuse_port = _bool("GUNICORN_REUSE_PORT", not max_requests)


def _app_settings():
    return {name: getattr(_app_config.Config, name) for name in dir(_app_config.Config) if name.isupper()}


if _problems:  # the app's own bad settings too, as on_starting would have named them
    sys.exit("eventbook: invalid configuration: " + "; ".join(_app_config.validate(_app_settings()) + _problems))
# X-Forwarded-For and -Proto are the app's to trust, as PROXY_FIX_X_FOR says
# (werkzeug's ProxyFix); gunicorn would otherwise believe them from 127.0.0.1.
forwarded_allow_ips = ""
accesslog = None  # the app writes its own access log line, with the request id


class QuietAccessLogger(Logger):
    """gunicorn's logger, minus its access log (the app writes its own line per request).
    With `logconfig_dict` set, gunicorn would otherwise build an access-log line's fields
    for every request, for nothing.

    It also names the address in the master's "Listening at" line: with reuse_port the
    master holds no socket (each worker binds its own), and gunicorn printed none."""

    access_log_enabled = False

    def info(self, msg, *args, **kwargs):
        if msg == "Listening at: %s (%s)" and args and not args[0]:
            addresses = ",".join(f"http://{address}" for address in self.cfg.bind)
            args = (addresses, *args[1:])
        super().info(msg, *args, **kwargs)


logger_class = QuietAccessLogger
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").strip().lower()
if loglevel not in ("debug", "info", "warning", "error"):
    loglevel = "info"  # config.validate() (on_starting) names the bad LOG_LEVEL and stops

# Production logs are JSON, gunicorn's own lines too (same fields as eventbook/logs.py).
_debug = os.environ.get("FLASK_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
if os.environ.get("LOG_FORMAT", "json").strip().lower() == "json" and not _debug:
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "{asctime}{levelname}{name}{message}",
                "style": "{",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": "WARNING", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
            # no "gunicorn.access": QuietAccessLogger (above) never writes an access line
        },
    }
# Several instances may run under one HOME (tests, scale-out on one host): no shared
# control socket for them to fight over.
control_socket_disable = True
# Requests the app can judge reach it and get its JSON envelope: URLs over 4096 bytes are
# its 414, header values over 8192 bytes its 431 (eventbook/web.py). Beyond these
# limits gunicorn answers itself, in HTML (docs/operations.md). 8190 is the longest
# request line gunicorn allows short of no limit at all.
limit_request_line = 8190
limit_request_field_size = 32768
limit_request_fields = 100


def on_starting(server):
    # Check the configuration once, in the master, before any worker is forked: a bad
    # setting stops the web command with one line instead of a worker respawn loop.
    values = _app_settings()
    problems = _app_config.validate(values)
    if problems:
        print("eventbook: invalid configuration: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    # Sockets handed over by a re-executing master (USR2) or by systemd are ours already.
    if server.cfg.reuse_port and not {"GUNICORN_FD", "LISTEN_FDS"} & os.environ.keys():
        for address in server.cfg.address:
            if isinstance(address, tuple) and _listened_on(address):
                print(f"eventbook: {address[0]}:{address[1]} is in use: another server listens there",
                      file=sys.stderr)
                sys.exit(1)
    storage = values["RATELIMIT_STORAGE_URI"]
    if values["RATELIMIT_ENABLED"] and storage.startswith("memory:") and server.cfg.workers > 1:
        server.log.warning(
            "RATELIMIT_STORAGE_URI is %s: each of the %d workers counts on its own, so a client gets up to %d "
            "times every rate limit; set RATELIMIT_STORAGE_URI=redis://HOST:6379/0 to share the counts",
            storage, server.cfg.workers, server.cfg.workers,
        )


def _listened_on(address):
    """Whether a server listens on `address` already. With reuse_port a second server
    on the port would start without a word and take a share of its connections: a bind
    without SO_REUSEPORT fails where one listens (SO_REUSEADDR lets it pass the closed
    connections of a server that has just stopped)."""
    host, port = address
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        return exc.errno == errno.EADDRINUSE
    return False


def post_worker_init(worker):
    # Start delivering at once: rows left PENDING by a crash must not wait for a request.
    app = worker.wsgi
    if app.config["NOTIFY_AUTOSTART"]:
        app.extensions["notifications"].start()
        app.extensions["eventbook.sweeper"].start()


def worker_exit(server, worker):
    # SIGTERM: requests have finished; stop the pool, give back what it did not start.
    app = getattr(worker, "wsgi", None)
    if app is not None:
        app.extensions["eventbook.sweeper"].stop()
        app.extensions["notifications"].shutdown()
