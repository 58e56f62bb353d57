#!/usr/bin/env python
"""The eventbook performance benchmark (issue 5). `make bench`, or:

    .venv/bin/python tests/perf/bench.py [--quick] [--scenario NAME ...]

It creates its own PostgreSQL database at BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/postgres, default server settings, synchronous
commit on), runs the migrations, makes its data with bulk SQL, starts the app the way
production runs it (`python -m gunicorn wsgi:app -c gunicorn.conf.py`, the settings of
config.py, gunicorn.conf.py and render.yaml: JSON access log at INFO, rate limits on,
counted in Redis when one answers), drives it from a separate load-generator process
(tests/perf/loadgen.py) on keep-alive connections, prints one table and writes
bench-results/bench.json. The reference of the booking targets is pgbench running the
app's own prepared statements (eventbook/sales/postgresql.py) in the same run. See
tests/perf/README.md.
"""

import argparse
import collections
import http.client
import json
import math
import os
import platform
import re
import resource
import runpy
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

PERF = Path(__file__).resolve().parent
ROOT = PERF.parent.parent
sys.path.insert(0, str(ROOT))

import bcrypt  # noqa: E402
import psycopg2  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.perf.door import DoorScenarios  # noqa: E402
from tests.support import free_port  # noqa: E402

SCENARIOS = ("hot", "spread", "holds", "multi", "expiry", "browse", "search", "delivery", "fanout", "memory",
             *DoorScenarios.SCENARIOS)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-jwt-secret-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
PASSWORD = "bench-password-123"
BIG = 1_000_000  # tickets of an event that must not sell out during a run
KEYED = "Idempotency-Key on each"  # a variant of hot
PRICE = "25.00"  # of every ticket type the benchmark makes
PARKED = "365 days"  # pgbench's clock runs this far ahead, so the app's delivery leaves its notifications alone
REDIS = "redis://127.0.0.1:6379"
# hot's variants at C=16 on servers without a production feature: what each costs
OFF = {"access log off": {"LOG_LEVEL": "warning"}, "rate limits off": {"RATELIMIT_ENABLED": "false"}}

FULL = {
    "duration": 10.0,  # seconds measured per app run
    "ref_duration": 4.0,  # seconds measured per pgbench run
    "warmup": 1.0,
    "clients": [4, 16, 64, 256],
    "ratio_clients": 16,  # the app's clients in the runs compared with pgbench (hot, holds, multi)
    "ratio_rounds": 3,  # pgbench, app, pgbench, app, ...: each target is the median of this many ratios
    "pgbench_connections": 4,
    "variant_clients": 16,  # hot, again with an Idempotency-Key on every request, and without log / rate limits
    "expiry_holds": 10_000,
    "expiry_duration": 10.0,  # the booking run without a sweep
    "expiry_wait": 30.0,  # the longest the sweep is waited for (the target is HOLD_SWEEP_SECONDS + 10 s)
    "customers": 100_000,
    "spread_events": 1000,
    "browse_small": 1000,
    "browse_large": 100_000,
    "browse_duration": 5.0,
    "browse_clients": 8,
    "search_small": 1000,
    "search_large": 100_000,
    "search_rare": 100,  # events holding the rare word, at both sizes
    "search_duration": 3.0,  # seconds per run; each run is repeated in every round
    "search_rounds": 3,
    "search_clients": 8,
    "delivery_clients": 16,
    "delivery_duration": 10.0,
    "delivery_rounds": 5,  # a p99 of 10 s moves by 10-20% between runs: the median of 5
    "fanout_attendees": 10_000,
    "fanout_rounds": 3,
    "fanout_wait": 90.0,  # seconds to wait for the fan-out's emails (the target is 30)
    "memory_requests": 100_000,
    "memory_max_seconds": 300.0,  # keeps a slow app inside the run's time budget
    "memory_clients": 16,
    "overload_seconds": 10.0,
    **DoorScenarios.FULL,
}
QUICK = {
    **FULL,
    "duration": 2.5,
    "ref_duration": 1.5,
    "warmup": 0.5,
    "clients": [4, 16, 256],
    "customers": 20_000,
    "expiry_duration": 4.0,
    "browse_duration": 1.5,
    "search_duration": 1.5,
    "search_rounds": 1,
    "delivery_duration": 2.5,
    "delivery_rounds": 1,
    "fanout_attendees": 3000,
    "fanout_rounds": 1,
    "fanout_wait": 30.0,
    "memory_requests": 4000,
    "overload_seconds": 3.0,
    **DoorScenarios.QUICK,
}


def _ms(value):
    return None if value is None else round(value, 1)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- machine -----------------------------------------------------------------------


def machine():
    info = {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        info["commit"] = (
            subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def loadavg():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


# -- the app server ----------------------------------------------------------------


def _stat(pid):
    """(comm, the fields after it) of /proc/<pid>/stat, or None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may hold spaces and parentheses
    return stat[stat.find("(") + 1 : stat.rfind(")")], stat[stat.rfind(")") + 2 :].split()


def _processes():
    """(pid, comm, fields) of every process, from /proc."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(entry.name)) is not None:
            yield int(entry.name), *found


def children(pid):
    """Pids whose parent is `pid` (gunicorn's workers), from /proc."""
    return sorted(child for child, _comm, fields in _processes() if int(fields[1]) == pid)


def cpu_seconds(pids):
    """User + system CPU time of these processes so far."""
    stats = (_stat(pid) for pid in pids)
    total = sum(int(fields[11]) + int(fields[12]) for _comm, fields in filter(None, stats))  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def shown(value, limit):
    """`value` to two decimals, or three when two would make it look like `limit` (or
    like the other side of it): 0.4988 shows as 0.499, not as a failing 0.50."""
    text = f"{value:.2f}"
    if (float(text) >= limit) != (value >= limit) or float(text) == limit != value:
        text = f"{value:.3f}"
    return text


def postgres_cpu_seconds():
    """User + system CPU time spent so far by the local PostgreSQL server: every live
    `postgres` process, plus what the postmaster has collected from children that have
    exited (a reference's connections end with its run). None when no server runs here."""
    processes = {pid: (comm, fields) for pid, comm, fields in _processes()}
    server = [fields for comm, fields in processes.values() if comm == "postgres"]
    if not server:
        return None
    total = 0
    for fields in server:
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if processes.get(int(fields[1]), ("",))[0] != "postgres":  # the postmaster: add its reaped children
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def connections_per_worker(port, workers):
    """Established client connections each worker holds (ss), e.g. {pid: 130}."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, timeout=5
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    counts = {pid: 0 for pid in workers}
    for line in out.splitlines():
        for pid in workers:
            if f"pid={pid}," in line:
                counts[pid] += 1
    return counts


class Balance:
    """A load-generator monitor: how the keep-alive connections landed on the workers
    (gunicorn workers accept on one shared socket; a connection stays with its worker)."""

    def __init__(self, server, clients):
        self.server, self.clients, self.seen = server, clients, None

    def __call__(self):
        if self.seen is None:
            counts = connections_per_worker(self.server.port, self.server.workers())
            if counts and sum(counts.values()) >= self.clients:
                self.seen = counts


def percentile(values, q):
    """The q-quantile of `values` (as loadgen.py computes it), None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def merge_runs(runs):
    """Several runs of one case as one result: the median of each figure, the answers summed."""
    status = collections.Counter()
    for run in runs:
        status.update(run.get("status", {}))

    def median(get):
        values = [v for v in (get(run) for run in runs) if v is not None]
        return statistics.median(values) if values else None

    return {
        "rps": median(lambda r: r.get("rps")),
        "latency_ms": {key: median(lambda r, key=key: r["latency_ms"][key]) for key in ("p50", "p90", "p99", "max")},
        "status": dict(status),
        "app_cpu_ms_per_request": median(lambda r: r.get("app_cpu_ms_per_request")),
        "db_cpu_ms_per_request": median(lambda r: r.get("db_cpu_ms_per_request")),
        "runs": len(runs),
    }


class Server:
    """`python -m gunicorn wsgi:app -c gunicorn.conf.py`, gunicorn.conf.py's defaults unless
    a scenario must set something."""

    def __init__(self, bench, env=None, name="app"):
        self.bench = bench
        self.port = free_port()
        self.name = name
        self.env = {
            **os.environ,
            "DATABASE_URL": bench.url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "JWT_SECRET_KEY": SECRET,
            # render.yaml's settings; the rest are config.py's and gunicorn.conf.py's
            # defaults (INFO access log, rate limits on, HOLD_SWEEP_SECONDS 5, ...)
            "EMAIL_BACKEND": "log",
            "LOG_FORMAT": "json",
            **({"RATELIMIT_STORAGE_URI": bench.ratelimit_storage} if bench.ratelimit_storage else {}),
            **bench.server_env,
            **(env or {}),
        }
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        # the access log (a line a request) goes to a file of its own, and what else the
        # server says to server.log when it stops
        self.bench.server_counter += 1
        self.log_path = self.bench.tmp / f"server-{self.bench.server_counter}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.bench.results}/server.log")
            if len(self.workers()) >= self.bench.app["workers"] and self._healthy():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("gunicorn did not answer /api/health in time")
            time.sleep(0.2)
        # every worker imports lazily on its first requests: touch each a few times
        for _ in range(4 * self.bench.app["workers"]):
            self.request("GET", "/api/events?perPage=1")
        return self

    def _healthy(self):
        try:
            return self.request("GET", "/api/health", timeout=2)[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=30):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def workers(self):
        return children(self.process.pid) if self.process else []

    def rss(self):
        return {pid: rss_mb(pid) for pid in self.workers()}

    def stop(self, timeout=60):
        if self.process is None or self.process.poll() is not None:
            if self.process is not None and not self.log.closed:
                self.log.close()
                self.keep_log()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in self.workers() + [self.process.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait(10)
        self.log.close()
        self.keep_log()

    def keep_log(self):
        """server.log gets this server's lines but one a request or an email (the access
        log, the log email backend), which are counted."""
        counted = collections.Counter()
        with open(self.log_path, "rb") as source, open(self.bench.results / "server.log", "ab") as log:
            log.write(f"\n==== {self.name} {datetime.now().isoformat()} ====\n".encode())
            for line in source:
                for logger in (b"eventbook.access", b"eventbook.email"):
                    if b'"' + logger + b'"' in line or b" " + logger + b": " in line:
                        counted[logger.decode()] += 1
                        break
                else:
                    log.write(line)
            log.write(f"({', '.join(f'{n} {name} lines' for name, n in counted.items()) or 'no access log'})\n".encode())
        self.log_path.unlink()


def inherited_env():
    """Settings of the app or of gunicorn that the server inherits from this shell."""
    names = set()
    for path in (ROOT / "config.py", ROOT / "gunicorn.conf.py"):
        names |= set(re.findall(r"[\"']([A-Z][A-Z0-9_]{2,})[\"']", path.read_text()))
    return {name: os.environ[name] for name in sorted(names) if name in os.environ}


def app_settings(server_env):
    """Workers, threads and pool sizes the server will run with (gunicorn.conf.py and
    config.py defaults, overridden by the environment as the server sees it)."""
    env = {**os.environ, **server_env}
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    import config as settings  # the app's defaults, as the server will read them

    def setting(name):
        return int(server_env[name]) if server_env.get(name) else getattr(settings.Config, name)

    pool = setting("DB_POOL_SIZE")
    workers, threads = conf["workers"], conf["threads"]
    return {
        "workers": workers,
        "threads": threads,
        "db_pool_size": pool,
        "notify_workers": setting("NOTIFY_WORKERS"),
        "notify_queue_size": setting("NOTIFY_QUEUE_SIZE"),
        "max_tickets": setting("MAX_TICKETS_PER_BOOKING"),
        "hold_sweep_seconds": float(server_env.get("HOLD_SWEEP_SECONDS") or settings.Config.HOLD_SWEEP_SECONDS),
        # connections that requests can hold at once: one per request thread, within
        # the pool (pool_size + max_overflow, which database.py sets equal)
        "db_concurrency": workers * min(threads, 2 * pool),
    }


# -- the benchmark -----------------------------------------------------------------


class Bench(DoorScenarios):
    def __init__(self, args):
        self.args = args
        self.size = dict(QUICK if args.quick else FULL)
        if args.duration:
            self.size["duration"] = args.duration
        for item in args.set:
            key, _, value = item.partition("=")
            if key not in self.size or key == "clients":
                raise SystemExit(f"--set: unknown size {key!r}; one of {', '.join(k for k in self.size if k != 'clients')}")
            current = self.size[key]
            if isinstance(current, bool):
                self.size[key] = value.lower() in ("1", "true", "yes", "on")
            else:
                self.size[key] = type(current)(float(value))
        if args.clients:
            self.size["clients"] = args.clients
        self.base_url = args.database_url
        self.server_env = dict(item.split("=", 1) for item in args.server_env)
        self.app = app_settings(self.server_env)
        self.results = ROOT / "bench-results"
        self.results.mkdir(exist_ok=True)
        (self.results / "server.log").write_text("")  # this run's servers only
        self.tmp = Path(tempfile.mkdtemp(prefix="eventbook-bench-"))
        self.rows = []  # the table
        self.oversold = []  # every failed oversell check, whether or not its row has a verdict
        self.data = {}  # the JSON, per scenario
        self.spec_counter = 0
        self.server_counter = 0
        self.url = None
        self.extra_databases = []
        self.redis = None
        self.ratelimit_storage = None

    # -- database --------------------------------------------------------------

    def admin(self):
        connection = psycopg2.connect(self.base_url)
        connection.autocommit = True
        return connection

    def db(self, url=None):
        connection = psycopg2.connect(url or self.url)
        connection.autocommit = True
        return connection

    def sql(self, query, params=None, fetch="all", url=None):
        # autocommit, and no `with connection:` (psycopg2 >= 2.9 opens a transaction
        # block for it even in autocommit mode, and VACUUM refuses to run in one)
        connection = self.db(url)
        try:
            with connection.cursor() as cursor:
                cursor.execute(query, params)
                if fetch == "all":
                    return cursor.fetchall()
                if fetch == "one":
                    return cursor.fetchone()
                return None
        finally:
            connection.close()

    def setup(self):
        name = f"eventbook_bench_{uuid.uuid4().hex[:10]}"
        admin = self.admin()
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
            cursor.execute(
                "SELECT version(), current_setting('synchronous_commit'), current_setting('fsync'), "
                "current_setting('shared_buffers'), current_setting('max_connections')"
            )
            version, sync, fsync, shared, maxconn = cursor.fetchone()
        admin.close()
        self.db_name = name
        self.url = make_url(self.base_url).set(database=name).render_as_string(hide_password=False)
        self.postgres = {
            "version": " ".join(version.split()[:2]),
            "synchronous_commit": sync,
            "fsync": fsync,
            "shared_buffers": shared,
            "max_connections": maxconn,
            "database": name,
        }
        self.claim_redis()
        log(f"database {name}: migrating")
        self.migrate(self.url)
        self.seed_users()

    def claim_redis(self):
        """Rate-limit counters in Redis, as render.yaml wires them: a database of the local
        Redis (1 to 15) that no other benchmark has claimed, emptied, released at the end.
        Without Redis, the default memory storage (each worker counts on its own)."""
        try:
            import redis

            for number in range(1, 16):
                client = redis.Redis.from_url(f"{REDIS}/{number}", socket_timeout=2)
                if client.set("eventbook-bench:owner", self.tmp.name, nx=True, ex=7200):
                    client.flushdb()
                    client.set("eventbook-bench:owner", self.tmp.name, ex=7200)
                    self.redis, self.ratelimit_storage = client, f"{REDIS}/{number}"
                    log(f"rate limits counted in Redis at {self.ratelimit_storage}")
                    return
            log("Redis answers but databases 1-15 are all claimed: rate limits counted in memory (memory://)")
        except Exception as exc:  # noqa: BLE001 - any failure means: no Redis
            log(f"no Redis at {REDIS} ({exc.__class__.__name__}): rate limits counted in memory (memory://)")

    def release_redis(self):
        if self.redis is not None:
            try:
                self.redis.flushdb()
            except Exception:  # noqa: BLE001
                pass

    def migrate(self, url):
        env = {**os.environ, "DATABASE_URL": url, "JWT_SECRET_KEY": SECRET, "LOG_LEVEL": "warning"}
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
        )

    def second_database(self):
        """Another migrated database beside the main one, with one organizer and no
        customers (dropped with the main one): (its URL, the organizer's id)."""
        name = f"{self.db_name}_2"
        admin = self.admin()
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        self.extra_databases.append(name)
        url = make_url(self.base_url).set(database=name).render_as_string(hide_password=False)
        self.migrate(url)
        [(organizer,)] = self.sql(
            "INSERT INTO users (email, password_hash, name, role, created_at) "
            "VALUES ('organizer@bench.example', 'x', 'Bench organizer', 'ORGANIZER', now()) RETURNING id",
            url=url,
        )
        return url, organizer

    def drop(self):
        if self.url is None or self.args.keep_db:
            if self.url:
                log(f"kept database {self.db_name}")
            return
        admin = self.admin()
        with admin.cursor() as cursor:
            for name in [self.db_name, *self.extra_databases]:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    def seed_users(self):
        started = time.perf_counter()
        n = self.size["customers"]
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
        connection = self.db()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO users (email, password_hash, name, role, created_at) "
                "VALUES ('organizer@bench.example', %s, 'Bench organizer', 'ORGANIZER', now()) RETURNING id",
                (hashed,),
            )
            self.organizer = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO users (email, password_hash, name, role, created_at) "
                "SELECT 'customer' || g || '@bench.example', %s, NULL, 'CUSTOMER', now() "
                "FROM generate_series(1, %s) g ORDER BY g",
                (hashed, n),
            )
            cursor.execute("SELECT min(id), max(id), count(*) FROM users WHERE role = 'CUSTOMER'")
            first, last, count = cursor.fetchone()
            assert count == n and last - first + 1 == n, "customer ids are not contiguous"
            cursor.execute("ANALYZE users")
        connection.close()
        self.first_customer = first
        self.customers = n
        self.mint_tokens()
        log(f"{n} customers and their tokens ready in {time.perf_counter() - started:.1f}s")

    def mint_tokens(self):
        """Access tokens made with the server's own JWT settings, instead of thousands of
        logins (bcrypt would make that the slowest part of the run)."""
        from flask_jwt_extended import create_access_token

        import config as settings
        from eventbook import create_app

        config = type(
            "BenchConfig",
            (settings.Config,),
            {
                "SQLALCHEMY_DATABASE_URI": settings.normalize_database_url(self.url),
                "JWT_SECRET_KEY": SECRET,
                "NOTIFY_AUTOSTART": False,
                "LOG_LEVEL": "warning",
            },
        )
        app = create_app(config)
        lifetime = timedelta(hours=12)
        with app.app_context():
            tokens = [
                create_access_token(identity=str(self.first_customer + i), expires_delta=lifetime) for i in range(self.customers)
            ]
            self.organizer_token = create_access_token(identity=str(self.organizer), expires_delta=lifetime)
        self.tokens_file = self.tmp / "tokens.txt"
        self.tokens_file.write_text("\n".join(tokens))

    def reset(self):
        """Empty everything but the users: each scenario starts from the same state."""
        tables = [name for (name,) in self.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('users', 'alembic_version')")]
        self.sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE", fetch=None)

    def make_events(self, n, tickets=BIG, random_dates=False, title="Bench event", types=("General",), parked=False):
        """`n` SCHEDULED events of `tickets` tickets, each with one ticket type per name
        in `types` (price PRICE, quantity `tickets`): with one type, `ticketsCount` books
        as on any one-type event. `parked`: a date beyond pgbench's clock (PARKED ahead)."""
        date = (
            "now() + interval '1 day' + random() * interval '365 days'"
            if random_dates
            else "now() + interval '30 days' + g * interval '1 minute'"
        )
        if parked:
            date = f"now() + interval '{PARKED}' + interval '30 days' + g * interval '1 minute'"
        rows = self.sql(
            "INSERT INTO events (title, description, date, location, total_tickets, available_tickets, status, "
            "organizer_id, created_at, updated_at) "
            f"SELECT %s || ' ' || g, 'An event made by the benchmark.', {date}, 'Bench hall', %s, %s, "
            "'SCHEDULED', %s, now(), now() FROM generate_series(1, %s) g RETURNING id",
            (title, tickets, tickets, self.organizer, n),
        )
        events = sorted(r[0] for r in rows)
        self.sql(
            "INSERT INTO ticket_types (event_id, name, price, quantity, available_quantity) "
            "SELECT e, t.name, %s, %s, %s FROM unnest(%s) e, unnest(%s::text[]) WITH ORDINALITY t(name, k) ORDER BY e, t.k",
            (PRICE, tickets, tickets, events, list(types)),
            fetch=None,
        )
        self.sql("ANALYZE events", fetch=None)
        self.sql("ANALYZE ticket_types", fetch=None)
        return events

    def types_of(self, event):
        return [t for (t,) in self.sql("SELECT id FROM ticket_types WHERE event_id = %s ORDER BY id", (event,))]

    def pending(self):
        """Notifications waiting for delivery (the reference parks its own: not counted)."""
        return self.sql(
            "SELECT count(*) FROM notifications WHERE status = 'PENDING' AND next_attempt_at < now() + interval '1 day'", fetch="one"
        )[0]

    def wait_outbox(self, timeout=60):
        """Let the delivery of the previous run finish, so it does not load the next."""
        started = time.perf_counter()
        while self.pending():
            if time.perf_counter() - started > timeout:
                log(f"  outbox still has {self.pending()} PENDING after {timeout}s; going on")
                return None
            time.sleep(0.2)
        return round(time.perf_counter() - started, 2)

    def oversell(self, events, client_sold=None):
        """docs/booking.md's invariant, per event and per ticket type: total - available ==
        tickets of CONFIRMED bookings + tickets of HELD holds + set aside, within bounds;
        one tickets row per CONFIRMED unit; and `client_sold` (tickets in the 201 answers
        the client saw), when given, == CONFIRMED tickets."""
        (bad_events, bad_types, taken, confirmed, held, tickets) = self.sql(
            "WITH e AS (SELECT * FROM events WHERE id = ANY(%(ids)s)), "
            "b AS (SELECT event_id, sum(tickets_count) AS n FROM bookings WHERE status = 'CONFIRMED' "
            "  AND event_id = ANY(%(ids)s) GROUP BY event_id), "
            "h AS (SELECT event_id, sum(tickets_count) AS n FROM holds WHERE status = 'HELD' "
            "  AND event_id = ANY(%(ids)s) GROUP BY event_id), "
            "k AS (SELECT count(*) AS n FROM tickets JOIN bookings ON bookings.id = tickets.booking_id "
            "  WHERE bookings.status = 'CONFIRMED' AND bookings.event_id = ANY(%(ids)s)), "
            "t AS (SELECT tt.*, "
            "  COALESCE((SELECT sum(i.count) FROM items i JOIN bookings x ON x.id = i.booking_id "
            "    WHERE i.ticket_type_id = tt.id AND x.status = 'CONFIRMED'), 0) "
            "  + COALESCE((SELECT sum(i.count) FROM items i JOIN holds x ON x.id = i.hold_id "
            "    WHERE i.ticket_type_id = tt.id AND x.status = 'HELD' AND i.booking_id IS NULL), 0) AS counted "
            "  FROM ticket_types tt WHERE tt.event_id = ANY(%(ids)s)) "
            "SELECT (SELECT count(*) FROM e LEFT JOIN b ON b.event_id = e.id LEFT JOIN h ON h.event_id = e.id "
            "  WHERE e.available_tickets < 0 OR e.available_tickets + e.set_aside_tickets > e.total_tickets "
            "  OR e.total_tickets - e.available_tickets != COALESCE(b.n, 0) + COALESCE(h.n, 0) + e.set_aside_tickets), "
            "(SELECT count(*) FROM t WHERE available_quantity < 0 OR available_quantity + set_aside > quantity "
            "  OR quantity - available_quantity != counted + set_aside), "
            "(SELECT COALESCE(sum(total_tickets - available_tickets - set_aside_tickets), 0) FROM e), "
            "(SELECT COALESCE(sum(n), 0) FROM b), (SELECT COALESCE(sum(n), 0) FROM h), (SELECT n FROM k)",
            {"ids": list(events)},
            fetch="one",
        )
        check = {"sold": client_sold, "total_minus_available": int(taken), "confirmed_tickets": int(confirmed),
                 "held_tickets": int(held), "tickets_rows": int(tickets), "bad_events": bad_events, "bad_types": bad_types}
        check["ok"] = (bad_events == 0 and bad_types == 0 and taken == confirmed + held and tickets == confirmed
                       and (client_sold is None or client_sold == confirmed))
        if not check["ok"]:
            self.oversold.append(check)
        return check

    # -- load ------------------------------------------------------------------

    def loadgen(self, spec, monitor=None, every=0.5, server=None):
        """Run tests/perf/loadgen.py on `spec`; with `server`, add the CPU time its workers
        and the load generator spent per request (steadier than req/s on a busy machine)."""
        workers = server.workers() if server else []
        app_cpu = cpu_seconds(workers)
        own = resource.getrusage(resource.RUSAGE_CHILDREN)
        db_cpu = postgres_cpu_seconds()
        result = self._loadgen(spec, monitor, every)
        db_cpu_after = postgres_cpu_seconds()
        own_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        answered = sum(result.get("all_status", {}).values()) or 1
        if server:
            result["app_cpu_ms_per_request"] = round((cpu_seconds(workers) - app_cpu) * 1000 / answered, 2)
        if db_cpu is not None and db_cpu_after is not None:
            result["db_cpu_ms_per_request"] = round((db_cpu_after - db_cpu) * 1000 / answered, 2)
        result["loadgen_cpu_ms_per_request"] = round(
            ((own_after.ru_utime + own_after.ru_stime) - (own.ru_utime + own.ru_stime)) * 1000 / answered, 3
        )
        return result

    def _loadgen(self, spec, monitor=None, every=0.5):
        self.spec_counter += 1
        path = self.tmp / f"spec-{self.spec_counter}.json"
        path.write_text(json.dumps(spec))
        # Its answer goes to files, not pipes: while a monitor runs, nothing reads a pipe,
        # and an answer bigger than the pipe's buffer (a timeline) would block it forever.
        out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
        with open(out_path, "w") as out, open(err_path, "w") as err:
            process = subprocess.Popen([sys.executable, str(PERF / "loadgen.py"), str(path)], stdout=out, stderr=err)
            if monitor is not None:
                while process.poll() is None:
                    monitor()
                    time.sleep(every)
            process.wait()
        if process.returncode != 0:
            raise RuntimeError(f"loadgen failed ({process.returncode}):\n{err_path.read_text()[-3000:]}")
        return json.loads(out_path.read_text())

    def book_http(
        self,
        server,
        clients,
        events,
        duration=None,
        requests=None,
        warmup=None,
        monitor=None,
        extra=None,
        book_weight=1,
        max_seconds=None,
        keyed=False,
        kind="book",
        items=None,
        customers=None,
        timeline=False,
    ):
        """`clients` closed-loop clients booking on `events` (kind "book": POST
        /api/bookings, ticketsCount 1 or `items` [(type, count)]; "hold_confirm": hold,
        then confirm), each booking by the next customer (of the first `customers`)."""
        book = {"name": kind, "kind": kind, "events": events, "weight": book_weight, "idempotency_keys": keyed}
        if items:
            book["items"] = [list(item) for item in items]
        if customers:
            book["customers"] = customers
        mix = [book] + (extra or [])
        spec = {
            "mode": "http",
            "port": server.port,
            "clients": clients,
            "mix": mix,
            "tokens_file": str(self.tokens_file),
            "seed": self.spec_counter,
            "timeline": timeline,
        }
        if requests is not None:
            spec["requests"] = requests
            if max_seconds:
                spec["max_seconds"] = max_seconds
        else:
            spec["duration"] = duration or self.size["duration"]
            spec["warmup"] = self.size["warmup"] if warmup is None else warmup
        return self.loadgen(spec, monitor, server=server)

    def get_http(self, server, clients, paths, duration):
        spec = {
            "mode": "http",
            "port": server.port,
            "clients": clients,
            "duration": duration,
            "warmup": self.size["warmup"],
            "mix": [{"name": "get", "kind": "get", "paths": paths}],
        }
        return self.loadgen(spec, server=server)

    def pgbench_sql(self, prepared, values):
        """The SQL of one of the app's prepared sales statements (an
        eventbook.database.Prepared: BOOK, HOLD, CONFIRM) for a pgbench script: the very
        text the app PREPAREs, its constants written in, each of the request's parameters
        $n written as CAST(<value> AS <its type in the app's PREPARE>). `values` gives the
        value of each (name -> ":variable" or an SQL expression); pgbench -M prepared
        sends those as parameters, as the app does."""
        from sqlalchemy.dialects.postgresql import psycopg2 as dialects

        from eventbook.database import PARAMETER

        dialect = dialects.dialect(paramstyle="numeric_dollar")
        missing = {key for key, _ in prepared.parameters} - set(values)
        if missing:
            raise RuntimeError(f"{prepared.name}: no value for {sorted(missing)}")

        def parameter(match):
            key, kind = prepared.parameters[int(match.group(1)) - 1]
            return f"CAST({values[key]} AS {kind.compile(dialect=dialect)})"

        sql = PARAMETER.sub(parameter, prepared.sql)
        if ";" in sql:
            raise RuntimeError(f"{prepared.name}: cannot be one pgbench command")
        return sql

    def pgbench_order(self, events, items=None, tickets=1):
        """pgbench lines and -D values for an order as the app's `_values` makes one: the
        n-th transaction of client c is customer (c + n x clients) mod NC (each a new
        customer until NC), on a random event of `events` (contiguous ids), `ticketsCount`
        or, with `items` ((type, count) of one event), the listed items; ticket codes
        unique across the run (numbers, not the app's random text: same column, same index)."""
        if events[-1] - events[0] + 1 != len(events):
            raise RuntimeError("pgbench needs events with contiguous ids")
        self.spec_counter += 1
        lines = [
            "\\set n :n + 1",
            "\\set customer :first + (:client_id + :n * :clients) % :nc",
            f"\\set event random({events[0]}, {events[-1]})",
        ]
        defines = {
            "n": 0, "first": self.first_customer, "nc": self.customers, "salt": self.spec_counter,
            "email": "customer@bench.example", "seat_ids": "{}", "seat_count": 0, "seat_changes": 0,
        }
        if items:
            defines.update(tickets=sum(c for _, c in items), shorthand=0, type_ids="{" + ",".join(str(t) for t, _ in items) + "}",
                           counts="{" + ",".join(str(c) for _, c in items) + "}")
        else:
            defines.update(tickets=tickets, shorthand=tickets, type_ids="{}", counts="{}")
        now = f"now() + interval '{PARKED}'"
        values = {name: f":{name}" for name in ("customer", "tickets", "shorthand", "event", "type_ids", "counts",
                                                "seat_ids", "seat_changes", "seat_count", "email")}
        values.update(now=now, idempotency_key="NULL", digest="NULL", key_expires_at="NULL",
                      hold_expires_at=f"{now} + interval '600 seconds'")
        return lines, defines, values

    def codes(self, lines, count, tag):
        """`count` ticket codes for a pgbench statement: ARRAY[...] of unique numbers."""
        names = []
        for i in range(1, count + 1):
            lines.append(f"\\set {tag}{i} (:salt * 100000 + :client_id) * 10000000000 + :n * 16 + {i}")
            names.append(f"CAST(:{tag}{i} AS VARCHAR)")
        return "ARRAY[" + ", ".join(names) + "]"

    def pgbench(self, connections, events, duration, kind="book", items=None):
        """pgbench -M prepared running the app's own statements on `connections`
        connections for `duration` seconds: "book" (BOOK: ticketsCount 1, or `items`),
        or "hold_confirm" (HOLD, then CONFIRM of the hold it made: one transaction of
        pgbench's, auto-committed statements as the app's). Their notifications are
        due PARKED ahead (the clock of the statements runs ahead; the events' dates are
        beyond it), so the app's idle delivery does not send them. None without pgbench."""
        if not shutil.which("pgbench"):
            return None
        from eventbook.sales import postgresql as sales

        lines, defines, values = self.pgbench_order(events, items)
        if kind == "book":
            values["codes"] = self.codes(lines, sum(c for _, c in items) if items else 1, "code")
            sql = self.pgbench_sql(sales.BOOK, values)
            lines.append(sql + ";")
        else:
            sql = self.pgbench_sql(sales.HOLD, values)
            lines.append(sql + " \\gset held_")
            confirm = {**values, "hold": ":held_hold_id"}
            confirm["codes"] = self.codes(lines, self.app["max_tickets"], "code")
            sql = self.pgbench_sql(sales.CONFIRM, confirm)
            lines.append(sql + ";")
        defines.update(clients=connections)
        script = self.tmp / f"pgbench-{kind}-{self.spec_counter}.sql"
        script.write_text("\n".join(lines) + "\n")
        command = ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", str(min(connections, os.cpu_count() or 1)),
                   "-T", str(max(1, round(duration)))]
        for name, value in defines.items():
            command += ["-D", f"{name}={value}"]
        db_cpu = postgres_cpu_seconds()
        out = subprocess.run(command + ["-f", str(script), self.url], capture_output=True, text=True)
        db_cpu_after = postgres_cpu_seconds()
        tps = latency = done = None
        for line in out.stdout.splitlines():
            if line.startswith("tps ="):
                tps = float(line.split()[2])
            if line.startswith("latency average"):
                latency = float(line.split()[3])
            if line.startswith("number of transactions actually processed"):
                done = int(line.split(":")[1].split("/")[0])
        aborted = "aborted" in out.stdout + out.stderr
        if tps is None or aborted:
            log(f"  pgbench failed: {(out.stderr.strip() or out.stdout.strip())[-400:]}")
            if tps is None:
                return None
        result = {"connections": connections, "kind": kind, "tps": round(tps, 1), "latency_avg_ms": latency,
                  "transactions": done, "aborted": aborted, "script": script.name}
        if db_cpu is not None and done:
            result["db_cpu_ms_per_transaction"] = round((db_cpu_after - db_cpu) * 1000 / done, 2)
        return result

    def profile(self, server, label):
        """With --py-spy: sample every worker for the next app run."""
        if not self.args.py_spy:
            return []
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        suffix = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[self.args.py_spy]
        seconds = int(self.size["warmup"] + self.size["duration"])
        profilers = []
        for pid in server.workers():
            path = self.results / f"py-spy-{label}-{pid}.{suffix}"
            profilers.append(
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(seconds),
                        "--rate",
                        "100",
                        "--format",
                        self.args.py_spy,
                        "--output",
                        str(path),
                        "--nonblocking",
                    ]
                    + (["--gil"] if self.args.py_spy_gil else []),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return profilers

    def profiled(self, profilers):
        for process in profilers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.terminate()

    # -- the table ---------------------------------------------------------------

    def row(self, scenario, case, result=None, figure="", target="", verdict=None):
        row = {
            "scenario": scenario,
            "case": case,
            "figure": figure,
            "target": target,
            "verdict": "" if verdict is None else ("PASS" if verdict else "MISS"),
        }
        if result is not None:
            row["rps"] = result.get("rps")
            row["p50"] = _ms(result["latency_ms"]["p50"])
            row["p99"] = _ms(result["latency_ms"]["p99"])
            kinds = result.get("kinds") or {}
            if len(kinds) > 1:
                row["answers"] = " | ".join(
                    f"{kind} " + " ".join(f"{k}:{v}" for k, v in item["status"].items()) for kind, item in kinds.items()
                )
            else:
                row["answers"] = " ".join(f"{k}:{v}" for k, v in result.get("status", {}).items())
            if result.get("errors"):
                row["answers"] += " " + " ".join(f"{k}:{v}" for k, v in result["errors"].items())
            row["cpu"] = result.get("app_cpu_ms_per_request")
            row["db_cpu"] = result.get("db_cpu_ms_per_request")
        self.rows.append(row)
        shown = (
            f"{row.get('rps', '')} req/s p50 {row.get('p50', '')} p99 {row.get('p99', '')} "
            + (f"cpu {row['cpu']} ms/req " if row.get("cpu") else "")
            + (f"db cpu {row['db_cpu']} ms/req " if row.get("db_cpu") else "")
            if result
            else ""
        )
        log(f"  {scenario:8} {case:34} {shown}{figure} {target} {row['verdict']}")

    # -- scenarios ---------------------------------------------------------------

    def scenario_booking(self, name, n_events):
        """Hot (one event) or spread (n events): C clients booking 1 ticket each, every
        request by a distinct customer, on the server as deployed. Hot then compares
        C=16 with pgbench running the app's BOOK statement (the target), and books at
        `variant_clients` with an Idempotency-Key on every request, and on servers
        without the access log and without rate limits (what each costs)."""
        self.reset()
        out = {"events": n_events, "runs": []}
        by_clients = {}
        with Server(self, name=name) as server:
            for clients in self.size["clients"]:
                run = self.booking_run(server, name, n_events, clients)
                by_clients[clients] = run
                out["runs"].append(run)
            if name == "hot":
                out["compared"] = self.compare(
                    name, "BOOK", 0.40,
                    lambda: self.booking_run(server, name, 1, self.size["ratio_clients"], "vs pgbench"),
                    lambda: self.pgbench_run(name, 1, "book"),
                )
                if self.size["variant_clients"]:
                    out["variants"] = [self.booking_run(server, name, n_events, self.size["variant_clients"], KEYED)]
            else:
                out["pgbench"] = self.pgbench_run(name, n_events, "book")
                if out["pgbench"]:
                    self.row(name, f"pgbench BOOK, {self.size['pgbench_connections']} conns (info)", None,
                             f"{out['pgbench']['tps']} tps")
        if name == "hot" and self.size["variant_clients"]:
            # CPU per request is the steadier figure on a shared machine
            deployed, cpu = out["compared"]["app_rps_median"], out["compared"]["app_cpu_median"]
            for variant, env in OFF.items():
                with Server(self, env=env, name=f"{name}-{variant.replace(' ', '-')}") as server:
                    run = self.booking_run(server, name, n_events, self.size["variant_clients"], variant)
                out["variants"].append(run)
                off_cpu = run["app"].get("app_cpu_ms_per_request") or 0
                self.row(name, f"as deployed vs {variant} (info)", None,
                         f"{deployed:.0f} vs {run['app']['rps']:.0f} req/s ({deployed / run['app']['rps']:.2f}x); "
                         f"app CPU {cpu:.2f} vs {off_cpu:.2f} ms/req ({cpu - off_cpu:+.2f})")
        if name == "hot" and 16 in by_clients and 256 in by_clients:
            r16, r256 = by_clients[16]["app"], by_clients[256]["app"]
            ratio = r256["rps"] / r16["rps"] if r16["rps"] else 0
            self.row(name, "C=256 vs C=16 throughput", None, shown(ratio, 0.9), ">= 0.90", ratio >= 0.9)
            p99 = r256["latency_ms"]["p99"] or math.inf
            self.row(name, "C=256 p99", None, f"{p99:.0f} ms", "< 1000 ms", p99 < 1000)
            answers = set(by_clients[256]["app"]["all_status"]) | {f"err:{k}" for k in r256["errors"]}
            self.row(name, "C=256 answers", None, " ".join(sorted(answers)), "only 201, 409", answers <= {"201", "409"})
        self.data[name] = out

    def booking_run(self, server, name, n_events, clients, variant=None, kind="book", types=("General",), items=None):
        """One app run at C clients on new events, then the oversell check. `items`:
        indexes into the event's `types`, each booked once per request (one event)."""
        events = self.make_events(n_events, types=types)
        listed = None
        if items:
            ids = self.types_of(events[0])
            listed = [(ids[i], 1) for i in items]
        drained = self.wait_outbox()
        label = f"{name}-C{clients}" + (f"-{variant.split()[0].lower()}" if variant else "")
        profilers = self.profile(server, label)
        balance = Balance(server, clients)
        result = self.book_http(server, clients, events, monitor=balance, keyed=variant == KEYED, kind=kind, items=listed)
        result["connections_per_worker"] = balance.seen
        self.profiled(profilers)
        per = len(listed) if listed else 1
        check = self.oversell(events, result["all_status"].get("201", 0) * per)
        run = {"clients": clients, "app": result, "oversell": check, "outbox_drain_before_s": drained, "events": len(events)}
        if variant:
            run["variant"] = variant
        workers = result.get("connections_per_worker")
        workers = f"; conns/worker {'/'.join(str(v) for v in workers.values())}" if workers else ""
        self.row(name, f"app C={clients}" + (f", {variant}" if variant else ""), result,
                 f"oversell {'ok' if check['ok'] else 'FAILED'}{workers}", "invariant ok", check["ok"])
        return run

    def pgbench_run(self, name, n_events, kind, types=("General",), items=None):
        """pgbench on new events (dated beyond its clock), then the oversell check."""
        self.wait_outbox()
        events = self.make_events(n_events, types=types, parked=True)
        listed = None
        if items:
            ids = self.types_of(events[0])
            listed = [(ids[i], 1) for i in items]
        result = self.pgbench(self.size["pgbench_connections"], events, self.size["ref_duration"], kind, listed)
        if result is None:
            return None
        result["oversell"] = self.oversell(events)
        sold = result["oversell"]["confirmed_tickets"]
        per = len(listed) if listed else 1
        result["oversell"]["ok"] = result["oversell"]["ok"] and sold == result["transactions"] * per
        self.row(name, f"pgbench {kind}, {result['connections']} conns", None,
                 f"{result['tps']} tps, avg {result['latency_avg_ms']} ms"
                 + (f", db cpu {result['db_cpu_ms_per_transaction']} ms/tx" if "db_cpu_ms_per_transaction" in result else "")
                 + ("" if result["oversell"]["ok"] else "; oversell FAILED")
                 + ("; ABORTED" if result["aborted"] else ""),
                 "invariant ok", result["oversell"]["ok"] and not result["aborted"])
        return result

    def compare(self, name, statement, target, app_run, pgbench_run):
        """The app against pgbench running the same statements, in turns: pgbench, app,
        pgbench, ..., `ratio_rounds` app runs; each app run's ratio is its req/s over the
        mean tps of the pgbench runs just before and after it (a drift of the machine's
        speed moves both sides alike); the target is on the median ratio."""
        rounds = self.size["ratio_rounds"]
        references = [pgbench_run()]
        apps, ratios = [], []
        for _ in range(rounds):
            apps.append(app_run())
            references.append(pgbench_run())
            before, after = references[-2], references[-1]
            if before and after:
                ratios.append(apps[-1]["app"]["rps"] / statistics.mean([before["tps"], after["tps"]]))
        out = {"pgbench": references, "app": apps, "ratios": [round(r, 3) for r in ratios],
               "app_rps_median": statistics.median(run["app"]["rps"] for run in apps),
               "app_cpu_median": statistics.median(run["app"].get("app_cpu_ms_per_request") or 0 for run in apps)}
        clients, connections = self.size["ratio_clients"], self.size["pgbench_connections"]
        case = f"app C={clients} / pgbench {statement} on {connections} conns (median of {rounds})"
        if len(ratios) < rounds:
            self.row(name, case, None, "no pgbench figure (not installed, or it failed)", f">= {target:.2f}", False)
            return out
        out["ratio"] = ratio = statistics.median(ratios)
        self.row(name, case, None, f"{shown(ratio, target)} ({' '.join(f'{r:.2f}' for r in ratios)})", f">= {target:.2f}",
                 ratio >= target)
        return out

    def scenario_hot(self):
        self.scenario_booking("hot", 1)

    def scenario_spread(self):
        self.scenario_booking("spread", self.size["spread_events"])

    def scenario_holds(self):
        """Hold then confirm (POST /api/holds, then POST /api/holds/{id}/confirm on the same
        connection: one operation) on one hot event, 16 clients, against pgbench running
        the app's HOLD then CONFIRM statements."""
        self.reset()
        with Server(self, name="holds") as server:
            out = self.compare(
                "holds", "HOLD+CONFIRM", 0.30,
                lambda: self.booking_run(server, "holds", 1, self.size["ratio_clients"], kind="hold_confirm"),
                lambda: self.pgbench_run("holds", 1, "hold_confirm"),
            )
        self.data["holds"] = out

    def scenario_multi(self):
        """A three-item booking (one ticket of each of three types) on a three-type event,
        16 clients, against pgbench running the app's BOOK statement with the same items."""
        self.reset()
        types, items = ("Stalls", "Circle", "Balcony"), (0, 1, 2)
        with Server(self, name="multi") as server:
            out = self.compare(
                "multi", "BOOK (3 items)", 0.35,
                lambda: self.booking_run(server, "multi", 1, self.size["ratio_clients"], "3 items", types=types,
                                         items=items),
                lambda: self.pgbench_run("multi", 1, "book", types=types, items=items),
            )
        self.data["multi"] = out

    def scenario_expiry(self):
        """10,000 HELD holds (bulk SQL: holds, items, the counters taken) on one event,
        all expiring at the same moment, with the server's HOLD_SWEEP_SECONDS at its
        default. Measures the time from that moment until all their tickets are back
        (target: HOLD_SWEEP_SECONDS + 10 s), and the booking p99 (16 clients on the same
        event) while the sweep runs against a run without one (target: <= 1.5x)."""
        self.reset()
        n, clients = self.size["expiry_holds"], self.size["ratio_clients"]
        sweep = self.app["hold_sweep_seconds"]
        if self.customers < 2 * n:
            raise RuntimeError(f"expiry needs {2 * n} customers")
        bookers = self.customers - n  # the holds belong to the last n customers
        out = {"holds": n, "clients": clients, "hold_sweep_seconds": sweep}
        with Server(self, name="expiry") as server:
            events = self.make_events(1)
            self.wait_outbox()
            base = self.book_http(server, clients, events, duration=self.size["expiry_duration"], customers=bookers)
            base["oversell"] = self.oversell(events, base["all_status"].get("201", 0))
            out["without_sweep"] = base
            self.row("expiry", f"book C={clients}, no holds expiring", base,
                     f"oversell {'ok' if base['oversell']['ok'] else 'FAILED'}", "invariant ok", base["oversell"]["ok"])
            [event] = self.make_events(1)
            [kind] = self.types_of(event)
            lead = self.size["warmup"] + 2.0  # bookings run this long before the holds expire
            load_seconds = lead + sweep + 10 + 2
            expires = self.sql(
                "WITH made AS (INSERT INTO holds (event_id, user_id, tickets_count, total_amount, status, expires_at, "
                "created_at) SELECT %(event)s, %(first)s + %(bookers)s + g, 1, %(price)s, 'HELD', "
                "now() + make_interval(secs => %(expire)s), now() FROM generate_series(0, %(n)s - 1) g RETURNING id, expires_at), "
                "items AS (INSERT INTO items (hold_id, ticket_type_id, count, unit_price) "
                "SELECT id, %(kind)s, 1, %(price)s FROM made), "
                "e AS (UPDATE events SET available_tickets = available_tickets - %(n)s WHERE id = %(event)s), "
                "t AS (UPDATE ticket_types SET available_quantity = available_quantity - %(n)s WHERE id = %(kind)s) "
                "SELECT extract(epoch FROM min(expires_at)) FROM made",
                {"event": event, "first": self.first_customer, "bookers": bookers, "price": PRICE, "n": n,
                 "kind": kind, "expire": lead + 1.0},
                fetch="one",
            )[0]
            expires = float(expires)
            self.sql("ANALYZE holds", fetch=None)
            self.sql("ANALYZE items", fetch=None)
            held_before = self.oversell([event])
            marks = {"first_back": None, "all_back": None}

            def watch():
                held = self.sql("SELECT count(*) FROM holds WHERE event_id = %s AND status = 'HELD'", (event,), fetch="one")[0]
                now = time.time()
                if held < n and marks["first_back"] is None:
                    marks["first_back"] = now
                if held == 0 and marks["all_back"] is None:
                    marks["all_back"] = now

            self.wait_outbox()
            during = self.book_http(server, clients, [event], duration=load_seconds - self.size["warmup"], customers=bookers,
                                    monitor=watch, timeline=True)
            watch()
            deadline = time.time() + self.size["expiry_wait"]
            while marks["all_back"] is None and time.time() < deadline:
                time.sleep(0.1)
                watch()
            check = self.oversell([event], during["all_status"].get("201", 0))
        back = None if marks["all_back"] is None else marks["all_back"] - expires
        timeline = during.pop("timeline", {}).get("book", [])
        start, end = marks["first_back"] or expires, marks["all_back"] or time.time()
        window = [ms for finished, ms in timeline if start <= finished <= end]
        p99 = percentile(window, 0.99)
        out.update(expires_at=expires, first_back_s=marks["first_back"] and round(marks["first_back"] - expires, 2),
                   all_back_s=back and round(back, 2), held_before=held_before, during=during, oversell=check,
                   sweep_requests=len(window), p99_during_sweep_ms=p99)
        self.row("expiry", f"book C={clients}, {n} holds expiring", during,
                 f"oversell {'ok' if check['ok'] else 'FAILED'} (before: {'ok' if held_before['ok'] else 'FAILED'})",
                 "invariant ok", check["ok"] and held_before["ok"])
        limit = sweep + 10
        self.row("expiry", f"all {n} holds' tickets back", None,
                 "never" if back is None else f"{back:.1f} s after expiry (first at {out['first_back_s']:.1f} s)",
                 f"<= {limit:g} s", back is not None and back <= limit)
        base_p99 = base["latency_ms"]["p99"]
        if p99 is None or not base_p99:
            self.row("expiry", "booking p99 during the sweep", None, "no bookings during the sweep", "<= 1.5x", False)
        else:
            ratio = p99 / base_p99
            self.row("expiry", "booking p99 during sweep / without", None,
                     f"{p99:.0f} / {base_p99:.0f} ms = {shown(ratio, 1.5)}x ({len(window)} bookings in {end - start:.1f} s)",
                     "<= 1.5x", ratio <= 1.5)
        self.data["expiry"] = out

    def scenario_browse(self):
        """GET /api/events, first page and page 50 (perPage 20), at 1k and at 100k events;
        page 500 at 100k too, for information.

        Page 50 is the last full page of 1k events (offset 980), so both sizes serve the
        same 20 events' worth of work at the same offset and the ratio shows what the
        100x bigger table costs. (Page 500 does not exist at 1k: an empty page would
        be compared with a full one.)"""
        self.reset()
        small, large = self.size["browse_small"], self.size["browse_large"]
        pages = {"first": "/api/events?page=1&perPage=20", "deep": "/api/events?page=50&perPage=20"}
        deeper = "/api/events?page=500&perPage=20"
        out = {"clients": self.size["browse_clients"], "pages": pages, "runs": {}}
        self.make_events(small, tickets=100, random_dates=True)
        for size in (small, large):
            if size == large:
                self.make_events(large - small, tickets=100, random_dates=True)
            self.sql("VACUUM ANALYZE events", fetch=None)
            # a new server per size: nothing the app keeps in memory (a cached total)
            # carries over from the smaller table
            with Server(self, name=f"browse-{size}") as server:
                for page, path in pages.items():
                    result = self.get_http(server, self.size["browse_clients"], [path], self.size["browse_duration"])
                    out["runs"][f"{page}@{size}"] = result
                    self.row("browse", f"{page} page, {size} events", result)
                if size == large:
                    result = self.get_http(server, self.size["browse_clients"], [deeper], self.size["browse_duration"])
                    out["runs"][f"page500@{size}"] = result
                    self.row("browse", f"page 500 (offset 9980), {size} events (info)", result)
        for page in pages:
            a, b = out["runs"][f"{page}@{small}"], out["runs"][f"{page}@{large}"]
            ratio = b["latency_ms"]["p50"] / a["latency_ms"]["p50"]
            out[f"{page}_p50_ratio"] = round(ratio, 2)
            case = f"{page} page p50 {large // 1000}k/{small // 1000}k"
            self.row("browse", case, None, f"{shown(ratio, 1.5)}x", "<= 1.5x", ratio <= 1.5)
        self.data["browse"] = out

    def make_search_events(self, url, organizer, first, last, rare_upto):
        """Events `first`..`last` for the search scenario, in the database at `url`: random
        dates in the coming year, titles, descriptions and locations from a small
        vocabulary plus two unique words each; the common word (jazz) in every 20th event,
        the rare one (theremin) in every 10th event up to number `rare_upto`, each time in
        the title, the description or the location in turn (once with an accent)."""
        self.sql(
            "INSERT INTO events (title, description, date, location, total_tickets, available_tickets, status, "
            "organizer_id, created_at, updated_at) "
            "SELECT initcap(w[1 + mod(g * 7, 40)]) || ' ' || w[1 + mod(g * 13, 40)] || ' ' || g"
            "  || CASE WHEN mod(g, 60) = 0 THEN ' jazz' ELSE '' END"
            "  || CASE WHEN g <= %(rare)s AND mod(g, 30) = 5 THEN ' Theremin' ELSE '' END, "
            "'An evening of ' || w[1 + mod(g * 17, 40)] || ' and ' || w[1 + mod(g * 19, 40)] || ', with '"
            "  || substr(md5(g::text), 1, 8) || ' ' || substr(md5(g::text), 9, 8) || ' and friends.'"
            "  || CASE WHEN mod(g, 60) = 20 THEN ' Jazz all night.' ELSE '' END"
            "  || CASE WHEN g <= %(rare)s AND mod(g, 30) = 15 THEN ' A théremin solo.' ELSE '' END, "
            "now() + interval '1 day' + random() * interval '365 days', "
            "initcap(w[1 + mod(g * 23, 40)]) || ' hall ' || mod(g, 300)"
            "  || CASE WHEN mod(g, 60) = 40 THEN ', Jazz cellar' ELSE '' END"
            "  || CASE WHEN g <= %(rare)s AND mod(g, 30) = 25 THEN ', Theremin house' ELSE '' END, "
            "100, 100, 'SCHEDULED', %(organizer)s, now(), now() "
            "FROM generate_series(%(first)s, %(last)s) g, (SELECT ARRAY['music', 'art', 'food', 'market', 'talk', "
            "'workshop', 'festival', 'concert', 'film', 'dance', 'theatre', 'poetry', 'garden', 'science', 'history', "
            "'wine', 'beer', 'coffee', 'yoga', 'running', 'chess', 'comedy', 'opera', 'rock', 'folk', 'piano', "
            "'violin', 'guitar', 'choir', 'orchestra', 'painting', 'photo', 'design', 'coding', 'health', 'family', "
            "'evening', 'river', 'mountain', 'harbour'] AS w) vocabulary",
            {"first": first, "last": last, "rare": rare_upto, "organizer": organizer},
            fetch=None,
            url=url,
        )
        self.sql("VACUUM ANALYZE events", fetch=None, url=url)

    def scenario_search(self):
        """Issue 19. GET /api/events?q= with a rare word (in 100 events), a common one
        (in 5% of them) and one in no event (a typo), and the plain list's first page, with
        1k and with 100k events;
        with 100k also the last page (5,000th) reached by cursor (the `next` link of the
        page before it). Targets: each search's p50 at 100k <= 1.5x at 1k and p99 <= 3x;
        the plain list's p99 at 100k <= 1.5x at 1k; the last page by cursor p50 <= 1.5x
        the first page.

        The two sizes live in two databases, each served by its own server, and their runs
        alternate (round after round, in turns), so a change in the machine's load while
        the scenario runs weighs on both sides of every ratio; each figure is the median
        of its runs' figures."""
        self.reset()
        small, large = self.size["search_small"], self.size["search_large"]
        rare_upto = self.size["search_rare"] * 10  # every 10th event up to there holds it
        assert rare_upto <= small, "the rare word must fit in the small table"
        clients, duration = self.size["search_clients"], self.size["search_duration"]
        cursor = f"page {large // 20} by cursor"
        paths = {"rare word": "/api/events?q=theremin", "common word": "/api/events?q=jazz",
                 "missing word": "/api/events?q=zzyzx", "plain list": "/api/events?perPage=20"}
        made = {"rare word": self.size["search_rare"], "common word": "5%", "missing word": 0, "plain list": "all"}
        small_url, small_organizer = self.second_database()
        self.make_search_events(small_url, small_organizer, 1, small, rare_upto)
        self.make_search_events(self.url, self.organizer, 1, large, rare_upto)
        out = {"clients": clients, "duration": duration, "paths": paths, "runs": {}, "totals": {}}
        with Server(self, env={"DATABASE_URL": small_url}, name=f"search-{small}") as s_small, \
                Server(self, name=f"search-{large}") as s_large:
            servers = {small: s_small, large: s_large}
            sizes = {case: (small, large) for case in paths}
            paths[cursor] = self.next_link(s_large, f"/api/events?page={large // 20 - 1}&perPage=20")
            sizes[cursor] = (large,)
            for size, server in servers.items():
                for case in sizes:
                    if size in sizes[case]:
                        out["totals"][f"{case}@{size}"] = self.total(server, paths[case])
            for number in range(self.size["search_rounds"]):
                for case, path in paths.items():
                    order = sizes[case] if number % 2 == 0 else tuple(reversed(sizes[case]))
                    for size in order:
                        result = self.get_http(servers[size], clients, [path], duration)
                        out["runs"].setdefault(f"{case}@{size}", []).append(result)
        merged = {key: merge_runs(runs) for key, runs in out["runs"].items()}
        out["merged"] = merged
        for case in paths:
            for size in sizes[case]:
                key = f"{case}@{size}"
                figure = f"X-Total-Count {out['totals'][key]}" + (f" (made: {made[case]})" if case in made else "")
                self.row("search", f"{case}, {size} events", merged[key], figure)
                if set(merged[key]["status"]) != {"200"}:
                    self.row("search", f"{case}, {size} events: answers", None, " ".join(merged[key]["status"]), "only 200",
                             False)

        def latency(case, size, key):
            return merged[f"{case}@{size}"]["latency_ms"][key] or math.inf

        scale = f"{large // 1000}k/{small // 1000}k"
        checks = [(f"{case} {key} {scale}", latency(case, large, key) / latency(case, small, key), limit)
                  for case, key, limit in [("rare word", "p50", 1.5), ("rare word", "p99", 3.0),
                                           ("common word", "p50", 1.5), ("common word", "p99", 3.0),
                                           ("missing word", "p50", 1.5),
                                           ("plain list", "p99", 1.5)]]
        deep = latency(cursor, large, "p50") / latency("plain list", large, "p50")
        checks.append((f"{cursor} p50 / first page, {large // 1000}k", deep, 1.5))
        for case, value, limit in checks:
            out[f"{case} ratio"] = round(value, 2)
            self.row("search", case, None, f"{shown(value, limit)}x", f"<= {limit}x", value <= limit)
        self.data["search"] = out

    def headers(self, server, path):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
        return response

    def total(self, server, path):
        return int(self.headers(server, path).getheader("X-Total-Count"))

    def next_link(self, server, path):
        """The `next` link of the answer to `path` (a relative URL)."""
        header = self.headers(server, path).getheader("Link", "")
        links = {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header)}
        if "next" not in links:
            raise RuntimeError(f"GET {path}: no next link in {header}")
        return links["next"]

    def scenario_delivery(self):
        """Booking p99 with every delivery delayed 200 ms vs not delayed (hot event).

        The two are run in turns (0, 200, 0, 200, ...: `delivery_rounds` of each, every
        run on a fresh server and a new event), and the ratio is taken between the
        medians of their p99s, so that a slow spell of a shared machine does not land on
        one side only."""
        self.reset()
        clients, rounds = self.size["delivery_clients"], self.size["delivery_rounds"]
        out = {"clients": clients, "rounds": rounds, "runs": {"0": [], "200": []}}
        for round_number in range(rounds):
            for delay in (0, 200):
                with Server(self, {"NOTIFY_DELIVERY_DELAY_MS": str(delay)}, name=f"delivery-{delay}") as server:
                    events = self.make_events(1)
                    self.wait_outbox()  # what an earlier delayed run left is sent before measuring
                    result = self.book_http(server, clients, events, duration=self.size["delivery_duration"])
                    result["oversell"] = self.oversell(events, result["all_status"].get("201", 0))
                    result["pending_after"] = self.pending()
                    out["runs"][str(delay)].append(result)
                    self.row(
                        "delivery",
                        f"delay {delay} ms, C={clients}, round {round_number + 1}",
                        result,
                        f"oversell {'ok' if result['oversell']['ok'] else 'FAILED'}; {result['pending_after']} pending after",
                    )
        p0 = statistics.median(run["latency_ms"]["p99"] for run in out["runs"]["0"])
        p200 = statistics.median(run["latency_ms"]["p99"] for run in out["runs"]["200"])
        ratio = p200 / p0
        out["p99_median"] = {"0": p0, "200": p200}
        out["p99_ratio"] = round(ratio, 2)
        self.row(
            "delivery", f"median p99 delay 200 / delay 0 ({rounds} rounds)", None,
            f"{p200:.0f} / {p0:.0f} ms = {shown(ratio, 1.1)}x", "<= 1.1x", ratio <= 1.1,
        )
        self.data["delivery"] = out

    def scenario_fanout(self):
        """PATCH an event's title with N CONFIRMED attendees vs with none; time until the N
        EVENT_UPDATED emails are SENT."""
        self.reset()
        n = min(self.size["fanout_attendees"], self.customers)
        rounds = self.size["fanout_rounds"]
        [alone] = self.make_events(1, tickets=100, title="Nobody comes")
        [crowded] = self.make_events(1, tickets=n + 100, title="Everybody comes")
        self.sql(
            "INSERT INTO bookings (event_id, user_id, tickets_count, status, created_at) "
            "SELECT %s, id, 1, 'CONFIRMED', now() - interval '1 hour' FROM users WHERE role = 'CUSTOMER' "
            "ORDER BY id LIMIT %s",
            (crowded, n),
            fetch=None,
        )
        self.sql("UPDATE events SET available_tickets = total_tickets - %s WHERE id = %s", (n, crowded), fetch=None)
        self.sql("VACUUM ANALYZE", fetch=None)
        out = {"attendees": n, "rounds": []}
        headers = {"Authorization": f"Bearer {self.organizer_token}", "Content-Type": "application/json"}
        with Server(self, name="fanout") as server:
            # one keep-alive connection per round (gunicorn closes it after 5 idle seconds,
            # and the wait for delivery is longer), warmed before anything is timed
            state = {"connection": None}

            def patch(event, title):
                connection = state["connection"]
                started = time.perf_counter()
                connection.request("PATCH", f"/api/events/{event}", body=json.dumps({"title": title}), headers=headers)
                response = connection.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                assert response.status == 200, response.status
                return elapsed

            def reconnect(round_number):
                if state["connection"] is not None:
                    state["connection"].close()
                state["connection"] = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                for i in range(3):  # warm the code path on this connection's worker
                    patch(alone, f"Warm-up {round_number}.{i}")

            reconnect(-1)
            self.wait_outbox()
            alone_ms, crowded_ms, delivered_s = [], [], []
            wait = self.size["fanout_wait"]
            for r in range(rounds):
                reconnect(r)
                for i in range(5):
                    alone_ms.append(patch(alone, f"Nobody comes, round {r}.{i}") * 1000)
                started = time.perf_counter()
                crowded_ms.append(patch(crowded, f"Everybody comes, round {r}") * 1000)
                expected = n * (r + 1)
                sent = 0
                while time.perf_counter() - started < wait:
                    sent = self.sql(
                        "SELECT count(*) FROM notifications WHERE event_id = %s AND status = 'SENT' "
                        "AND kind = 'EVENT_UPDATED' AND user_id IS NOT NULL",
                        (crowded,),
                        fetch="one",
                    )[0]
                    if sent >= expected:
                        break
                    time.sleep(0.1)
                seconds = time.perf_counter() - started
                delivered_s.append(round(seconds, 2) if sent >= expected else None)
                out["rounds"].append({"crowded_ms": round(crowded_ms[-1], 2), "delivered_s": delivered_s[-1], "sent": sent - n * r})
                log(f"  fan-out round {r}: PATCH {crowded_ms[-1]:.1f} ms, {sent - n * r}/{n} sent in {seconds:.1f}s")
                if sent < expected:
                    break  # a backlog left behind would load the next round
            state["connection"].close()
        a, c = statistics.median(alone_ms), statistics.median(crowded_ms)
        out.update(
            alone_ms=[round(x, 2) for x in alone_ms],
            crowded_ms=[round(x, 2) for x in crowded_ms],
            alone_median_ms=round(a, 2),
            crowded_median_ms=round(c, 2),
            ratio=round(c / a, 2),
            delivered_s=delivered_s,
        )
        self.row("fanout", "PATCH, no attendees (median)", None, f"{a:.1f} ms")
        self.row("fanout", f"PATCH, {n} attendees (median)", None, f"{c:.1f} ms = {shown(c / a, 2)}x", "<= 2x", c / a <= 2)
        worst = None if None in delivered_s else max(delivered_s)
        self.row(
            "fanout",
            f"all {n} EVENT_UPDATED SENT",
            None,
            f"{out['rounds'][-1]['sent']}/{n} sent after {wait:.0f} s" if worst is None else f"{worst:.1f} s",
            "<= 30 s",
            worst is not None and worst <= 30,
        )
        self.data["fanout"] = out

    def scenario_memory(self):
        """RSS of each worker after N requests (half browse, half book), then the outbox
        backlog while bookings arrive 10x faster than delivery can send."""
        self.reset()
        n = self.size["memory_requests"]
        clients = self.size["memory_clients"]
        out = {"requests": n, "clients": clients}
        events = self.make_events(self.size["spread_events"])
        browse = [
            {
                "name": "browse",
                "kind": "get",
                "weight": 1,
                "paths": [f"/api/events?page={p}&perPage=20" for p in range(1, 51)] + [f"/api/events/{e}" for e in events[:50]],
            }
        ]
        with Server(self, name="memory") as server:
            out["rss_start_mb"] = server.rss()
            peak = {}

            def sample():
                for pid, mb in server.rss().items():
                    if mb is not None:
                        peak[pid] = max(peak.get(pid, 0), mb)

            result = self.book_http(
                server, clients, events, requests=n, monitor=sample, extra=browse, max_seconds=self.size["memory_max_seconds"]
            )
            done = sum(result["all_status"].values()) + sum(result["errors"].values())
            out["requests_done"] = done
            out["mix"] = result
            out["rss_after_mb"] = server.rss()
            out["rss_peak_mb"] = peak
            out["oversell"] = self.oversell(events, result["kinds"]["book"]["all_status"].get("201", 0))
            capped = f" (stopped at the {self.size['memory_max_seconds']:.0f} s cap, of {n})" if done < n else ""
            self.row(
                "memory", f"{done} requests, C={clients}{capped}", result, f"oversell {'ok' if out['oversell']['ok'] else 'FAILED'}"
            )
            worst = max(v for v in out["rss_after_mb"].values() if v is not None)
            self.row(
                "memory",
                f"RSS per worker after {done} requests",
                None,
                " ".join(f"{v:.0f}" for v in out["rss_after_mb"].values())
                + " MB (start "
                + " ".join(f"{v:.0f}" for v in out["rss_start_mb"].values())
                + ")",
                "<= 120 MB",
                worst <= 120,
            )
            # how fast does this machine book (delivery not delayed)? -> the delay for 10x
            self.wait_outbox()
            calibration = self.book_http(server, clients, self.make_events(self.size["spread_events"]), duration=3)
            self.wait_outbox()
        rate = calibration["status"].get("201", 0) / calibration["seconds"]
        senders = self.app["workers"] * self.app["notify_workers"]
        delay = max(1, math.ceil(1000 * senders * 10 / max(rate, 1)))
        out["overload"] = overload = {
            "booking_rate_calibrated": round(rate, 1),
            "delay_ms": delay,
            "delivery_capacity_per_s": round(senders * 1000 / delay, 1),
        }
        log(f"  overload: bookings {rate:.0f}/s, {senders} senders at {delay} ms -> capacity {senders * 1000 / delay:.0f}/s")
        samples = []
        with Server(self, {"NOTIFY_DELIVERY_DELAY_MS": str(delay)}, name="overload") as server:
            started = time.perf_counter()

            def watch():
                jobs = None
                try:
                    status, body = server.request("GET", "/api/health", timeout=5)
                    jobs = json.loads(body)["jobs"] if status == 200 else None
                except (OSError, ValueError):
                    pass
                samples.append(
                    {
                        "t": round(time.perf_counter() - started, 2),
                        "pending": self.pending(),
                        "in_flight": jobs and jobs.get("inFlight", jobs.get("in_flight")),
                        "rss": server.rss(),
                    }
                )

            load = self.book_http(
                server, clients, self.make_events(self.size["spread_events"]), duration=self.size["overload_seconds"], monitor=watch
            )
            overload["bookings"] = load
            for _ in range(10):  # load stopped: does the backlog go down?
                watch()
                time.sleep(0.5)
        overload["samples"] = samples
        during = [s for s in samples if s["t"] <= self.size["overload_seconds"] + self.size["warmup"]]
        overload["pending_peak"] = max(s["pending"] for s in samples)
        overload["pending_end"] = samples[-1]["pending"]
        after = samples[-10:]
        overload["drain_per_s_delayed"] = round(
            (after[0]["pending"] - after[-1]["pending"]) / max(after[-1]["t"] - after[0]["t"], 0.1), 1
        )
        overload["in_flight_max"] = max((s["in_flight"] or 0) for s in samples)
        overload["rss_max_mb"] = max((mb or 0) for s in during for mb in s["rss"].values())
        overload["offered_x"] = round(load["rps"] / overload["delivery_capacity_per_s"], 1)
        with Server(self, {"NOTIFY_DELIVERY_DELAY_MS": "0"}, name="drain"):
            overload["drain_s_after_restart"] = self.wait_outbox(timeout=180)
        out["overload"] = overload
        self.row(
            "memory",
            f"overload {overload['offered_x']}x, C={clients}",
            load,
            f"PENDING peak {overload['pending_peak']}, held in memory <= {overload['in_flight_max']} "
            f"(cap {self.app['notify_queue_size']}), RSS max {overload['rss_max_mb']:.0f} MB",
        )
        bounded = (
            overload["in_flight_max"] <= self.app["notify_queue_size"]
            and overload["rss_max_mb"] <= 120
            and overload["drain_s_after_restart"] is not None
        )
        self.row(
            "memory",
            "backlog bounded and drains",
            None,
            f"drains {overload['drain_per_s_delayed']}/s delayed; "
            + (
                "never emptied"
                if overload["drain_s_after_restart"] is None
                else f"empty {overload['drain_s_after_restart']} s after delay removed"
            ),
            "bounded, drains",
            bounded,
        )
        self.data["memory"] = out

    # -- run ---------------------------------------------------------------------

    def run(self, scenarios):
        started = time.perf_counter()
        info = {
            "command": " ".join([Path(sys.executable).name] + sys.argv),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "loadavg_start": loadavg(),
            "app": self.app,
            "server_env": self.server_env,
            "ratelimit_storage": "(set in setup)",
            "inherited_env": inherited_env(),
            "size": self.size,
            "quick": self.args.quick,
        }
        log(
            f"eventbook bench: {', '.join(scenarios)} ({'quick' if self.args.quick else 'full'}); "
            f"{info['machine'].get('nproc')} CPUs, load {info['loadavg_start']}"
        )
        failures = {}
        try:
            self.setup()
            info["postgres"] = self.postgres
            info["ratelimit_storage"] = self.ratelimit_storage or "memory://"
            for name in scenarios:
                log(f"scenario {name}")
                t = time.perf_counter()
                try:
                    getattr(self, f"scenario_{name}")()
                except Exception as exc:  # noqa: BLE001 - report it, go on with the others
                    log(f"scenario {name} failed: {exc.__class__.__name__}: {exc}")
                    failures[name] = f"{exc.__class__.__name__}: {exc}"
                    self.row(name, "scenario failed", None, " ".join(str(exc).split())[:70], "", False)
                self.data.setdefault(name, {})["seconds"] = round(time.perf_counter() - t, 1)
                self.data[name]["loadavg_end"] = loadavg()
        finally:
            self.drop()
            self.release_redis()
            shutil.rmtree(self.tmp, ignore_errors=True)
        info["seconds"] = round(time.perf_counter() - started, 1)
        info["loadavg_end"] = loadavg()
        info["failures"] = failures
        self.print_table(info)
        path = Path(self.args.out) if self.args.out else self.results / "bench.json"
        path.write_text(json.dumps({**info, "table": self.rows, "scenarios": self.data}, indent=2, default=str))
        path.with_suffix(".md").write_text(self.markdown(info))
        log(f"wrote {path} and {path.with_suffix('.md')}")
        missed = [row for row in self.rows if row["verdict"] == "MISS"]
        if failures or missed or self.oversold:
            log(f"exit 1: {len(failures)} scenario(s) failed, {len(missed)} MISS, {len(self.oversold)} oversell check(s) failed")
            return 1
        return 0

    def machine_line(self, info):
        m = info["machine"]
        return (
            f"{m.get('nproc')} CPUs ({m.get('cpu', '?')}), {m.get('ram_gb', '?')} GB RAM, "
            f"{info.get('postgres', {}).get('version', '?')}, commit {m.get('commit')}; "
            f"gunicorn {self.app['workers']} workers x {self.app['threads']} threads, DB pool {self.app['db_pool_size']}; "
            f"load average {info['loadavg_start']} -> {info['loadavg_end']}; {info['seconds']} s"
        )

    def markdown(self, info):
        """The table as Markdown, to paste into README.md."""
        keys = ["scenario", "case", "rps", "p50", "p99", "cpu", "db_cpu", "answers", "figure", "target", "verdict"]
        lines = [
            f"`{info['command']}` ({info['started']})",
            "",
            self.machine_line(info),
            "",
            "| scenario | case | req/s | p50 ms | p99 ms | app CPU ms/req | DB CPU ms/req | answers | figure | target | result |",
            "|---|---|---:|---:|---:|---:|---:|---|---|---|---|",
        ]
        for row in self.rows:
            cells = ["" if row.get(k) is None else str(row.get(k)).replace("|", "/") for k in keys]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def print_table(self, info):
        print()
        print(f"eventbook benchmark: {info['command']}")
        print(f"machine: {self.machine_line(info)}")
        headers = ["scenario", "case", "req/s", "p50 ms", "p99 ms", "app CPU ms/req", "DB CPU ms/req", "answers", "figure", "target",
                   "result"]
        keys = ["scenario", "case", "rps", "p50", "p99", "cpu", "db_cpu", "answers", "figure", "target", "verdict"]
        table = [[("" if row.get(k) is None else str(row.get(k))) for k in keys] for row in self.rows]
        widths = [max([len(h)] + [len(r[i]) for r in table]) for i, h in enumerate(headers)]
        widths[8] = min(widths[8], 70)
        line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
        print(line)
        print("-" * len(line))
        for r in table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        verdicts = [row["verdict"] for row in self.rows if row["verdict"]]
        print(f"\n{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS")


def main():
    parser = argparse.ArgumentParser(description="The eventbook performance benchmark (issue 5); see tests/perf/README.md.")
    parser.add_argument("--quick", action="store_true", help="short runs and smaller sizes (a smoke run)")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only this scenario (repeatable); default: all")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the app server (e.g. WEB_CONCURRENCY=3), repeatable",
    )
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        help="client counts for hot/spread, e.g. 4,16 (default 4,16,64,256)",
    )
    parser.add_argument("--duration", type=float, help="seconds per app run in hot/spread")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SIZE=VALUE",
        help="override one size of the run, e.g. memory_max_seconds=600 or fanout_rounds=1 (see FULL in bench.py)",
    )
    parser.add_argument(
        "--py-spy",
        nargs="?",
        const="flamegraph",
        choices=["flamegraph", "raw", "speedscope"],
        help="profile the workers during each hot/spread app run into bench-results/",
    )
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="with --py-spy: only samples of threads holding the GIL (where the CPU goes)"
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--out", help="JSON path (default bench-results/bench.json)")
    args = parser.parse_args()
    bench = Bench(args)
    sys.exit(bench.run(args.scenario or list(SCENARIOS)))


if __name__ == "__main__":
    main()
