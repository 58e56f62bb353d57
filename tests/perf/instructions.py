"""CPU instructions the app spends on one booking, counted by valgrind: a figure that
does not move with the machine's speed, for comparing two versions of the code.

    python tests/perf/instructions.py            # about 3 minutes; needs valgrind
    python tests/perf/instructions.py --without-rate-limits   # with rate limiting off
    python tests/perf/instructions.py --idempotency-keys      # each booking with its own key

On a shared 2-core machine the benchmark's req/s and CPU-per-request figures move by
up to a third between runs of the same code, which hides any change smaller than that.
This script counts instead. It runs itself twice under `valgrind --tool=callgrind`,
booking FEW and then MANY times in-process (Flask's test client, a hot path without
gunicorn: JWT and revocation check, the per-customer booking rate limit (far above
what it reaches, counted in memory; `--without-rate-limits` turns rate limiting off;
the benchmark runs the app with it on, counted in Redis), validation, the booking
statement, the outbox row and its delivery with the log backend), and divides the
difference in instructions by MANY - FEW, so that start-up and set-up cancel out; repeated runs agree within about
2%. Every booking is a different event for the same customer (the same token), so all
are 201; with `--idempotency-keys` each carries an `Idempotency-Key` of its own.

PostgreSQL at BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
the script makes and drops its own database.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FEW, MANY = 50, 250


def count(bookings, flags):
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--book",
         str(bookings), *flags],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def book(bookings, limits=True, keyed=False):
    """Under valgrind: set up, then make `bookings` bookings (plus a warm-up of 20)."""
    os.environ["TEST_DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    sys.path.insert(0, str(ROOT))
    import sqlalchemy as sa

    from eventbook import create_app, database
    from tests import support

    url = support.create_database("postgresql", tempfile.mkdtemp())
    try:
        app = create_app(support.test_config(url, RATELIMIT_ENABLED=limits, RATELIMIT_BOOKING="1000000 per minute",
                                                   NOTIFY_SWEEP_SECONDS=600, HOLD_SWEEP_SECONDS=600))  # no polling:
        # its cost would grow with time
        client = app.test_client()
        tokens = {}
        for role in ("ORGANIZER", "CUSTOMER"):
            email = f"{role.lower()}@example.com"
            body = {"email": email, "password": support.PASSWORD, "role": role}
            assert client.post("/api/auth/register", json=body).status_code == 201
            tokens[role] = client.post("/api/auth/login", json={"email": email, "password": support.PASSWORD}).get_json()["token"]
        event = {"title": "Hot", "description": "d", "location": "l", "date": "2030-01-01T10:00:00Z", "totalTickets": 10}
        created = client.post("/api/events", json=event, headers={"Authorization": f"Bearer {tokens['ORGANIZER']}"})
        assert created.status_code == 201, created.get_json()
        engine = sa.create_engine(support._normalized(url))
        with engine.begin() as connection:  # copies of that event, one per booking
            columns = ", ".join(
                name for (name,) in connection.execute(sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' AND column_name <> 'id' "
                    "AND is_generated = 'NEVER'"))
            )
            connection.execute(sa.text(
                f"INSERT INTO events ({columns}) SELECT {columns} FROM events, generate_series(1, :n)"), {"n": bookings + 20})
            connection.execute(sa.text(
                "INSERT INTO ticket_types (event_id, name, price, quantity, available_quantity) "
                "SELECT id, 'General admission', 0, 10, 10 FROM events "
                "WHERE id NOT IN (SELECT event_id FROM ticket_types)"))
            ids = connection.scalars(sa.text("SELECT id FROM events ORDER BY id")).all()
        engine.dispose()
        headers = {"Authorization": f"Bearer {tokens['CUSTOMER']}"}
        for event_id in ids[: bookings + 20]:
            keys = {"Idempotency-Key": f"key-{event_id}"} if keyed else {}
            response = client.post("/api/bookings", json={"eventId": event_id, "ticketsCount": 1},
                                   headers={**headers, **keys})
            assert response.status_code == 201, response.get_json()
        app.extensions["notifications"].shutdown(timeout=10)  # the confirmations are sent, and counted
        with app.app_context():
            database.dispose()
    finally:
        support.drop_database(url)


def main():
    flags = [flag for flag in ("--without-rate-limits", "--idempotency-keys") if flag in sys.argv]
    if sys.argv[1:2] == ["--book"]:
        book(int(sys.argv[2]), "--without-rate-limits" not in flags, "--idempotency-keys" in flags)
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed")
    few, many = count(FEW, flags), count(MANY, flags)
    print(f"{(many - few) / (MANY - FEW) / 1e6:.2f} million instructions per booking "
          f"({MANY - FEW} bookings: {few:,} -> {many:,})")


if __name__ == "__main__":
    main()
