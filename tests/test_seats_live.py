"""Seats under real concurrency: a gunicorn with 3 gthread workers on SQLite and on
PostgreSQL, clients released together by a Barrier, each on its own connection opened
beforehand. A seat is never in two bookings or holds, and overlapping requests, in any
order, get 201 or 409 seats_taken: never a deadlock, never a 500.
"""

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import support
from tests.test_seat_sales import seat_count_violations

pytestmark = pytest.mark.slow

TIMEOUT = 60  # seconds: a request that takes longer is stuck (a deadlock, a lost lock)


@pytest.fixture(scope="module")
def live(backend, tmp_path_factory):
    """One gunicorn on a fresh database of the current backend, shared by this module's tests."""
    tmp = tmp_path_factory.mktemp(f"seats-live-{backend}")
    url = support.create_database(backend, tmp)
    # Clients connect before the barrier and wait there: keep their connections open.
    server = support.Server(url, workers=3, threads=8, log_path=tmp / "server.log", env={"GUNICORN_KEEPALIVE": "120"})
    try:
        server.start()
        with httpx.Client(verify=support.SSL, base_url=server.url, timeout=TIMEOUT) as http:
            yield Live(server, url, support.Api(server.url, client=http), tmp / "server.log")
    finally:
        try:
            server.stop(timeout=20)
        except Exception:  # noqa: BLE001 - a server that will not stop is killed
            server.kill()
        support.drop_database(url)


class Live:
    def __init__(self, server, database_url, api, log_path):
        self.server, self.database_url, self.api, self.log_path = server, database_url, api, log_path

    def customers(self, count):
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda _: self.api.user(), range(count)))

    def hall(self, seats=30):
        """A RESERVED event with `seats` seats (rows of 10): its id and the seat ids in map order."""
        organizer, http = self.api.user("ORGANIZER"), self.api.http
        event = http.post("/api/events", headers=organizer["headers"], json={
            "title": "Seat race", "date": support.in_days(30), "location": "Hall", "totalTickets": seats,
            "seating": "RESERVED"}).json()
        rows = [{"label": chr(ord("A") + n), "from": 1, "to": 10} for n in range(seats // 10)]
        body = {"sections": [{"name": "Hall", "ticketTypeId": event["ticketTypes"][0]["id"], "rows": rows}]}
        assert http.put(f"/api/events/{event['id']}/seats", json=body, headers=organizer["headers"]).status_code == 200
        return event["id"], [seat["id"] for seat in http.get(f"/api/events/{event['id']}/seats").json()]

    def together(self, requests):
        """Send every (path, customer, body) at the same instant; the responses, in order."""
        barrier, results = threading.Barrier(len(requests)), [None] * len(requests)

        def send(index, path, customer, body):
            try:
                with httpx.Client(verify=support.SSL, base_url=self.server.url, timeout=TIMEOUT) as http:
                    http.get("/api/health")  # connected before the race
                    barrier.wait(timeout=120)
                    results[index] = http.post(path, json=body, headers=customer["headers"])
            except BaseException as exc:  # noqa: BLE001 - reported below
                barrier.abort()
                results[index] = exc

        threads = [threading.Thread(target=send, args=(i, *request), daemon=True) for i, request in enumerate(requests)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT + 130)
        failed = [repr(r) for r in results if not isinstance(r, httpx.Response)]
        assert not failed, f"{len(failed)} requests failed: {failed[:3]}\n{self.log()}"
        return results

    def seats(self, event_id):
        return self.api.http.get(f"/api/events/{event_id}/seats").json()

    def check(self, event_id, responses):
        """Only 201s and 409 seats_taken; the seats taken are exactly those of the 201s, each once;
        the counters and the database agree. The seats taken by the 201s."""
        seen = Counter((r.status_code, r.json().get("code") if r.status_code >= 400 else None) for r in responses)
        assert set(seen) <= {(201, None), (409, "seats_taken")}, f"{dict(seen)}\n{self.log()}"
        taken = [seat["id"] for r in responses if r.status_code == 201 for seat in r.json()["seats"]]
        assert len(taken) == len(set(taken)), "a seat was sold or held twice"
        listed = self.seats(event_id)
        assert sorted(s["id"] for s in listed if s["status"] != "AVAILABLE") == sorted(taken)
        event = self.api.http.get(f"/api/events/{event_id}").json()
        assert event["totalTickets"] - event["availableTickets"] == len(taken)
        assert not support.invariant_violations(self.database_url)
        assert not seat_count_violations(self.database_url)
        return taken

    def log(self):
        return "--- server log ---\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])


def test_80_customers_4_random_seats_each_out_of_30(live):
    event_id, seats = live.hall(30)
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    asked = [rng.sample(seats, 4) for _ in range(80)]
    customers = live.customers(80)
    responses = live.together([("/api/bookings", customer, {"eventId": event_id, "seatIds": wanted})
                               for customer, wanted in zip(customers, asked, strict=True)])

    taken = live.check(event_id, responses)
    wins = [r.json() for r in responses if r.status_code == 201]
    assert wins and len(taken) == 4 * len(wins), f"seed {seed}"
    for response, wanted in zip(responses, asked, strict=True):
        if response.status_code == 201:
            assert sorted(seat["id"] for seat in response.json()["seats"]) == sorted(wanted)
        else:  # the seats named are seats asked for that a winner took
            named = response.json()["unavailableSeatIds"]
            assert named and set(named) <= set(wanted) & set(taken), f"seed {seed}"
    assert [s["status"] for s in live.seats(event_id)].count("BOOKED") == len(taken)


def test_pairs_asking_for_the_same_two_seats_in_opposite_orders(live):
    """30 pairs in a ring (pair i wants seats i and i+1), one of each pair asking [i, i+1],
    the other [i+1, i]: holds and bookings, in both orders, all at once."""
    event_id, seats = live.hall(30)
    customers = live.customers(60)
    requests = []
    for i in range(30):
        pair = [seats[i], seats[(i + 1) % 30]]
        first, second = customers[2 * i], customers[2 * i + 1]
        requests.append(("/api/bookings", first, {"eventId": event_id, "seatIds": pair}))
        requests.append(("/api/holds" if i % 2 else "/api/bookings", second, {"eventId": event_id,
                                                                              "seatIds": pair[::-1]}))
    responses = live.together(requests)

    taken = live.check(event_id, responses)
    wins = sum(r.status_code == 201 for r in responses)
    assert wins >= 1 and len(taken) == 2 * wins
    for i in range(30):  # of each pair, one at most: they want the same two seats
        pair = {seats[i], seats[(i + 1) % 30]}
        both = responses[2 * i:2 * i + 2]
        assert [r.status_code for r in both].count(201) <= 1
        for refused in (r for r in both if r.status_code == 409):  # refused for seats a winner took
            named = refused.json()["unavailableSeatIds"]
            assert named and set(named) <= pair & set(taken), refused.text
        if all(r.status_code == 409 for r in both):  # neither: a neighbour took one of them
            assert pair & set(taken), f"pair {i}: seats {sorted(pair)} left unsold"
