"""What the production defaults and the public paths that replaced private overrides
cost per booking, in CPU time of the app process (Flask's test client, no gunicorn):

    .venv/bin/python tests/perf/costs.py [--bookings 300] [--rounds 3]

Each variant runs in a process of its own (the logging configuration is per process),
books `--bookings` times one ticket on as many events for one customer, after a warm-up,
and reports the process's CPU time per booking (its notification pool delivers the
confirmations through the log backend meanwhile, as deployed). Rounds interleave the
variants so that a change in the machine's load weighs on all of them; each figure is
the median of the rounds. Then the JWT check alone: flask-jwt-extended's `decode_token`
of a customer's access token, per call.

PostgreSQL at BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
the script makes and drops its own database. Results: docs/performance.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WARMUP = 30
VARIANTS = {
    # name: settings on top of the production defaults of config.py
    "as deployed (JSON access log at INFO, rate limits on, memory storage)": {},
    "rate limits on, Redis storage (render.yaml's)": {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/14"},
    "access log off (LOG_LEVEL=warning)": {"LOG_LEVEL": "warning"},
    "rate limits off": {"RATELIMIT_ENABLED": False},
    "access log and rate limits off": {"LOG_LEVEL": "warning", "RATELIMIT_ENABLED": False},
}


def app_for(url, settings):
    from config import Config, normalize_database_url
    from eventbook import create_app

    config = type("Config", (Config,), {
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(url), "JWT_SECRET_KEY": "costs-" + "x" * 40,
        "LOG_FORMAT": "json", "EMAIL_BACKEND": "log", "RATELIMIT_BOOKING": "1000000 per minute",
        "HOLD_SWEEP_SECONDS": 600, "NOTIFY_SWEEP_SECONDS": 600, **settings})
    return create_app(config)


def run(url, variant, first_event, bookings):
    """In a child process: CPU seconds per booking of one variant."""
    from tests import support

    app = app_for(url, VARIANTS[variant])
    client = app.test_client()
    login = client.post("/api/auth/login", json={"email": "customer@example.com", "password": support.PASSWORD})
    headers = {"Authorization": f"Bearer {login.get_json()['token']}"}

    def book(event_id):
        response = client.post("/api/bookings", json={"eventId": event_id, "ticketsCount": 1}, headers=headers)
        assert response.status_code == 201, response.get_json()

    for event_id in range(first_event, first_event + WARMUP):
        book(event_id)
    started = time.process_time()
    for event_id in range(first_event + WARMUP, first_event + WARMUP + bookings):
        book(event_id)
    app.extensions["notifications"].shutdown(timeout=30)  # their confirmations are part of the cost
    seconds = time.process_time() - started
    support.stop_background(app)
    print(json.dumps({"cpu_us_per_booking": seconds / bookings * 1e6}))


def decode_cost(url, calls=5000):
    from flask_jwt_extended import create_access_token, decode_token

    app = app_for(url, {})
    with app.app_context():
        token = create_access_token(identity="2")
        started = time.process_time()
        for _ in range(calls):
            decode_token(token)
        return (time.process_time() - started) / calls * 1e6


def setup(url, events):
    import sqlalchemy as sa

    from tests import support

    app = app_for(url, {"RATELIMIT_ENABLED": False, "LOG_LEVEL": "warning"})
    client = app.test_client()
    for role in ("ORGANIZER", "CUSTOMER"):
        body = {"email": f"{role.lower()}@example.com", "password": support.PASSWORD, "role": role}
        assert client.post("/api/auth/register", json=body).status_code == 201
    support.stop_background(app)
    engine = sa.create_engine(support._normalized(url))
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO events (title, description, date, location, total_tickets, available_tickets, status, "
            "organizer_id, created_at, updated_at) SELECT 'Event ' || g, 'd', now() + interval '30 days', 'l', 10, 10, "
            "'SCHEDULED', (SELECT id FROM users WHERE role = 'ORGANIZER'), now(), now() FROM generate_series(1, :n) g"),
            {"n": events})
        connection.execute(sa.text(
            "INSERT INTO ticket_types (event_id, name, price, quantity, available_quantity) "
            "SELECT id, 'General admission', 25, 10, 10 FROM events"))
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run", nargs=3, metavar=("URL", "VARIANT", "FIRST_EVENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        url, variant, first = args.run
        run(url, variant, int(first), args.bookings)
        return
    os.environ["TEST_DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    from tests import support

    url = support.create_database("postgresql", tempfile.mkdtemp())
    try:
        per_run = WARMUP + args.bookings
        setup(url, per_run * len(VARIANTS) * args.rounds)
        figures = {variant: [] for variant in VARIANTS}
        first = 1
        for _ in range(args.rounds):
            for variant in VARIANTS:
                out = subprocess.run(
                    [sys.executable, __file__, "--bookings", str(args.bookings), "--run", url, variant, str(first)],
                    capture_output=True, text=True, cwd=ROOT, check=True)
                figures[variant].append(json.loads(out.stdout.strip().splitlines()[-1])["cpu_us_per_booking"])
                first += per_run
        base = statistics.median(figures[next(iter(VARIANTS))])
        print(f"CPU of the app process per booking, median of {args.rounds} rounds of {args.bookings} bookings:")
        for variant, values in figures.items():
            median = statistics.median(values)
            print(f"  {median:7.0f} us  ({median - base:+5.0f} us vs as deployed)  {variant}")
        print(f"  {decode_cost(url):7.1f} us  flask-jwt-extended decode_token of one access token")
    finally:
        support.drop_database(url)


if __name__ == "__main__":
    main()
