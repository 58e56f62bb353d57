"""Time reads that a large database makes slow, through the app (Flask's test client, in
this process): an event's figures, a customer's pages of bookings, the admin's search
of accounts and site-wide figures, on the database that tests/perf/reads_at_scale.sql
fills:

    DATABASE_URL=postgresql://.../scale_base JWT_SECRET_KEY=... RATELIMIT_ENABLED=false \\
        .venv/bin/python tests/perf/reads_at_scale.py [--runs 5] [--sql] [NAME ...]

Each request runs once unmeasured, then `--runs` times; a line per request gives each
run's milliseconds and their median. NAMEs keep the requests whose names contain one of
them; `--sql` prints the statements each request sends. It logs in four users of that
data (a login family each is written to the database). Results: docs/performance.md.
"""

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eventbook import create_app  # noqa: E402
from eventbook.auth.service import start_session  # noqa: E402
from eventbook.extensions import db  # noqa: E402
from eventbook.models import User  # noqa: E402
from tests.support import statements  # noqa: E402

ADMIN, ORGANIZER_OF_1, ORGANIZER_OF_2, CUSTOMER = 1, 3, 4, 100000  # as reads_at_scale.sql makes them
REQUESTS = [
    ("stats of event 1 (100,000 bookings)", ORGANIZER_OF_1, "/api/events/1/stats"),
    ("stats of event 2 (small)", ORGANIZER_OF_2, "/api/events/2/stats"),
    ("my bookings, page 1 of 20", CUSTOMER, "/api/bookings/my-bookings?perPage=20&page=1"),
    ("my bookings, page 125 of 20", CUSTOMER, "/api/bookings/my-bookings?perPage=20&page=125"),
    ("my bookings, page 250 of 20", CUSTOMER, "/api/bookings/my-bookings?perPage=20&page=250"),
    ("my bookings, page 50 of 100", CUSTOMER, "/api/bookings/my-bookings?perPage=100&page=50"),
    ("admin users q=petrov", ADMIN, "/api/admin/users?q=petrov"),
    ("admin users q=petrov page 200", ADMIN, "/api/admin/users?q=petrov&page=200"),
    ("admin users q=smith 4242", ADMIN, "/api/admin/users?q=smith%204242"),
    ("admin users q=nobody-at-all", ADMIN, "/api/admin/users?q=nobody-at-all"),
    ("admin users q=σ (one letter)", ADMIN, "/api/admin/users?q=%CF%83"),
    ("admin users q=ZOË99 role=CUSTOMER", ADMIN, "/api/admin/users?q=ZO%C3%8B99&role=CUSTOMER"),
    ("admin stats", ADMIN, "/api/admin/stats"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sql", action="store_true", help="print the statements of each request")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()

    app = create_app()
    with app.app_context():
        tokens = {user_id: start_session(db.session.get(User, user_id))[0]
                  for user_id in (ADMIN, ORGANIZER_OF_1, ORGANIZER_OF_2, CUSTOMER)}
        db.session.remove()
    client = app.test_client()
    for name, user_id, url in REQUESTS:
        if args.names and not any(wanted in name for wanted in args.names):
            continue
        headers = {"Authorization": f"Bearer {tokens[user_id]}"}
        sent, response = statements(app, partial(client.get, url, headers=headers))
        assert response.status_code == 200, (url, response.get_json())
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.get_json())
        print(f"{name:36} " + " ".join(f"{ms:7.1f}" for ms in times) + f"   median {statistics.median(times):6.1f} ms"
              f"   ({len(response.get_json())} items, X-Total-Count {response.headers.get('X-Total-Count', '-')})",
              flush=True)
        if args.sql:
            for statement in sent:
                print("   ", " ".join(statement.split()))


if __name__ == "__main__":
    main()
