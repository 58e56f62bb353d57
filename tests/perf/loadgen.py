"""Load generator for tests/perf/bench.py, run as a separate process.

    python tests/perf/loadgen.py SPEC.json     # prints one JSON result on stdout

Two modes, chosen by the spec's "mode":

http  Closed-loop HTTP/1.1 clients on keep-alive connections: `clients` coroutines in
      one asyncio loop, each with its own TCP connection, each sending its next request
      as soon as the previous answer is read. Requests are pre-rendered bytes and
      answers are parsed by hand (status line, Content-Length or chunked), so the
      generator spends a few tens of microseconds per request, not the few hundred of
      http.client; on a 2-core machine every cycle it takes is taken from the server.
      Either time-based (warmup then `duration` seconds measured: only answers that
      arrive inside the window count) or count-based (`requests` in total, all counted,
      stopping early after `max_seconds` if given).

sql   The booking transaction without the app, the way pgbench drives it: `connections`
      threads, each with its own psycopg2 connection, each running
          UPDATE events ... RETURNING (conditional) ; INSERT bookings ; INSERT notifications ; COMMIT
      in a loop. psycopg2 releases the GIL while it waits for the server.

Customers and events for bookings: the n-th booking (n counted across all clients) is
made by customer n % NC on event events[(n + n // NC) % NE], so no customer books the
same event twice until NC * NE bookings (the one-CONFIRMED-booking-per-customer rule
would turn those into 409 already_booked).
"""

import asyncio
import itertools
import json
import random
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

MAX_SAMPLES = 3  # error bodies kept per status, for diagnosis


def percentiles(values):
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)
    n = len(ordered)

    def at(q):
        return round(ordered[min(n - 1, max(0, int(round(q * n)) - 1))] * 1000, 3)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 3),
        "mean": round(sum(ordered) / n * 1000, 3),
    }


class Bookings:
    """The (customer, event) of each booking, as described in the module docstring."""

    def __init__(self, events, customers, offset=0):
        self.events = events
        self.customers = customers  # number of customers
        self.counter = itertools.count(offset)

    def next(self):
        n = next(self.counter)
        nc, ne = self.customers, len(self.events)
        return n % nc, self.events[(n + n // nc) % ne]


# -- http ------------------------------------------------------------------------


class HttpLoad:
    def __init__(self, spec):
        self.spec = spec
        self.host = spec.get("host", "127.0.0.1")
        self.port = spec["port"]
        self.clients = spec["clients"]
        self.duration = spec.get("duration")
        self.warmup = spec.get("warmup", 0.0)
        self.total = spec.get("requests")  # count-based when set
        self.timeout = spec.get("timeout", 30.0)
        self.rng = random.Random(spec.get("seed", 1))
        self.tokens = []
        if spec.get("tokens_file"):
            with open(spec["tokens_file"]) as f:
                self.tokens = f.read().split()
        self.kinds = []  # (name, weight, render)
        for item in spec["mix"]:
            self.kinds.append((item["name"], item.get("weight", 1), self._renderer(item)))
        self.weights = list(itertools.accumulate(w for _, w, _ in self.kinds))
        self.issued = 0
        # results
        self.latency = defaultdict(list)  # kind -> seconds, inside the window
        self.status = defaultdict(Counter)  # kind -> status -> count, inside the window
        self.all_status = defaultdict(Counter)  # kind -> status -> count, whole run
        self.errors = Counter()  # connection problems, whole run
        self.samples = defaultdict(list)
        self.window = None

    def _renderer(self, item):
        host = f"{self.host}:{self.port}".encode()
        if item["kind"] == "book":
            bookings = Bookings(
                item["events"], min(item.get("customers") or len(self.tokens), len(self.tokens)), item.get("offset", 0)
            )
            tickets = item.get("tickets", 1)
            # with "idempotency_keys": every request carries its own key, as a client
            # that retries safely would send
            keys = itertools.count() if item.get("idempotency_keys") else None
            prefix = b"\r\nIdempotency-Key: bench-%d-" % self.spec.get("seed", 1)

            def render():
                customer, event = bookings.next()
                body = b'{"eventId":%d,"ticketsCount":%d}' % (event, tickets)
                key = prefix + str(next(keys)).encode() if keys is not None else b""
                return (
                    b"POST /api/bookings HTTP/1.1\r\nHost: "
                    + host
                    + b"\r\nAuthorization: Bearer "
                    + self.tokens[customer].encode()
                    + key
                    + b"\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )

            return render
        if item["kind"] == "get":
            paths = [p.encode() for p in item["paths"]]
            headers = b""
            if item.get("token"):
                headers = b"Authorization: Bearer " + item["token"].encode() + b"\r\n"
            rendered = [b"GET " + p + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + headers + b"\r\n" for p in paths]
            if len(rendered) == 1:
                return lambda: rendered[0]
            return lambda: rendered[self.rng.randrange(len(rendered))]
        if item["kind"] == "requests":
            # any requests, rendered by the caller: each {"method", "path", optional
            # "body" (JSON text), "token" or "customer" (an index into tokens_file),
            # "headers"}; sent in order, round and round
            rendered = []
            for request in item["requests"]:
                token = request.get("token") or (self.tokens[request["customer"]] if "customer" in request else None)
                body = request.get("body", "").encode()
                lines = [f"{request['method']} {request['path']} HTTP/1.1", f"Host: {host.decode()}"]
                if token:
                    lines.append(f"Authorization: Bearer {token}")
                lines += [f"{name}: {value}" for name, value in request.get("headers", {}).items()]
                if body:
                    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
                rendered.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            cycle = itertools.cycle(rendered)
            return lambda: next(cycle)
        raise ValueError(f"unknown kind {item['kind']!r}")

    def _next(self):
        """(kind, bytes) of the next request, or None when the run is over."""
        if self.total is not None and self.issued >= self.total:
            return None
        if time.perf_counter() >= self.stop_at:
            return None
        self.issued += 1
        if len(self.kinds) == 1:
            name, _, render = self.kinds[0]
        else:
            x = self.rng.random() * self.weights[-1]
            name, _, render = self.kinds[next(i for i, w in enumerate(self.weights) if x < w)]
        return name, render()

    async def _connect(self):
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    @staticmethod
    async def _read_response(reader):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size + 2))
            body = b"".join(p[:-2] for p in parts)
        elif length is not None:
            body = await reader.readexactly(length) if length else b""
        else:  # read to close
            body = await reader.read()
            close = True
        return status, body, close

    async def _client(self):
        reader = writer = None
        while True:
            request = self._next()
            if request is None:
                break
            name, data = request
            try:
                if writer is None:
                    reader, writer = await self._connect()
                started = time.perf_counter()
                writer.write(data)
                status, body, close = await self._read_response(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError) as exc:
                self.errors[f"{name}:{exc.__class__.__name__}"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
                continue
            finished = time.perf_counter()
            self.all_status[name][status] += 1
            if self.window is None or self.window[0] <= finished <= self.window[1]:
                self.latency[name].append(finished - started)
                self.status[name][status] += 1
            if status >= 400 and len(self.samples[status]) < MAX_SAMPLES:
                self.samples[status].append(body[:300].decode("utf-8", "replace"))
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async def run(self):
        started = time.perf_counter()
        if self.total is None:
            self.window = (started + self.warmup, started + self.warmup + self.duration)
            self.stop_at = self.window[1]
        else:  # count-based, but never longer than max_seconds
            self.stop_at = started + self.spec.get("max_seconds", 3600)
        tasks = [asyncio.create_task(self._client()) for _ in range(self.clients)]
        limit = (self.duration + self.warmup if self.total is None else self.spec.get("max_seconds", 3600)) + self.timeout
        done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
            self.errors["timeout"] += 1
        for task in done:
            if task.exception() is not None:
                self.errors[f"crash:{task.exception()!r}"[:120]] += 1
        ended = time.perf_counter()
        if self.total is None:
            elapsed = self.duration
        else:
            elapsed = ended - started
        return self.result(elapsed, ended - started)

    def result(self, elapsed, wall):
        everything = [x for values in self.latency.values() for x in values]
        statuses = Counter()
        for counts in self.status.values():
            statuses.update(counts)
        all_statuses = Counter()
        for counts in self.all_status.values():
            all_statuses.update(counts)
        return {
            "mode": "http",
            "clients": self.clients,
            "seconds": round(elapsed, 3),
            "wall_seconds": round(wall, 3),
            "requests": len(everything),
            "rps": round(len(everything) / elapsed, 1) if elapsed else None,
            "latency_ms": percentiles(everything),
            "status": {str(k): v for k, v in sorted(statuses.items())},
            "all_status": {str(k): v for k, v in sorted(all_statuses.items())},
            "errors": dict(self.errors),
            "kinds": {
                name: {
                    "requests": len(self.latency[name]),
                    "rps": round(len(self.latency[name]) / elapsed, 1) if elapsed else None,
                    "latency_ms": percentiles(self.latency[name]),
                    "status": {str(k): v for k, v in sorted(self.status[name].items())},
                    "all_status": {str(k): v for k, v in sorted(self.all_status[name].items())},
                }
                for name, _, _ in self.kinds
            },
            "samples": {str(k): v for k, v in self.samples.items()},
        }


# -- sql -------------------------------------------------------------------------

UPDATE = (
    "UPDATE events SET available_tickets = available_tickets - %(n)s "
    "WHERE events.id = %(event)s AND events.available_tickets >= %(n)s "
    "AND events.status = 'SCHEDULED' AND events.date > %(now)s "
    "RETURNING events.id, events.title, events.description, events.date, events.location, "
    "events.total_tickets, events.available_tickets, events.status, events.organizer_id, "
    "events.created_at, events.updated_at"
)
INSERT_BOOKING = (
    "INSERT INTO bookings (event_id, user_id, tickets_count, status, created_at, cancelled_at) "
    "VALUES (%(event)s, %(user)s, %(n)s, 'CONFIRMED', %(now)s, NULL) RETURNING bookings.id"
)
INSERT_NOTIFICATION = (
    "INSERT INTO notifications (kind, user_id, recipient, subject, body, event_id, booking_id, status, "
    "attempts, last_error, next_attempt_at, claimed_until, claim_token, created_at, sent_at) "
    "VALUES ('BOOKING_CONFIRMED', %(user)s, %(email)s, %(subject)s, %(body)s, %(event)s, %(booking)s, "
    "'PENDING', 0, NULL, %(next)s, NULL, NULL, %(now)s, NULL) RETURNING notifications.id"
)


class SqlLoad:
    def __init__(self, spec):
        self.spec = spec
        self.connections = spec["connections"]
        self.duration = spec["duration"]
        self.warmup = spec.get("warmup", 0.0)
        first, count = spec["customers"]  # contiguous user ids
        self.first_user = first
        self.email = spec.get("email", "customer{}@bench.example")
        self.bookings = Bookings(spec["events"], count, spec.get("offset", 0))
        # "park": the row is written as the app writes it, but due in a year, so that the
        # app's delivery pool (idle meanwhile) does not pick the reference's rows up.
        self.park = timedelta(days=365) if spec.get("park") else timedelta(0)
        self.lock = threading.Lock()
        self.latency = []
        self.status = Counter()
        self.all_status = Counter()
        self.errors = Counter()

    def _worker(self, barrier):
        import psycopg2

        conn = psycopg2.connect(self.spec["dsn"])
        cur = conn.cursor()
        latency, status, all_status, errors = [], Counter(), Counter(), Counter()
        barrier.wait()
        window = self.window
        while True:
            started = time.perf_counter()
            if started >= window[1]:
                break
            with self.lock:
                customer, event = self.bookings.next()
            user = self.first_user + customer
            now = datetime.now(timezone.utc)
            params = {"n": 1, "event": event, "now": now, "user": user, "next": now + self.park}
            try:
                cur.execute(UPDATE, params)
                row = cur.fetchone()
                if row is None:
                    conn.rollback()
                    code = 409
                else:
                    cur.execute(INSERT_BOOKING, params)
                    params["booking"] = cur.fetchone()[0]
                    params["email"] = self.email.format(customer + 1)
                    params["subject"] = f"Booking confirmed: {row[1]}"
                    params["body"] = (
                        f"Your booking #{params['booking']} of 1 ticket for {row[1]} on "
                        f"{row[3].strftime('%A %d %B %Y, %H:%M UTC')} at {row[4]} is confirmed."
                    )
                    cur.execute(INSERT_NOTIFICATION, params)
                    cur.fetchone()
                    conn.commit()
                    code = 201
            except psycopg2.IntegrityError:
                conn.rollback()
                code = 409
            except psycopg2.Error as exc:
                conn.rollback()
                errors[exc.__class__.__name__] += 1
                continue
            finished = time.perf_counter()
            all_status[code] += 1
            if window[0] <= finished <= window[1]:
                latency.append(finished - started)
                status[code] += 1
        conn.close()
        with self.lock:
            self.latency.extend(latency)
            self.status.update(status)
            self.all_status.update(all_status)
            self.errors.update(errors)

    def run(self):
        barrier = threading.Barrier(self.connections + 1)
        threads = [threading.Thread(target=self._worker, args=(barrier,)) for _ in range(self.connections)]
        self.window = (0, 0)
        for t in threads:
            t.start()
        # every connection is open before the clock starts
        started = time.perf_counter()
        self.window = (started + self.warmup + 0.05, started + self.warmup + self.duration + 0.05)
        barrier.wait()
        for t in threads:
            t.join()
        return {
            "mode": "sql",
            "connections": self.connections,
            "seconds": self.duration,
            "requests": len(self.latency),
            "rps": round(len(self.latency) / self.duration, 1),
            "latency_ms": percentiles(self.latency),
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "all_status": {str(k): v for k, v in sorted(self.all_status.items())},
            "errors": dict(self.errors),
        }


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    if spec["mode"] == "http":
        result = asyncio.run(HttpLoad(spec).run())
    elif spec["mode"] == "sql":
        result = SqlLoad(spec).run()
    else:
        raise SystemExit(f"unknown mode {spec['mode']!r}")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
