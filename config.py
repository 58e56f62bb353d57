"""Configuration, read once from the environment (and `.env`, then `instance/.env`, if present).

Every setting is listed with its default in README.md and `.env.example`.
`validate()` is called by the app factory so that a bad deployment stops at start
with one message naming every bad setting, instead of failing on the first request.
"""

import math
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from dotenv import dotenv_values, load_dotenv
from limits import parse_many
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")
# The development settings `make run` writes once (a JWT key), so that the `flask` commands
# work in a fresh clone after it. The environment and .env come first, but an empty value
# there means "the default" (as in .env.example), so it does not hide one written here.
for _name, _value in dotenv_values(BASE_DIR / "instance" / ".env").items():
    if _value is not None and not os.environ.get(_name, "").strip():
        os.environ[_name] = _value

_BAD = []  # (name, problem) found while reading the environment


def _str(name, default=""):
    """The setting, stripped; unset, empty or blank: the default (as .env.example says)."""
    return (os.environ.get(name) or "").strip() or default


def _int(name, default, minimum=None, maximum=None):
    """A whole number in ASCII digits (int() would also take "1_0", "+5" and the digits
    of other scripts); a minus sign is read, to be refused by the range with its value."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not re.fullmatch(r"-?[0-9]+", raw.strip()):
        _BAD.append((name, f"must be an integer, got {raw!r}"))
        return default
    value = int(raw)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            _BAD.append((name, f"must be at least {minimum}, got {value}"))
        elif minimum is None:
            _BAD.append((name, f"must be at most {maximum}, got {value}"))
        else:
            _BAD.append((name, f"must be between {minimum} and {maximum}, got {value}"))
        return default
    return value


def _float(name, default, minimum=0.0, maximum=86400.0):
    """A number of seconds: finite (float() also reads "nan" and "inf", which would make
    a loop's wait return at once, or never), at most a day unless said otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        _BAD.append((name, f"must be a number, got {raw!r}"))
        return default
    if not math.isfinite(value) or not minimum <= value <= maximum:
        _BAD.append((name, f"must be between {minimum:g} and {maximum:g}, got {raw.strip()!r}"))
        return default
    return value


def _bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    _BAD.append((name, f"must be true or false, got {raw!r}"))
    return default


def _choice(name, default, choices):
    value = _str(name, default).lower()
    if value not in choices:
        _BAD.append((name, f"must be one of {', '.join(choices)}, got {value!r}"))
        return default
    return value


def normalize_database_url(url):
    """Render and Heroku hand out `postgres://`; SQLAlchemy 2.1 reads `postgresql://`
    as psycopg 3. Both become the psycopg2 driver we install. A relative SQLite path is
    taken from the project's folder (the default is `sqlite:///instance/eventbook.db`),
    wherever the command runs: made absolute here, so that the start-up check and the
    connection (Flask-SQLAlchemy would look inside `instance/`) mean the same file."""
    if not url:
        url = "sqlite:///instance/eventbook.db"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///"):]
        if path and not path.startswith(":memory:") and not path.startswith("file:"):
            return f"sqlite:///{BASE_DIR / path}"
    return url


class Config:
    DEBUG = _bool("FLASK_DEBUG", False)
    TESTING = False

    SQLALCHEMY_DATABASE_URI = normalize_database_url(_str("DATABASE_URL"))
    DB_POOL_SIZE = _int("DB_POOL_SIZE", 10, 1, 1000)
    DB_POOL_TIMEOUT = _int("DB_POOL_TIMEOUT", 10, 1, 600)
    # PostgreSQL: how long a statement waits for a row lock before it gives up (503); 0
    # waits for ever. A lock held elsewhere (a psql session, a long migration) would
    # otherwise keep every request thread waiting on it.
    DB_LOCK_TIMEOUT_SECONDS = _int("DB_LOCK_TIMEOUT_SECONDS", 5, 0, 3600)
    # PostgreSQL: how long one statement may run, and a transaction sit idle between two,
    # before the server ends it (503); 0 sets no limit. A statement that never finishes,
    # or a transaction that a stuck thread leaves open with its row locks, would
    # otherwise hold its request thread, or every booking of its event, for ever.
    DB_STATEMENT_TIMEOUT_SECONDS = _int("DB_STATEMENT_TIMEOUT_SECONDS", 30, 0, 3600)
    # PostgreSQL plans the sales statements once per connection; off behind a pooler in
    # transaction mode (PgBouncer), which cannot keep a connection's prepared statements,
    # nor its settings: none is sent then (`database._session_settings`).
    DB_PREPARED_STATEMENTS = _bool("DB_PREPARED_STATEMENTS", True)

    JWT_SECRET_KEY = _str("JWT_SECRET_KEY")
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=_int("JWT_ACCESS_MINUTES", 15, 1, 7 * 24 * 60))
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=_int("JWT_REFRESH_DAYS", 7, 1, 3650))
    BCRYPT_ROUNDS = _int("BCRYPT_ROUNDS", 12, 4, 31)
    PASSWORD_RESET_MINUTES = _int("PASSWORD_RESET_MINUTES", 60, 5, 24 * 60)  # how long a reset email's code works
    # The browser's session (eventbook/auth/cookies.py): the refresh token in an HttpOnly
    # cookie sent only to /api/auth, and its double-submit CSRF value for the page's script.
    JWT_REFRESH_COOKIE_NAME = "eventbook_refresh"
    JWT_REFRESH_COOKIE_PATH = "/api/auth"
    JWT_REFRESH_CSRF_COOKIE_NAME = "eventbook_csrf"
    JWT_REFRESH_CSRF_COOKIE_PATH = "/"
    JWT_REFRESH_CSRF_HEADER_NAME = "X-CSRF-Token"
    JWT_COOKIE_SAMESITE = "Strict"

    # X-Total-Count is exact up to this many items; above it, on PostgreSQL, the planner's estimate.
    LIST_COUNT_EXACT_MAX = _int("LIST_COUNT_EXACT_MAX", 1000, 0)
    # Where clients reach the app (https://events.example.com, with any path prefix): the
    # base of absolute Link headers. Empty: relative links, never the request's Host.
    PUBLIC_URL = _str("PUBLIC_URL").rstrip("/")
    MAX_CONTENT_LENGTH = _int("MAX_BODY_BYTES", 64 * 1024, 1024)
    MAX_TICKETS_PER_BOOKING = _int("MAX_TICKETS_PER_BOOKING", 10, 1, 100)
    HOLD_SECONDS = _int("HOLD_SECONDS", 600, 10, 86400)  # how long a hold keeps its tickets
    HOLD_SWEEP_SECONDS = _float("HOLD_SWEEP_SECONDS", 5.0, 0.05)  # how often expired holds give them back
    WAITLIST_OFFER_SECONDS = _int("WAITLIST_OFFER_SECONDS", 1800, 10, 7 * 86400)  # an offer's hold
    IDEMPOTENCY_TTL = timedelta(hours=_int("IDEMPOTENCY_TTL_HOURS", 24, 24, 24 * 3650))
    # How often each process deletes expired idempotency keys and revoked tokens.
    PURGE_EXPIRED_SECONDS = _float("PURGE_EXPIRED_SECONDS", 600.0, 1.0)

    EMAIL_BACKEND = _choice("EMAIL_BACKEND", "log", ("log", "smtp"))
    MAIL_SERVER = _str("MAIL_SERVER")
    MAIL_PORT = _int("MAIL_PORT", 25, 1, 65535)
    MAIL_USERNAME = _str("MAIL_USERNAME")
    MAIL_PASSWORD = _str("MAIL_PASSWORD")
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
    MAIL_FROM = _str("MAIL_FROM", "eventbook <no-reply@eventbook.local>")
    MAIL_TIMEOUT = _float("MAIL_TIMEOUT", 10.0, 0.1)

    NOTIFY_WORKERS = _int("NOTIFY_WORKERS", 4, 1, 64)
    NOTIFY_QUEUE_SIZE = _int("NOTIFY_QUEUE_SIZE", 1000, 1)
    NOTIFY_MAX_ATTEMPTS = _int("NOTIFY_MAX_ATTEMPTS", 10, 1, 100)
    NOTIFY_BACKOFF_SECONDS = _float("NOTIFY_BACKOFF_SECONDS", 2.0)
    NOTIFY_SWEEP_SECONDS = _float("NOTIFY_SWEEP_SECONDS", 2.0, 0.05)
    NOTIFY_CLAIM_TIMEOUT_SECONDS = _float("NOTIFY_CLAIM_TIMEOUT_SECONDS", 60.0, 1.0)
    NOTIFY_SHUTDOWN_SECONDS = _float("NOTIFY_SHUTDOWN_SECONDS", 10.0)
    # Artificial delay before each delivery: used by the crash test and the benchmark.
    NOTIFY_DELIVERY_DELAY_MS = _int("NOTIFY_DELIVERY_DELAY_MS", 0, 0, 60_000)  # tests and the benchmark: a minute at most
    NOTIFY_AUTOSTART = _bool("NOTIFY_AUTOSTART", True)

    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = _str("RATELIMIT_STORAGE_URI", "memory://")
    # X-RateLimit-* headers on every limited response: each costs the store a read
    # (a Redis round trip in production), so they are off unless asked for. A 429 always
    # carries Retry-After.
    RATELIMIT_HEADERS_ENABLED = _bool("RATELIMIT_HEADERS_ENABLED", False)
    # Per client address unless said otherwise. Generous enough for a shared office NAT
    # or a test suite on one machine, tight enough to stop credential stuffing and bots.
    RATELIMIT_LOGIN = _str("RATELIMIT_LOGIN", "300 per minute")
    # Failed logins (eventbook/auth/throttle.py): per account and address, and per account.
    RATELIMIT_LOGIN_FAILURES = _str("RATELIMIT_LOGIN_FAILURES", "5 per minute; 20 per hour")
    RATELIMIT_LOGIN_ACCOUNT = _str("RATELIMIT_LOGIN_ACCOUNT", "10 per minute")
    RATELIMIT_REGISTER = _str("RATELIMIT_REGISTER", "1000 per hour")
    # Password reset emails asked for, per address; and per account, past which the
    # answer is the same but no email is written (nobody can flood an inbox with them).
    RATELIMIT_PASSWORD_RESET = _str("RATELIMIT_PASSWORD_RESET", "5 per minute; 30 per hour")
    RATELIMIT_PASSWORD_RESET_ACCOUNT = _str("RATELIMIT_PASSWORD_RESET_ACCOUNT", "3 per hour")
    RATELIMIT_BOOKING = _str("RATELIMIT_BOOKING", "60 per minute")  # per customer
    # Check-ins (and their undos) per organizer, all gates together: a big venue scans fast.
    RATELIMIT_CHECKIN = _str("RATELIMIT_CHECKIN", "60000 per minute")

    CORS_ORIGINS = [o.strip() for o in _str("CORS_ORIGINS").split(",") if o.strip()]
    PROXY_FIX_X_FOR = _int("PROXY_FIX_X_FOR", 0, 0, 10)
    LOG_FORMAT = _choice("LOG_FORMAT", "json", ("json", "text"))
    LOG_LEVEL = _choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error"))

    API_TITLE = "eventbook"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"
    OPENAPI_SWAGGER_UI_CONFIG = {"validatorUrl": None}


class TestConfig(Config):
    """What the pytest suite runs with: fast hashing, a fast sweeper, no rate limits
    unless a test asks for them."""

    TESTING = True
    JWT_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
    BCRYPT_ROUNDS = 4
    RATELIMIT_ENABLED = False
    NOTIFY_SWEEP_SECONDS = 0.2
    NOTIFY_BACKOFF_SECONDS = 0.1
    HOLD_SWEEP_SECONDS = 0.2
    LOG_FORMAT = "text"
    # Tests that hold a row lock on purpose release it once the requests wait on it,
    # which a loaded machine may take seconds to see.
    DB_LOCK_TIMEOUT_SECONDS = 30
    DB_STATEMENT_TIMEOUT_SECONDS = 60


def validate(config):
    """Return the list of problems with this configuration (empty when it is fine)."""
    problems = [f"{name} {problem}" for name, problem in _BAD]
    relaxed = config.get("DEBUG") or config.get("TESTING")
    secret = config.get("JWT_SECRET_KEY") or ""
    if not relaxed and len(secret) < 32:
        problems.append(
            "JWT_SECRET_KEY must be set to at least 32 characters "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if config.get("EMAIL_BACKEND") == "smtp" and not config.get("MAIL_SERVER"):
        problems.append("MAIL_SERVER must be set when EMAIL_BACKEND=smtp")
    for name in ("RATELIMIT_LOGIN", "RATELIMIT_LOGIN_FAILURES", "RATELIMIT_LOGIN_ACCOUNT", "RATELIMIT_REGISTER",
                 "RATELIMIT_PASSWORD_RESET", "RATELIMIT_PASSWORD_RESET_ACCOUNT", "RATELIMIT_BOOKING",
                 "RATELIMIT_CHECKIN"):
        try:
            rates = parse_many(config.get(name, ""))
        except ValueError:
            problems.append(f"{name} must be a rate such as '10 per minute', got {config.get(name)!r}")
            continue
        if any(rate.amount < 1 for rate in rates):
            problems.append(f"{name} must allow at least 1 request (to stop a route, not rate-limit it, is "
                            f"not a setting), got {config.get(name)!r}")
    access, refresh = config.get("JWT_ACCESS_TOKEN_EXPIRES"), config.get("JWT_REFRESH_TOKEN_EXPIRES")
    if access and refresh and access > refresh:  # the session, and its access tokens, end with the refresh token
        problems.append(f"JWT_ACCESS_MINUTES must be at most JWT_REFRESH_DAYS ({refresh.days} days, "
                        f"{refresh.days * 24 * 60} minutes), got {access // timedelta(minutes=1)}")
    storage = config.get("RATELIMIT_STORAGE_URI", "memory://")
    if urlsplit(storage).scheme not in STORAGE_SCHEMES:  # before the library tries (and leaves a half-made one)
        problems.append(f"RATELIMIT_STORAGE_URI must be memory:// or a redis:// URL, got {storage.split(':')[0]!r}")
    else:
        password = urlsplit(storage).password
        try:
            storage_from_string(storage)  # connects at first use; a Redis Cluster at once, to learn its nodes
        except (ConfigurationError, ValueError) as refused:  # a ValueError: the URL's own parser (a port not a number)
            problems.append(f"RATELIMIT_STORAGE_URI must be memory:// or a redis:// URL: {_redacted(refused, password)}")
        except Exception as unreachable:  # noqa: BLE001 - whatever redis-py raises for a cluster it cannot reach
            problems.append(f"RATELIMIT_STORAGE_URI could not be reached: {_redacted(unreachable, password)}")
    problems.extend(_redis_database_problems(urlsplit(storage)))
    public = urlsplit(config.get("PUBLIC_URL") or "https://host")
    if public.scheme not in ("http", "https") or not public.netloc or public.query or public.fragment:
        problems.append(f"PUBLIC_URL must be an http(s) URL without query or fragment, got {config.get('PUBLIC_URL')!r}")
    for origin in config.get("CORS_ORIGINS", []):
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc
                              or origin.rstrip("/") != f"{parts.scheme}://{parts.netloc}"):
            problems.append(f"CORS_ORIGINS must list origins such as https://app.example.com (or *), got {origin!r}")
    if re.search(r"[\x00-\x1f\x7f]", config.get("MAIL_FROM", "")):
        problems.append("MAIL_FROM must be one line, without control characters")
    problems.extend(_database_url_problems(config.get("SQLALCHEMY_DATABASE_URI", "")))
    return problems


# The rate-limit stores this app is made for: memory, or Redis (TLS, Sentinel, Cluster).
STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


def _redacted(exception, password):
    """The library's message, which may repeat the URL, without its password."""
    return str(exception).replace(password, "***") if password else str(exception)


def _redis_database_problems(url):
    """redis-py reads the database from `?db=` or else the path, and quietly counts in
    database 0 when the path is not a number."""
    database = unquote(url.path).replace("/", "")
    if url.scheme not in ("redis", "rediss") or not database or "db" in parse_qs(url.query):
        return []
    if database.isascii() and database.isdigit():
        return []
    return [f"RATELIMIT_STORAGE_URI must name a Redis database by its number (redis://HOST:6379/0), got {url.path!r}"]


def _database_url_problems(uri):
    if not uri.startswith(("sqlite:", "postgresql+psycopg2:")):
        return [f"DATABASE_URL must be a sqlite:// or postgres:// URL, got {uri.split(':')[0]!r}"]
    if uri.startswith("sqlite:"):
        return _sqlite_problems(uri)
    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return ["DATABASE_URL is not a valid URL (postgres://USER:PASSWORD@HOST:5432/DATABASE)"]
    if not url.database:
        where = f"{url.host}:{url.port or 5432}" if url.host else "HOST:5432"
        return [f"DATABASE_URL must name a database (the server would use its default one): add it after "
                f"the host, as in postgres://USER:PASSWORD@{where}/eventbook"]
    return []


def _sqlite_problems(uri):
    path = make_url(uri).database
    if not path or path == ":memory:":
        return []
    folder = next(parent for parent in Path(path).absolute().parents if parent.exists())
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return [f"DATABASE_URL names an SQLite file that cannot be created: {folder} is not a writable directory"]
    return []
