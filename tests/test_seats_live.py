"""Seats under real concurrency: a gunicorn with 3 gthread workers on SQLite and on
PostgreSQL, clients released together by a Barrier, each on its own connection opened
beforehand. A seat is never in two bookings or holds, and overlapping requests, in any
order, get 201 or 409 seats_taken: never a deadlock, never a 500.
"""

import itertools
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import support
from tests.test_seat_sales import seat_count_violations, seats_off_their_ranges

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


def test_a_map_replaced_again_and_again_while_customers_book_it(live):
    """An organizer puts 20 maps of 30 seats, one after the other, on one event, each PUT
    tried again while its 409 seats_in_use says seats are held or booked (after 20 tries
    the customers start nothing new until it passes). Meanwhile 8 customers read the
    map, take 1 to 3 of its seats by their ids a moment later (a hold, or a booking) and
    give them back (a release, a cancel, or a confirm and a cancel). A sale with the
    ids of a map replaced before it was sent takes nothing (a 404), a PUT never replaces
    a map while any of its seats is held or booked, and nothing answers a 5xx. At the
    end the customers keep what they last took: the seats of every CONFIRMED booking and
    HELD hold are the current map's, BOOKED or HELD there, and every seat row is its
    range's."""
    maps, customers_count, seed = 20, 8, random.randrange(10**6)
    http, organizer = live.api.http, live.api.user("ORGANIZER")
    event = http.post("/api/events", headers=organizer["headers"], json={
        "title": "Map race", "date": support.in_days(30), "location": "Hall", "totalTickets": 30,
        "seating": "RESERVED"}).json()
    event_id, type_id = event["id"], event["ticketTypes"][0]["id"]
    url = f"/api/events/{event_id}/seats"

    def seat_map(generation):  # the same places every time; the section's name says which map
        return {"sections": [{"name": f"Map {generation}", "ticketTypeId": type_id,
                              "rows": [{"label": label, "from": 1, "to": 10} for label in "ABC"]}]}

    def generation_of(seats):
        """Which map the seats are of: None for no seats, or seats of several maps."""
        generations = {int(seat["section"].split()[1]) for seat in seats}
        return generations.pop() if len(generations) == 1 else None

    assert http.put(url, json=seat_map(0), headers=organizer["headers"]).status_code == 200
    customers = live.customers(customers_count)
    done, quiet, lock, answers, failures = threading.Event(), threading.Event(), threading.Lock(), Counter(), []
    puts = []  # (generation, sent, received, status); times are time.monotonic()'s
    sales = []  # (kind, id, or None for a 404, generation read, generation taken, sent, received, customer)
    spans = []  # (kind, id, its 201 received, its seats' give-back sent, or None: kept)

    def send(client, method, path, actor, **body):
        sent = time.monotonic()
        response = client.request(method, path, headers=actor["headers"], **body)
        received = time.monotonic()
        with lock:
            answers[(method, re.sub(r"/\d+", "/{id}", path), response.status_code)] += 1
        if response.status_code not in (200, 201, 204, 404, 409):
            failures.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response, sent, received

    def shop(index):
        rng, customer = random.Random(seed + index), customers[index]
        try:
            with httpx.Client(verify=support.SSL, base_url=live.server.url, timeout=20) as client:
                while True:
                    while quiet.is_set() and not done.is_set():  # the organizer waits long: let a PUT pass
                        time.sleep(0.01)
                    last_round = done.is_set()  # the organizer has put its last map: keep what is taken
                    listed = client.get(url).json()
                    generation = generation_of(listed)
                    if generation is None:
                        failures.append(f"the seat list is not one whole map: {len(listed)} seats")
                        return
                    free = [seat["id"] for seat in listed if seat["status"] == "AVAILABLE"] or [listed[0]["id"]]
                    wanted = rng.sample(free, min(len(free), rng.randint(1, 3)))
                    time.sleep(rng.uniform(0, 0.05))  # choosing: the map may be replaced meanwhile
                    kind = rng.choice(["bookings", "holds"])
                    taken, sent, received = send(client, "POST", f"/api/{kind}", customer,
                                                 json={"eventId": event_id, "seatIds": wanted})
                    if taken.status_code == 404:
                        sales.append((kind, None, generation, None, sent, received, customer))
                    if taken.status_code != 201:
                        continue
                    taken_id = taken.json()["id"]
                    sales.append((kind, taken_id, generation, generation_of(taken.json()["seats"]), sent, received,
                                  customer))
                    if last_round:
                        spans.append((kind, taken_id, received, None))
                        return
                    time.sleep(rng.uniform(0, 0.03))
                    owner, owner_id = kind, taken_id
                    if kind == "holds" and rng.random() < 0.3:
                        confirmed, confirm_sent, confirm_received = send(
                            client, "POST", f"/api/holds/{taken_id}/confirm", customer)
                        if confirmed.status_code == 201:
                            owner, owner_id = "bookings", confirmed.json()["id"]
                            sales.append((owner, owner_id, generation, generation_of(confirmed.json()["seats"]),
                                          confirm_sent, confirm_received, customer))
                    given_back = time.monotonic()
                    if owner == "holds":
                        freed = send(client, "DELETE", f"/api/holds/{owner_id}", customer)[0]
                    else:
                        freed = send(client, "POST", f"/api/bookings/{owner_id}/cancel", customer)[0]
                    assert freed.status_code in (200, 204), freed.text
                    spans.append((kind, taken_id, received, given_back))
                    time.sleep(rng.uniform(0, 0.25))  # browsing: now and then no seat is taken, and a PUT passes
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(f"customer {index}: {exc!r}")

    threads = [threading.Thread(target=shop, args=(index,), daemon=True) for index in range(customers_count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 45  # a loaded machine: the run takes 6-8 s on an idle one
    try:
        for generation in range(1, maps + 1):
            for attempt in itertools.count(1):
                if time.monotonic() > deadline or failures:
                    break
                put, sent, received = send(http, "PUT", url, organizer, json=seat_map(generation))
                puts.append((generation, sent, received, put.status_code))
                if put.status_code == 200:
                    break
                assert (put.status_code, put.json()["code"]) == (409, "seats_in_use"), put.text
                if attempt == 20:  # on a slow machine seats may never all be free at once
                    quiet.set()
                time.sleep(0.005)
            quiet.clear()
            time.sleep(0.1)  # customers sell this map a while
    finally:
        done.set()
        for thread in threads:
            thread.join(40)
    assert not failures, f"seed {seed}: {failures[:5]}\n{live.log()}"
    assert not any(thread.is_alive() for thread in threads), f"a customer is stuck\n{live.log()}"
    replaced = [(generation, sent, received) for generation, sent, received, status in puts if status == 200]
    assert [generation for generation, *_ in replaced] == list(range(1, maps + 1)), f"{dict(answers)}, seed {seed}"

    # A sale took seats of the map it read, and only while that map was the event's; its
    # seats were not found only once another map was being put.
    for kind, taken_id, read, took, sent, received, _ in sales:
        if taken_id is None:
            assert [g for g, put_sent, _ in replaced if g > read and put_sent < received], \
                f"a {kind} of map {read}'s seats not found while it was the map (seed {seed})"
            continue
        assert took == read, f"{kind} {taken_id} asked for seats of map {read}, took map {took}'s (seed {seed})"
        assert not [g for g, _, put_received in replaced if g > took and put_received < sent], \
            f"{kind} {taken_id} took seats of map {took}, replaced before it was sent (seed {seed})"
    # No map was put while a sale's seats were taken: from its 201 until they were given back.
    for kind, taken_id, taken_at, given_back in spans:
        clash = [g for g, put_sent, put_received in replaced
                 if taken_at < put_sent and (given_back is None or put_received < given_back)]
        assert not clash, f"map {clash[0]} put while {kind} {taken_id}'s seats were taken (seed {seed})"
    stale = answers[("POST", "/api/holds", 404)] + answers[("POST", "/api/bookings", 404)]
    assert stale and len(spans) > maps, f"no race: {dict(answers)} (seed {seed})"

    # The customers kept their last take: it is of the current map, and all that is taken of it.
    current = {seat["id"]: seat for seat in live.seats(event_id)}
    assert len(current) == 30 and {seat["section"] for seat in current.values()} == {f"Map {maps}"}
    taken = {}
    for kind, taken_id, *_, customer in sales:
        if taken_id is None:
            continue
        now = http.get(f"/api/{kind}/{taken_id}", headers=customer["headers"]).json()
        if (kind, now["status"]) in (("bookings", "CONFIRMED"), ("holds", "HELD")):
            for seat in now["seats"]:
                assert seat["id"] in current, f"{kind} {taken_id} keeps seat {seat} of a replaced map (seed {seed})"
                assert seat["id"] not in taken, f"seat {seat['id']} taken twice (seed {seed})"
                taken[seat["id"]] = "BOOKED" if kind == "bookings" else "HELD"
    assert len(taken) >= customers_count, f"the customers kept {len(taken)} seats (seed {seed})"
    assert {seat_id: seat["status"] for seat_id, seat in current.items() if seat["status"] != "AVAILABLE"} == taken
    event = http.get(f"/api/events/{event_id}").json()
    assert (event["totalTickets"], event["availableTickets"]) == (30, 30 - len(taken))
    put = http.put(url, json=seat_map(maps + 1), headers=organizer["headers"])
    assert (put.status_code, put.json()["code"]) == (409, "seats_in_use")
    assert seats_off_their_ranges(live.database_url) == []
    assert seat_count_violations(live.database_url) == []
    assert support.invariant_violations(live.database_url) == []
