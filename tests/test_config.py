"""Configuration: URL normalisation, and `validate()` naming every bad setting.

config.py reads the environment once, at import, so each case reads it again in a child
interpreter with exactly the environment it describes (and no `.env` file).
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from dotenv import dotenv_values

from config import BASE_DIR, normalize_database_url
from tests import support

SECRET = "a-production-secret-that-is-long-enough-0123456789"

# The child: config.py without any .env file, read again for each environment it is sent
# (a JSON object a line), answering with the problems validate() finds and the settings it
# read (as reprs, so timedeltas and lists compare too). importlib.reload runs config.py's
# top level again, as a fresh interpreter would, in exactly that environment; one child
# for the module spares each case an interpreter's start and config.py's imports.
CHILD = """
import importlib, json, os, sys
import dotenv
dotenv.load_dotenv = lambda *args, **kwargs: False
dotenv.dotenv_values = lambda *args, **kwargs: {}
import config
for line in sys.stdin:
    os.environ.clear()
    os.environ.update(json.loads(line))
    importlib.reload(config)
    values = {name: getattr(config.Config, name) for name in dir(config.Config) if name.isupper()}
    print(json.dumps({"problems": config.validate(values),
                      "values": {name: repr(value) for name, value in values.items()}}), flush=True)
"""


class ConfigChild:
    """The CHILD interpreter, started again if a case ever stops it."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.process = None

    def __call__(self, env):
        """(problems, values) of config.py with exactly `env` (and PATH, HOME, LANG)."""
        if self.process is None or self.process.poll() is not None:
            self.log = open(self.log_path, "a")
            self.process = subprocess.Popen([sys.executable, "-c", CHILD], cwd=support.ROOT, text=True,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in os.environ}
        self.process.stdin.write(json.dumps({**base, **env}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"config.py stopped its interpreter: {self.log_path.read_text()[-2000:]}"
        out = json.loads(line)
        return out["problems"], out["values"]

    def stop(self):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait(10)
            self.log.close()


@pytest.fixture(scope="module")
def load_config(tmp_path_factory):
    child = ConfigChild(tmp_path_factory.mktemp("config") / "child.log")
    yield child
    child.stop()


# -- normalize_database_url --------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("postgres://user:pw@db.internal:5432/eventbook", "postgresql+psycopg2://user:pw@db.internal:5432/eventbook"),
    ("postgresql://user:pw@db.internal:5432/eventbook", "postgresql+psycopg2://user:pw@db.internal:5432/eventbook"),
    ("postgres://user@127.0.0.1/eventbook?sslmode=require",
     "postgresql+psycopg2://user@127.0.0.1/eventbook?sslmode=require"),
    ("postgresql+psycopg2://u@h/d", "postgresql+psycopg2://u@h/d"),
    ("sqlite:////var/data/eventbook.db", "sqlite:////var/data/eventbook.db"),
    # relative: from the project's folder, wherever the command runs (the README's default spelled out)
    ("sqlite:///instance/eventbook.db", f"sqlite:///{BASE_DIR / 'instance' / 'eventbook.db'}"),
    ("sqlite:///data/shop.db", f"sqlite:///{BASE_DIR / 'data' / 'shop.db'}"),
    ("sqlite://", "sqlite://"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
])
def test_normalize_database_url(url, expected):
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize("empty", ["", None])
def test_normalize_empty_database_url_is_the_local_sqlite_file(empty):
    assert normalize_database_url(empty) == f"sqlite:///{BASE_DIR / 'instance' / 'eventbook.db'}"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_url_starts_the_app(url, tmp_path, monkeypatch):
    """Both spellings of SQLite's in-memory database start the app (no pool settings
    for its one shared connection, and no directory made for it)."""
    from eventbook import create_app

    monkeypatch.chdir(tmp_path)
    app = create_app(support.test_config(url, NOTIFY_AUTOSTART=False))
    assert app.test_client().get("/api/openapi.json").status_code == 200
    assert list(tmp_path.iterdir()) == []


# -- validate() --------------------------------------------------------------------


def test_a_production_environment_with_a_secret_is_valid(load_config):
    problems, values = load_config({"JWT_SECRET_KEY": SECRET, "DATABASE_URL": "postgres://u:p@db:5432/eventbook"})
    assert problems == []
    assert load_config({"JWT_SECRET_KEY": SECRET, "DATABASE_URL": "postgres:///eventbook"})[0] == []  # local socket
    assert values["SQLALCHEMY_DATABASE_URI"] == repr("postgresql+psycopg2://u:p@db:5432/eventbook")


def test_defaults_need_only_a_secret(load_config):
    problems, _ = load_config({})
    assert len(problems) == 1 and problems[0].startswith("JWT_SECRET_KEY must be set"), problems
    assert load_config({"JWT_SECRET_KEY": SECRET})[0] == []


def test_an_empty_value_is_the_default_for_every_setting(load_config):
    """As .env.example says: `LOG_LEVEL=` is info, `MAIL_FROM=` the default sender (it was
    an empty one), an empty rate the default rate; numbers and flags too."""
    names = ["EMAIL_BACKEND", "LOG_FORMAT", "LOG_LEVEL", "MAIL_FROM", "RATELIMIT_STORAGE_URI", "RATELIMIT_LOGIN",
             "RATELIMIT_BOOKING", "HOLD_SECONDS", "RATELIMIT_ENABLED"]
    problems, values = load_config({"JWT_SECRET_KEY": SECRET, **{name: "" for name in names}})
    _, defaults = load_config({"JWT_SECRET_KEY": SECRET})
    assert problems == []
    assert {name: values[name] for name in names} == {name: defaults[name] for name in names}
    assert values["MAIL_FROM"] == repr("eventbook <no-reply@eventbook.local>")


def test_debug_mode_runs_without_a_secret(load_config):
    assert load_config({"FLASK_DEBUG": "1"})[0] == []


@pytest.mark.parametrize("env, named, says", [
    ({"JWT_SECRET_KEY": "too-short"}, "JWT_SECRET_KEY", "at least 32 characters"),
    ({"NOTIFY_WORKERS": "abc"}, "NOTIFY_WORKERS", "must be an integer, got 'abc'"),
    ({"NOTIFY_WORKERS": "0"}, "NOTIFY_WORKERS", "between 1 and 64"),
    ({"NOTIFY_QUEUE_SIZE": "-5"}, "NOTIFY_QUEUE_SIZE", "must be at least 1, got -5"),
    ({"JWT_ACCESS_MINUTES": "0"}, "JWT_ACCESS_MINUTES", "must be between 1 and 10080, got 0"),
    # a session ends with its refresh token: an access token would be refused as revoked before its expiry
    ({"JWT_ACCESS_MINUTES": "2880", "JWT_REFRESH_DAYS": "1"}, "JWT_ACCESS_MINUTES",
     "at most JWT_REFRESH_DAYS (1 days, 1440 minutes), got 2880"),
    ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS", "between 4 and 31"),
    ({"DB_POOL_SIZE": "many"}, "DB_POOL_SIZE", "must be an integer"),
    # int() reads these; gunicorn.conf.py's settings do not, and neither do the app's
    ({"DB_POOL_SIZE": "1_0"}, "DB_POOL_SIZE", "must be an integer, got '1_0'"),
    ({"HOLD_SECONDS": "+60"}, "HOLD_SECONDS", "must be an integer, got '+60'"),
    ({"NOTIFY_WORKERS": "\u0665"}, "NOTIFY_WORKERS", "must be an integer"),  # Arabic-Indic five
    ({"DB_POOL_TIMEOUT": "0"}, "DB_POOL_TIMEOUT", "between 1 and 600"),
    ({"MAX_BODY_BYTES": "10"}, "MAX_BODY_BYTES", "got 10"),
    ({"IDEMPOTENCY_TTL_HOURS": "1"}, "IDEMPOTENCY_TTL_HOURS", "got 1"),
    ({"MAIL_PORT": "70000"}, "MAIL_PORT", "between 1 and 65535"),
    ({"MAIL_TIMEOUT": "soon"}, "MAIL_TIMEOUT", "must be a number, got 'soon'"),
    ({"NOTIFY_SWEEP_SECONDS": "0.001"}, "NOTIFY_SWEEP_SECONDS", "between 0.05 and 86400, got '0.001'"),
    ({"NOTIFY_BACKOFF_SECONDS": "-1"}, "NOTIFY_BACKOFF_SECONDS", "between 0 and 86400"),
    # float() reads these: a loop waiting nan seconds spins, one waiting inf overflows
    ({"HOLD_SWEEP_SECONDS": "nan"}, "HOLD_SWEEP_SECONDS", "between 0.05 and 86400, got 'nan'"),
    ({"HOLD_SWEEP_SECONDS": "inf"}, "HOLD_SWEEP_SECONDS", "got 'inf'"),
    ({"NOTIFY_SHUTDOWN_SECONDS": "NaN"}, "NOTIFY_SHUTDOWN_SECONDS", "got 'NaN'"),
    ({"MAIL_TIMEOUT": "-inf"}, "MAIL_TIMEOUT", "got '-inf'"),
    # lifetimes past what a date can hold were a traceback at start
    ({"JWT_ACCESS_MINUTES": "99999999999999"}, "JWT_ACCESS_MINUTES", "between 1 and 10080"),
    ({"JWT_REFRESH_DAYS": "1000000000"}, "JWT_REFRESH_DAYS", "between 1 and 3650"),
    ({"IDEMPOTENCY_TTL_HOURS": "999999999999"}, "IDEMPOTENCY_TTL_HOURS", "between 24 and 87600"),
    ({"MAIL_USE_TLS": "maybe"}, "MAIL_USE_TLS", "must be true or false, got 'maybe'"),
    ({"RATELIMIT_ENABLED": "sometimes"}, "RATELIMIT_ENABLED", "must be true or false"),
    ({"EMAIL_BACKEND": "pigeon"}, "EMAIL_BACKEND", "must be one of log, smtp, got 'pigeon'"),
    ({"EMAIL_BACKEND": "smtp"}, "MAIL_SERVER", "must be set when EMAIL_BACKEND=smtp"),
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "must be one of json, text"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "must be one of debug, info, warning, error"),
    ({"PROXY_FIX_X_FOR": "11"}, "PROXY_FIX_X_FOR", "between 0 and 10"),
    ({"RATELIMIT_BOOKING": "lots"}, "RATELIMIT_BOOKING", "must be a rate such as '10 per minute', got 'lots'"),
    ({"RATELIMIT_LOGIN": "5 per fortnight"}, "RATELIMIT_LOGIN", "must be a rate"),
    ({"RATELIMIT_CHECKIN": "0 per minute"}, "RATELIMIT_CHECKIN", "must allow at least 1 request"),
    ({"RATELIMIT_BOOKING": "10 per minute; 0 per hour"}, "RATELIMIT_BOOKING", "must allow at least 1 request"),
    ({"RATELIMIT_STORAGE_URI": "foo://bar"}, "RATELIMIT_STORAGE_URI", "must be memory:// or a redis:// URL"),
    ({"RATELIMIT_STORAGE_URI": "mongodb://db:27017"}, "RATELIMIT_STORAGE_URI", "must be memory:// or a redis:// URL"),
    ({"RATELIMIT_STORAGE_URI": "redis://:pw@127.0.0.1:notaport/1"}, "RATELIMIT_STORAGE_URI", "notaport"),
    ({"RATELIMIT_STORAGE_URI": "redis+sentinel://:s3cret@h:x/mymaster"}, "RATELIMIT_STORAGE_URI", ":***@h:x"),
    ({"RATELIMIT_STORAGE_URI": "redis+cluster://:s3cret@127.0.0.1:1"}, "RATELIMIT_STORAGE_URI",
     "could not be reached: Redis Cluster cannot be connected"),
    ({"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/notadb"}, "RATELIMIT_STORAGE_URI",
     "must name a Redis database by its number (redis://HOST:6379/0), got '/notadb'"),
    ({"NOTIFY_DELIVERY_DELAY_MS": "99999999999999"}, "NOTIFY_DELIVERY_DELAY_MS", "must be between 0 and 60000"),
    ({"CORS_ORIGINS": "not a url"}, "CORS_ORIGINS", "must list origins such as https://app.example.com"),
    ({"CORS_ORIGINS": "https://app.example.com/path"}, "CORS_ORIGINS", "must list origins"),
    ({"DATABASE_URL": "mysql://u@h/d"}, "DATABASE_URL", "sqlite:// or postgres://"),
    ({"DATABASE_URL": "postgres://u:p@db.internal:5432"}, "DATABASE_URL",
     "must name a database (the server would use its default one): add it after the host, as in "
     "postgres://USER:PASSWORD@db.internal:5432/eventbook"),
    ({"DATABASE_URL": "postgresql://u@db/"}, "DATABASE_URL", "must name a database"),
    ({"DATABASE_URL": "postgres://u@db:port/eventbook"}, "DATABASE_URL", "is not a valid URL"),
    ({"DATABASE_URL": "sqlite:///setup.cfg/eventbook.db"}, "DATABASE_URL", "setup.cfg is not a writable directory"),
    ({"MAIL_FROM": "eventbook <a@b.c>\r\nBcc: x@y.z"}, "MAIL_FROM", "one line"),
])
def test_validate_names_the_bad_setting(env, named, says, load_config):
    problems, _ = load_config({"JWT_SECRET_KEY": SECRET, **env})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{named} ") and says in problems[0], problems


@pytest.mark.parametrize("url", ["redis://h:6379", "redis://h:6379/", "redis://h:6379/0", "redis://h/0/", "redis://h/%31",
                                 "rediss://h:6380/2", "redis://h:6379/0?ssl_cert_reqs=none", "redis://h/?db=3",
                                 "rediss://h/abc?db=1", "redis+sentinel://h:26379/mymaster/0"])
def test_a_redis_store_naming_its_database_as_redis_py_reads_it_is_valid(url, load_config):
    problems, _ = load_config({"JWT_SECRET_KEY": SECRET, "RATELIMIT_STORAGE_URI": url})
    assert problems == []


def test_validate_names_every_bad_setting_at_once(load_config):
    problems, _ = load_config({"NOTIFY_WORKERS": "abc", "MAIL_PORT": "0", "LOG_FORMAT": "xml",
                               "RATELIMIT_REGISTER": "never"})
    named = sorted(p.split()[0] for p in problems)
    assert named == ["JWT_SECRET_KEY", "LOG_FORMAT", "MAIL_PORT", "NOTIFY_WORKERS", "RATELIMIT_REGISTER"]


@pytest.mark.parametrize("env, named", [
    ({"NOTIFY_WORKERS": "abc", "EMAIL_BACKEND": "smtp"}, ("NOTIFY_WORKERS", "JWT_SECRET_KEY", "MAIL_SERVER")),
    ({"JWT_SECRET_KEY": SECRET, "RATELIMIT_STORAGE_URI": "mongodb://db:27017"}, ("RATELIMIT_STORAGE_URI",)),
], ids=["two-bad-settings", "a-store-of-another-kind"])
def test_the_entry_point_stops_with_one_line_naming_every_bad_setting(env, named):
    """`import wsgi` (what `flask --app wsgi` and gunicorn's workers do) exits non-zero
    with the whole list on one line, not a traceback (nor the traceback of a rate-limit
    store half made by its library)."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    child = "import dotenv; dotenv.load_dotenv = lambda *a, **k: False; dotenv.dotenv_values = lambda *a, **k: {}; import wsgi"
    result = subprocess.run([sys.executable, "-c", child], cwd=support.ROOT, env={**base, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eventbook: invalid configuration: ")
    for name in named:
        assert name in lines[0]
    assert "Traceback" not in result.stderr


def test_an_empty_value_in_env_does_not_hide_the_development_key(tmp_path):
    """.env.example copied to .env has `JWT_SECRET_KEY=` (empty: the default); the key
    that `make run` wrote to instance/.env still applies, and nothing else is overridden."""
    shutil.copy(support.ROOT / "config.py", tmp_path / "config.py")
    (tmp_path / ".env").write_text("JWT_SECRET_KEY=\nLOG_LEVEL=warning\n")
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / ".env").write_text(f"JWT_SECRET_KEY={SECRET}\nLOG_LEVEL=debug\n")
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    child = ("import json, config; print(json.dumps([config.Config.JWT_SECRET_KEY, config.Config.LOG_LEVEL, "
             "config.validate({n: getattr(config.Config, n) for n in dir(config.Config) if n.isupper()})]))")
    result = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env=base, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [SECRET, "warning", []]


# -- every setting is documented -----------------------------------------------------

READERS = re.compile(r"""_(?:str|int|bool|float|choice)\(\s*["']([A-Z0-9_]+)["']""")
GUNICORN = re.compile(r"""(?:os\.environ\.get|_int|_bool|_host)\(\s*["']([A-Z0-9_]+)["']""")


def settings_read():
    names = set(READERS.findall((support.ROOT / "config.py").read_text()))
    gunicorn = set(GUNICORN.findall((support.ROOT / "gunicorn.conf.py").read_text()))
    return names, gunicorn


def test_env_example_lists_every_setting():
    names, gunicorn = settings_read()
    assert len(names) >= 35 and {"PORT", "WEB_CONCURRENCY"} <= gunicorn  # the regexes still find them
    example = dotenv_values(support.ROOT / ".env.example")
    missing = sorted((names | gunicorn) - set(example))
    assert not missing, f".env.example lacks {missing}"
    unknown = sorted(set(example) - names - gunicorn)
    assert not unknown, f".env.example has settings nothing reads: {unknown}"
    text = (support.ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(text):
        if re.match(r"^[A-Z0-9_]+=", line):
            assert number > 0 and text[number - 1].startswith("# "), f"no comment above {line!r}"


def test_env_example_shows_the_real_defaults(load_config):
    """Running with every value of .env.example set gives exactly the defaults."""
    example = {k: v for k, v in dotenv_values(support.ROOT / ".env.example").items() if v is not None}
    names, gunicorn = settings_read()
    problems, defaults = load_config({"FLASK_DEBUG": "1"})
    assert problems == []
    problems, documented = load_config({**{k: v for k, v in example.items() if k in names}, "FLASK_DEBUG": "1"})
    assert problems == []
    assert documented == defaults

    child = ("import json, runpy; c = runpy.run_path('gunicorn.conf.py'); print(json.dumps({k: c[k] for k in "
             "('bind', 'workers', 'threads', 'timeout', 'graceful_timeout', 'keepalive', 'max_requests', "
             "'loglevel', 'reuse_port')}))")

    def gunicorn_settings(env):
        base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
        result = subprocess.run([sys.executable, "-c", child], cwd=support.ROOT, env={**base, **env},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    documented = {k: v for k, v in example.items() if k in gunicorn | {"LOG_LEVEL"}}
    assert gunicorn_settings(documented) == gunicorn_settings({})
    recycled = {"GUNICORN_MAX_REQUESTS": "1000"}  # a default that depends on another setting
    assert gunicorn_settings({**documented, **recycled}) == gunicorn_settings(recycled)


def test_readme_documents_every_setting():
    names, gunicorn = settings_read()
    readme = (support.ROOT / "README.md").read_text()
    missing = sorted(name for name in names | gunicorn if f"`{name}`" not in readme)
    assert not missing, f"README.md's settings table lacks {missing}"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"GUNICORN_REUSE_PORT": "maybe"}, "GUNICORN_REUSE_PORT must be true or false, got 'maybe'"),
        ({"GUNICORN_THREADS": "four"}, "GUNICORN_THREADS must be a whole number, got 'four'"),
        ({"HOST": "not_a_host"}, "HOST must be an address or host name of this machine, got 'not_a_host'"),
        ({"PORT": "70000"}, "PORT must be between 1 and 65535, got 70000"),
        ({"GUNICORN_THREADS": "0"}, "GUNICORN_THREADS must be at least 1, got 0"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be at least 1, got 0"),
        ({"GUNICORN_TIMEOUT": "100000"}, "GUNICORN_TIMEOUT must be between 0 and 86400, got 100000"),
        ({"PORT": "\u00b2"}, "PORT must be a whole number, got '\u00b2'"),  # a digit to str.isdigit, not to int()
        ({"PORT": "abc", "GUNICORN_THREADS": "zz"},
         "PORT must be a whole number, got 'abc'; GUNICORN_THREADS must be a whole number, got 'zz'"),
        ({"PORT": "abc", "HOLD_SECONDS": "5"},  # the app's bad settings in the same line
         "HOLD_SECONDS must be between 10 and 86400, got 5; PORT must be a whole number, got 'abc'"),
    ],
    ids=["reuse-port", "threads", "host", "port", "no-threads", "no-workers", "timeout", "superscript", "two",
         "and-the-apps"],
)
def test_gunicorn_conf_stops_on_a_bad_setting_naming_it(env, says):
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    base["JWT_SECRET_KEY"] = "gunicorn-conf-test-" + "x" * 40
    result = subprocess.run([sys.executable, "-c", "import runpy; runpy.run_path('gunicorn.conf.py')"],
                            cwd=support.ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == f"eventbook: invalid configuration: {says}"


def test_gunicorn_reads_dot_env_as_the_app_does(tmp_path):
    """gunicorn's settings and its log format come from .env and instance/.env too (the
    environment first), as the app's do: one log format, the workers asked for."""
    for name in ("gunicorn.conf.py", "config.py"):
        shutil.copy(support.ROOT / name, tmp_path / name)
    (tmp_path / ".env").write_text("WEB_CONCURRENCY=3\nPORT=8123\nLOG_FORMAT=text\n")
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / ".env").write_text("GUNICORN_THREADS=7\n")
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    child = ("import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
             "print(json.dumps([c['bind'], c['workers'], c['threads'], 'logconfig_dict' in c]))")

    def settings(env):
        result = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env={**base, **env},
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert settings({}) == ["0.0.0.0:8123", 3, 7, False]  # text logs: no JSON formatter for gunicorn's lines
    assert settings({"PORT": "8124", "LOG_FORMAT": "json"}) == ["0.0.0.0:8124", 3, 7, True]


@pytest.mark.parametrize(("exported", "recipes_see"), [("8123", "8123"), (None, "")])
def test_make_leaves_an_exported_port_to_the_server(exported, recipes_see):
    """`make serve` runs gunicorn with the PORT of the environment (a platform's), not
    `make run`'s default of 5000; without one, gunicorn's own default applies."""
    env = {key: value for key, value in os.environ.items() if key != "PORT"}
    if exported:
        env["PORT"] = exported
    result = subprocess.run(["make", "-s", "--eval", "port-seen: ; @echo \"[$$PORT]\"", "port-seen"],
                            cwd=support.ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"[{recipes_see}]", result.stderr


@pytest.mark.parametrize(("raw", "max_requests", "expected"), [
    ("", "", True), ("true", "", True), ("off", "", False), ("0", "", False),
    # a recycled worker's own socket would reset the connections waiting on it
    ("", "1000", False), ("true", "1000", True),
])
def test_gunicorn_reuse_port_setting(raw, max_requests, expected):
    base = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    child = "import runpy; print(runpy.run_path('gunicorn.conf.py')['reuse_port'])"
    env = {**base, "GUNICORN_REUSE_PORT": raw, "GUNICORN_MAX_REQUESTS": max_requests}
    result = subprocess.run([sys.executable, "-c", child], cwd=support.ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == str(expected), result.stderr


@pytest.mark.parametrize("swagger_ui", ["swagger", None])
def test_swagger_ui_served_elsewhere_or_not_at_all_is_what_the_document_lists(swagger_ui, tmp_path):
    """The document lists itself and Swagger UI where the settings serve them (and no 503
    for either); with Swagger UI turned off, only itself."""
    from eventbook import create_app

    config = support.test_config(f"sqlite:///{tmp_path / 'docs.db'}", NOTIFY_AUTOSTART=False,
                                 OPENAPI_SWAGGER_UI_PATH=swagger_ui)
    client = create_app(config).test_client()
    paths = client.get("/api/openapi.json").get_json()["paths"]
    served = {"/api/openapi.json"} | ({f"/api/{swagger_ui}"} if swagger_ui else set())
    assert {path for path, item in paths.items() if item.get("get", {}).get("tags") == ["docs"]} == served
    for path in served:
        assert "503" not in paths[path]["get"]["responses"]
        assert client.get(path).status_code == 200
    assert "/api/docs" not in paths and client.get("/api/docs").status_code == 404
    if swagger_ui:  # under Swagger UI's own policy, which lets its inline script run
        assert "'unsafe-inline'" in client.get(f"/api/{swagger_ui}").headers["Content-Security-Policy"]
