"""The benchmark's scenarios for seats, the door and the waiting list: mixed into
`bench.Bench`, whose helpers (`sql`, `loadgen`, `row`, `Server`) they use. They make
their own events through the API as the organizer, and their bookings, tickets and
waiting-list entries by bulk SQL that keeps the invariant of docs/booking.md (checked
after each load: see `_consistent`). See tests/perf/README.md.

seats     reserved seating: (a) seat bookings vs one-ticket GA bookings, (b) a 50,000-seat
          map put vs a 5,000-seat one, (c) a 304 of the seat list vs /api/health,
          (d) worker RSS while a 50,000-seat list is read in full
checkin   check-ins of fresh codes at 16 gates vs hot GA bookings at 16 clients
csv       attendees.csv of 100,000 tickets: time vs 10,000 tickets, worker RSS
waitlist  a cancel with 10,000 customers waiting vs with nobody waiting; the offer's delay
"""

import http.client
import json
import math
import random
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2

GA_TICKETS = 1_000_000  # a general-admission event that cannot sell out during a run
SEATS_PER_ROW = 100


def _shown(value, limit):
    """`value` to two decimals, or three when two would look like `limit` (bench.shown)."""
    text = f"{value:.2f}"
    if (float(text) >= limit) != (value >= limit) or float(text) == limit != value:
        text = f"{value:.3f}"
    return text


def seat_map(type_id, seats, per_row=SEATS_PER_ROW, rows_per_section=25):
    """A PUT /api/events/{id}/seats body of `seats` seats: rows of `per_row` seats (the
    last one shorter if need be), `rows_per_section` rows to a section."""
    rows, left, number = [], seats, 0
    while left:
        count = min(per_row, left)
        rows.append({"label": f"R{number + 1}", "from": 1, "to": count})
        left -= count
        number += 1
    sections = [
        {"name": f"Section {i // rows_per_section + 1}", "ticketTypeId": type_id, "rows": rows[i : i + rows_per_section]}
        for i in range(0, len(rows), rows_per_section)
    ]
    return {"sections": sections}


def _vm(pid, field):
    """VmRSS or VmHWM (peak RSS) of a process, in MB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakRss:
    """The workers' RSS before, after and at its highest while the `with` block runs:
    sampled every `every` seconds, and read from the kernel's own high-water mark
    (VmHWM, reset on entry through /proc/PID/clear_refs) where Linux allows it, so
    that a peak between two samples is not missed."""

    def __init__(self, server, every=0.02):
        self.pids = server.workers()
        self.every = every
        self.before = {pid: _vm(pid, "VmRSS") for pid in self.pids}
        self.peak = dict(self.before)
        self.after = {}
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            for pid in self.pids:
                mb = _vm(pid, "VmRSS")
                if mb is not None:
                    self.peak[pid] = max(self.peak.get(pid) or 0, mb)
            self._stop.wait(self.every)

    def __enter__(self):
        try:
            for pid in self.pids:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.hwm_reset = True
        except OSError:
            pass
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.after = {pid: _vm(pid, "VmRSS") for pid in self.pids}
        if self.hwm_reset:
            for pid in self.pids:
                hwm = _vm(pid, "VmHWM")
                if hwm is not None:
                    self.peak[pid] = max(self.peak.get(pid) or 0, hwm)

    def growth(self, which="peak"):
        """The largest growth of any worker (MB), from before to `which` (peak, after)."""
        values = self.peak if which == "peak" else self.after
        return max((values[pid] or 0) - (self.before[pid] or 0) for pid in self.pids)

    def report(self):
        def mb(values):
            return {str(pid): None if values.get(pid) is None else round(values[pid], 1) for pid in self.pids}

        return {"before_mb": mb(self.before), "peak_mb": mb(self.peak), "after_mb": mb(self.after),
                "growth_peak_mb": round(self.growth("peak"), 1), "growth_after_mb": round(self.growth("after"), 1),
                "vmhwm": self.hwm_reset}


class Connection:
    """One keep-alive connection to the server for timed requests (reconnecting when the
    server closed it): the time of a request is from its first byte sent to the last
    byte of its answer read."""

    def __init__(self, server, timeout=120):
        self.server, self.timeout, self.connection = server, timeout, None

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes, seconds)."""
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
                self.connection.connect()
            try:
                started = time.perf_counter()
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                data = response.read()
                return response.status, response, data, time.perf_counter() - started
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def download(self, path, headers=None):
        """GET `path`, reading the body in pieces and keeping none: (status, bytes, lines
        (CRLF-ended), seconds)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
        try:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            size = lines = 0
            tail = b""
            while piece := response.read(1 << 16):
                size += len(piece)
                lines += (tail + piece).count(b"\r\n") - tail.count(b"\r\n")
                tail = piece[-1:]
            return response.status, size, lines, time.perf_counter() - started
        finally:
            connection.close()

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class DoorScenarios:
    SCENARIOS = ("seats", "checkin", "csv", "waitlist")  # names of the scenario_<name> methods below, in running order
    FULL = {  # their sizes in a full run (`--set NAME=VALUE` overrides any)
        "door_warmup": 1.0,  # seconds of load before each measured window
        "seats_clients": 16,
        "seats_duration": 5.0,  # seconds measured per run, GA bookings and seat bookings alike
        "seats_rounds": 2,  # GA, seats; seats, GA; ...: the ratio is of the medians
        "seats_warmup": 3.0,  # seconds of seat bookings before the rounds, not counted
        "seats_event": 10_000,  # seats of each event booked (2 seats a booking)
        "seats_small_map": 5_000,
        "seats_large_map": 50_000,
        "seats_puts": 3,  # PUTs of each map size (median)
        "seats_304_duration": 3.0,
        "seats_304_rounds": 2,
        "seats_full_gets": 4,  # full GETs of the large map while worker RSS is watched
        "checkin_clients": 16,
        "checkin_duration": 5.0,
        "checkin_rounds": 2,
        "checkin_tickets": 40_000,  # fresh codes made for the run (4 a booking)
        "csv_small": 10_000,  # tickets (multiples of 10: bookings of 1, 2, 3, 4 tickets)
        "csv_large": 100_000,
        "csv_runs": 3,  # downloads of each (median)
        "waitlist_waiting": 10_000,
        "waitlist_cancels": 30,  # of each kind (median)
        "waitlist_offer_wait": 10.0,  # seconds to wait for an offer (the target is 2)
    }
    QUICK = {  # and with --quick
        "door_warmup": 0.5,
        "seats_duration": 2.0,
        "seats_rounds": 1,
        "seats_warmup": 1.0,
        "seats_304_duration": 1.5,
        "seats_304_rounds": 1,
        "seats_full_gets": 3,
        "checkin_duration": 2.0,
        "checkin_rounds": 1,
        "checkin_tickets": 20_000,
        "csv_small": 5_000,
        "csv_large": 50_000,
        "csv_runs": 1,
        "waitlist_cancels": 10,
    }

    # -- helpers ---------------------------------------------------------------

    def _server(self, **kwargs):
        """bench.Server, from the module that defines this Bench (bench.py runs as
        __main__: importing it again would make another JWT secret)."""
        return sys.modules[type(self).__module__].Server(self, **kwargs)

    def _log(self, message):
        sys.modules[type(self).__module__].log(f"  {message}")

    def _api(self, server, method, path, body=None, token=None, expect=(200, 201)):
        """A request as the organizer (or `token`'s owner): its JSON, or an error."""
        headers = {"Authorization": f"Bearer {token or self.organizer_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        status, data = server.request(method, path, body, headers, timeout=120)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data else None

    def _event(self, server, title, tickets, seating="GENERAL", price="0.00"):
        """A new event (the API's Event), one ticket type of `tickets` tickets."""
        date = (datetime.now(timezone.utc) + timedelta(days=60)).isoformat()
        body = {"title": title, "date": date, "location": "Bench hall", "totalTickets": tickets, "seating": seating,
                "ticketTypes": [{"name": "Seat" if seating == "RESERVED" else "General admission", "price": price,
                                 "quantity": tickets}]}
        return self._api(server, "POST", "/api/events", body)

    def _seated(self, server, title, seats):
        """A RESERVED event with a map of `seats` seats: (event id, seat ids in map order)."""
        event = self._event(server, title, seats, seating="RESERVED", price="25.00")
        self._api(server, "PUT", f"/api/events/{event['id']}/seats", seat_map(event["ticketTypes"][0]["id"], seats))
        ids = [seat["id"] for seat in self._api(server, "GET", f"/api/events/{event['id']}/seats")]
        assert len(ids) == seats, (len(ids), seats)
        return event["id"], ids

    def _drain(self, timeout=60):
        """Wait until the notifications written so far are sent, so that their delivery
        does not load the next measured run."""
        deadline = time.monotonic() + timeout
        while self.sql("SELECT count(*) FROM notifications WHERE status = 'PENDING' "
                       "AND next_attempt_at < now() + interval '1 day'", fetch="one")[0]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _http(self, server, clients, duration, mix):
        self._drain()
        spec = {"mode": "http", "port": server.port, "clients": clients, "duration": duration,
                "warmup": self.size["door_warmup"], "mix": mix, "tokens_file": str(self.tokens_file),
                "seed": int(time.time())}
        return self.loadgen(spec, server=server)

    @staticmethod
    def _per_second(result, status="201"):
        return result["status"].get(status, 0) / result["seconds"]

    @staticmethod
    def _sent(result):
        return sum(result["all_status"].values()) + sum(result.get("errors", {}).values())

    def _ga_run(self, server, clients, duration, label):
        """One-ticket GA bookings (the `book` kind) on a new event: the reference of the
        seats and checkin scenarios."""
        event = self._event(server, f"GA reference {label}", GA_TICKETS)["id"]
        result = self._http(server, clients, duration, [{"name": "book", "kind": "book", "events": [event]}])
        result["event"] = event
        result["consistent"] = self._consistent([event], sold=result["all_status"].get("201", 0))
        return result

    def _consistent(self, events, sold=None, seats_booked=None):
        """docs/booking.md's invariant on these events (and their types, bookings and
        seats), and, when given, tickets sold == `sold`, BOOKED seats == `seats_booked`.
        A list of what is wrong (empty: all is well)."""
        wrong = []
        bad = self.sql(
            "SELECT e.id FROM events e "
            "LEFT JOIN (SELECT event_id, sum(tickets_count) AS n FROM bookings WHERE status = 'CONFIRMED' "
            "  GROUP BY event_id) b ON b.event_id = e.id "
            "LEFT JOIN (SELECT event_id, sum(tickets_count) AS n FROM holds WHERE status = 'HELD' "
            "  GROUP BY event_id) h ON h.event_id = e.id "
            "WHERE e.id = ANY(%(events)s) AND (e.available_tickets < 0 OR e.set_aside_tickets < 0 "
            "  OR e.available_tickets + e.set_aside_tickets > e.total_tickets "
            "  OR e.total_tickets - e.available_tickets "
            "     != COALESCE(b.n, 0) + COALESCE(h.n, 0) + e.set_aside_tickets) "
            "UNION ALL "
            "SELECT -t.id FROM ticket_types t "
            "LEFT JOIN (SELECT i.ticket_type_id, sum(i.count) AS n FROM items i JOIN bookings b ON b.id = i.booking_id "
            "  WHERE b.status = 'CONFIRMED' GROUP BY i.ticket_type_id) s ON s.ticket_type_id = t.id "
            "LEFT JOIN (SELECT i.ticket_type_id, sum(i.count) AS n FROM items i JOIN holds h ON h.id = i.hold_id "
            "  WHERE h.status = 'HELD' GROUP BY i.ticket_type_id) h ON h.ticket_type_id = t.id "
            "WHERE t.event_id = ANY(%(events)s) AND (t.available_quantity < 0 OR t.set_aside < 0 "
            "  OR t.available_quantity + t.set_aside > t.quantity "
            "  OR t.quantity - t.available_quantity != COALESCE(s.n, 0) + COALESCE(h.n, 0) + t.set_aside)",
            {"events": list(events)},
        )
        if bad:
            wrong.append(f"counters of events/-types {[r[0] for r in bad][:5]}")
        count, mismatched = self.sql(
            "SELECT count(*), count(*) FILTER (WHERE b.tickets_count != (SELECT count(*) FROM tickets k "
            "  WHERE k.booking_id = b.id) OR b.tickets_count != (SELECT COALESCE(sum(i.count), 0) FROM items i "
            "  WHERE i.booking_id = b.id)) FROM bookings b WHERE b.event_id = ANY(%s) AND b.status = 'CONFIRMED'",
            (list(events),), fetch="one",
        )
        if mismatched:
            wrong.append(f"{mismatched} bookings whose tickets or items do not add up")
        if sold is not None:
            confirmed = self.sql("SELECT COALESCE(sum(tickets_count), 0) FROM bookings WHERE event_id = ANY(%s) "
                                 "AND status = 'CONFIRMED'", (list(events),), fetch="one")[0]
            if confirmed != sold:
                wrong.append(f"{confirmed} tickets CONFIRMED, {sold} answered 201")
        booked, seat_bad = self.sql(
            "SELECT count(*) FILTER (WHERE s.status = 'BOOKED'), count(*) FILTER (WHERE "
            "  (s.status = 'BOOKED') != (b.status IS NOT DISTINCT FROM 'CONFIRMED') "
            "  OR (s.status = 'HELD') != (h.status IS NOT DISTINCT FROM 'HELD')) "
            "FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id LEFT JOIN holds h ON h.id = s.hold_id "
            "WHERE s.event_id = ANY(%s)", (list(events),), fetch="one",
        )
        if seat_bad:
            wrong.append(f"{seat_bad} seats whose status is not their booking's or hold's")
        if seats_booked is not None and booked != seats_booked:
            wrong.append(f"{booked} seats BOOKED, {seats_booked} expected")
        return wrong

    def _sell(self, event, type_id, customers, tickets_of="1", first=0, checked_in_every=0):
        """Bulk SQL: `customers` CONFIRMED bookings of `event` (customers first..first+n-1
        of the tokens file), each with `tickets_of` tickets (an SQL expression of g, the
        booking's number from 0), their items and tickets (fresh random codes), and the
        counters of the event and its type moved by what was sold, in one statement:
        the invariant holds before and after. (bookings, tickets) made."""
        if first + customers > self.customers:
            raise RuntimeError(f"{first + customers} customers needed, the run has {self.customers}")
        made = self.sql(
            "WITH b AS ("
            "  INSERT INTO bookings (event_id, user_id, tickets_count, total_amount, status, created_at) "
            f" SELECT %(event)s, %(user)s + g, {tickets_of}, 0, 'CONFIRMED', now() - interval '1 hour' "
            "  FROM generate_series(0, %(n)s - 1) g ORDER BY g RETURNING id, tickets_count), "
            "i AS (INSERT INTO items (booking_id, ticket_type_id, count, unit_price) "
            "  SELECT id, %(type)s, tickets_count, 0 FROM b), "
            "t AS (INSERT INTO tickets (booking_id, ticket_type_id, code, checked_in_at) "
            "  SELECT b.id, %(type)s, substr(md5(random()::text || b.id || '.' || k), 1, 22), "
            "  CASE WHEN %(every)s > 0 AND k = 1 AND b.id %% %(every)s = 0 THEN now() - interval '5 minutes' END "
            "  FROM b, generate_series(1, b.tickets_count) k ORDER BY b.id, k), "
            "e AS (UPDATE events SET available_tickets = available_tickets - (SELECT sum(tickets_count) FROM b) "
            "  WHERE id = %(event)s), "
            "y AS (UPDATE ticket_types SET available_quantity = available_quantity - (SELECT sum(tickets_count) FROM b) "
            "  WHERE id = %(type)s) "
            "SELECT count(*), sum(tickets_count) FROM b",
            {"event": event, "type": type_id, "user": self.first_customer + first, "n": customers,
             "every": checked_in_every},
            fetch="one",
        )
        return int(made[0]), int(made[1])

    def _analyze(self):
        self.sql("ANALYZE bookings, items, tickets, seats, waitlist_entries, events, ticket_types", fetch=None)

    def _tokens(self):
        if not hasattr(self, "_door_tokens"):
            self._door_tokens = self.tokens_file.read_text().split()
        return self._door_tokens

    # -- seats -----------------------------------------------------------------

    def scenario_seats(self):
        """Reserved seating (docs/api.md "Reserved seating"), on one server:

        (a) `seats_clients` clients booking 2 seats each (`POST /api/bookings {eventId,
            seatIds}`) on `seats_event`-seat RESERVED events, vs one-ticket GA bookings
            (`book` kind) on one GA event at as many clients; `seats_rounds` rounds of
            both, in turns; target: median 201/s of seats >= 0.80 x that of GA. The seat
            pairs are a random permutation of each event's seats taken two at a time
            (never a seat twice, so no 409 is expected; any is counted apart), sent in
            order and each event used up before the next, so that all clients book one
            event at a time as on the GA event, and none sells out in the window.
        (b) PUT of a `seats_large_map`-seat map vs a `seats_small_map`-seat one, each the
            first map of a new event, `seats_puts` of each in turns; target: median
            large <= 5 x median small.
        (c) GET of the large map's seats with If-None-Match (304) vs GET /api/health,
            `seats_clients` clients, `seats_304_rounds` rounds in turns; target: health's
            req/s <= 1.5 x the 304's req/s (cost = 1/throughput).
        (d) on a new server (warmed on a 10-seat map), worker RSS while
            `seats_full_gets` full GETs of the large map are read, each on a new
            connection (so any worker may serve it); target: the largest growth of any
            worker, from before to its peak (VmHWM, and samples every 20 ms), < 50 MB.
            One more GET then checks what is sent: every seat, all AVAILABLE."""
        out = {}
        clients = self.size["seats_clients"]
        duration = self.size["seats_duration"]
        per_event = self.size["seats_event"]
        with self._server(name="seats") as server:
            # (b) first: it makes the large map of (c) and (d)
            puts, body_bytes = {"small": [], "large": []}, {}
            sizes = {"small": self.size["seats_small_map"], "large": self.size["seats_large_map"]}
            large_events = []
            for number in range(self.size["seats_puts"]):
                order = ("small", "large") if number % 2 == 0 else ("large", "small")
                for which in order:
                    event = self._event(server, f"Seat map {which} {number}", sizes[which], seating="RESERVED")
                    body = json.dumps(seat_map(event["ticketTypes"][0]["id"], sizes[which]))
                    status, _, data, seconds = Connection(server).request(
                        "PUT", f"/api/events/{event['id']}/seats", body,
                        {"Authorization": f"Bearer {self.organizer_token}", "Content-Type": "application/json"})
                    if status != 200 or json.loads(data)["seats"] != sizes[which]:
                        raise RuntimeError(f"PUT seats ({sizes[which]}): {status} {data[:300]!r}")
                    puts[which].append(round(seconds * 1000, 1))
                    body_bytes[which] = len(body)
                    if which == "large":
                        large_events.append(event["id"])
            small_ms, large_ms = statistics.median(puts["small"]), statistics.median(puts["large"])
            ratio = large_ms / small_ms
            out["put"] = {"ms": puts, "seats": sizes, "body_bytes": body_bytes, "ratio": round(ratio, 2)}
            self.row("seats", f"PUT {sizes['small']} seats (median of {len(puts['small'])})", None,
                     f"{small_ms:.0f} ms")
            self.row("seats", f"PUT {sizes['large']} seats (median of {len(puts['large'])})", None,
                     f"{large_ms:.0f} ms = {_shown(ratio, 5)}x", "<= 5x", ratio <= 5)

            big = large_events[0]
            # (c) 304 vs health
            _, response, _, _ = Connection(server).request("GET", f"/api/events/{big}/seats")
            tag = response.getheader("ETag")
            requests = {"304": {"method": "GET", "path": f"/api/events/{big}/seats", "headers": {"If-None-Match": tag}},
                        "health": {"method": "GET", "path": "/api/health"}}
            runs = {"304": [], "health": []}
            for number in range(self.size["seats_304_rounds"]):
                order = ("health", "304") if number % 2 == 0 else ("304", "health")
                for which in order:
                    self._drain()
                    result = self.loadgen({"mode": "http", "port": server.port, "clients": clients,
                                           "duration": self.size["seats_304_duration"],
                                           "warmup": self.size["door_warmup"],
                                           "mix": [{"name": which, "kind": "requests", "requests": [requests[which]]}]},
                                          server=server)
                    runs[which].append(result)
                    self.row("seats", f"{'GET seats, If-None-Match' if which == '304' else 'GET /api/health'}, "
                             f"C={clients}", result)
            rps304 = statistics.median(r["rps"] for r in runs["304"])
            rps_health = statistics.median(r["rps"] for r in runs["health"])
            only = all(set(r["status"]) == {"304"} and not r["errors"] for r in runs["304"]) and all(
                set(r["status"]) == {"200"} and not r["errors"] for r in runs["health"])
            cost = rps_health / rps304 if rps304 else math.inf
            out["not_modified"] = {"etag": tag, "runs": runs, "cost_ratio": round(cost, 2)}
            self.row("seats", "304 cost / health cost (1/req/s)", None,
                     f"{rps_health:.0f} / {rps304:.0f} req/s = {_shown(cost, 1.5)}x" + ("" if only else "; not all 304/200"),
                     "<= 1.5x", cost <= 1.5 and only)

            # (a) seat bookings vs GA bookings
            runs = {"ga": [], "seats": []}

            def seat_run(number, seconds):
                """Bookings of 2 random seats for `seconds` on fresh events: the result."""
                # enough fresh pairs for twice the fastest rate seen so far (GA runs first)
                rate = max((self._per_second(r) for r in runs["ga"] + runs["seats"]), default=1000)
                pairs = int(2 * rate * (seconds + self.size["door_warmup"])) + 1000
                events = math.ceil(pairs / (per_event // 2))
                requests, seated = [], []
                rng = random.Random(number)
                for e in range(events):
                    event, ids = self._seated(server, f"Seated {number}.{e}", per_event)
                    seated.append(event)
                    rng.shuffle(ids)
                    for i in range(0, len(ids) - 1, 2):
                        requests.append({"method": "POST", "path": "/api/bookings", "customer": len(requests) % (
                            per_event // 2), "body": json.dumps({"eventId": event, "seatIds": ids[i : i + 2]})})
                self._analyze()
                result = self._http(server, clients, seconds,
                                    [{"name": "seats", "kind": "requests", "requests": requests}])
                sent = self._sent(result)
                result["events"] = seated
                result["pairs"] = len(requests)
                result["wrapped"] = sent > len(requests)
                booked = result["all_status"].get("201", 0)
                result["consistent"] = self._consistent(seated, sold=2 * booked, seats_booked=2 * booked)
                result["events_used"] = math.ceil(min(sent, len(requests)) / (per_event // 2))
                result["events_made"] = events
                return result

            # A shop as deployed has sold seats before, and its autovacuum keeps the
            # planner's figures of the seats table current. This server runs without
            # autovacuum, and seats get rows only when sold: an ANALYZE of the empty table
            # would have the sales statements planned for an empty table for a whole
            # round. So seats are sold first for a while, unmeasured.
            warm = seat_run(-1, self.size["seats_warmup"])
            self.row("seats", f"2 seats, C={clients}, warm-up (not counted)", warm,
                     f"{self._per_second(warm):.0f} 201/s" + self._wrong(warm["consistent"]),
                     verdict=False if warm["consistent"] or warm["wrapped"] else None)
            for number in range(self.size["seats_rounds"]):
                order = ("ga", "seats") if number % 2 == 0 else ("seats", "ga")
                for which in order:
                    if which == "ga":
                        result = self._ga_run(server, clients, duration, number)
                        runs["ga"].append(result)
                        self.row("seats", f"GA 1 ticket, C={clients}, round {number + 1}", result,
                                 f"{self._per_second(result):.0f} 201/s" + self._wrong(result["consistent"]),
                                 verdict=False if result["consistent"] else None)
                        continue
                    result = seat_run(number, duration)
                    runs["seats"].append(result)
                    taken = result["status"].get("409", 0)
                    self.row("seats", f"2 seats, C={clients}, round {number + 1}", result,
                             f"{self._per_second(result):.0f} 201/s, {taken} 409 in window; "
                             f"{result['events_used']} of {result['events_made']} {per_event}-seat events"
                             + (" (list ran out)" if result["wrapped"] else "") + self._wrong(result["consistent"]),
                             verdict=False if result["consistent"] or result["wrapped"] else None)
            ga = statistics.median(self._per_second(r) for r in runs["ga"])
            seats = statistics.median(self._per_second(r) for r in runs["seats"])
            ratio = seats / ga if ga else 0
            out["booking"] = {"runs": runs, "ga_201_per_s": round(ga, 1), "seats_201_per_s": round(seats, 1),
                              "ratio": round(ratio, 3)}
            self.row("seats", "seat bookings / GA bookings (201/s)", None,
                     f"{seats:.0f} / {ga:.0f} = {_shown(ratio, 0.8)}", ">= 0.80", ratio >= 0.8)
        # (d) on a new server: its workers have parsed no big map, so no memory freed
        # by a PUT can hide what a GET takes
        with self._server(name="seats-rss") as server:
            small_event, _ = self._seated(server, "Seat map warm-up", 10)
            for _ in range(4 * len(server.workers())):  # the seat list's code, warmed on a tiny map
                Connection(server).download(f"/api/events/{small_event}/seats")
            gets = []
            rss = PeakRss(server)
            with rss:
                for _ in range(self.size["seats_full_gets"]):
                    status, size, _, seconds = Connection(server).download(f"/api/events/{big}/seats")
                    gets.append({"status": status, "bytes": size, "ms": round(seconds * 1000, 1)})
            status, data = server.request("GET", f"/api/events/{big}/seats", timeout=120)  # what was sent
            listed = json.loads(data) if status == 200 else []
            if status != 200 or len(listed) != sizes["large"] or {s["status"] for s in listed} != {"AVAILABLE"}:
                raise RuntimeError(f"GET seats: {status}, {len(listed)} seats")
            out["full_get"] = {"gets": gets, **rss.report()}
            growth = rss.growth("peak")
            self.row("seats", f"GET {sizes['large']} seats x{len(gets)} (median)", None,
                     f"{statistics.median(g['ms'] for g in gets):.0f} ms, {gets[0]['bytes'] / 1e6:.1f} MB")
            self.row("seats", "worker RSS growth, full GETs", None,
                     f"peak +{growth:.1f} MB (after +{rss.growth('after'):.1f})", "< 50 MB",
                     growth < 50 and all(g["status"] == 200 for g in gets))
        self.data["seats"] = out

    @staticmethod
    def _wrong(problems):
        return "; INCONSISTENT: " + ", ".join(problems) if problems else ""

    # -- checkin ---------------------------------------------------------------

    def scenario_checkin(self):
        """Tickets and check-in: `checkin_clients` gates scanning fresh valid codes
        (`POST /api/events/{id}/check-ins {code}` as the organizer, each code once, in a
        random order, so every answer should be a 201) vs one-ticket GA bookings (`book`
        kind) on one GA event at as many clients, `checkin_rounds` rounds of both in
        turns, one server. The `checkin_tickets` tickets are made by bulk SQL: CONFIRMED
        bookings of 4 tickets, their items and tickets (random codes), the counters moved
        to match. Target: median check-in 201/s >= median booking 201/s."""
        clients, duration = self.size["checkin_clients"], self.size["checkin_duration"]
        per = 4
        bookings = math.ceil(self.size["checkin_tickets"] / per)
        out = {"tickets": bookings * per, "runs": {"ga": [], "checkin": []}}
        with self._server(name="checkin") as server:
            event = self._event(server, "At the door", bookings * per)
            made, tickets = self._sell(event["id"], event["ticketTypes"][0]["id"], bookings, tickets_of=str(per))
            self._analyze()
            problems = self._consistent([event["id"]], sold=tickets)
            codes = [r[0] for r in self.sql("SELECT k.code FROM tickets k JOIN bookings b ON b.id = k.booking_id "
                                            "WHERE b.event_id = %s", (event["id"],))]
            random.Random(1).shuffle(codes)
            path = f"/api/events/{event['id']}/check-ins"
            offset, admitted = 0, 0
            for number in range(self.size["checkin_rounds"]):
                order = ("ga", "checkin") if number % 2 == 0 else ("checkin", "ga")
                for which in order:
                    if which == "ga":
                        result = self._ga_run(server, clients, duration, f"checkin {number}")
                        out["runs"]["ga"].append(result)
                        self.row("checkin", f"GA 1 ticket, C={clients}, round {number + 1}", result,
                                 f"{self._per_second(result):.0f} 201/s" + self._wrong(result["consistent"]),
                                 verdict=False if result["consistent"] else None)
                        continue
                    rate = max((self._per_second(r) for rs in out["runs"].values() for r in rs), default=2000)
                    count = int(2 * rate * (duration + self.size["door_warmup"])) + 2000
                    batch = codes[offset : offset + count]
                    requests = [{"method": "POST", "path": path, "body": json.dumps({"code": code}),
                                 "token": self.organizer_token} for code in batch]
                    result = self._http(server, clients, duration,
                                        [{"name": "checkin", "kind": "requests", "requests": requests}])
                    sent = self._sent(result)
                    result["wrapped"] = sent > len(batch)
                    offset += min(sent, len(batch))
                    admitted += result["all_status"].get("201", 0)
                    checked = self.sql("SELECT count(*) FROM tickets k JOIN bookings b ON b.id = k.booking_id "
                                       "WHERE b.event_id = %s AND k.checked_in_at IS NOT NULL", (event["id"],),
                                       fetch="one")[0]
                    result["checked_in"] = checked
                    wrong = [] if checked == admitted else [f"{checked} checked in, {admitted} answered 201"]
                    out["runs"]["checkin"].append(result)
                    self.row("checkin", f"check-ins, {clients} gates, round {number + 1}", result,
                             f"{self._per_second(result):.0f} 201/s; {offset}/{len(codes)} codes used"
                             + (" (list ran out)" if result["wrapped"] or offset >= len(codes) else "")
                             + self._wrong(wrong),
                             verdict=False if wrong or result["wrapped"] else None)
        if problems:
            self.row("checkin", f"{made} bookings made by SQL", None, self._wrong(problems), "consistent", False)
        ga = statistics.median(self._per_second(r) for r in out["runs"]["ga"])
        door = statistics.median(self._per_second(r) for r in out["runs"]["checkin"])
        ratio = door / ga if ga else 0
        out.update(ga_201_per_s=round(ga, 1), checkin_201_per_s=round(door, 1), ratio=round(ratio, 3))
        self.row("checkin", "check-ins / GA bookings (201/s)", None, f"{door:.0f} / {ga:.0f} = {_shown(ratio, 1)}",
                 ">= 1.00", ratio >= 1)
        self.data["checkin"] = out

    # -- csv -------------------------------------------------------------------

    def scenario_csv(self):
        """`GET /api/events/{id}/attendees.csv` of `csv_large` tickets vs `csv_small`
        tickets (bulk SQL: bookings of 1, 2, 3, 4 tickets in turn, a third of them with
        a ticket checked in), `csv_runs` downloads of each in turns, each on a new
        connection, read to the last byte by the bench. Targets: median time large <=
        12 x small; the largest growth of any worker's RSS, from before the first
        download to its peak during all of them (VmHWM, and samples every 20 ms) < 30 MB.
        Every download must have one line per ticket and the header."""
        sizes = {"small": self.size["csv_small"], "large": self.size["csv_large"]}
        out = {"tickets": sizes, "runs": {"small": [], "large": []}}
        with self._server(name="csv") as server:
            events = {}
            for which, tickets in sizes.items():
                if tickets % 10:
                    raise RuntimeError(f"csv_{which} must be a multiple of 10")
                event = self._event(server, f"Attendees {which}", tickets)
                made = self._sell(event["id"], event["ticketTypes"][0]["id"], tickets // 10 * 4,
                                  tickets_of="1 + mod(g, 4)", checked_in_every=3)
                assert made[1] == tickets, made
                events[which] = event["id"]
            tiny = self._event(server, "Attendees warm-up", 10)
            self._sell(tiny["id"], tiny["ticketTypes"][0]["id"], 4, tickets_of="1 + mod(g, 4)")
            self._analyze()
            self._log(f"csv: {sum(sizes.values())} tickets made")
            problems = self._consistent(list(events.values()) + [tiny["id"]])
            self._log("csv: checked")
            headers = {"Authorization": f"Bearer {self.organizer_token}"}
            for _ in range(4 * len(server.workers())):  # the CSV's code, warmed on 10 tickets
                Connection(server).download(f"/api/events/{tiny['id']}/attendees.csv", headers)
            rss = PeakRss(server)
            with rss:
                for number in range(self.size["csv_runs"]):
                    for which in (("small", "large") if number % 2 == 0 else ("large", "small")):
                        status, size, lines, seconds = Connection(server).download(
                            f"/api/events/{events[which]}/attendees.csv", headers)
                        out["runs"][which].append({"status": status, "bytes": size, "lines": lines,
                                                   "ms": round(seconds * 1000, 1)})
                        if status != 200 or lines != sizes[which] + 1:
                            problems.append(f"{which}: {status}, {lines} lines for {sizes[which]} tickets")
        out["rss"] = rss.report()
        if problems:
            self.row("csv", "data and answers", None, self._wrong(problems), "consistent", False)
        small = statistics.median(r["ms"] for r in out["runs"]["small"])
        large = statistics.median(r["ms"] for r in out["runs"]["large"])
        ratio = large / small
        out.update(small_ms=small, large_ms=large, ratio=round(ratio, 2))
        for which, ms in (("small", small), ("large", large)):
            runs = out["runs"][which]
            self.row("csv", f"{sizes[which]} tickets (median of {len(runs)})", None,
                     f"{ms:.0f} ms, {runs[0]['bytes'] / 1e6:.1f} MB, {sizes[which] / ms * 1000:.0f} lines/s")
        self.row("csv", f"time {sizes['large'] // 1000}k / {sizes['small'] // 1000}k tickets", None,
                 f"{_shown(ratio, 12)}x", "<= 12x", ratio <= 12)
        growth = rss.growth("peak")
        self.row("csv", "worker RSS growth, downloads", None,
                 f"peak +{growth:.1f} MB (after +{rss.growth('after'):.1f})", "< 30 MB", growth < 30)
        self.data["csv"] = out

    # -- waitlist --------------------------------------------------------------

    def scenario_waitlist(self):
        """The waiting list: cancels (`POST /api/bookings/{id}/cancel` by the booking's
        customer, one keep-alive connection, one at a time) of one-ticket bookings of a
        sold-out event with `waitlist_waiting` customers WAITING, vs the same cancels on
        a sold-out event nobody waits for; `waitlist_cancels` of each in turns (after 3
        of each to warm up), each once the emails of those before it are sent;
        bookings and entries by bulk SQL. After each cancel on the
        waited-for event, the DB is polled until the first entry in line is OFFERED
        with a HELD hold (before the next cancel, so that no offer overlaps a timed
        cancel). Targets: median cancel time with the list <= 1.5 x without; every
        offer out within 2 s of its cancel being sent."""
        warm, n = 3, self.size["waitlist_cancels"]
        sold = warm + n
        waiting = self.size["waitlist_waiting"]
        out = {"waiting": waiting, "cancels": n}
        tokens = self._tokens()
        with self._server(name="waitlist") as server:
            crowded = self._event(server, "Everybody waits", sold)
            self._sell(crowded["id"], crowded["ticketTypes"][0]["id"], sold)
            if sold + waiting > self.customers:
                raise RuntimeError(f"{sold + waiting} customers needed, the run has {self.customers}")
            self.sql(
                "INSERT INTO waitlist_entries (event_id, user_id, ticket_type_id, tickets_count, status, created_at, "
                "updated_at) SELECT %s, %s + g, %s, 1, 'WAITING', now() - interval '1 hour' + g * interval '1 ms', "
                "now() - interval '1 hour' + g * interval '1 ms' FROM generate_series(0, %s - 1) g ORDER BY g",
                (crowded["id"], self.first_customer + sold, crowded["ticketTypes"][0]["id"], waiting), fetch=None)
            alone = self._event(server, "Nobody waits", sold)
            self._sell(alone["id"], alone["ticketTypes"][0]["id"], sold)
            self._analyze()
            events = [crowded["id"], alone["id"]]
            problems = self._consistent(events, sold=2 * sold)
            booked = {e: self.sql("SELECT id, user_id FROM bookings WHERE event_id = %s ORDER BY id", (e,))
                      for e in events}
            entries = [r[0] for r in self.sql("SELECT id FROM waitlist_entries WHERE event_id = %s ORDER BY id",
                                              (crowded["id"],))]
            connection = Connection(server)
            poll = psycopg2.connect(self.url)
            poll.autocommit = True
            times = {"crowded": [], "alone": []}
            offers = []

            def cancel(event, k):
                booking, user = booked[event][k]
                with poll.cursor() as cursor:  # the emails of the cancels before are sent: a quiet server
                    deadline = time.perf_counter() + 10
                    while time.perf_counter() < deadline:
                        cursor.execute("SELECT count(*) FROM notifications WHERE status = 'PENDING' "
                                       "AND next_attempt_at < now() + interval '1 day'")
                        if not cursor.fetchone()[0]:
                            break
                        time.sleep(0.01)
                started = time.perf_counter()
                status, _, data, seconds = connection.request(
                    "POST", f"/api/bookings/{booking}/cancel",
                    headers={"Authorization": f"Bearer {tokens[user - self.first_customer]}"})
                if status != 200 or json.loads(data)["status"] != "CANCELLED":
                    raise RuntimeError(f"cancel {booking}: {status} {data[:300]!r}")
                return started, seconds

            def offered(entry, since):
                deadline = since + self.size["waitlist_offer_wait"]
                with poll.cursor() as cursor:
                    while time.perf_counter() < deadline:
                        cursor.execute("SELECT e.status, h.status FROM waitlist_entries e LEFT JOIN holds h "
                                       "ON h.id = e.hold_id WHERE e.id = %s", (entry,))
                        if cursor.fetchone() == ("OFFERED", "HELD"):
                            return time.perf_counter() - since
                        time.sleep(0.005)
                return None

            try:
                for k in range(sold):
                    for which in (("crowded", "alone") if k % 2 == 0 else ("alone", "crowded")):
                        started, seconds = cancel(crowded["id"] if which == "crowded" else alone["id"], k)
                        if k >= warm:
                            times[which].append(seconds * 1000)
                        if which == "crowded":
                            offers.append(offered(entries[k], started))
                            if offers[-1] is None:
                                raise RuntimeError(f"no offer to entry {k + 1} within "
                                                   f"{self.size['waitlist_offer_wait']} s of its cancel")
            finally:
                poll.close()
                connection.close()
            statuses = dict(self.sql("SELECT status, count(*) FROM waitlist_entries WHERE event_id = %s "
                                     "GROUP BY status", (crowded["id"],)))
            if statuses != {"OFFERED": sold, "WAITING": waiting - sold}:
                problems.append(f"waiting list {statuses}")
            problems += self._consistent(events, sold=0)
        a, c = statistics.median(times["alone"]), statistics.median(times["crowded"])
        ratio = c / a
        out.update(alone_ms=[round(x, 2) for x in times["alone"]], crowded_ms=[round(x, 2) for x in times["crowded"]],
                   alone_median_ms=round(a, 2), crowded_median_ms=round(c, 2), ratio=round(ratio, 2),
                   offer_s=[round(x, 3) for x in offers], entries=statuses)
        if problems:
            self.row("waitlist", "data and answers", None, self._wrong(problems), "consistent", False)
        self.row("waitlist", f"cancel, nobody waiting (median of {n})", None, f"{a:.1f} ms")
        self.row("waitlist", f"cancel, {waiting} waiting (median of {n})", None,
                 f"{c:.1f} ms = {_shown(ratio, 1.5)}x", "<= 1.5x", ratio <= 1.5)
        worst = max(offers)
        self.row("waitlist", f"offer out after cancel (max of {len(offers)})", None,
                 f"{worst * 1000:.0f} ms (first {offers[0] * 1000:.0f}, median {statistics.median(offers) * 1000:.0f})",
                 "<= 2 s", worst <= 2)
        self.data["waitlist"] = out
