"""Load generator for tests/perf/bench.py, run as a separate process.

    python tests/perf/loadgen.py SPEC.json     # prints one JSON result on stdout

One mode, "http" (the spec's "mode"):

http  Closed-loop HTTP/1.1 clients on keep-alive connections: `clients` coroutines in
      one asyncio loop, each with its own TCP connection, each sending its next request
      as soon as the previous answer is read. Requests are pre-rendered bytes and
      answers are parsed by hand (status line, Content-Length or chunked), so the
      generator spends a few tens of microseconds per request, not the few hundred of
      http.client; on a 2-core machine every cycle it takes is taken from the server.
      Either time-based (warmup then `duration` seconds measured: only answers that
      arrive inside the window count) or count-based (`requests` in total, all counted,
      stopping early after `max_seconds` if given).

Kinds of request in the spec's "mix":
  book          POST /api/bookings, {eventId, ticketsCount} or, with "items" ([[typeId,
                count], ...], one event only), {eventId, items}
  hold_confirm  POST /api/holds (as book), then, on the same connection, POST
                /api/holds/{id}/confirm with the id read from the 201 body: the pair is
                one operation (its latency and the final status under the kind's name),
                and each request is also counted under its own name ("<name>.hold",
                "<name>.confirm"), outside the totals
  get           GET of one of "paths"
  requests      any pre-rendered requests, sent in order, round and round
With "timeline": true, the result also holds [wall-clock finish time, latency] of every
operation of each kind (for a figure over part of the run).

The reference (the same statements without the app) is pgbench, run by bench.py.

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
import time
from collections import Counter, defaultdict

MAX_SAMPLES = 3  # error bodies kept per status, for diagnosis


class Chain:
    """Two requests on one connection: `first`, then `then(body of the first's 201)`."""

    def __init__(self, first, then):
        self.first, self.then = first, then


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
        self.timeline = defaultdict(list) if spec.get("timeline") else None

    def _renderer(self, item):
        host = f"{self.host}:{self.port}".encode()
        if item["kind"] in ("book", "hold_confirm"):
            bookings = Bookings(
                item["events"], min(item.get("customers") or len(self.tokens), len(self.tokens)), item.get("offset", 0)
            )
            tickets = item.get("tickets", 1)
            items = item.get("items")
            if items is not None:
                assert len(item["events"]) == 1, "items name the ticket types of one event"
                listed = ",".join('{"ticketTypeId":%d,"count":%d}' % (t, c) for t, c in items).encode()
            # with "idempotency_keys": every request carries its own key, as a client
            # that retries safely would send
            keys = itertools.count() if item.get("idempotency_keys") else None
            prefix = b"\r\nIdempotency-Key: bench-%d-" % self.spec.get("seed", 1)
            path = b"/api/bookings" if item["kind"] == "book" else b"/api/holds"

            def post(path, body, token, key=b""):
                return (
                    b"POST " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nAuthorization: Bearer " + token + key
                    + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                    + b"\r\n\r\n" + body
                )

            def render():
                customer, event = bookings.next()
                if items is None:
                    body = b'{"eventId":%d,"ticketsCount":%d}' % (event, tickets)
                else:
                    body = b'{"eventId":%d,"items":[%s]}' % (event, listed)
                key = prefix + str(next(keys)).encode() if keys is not None else b""
                token = self.tokens[customer].encode()
                if item["kind"] == "book":
                    return post(path, body, token, key)

                def confirm(answer):
                    hold = json.loads(answer)["id"]
                    return post(b"/api/holds/%d/confirm" % hold, b"", token, key)

                return Chain(post(path, body, token), confirm)

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
        if status in (204, 304) or status < 200:  # never a body (RFC 9112, 6.3)
            body = b""
        elif chunked:
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
            chain = data if isinstance(data, Chain) else None
            try:
                if writer is None:
                    reader, writer = await self._connect()
                started = time.perf_counter()
                if chain is None:
                    writer.write(data)
                    status, body, close = await self._read_response(reader)
                else:
                    writer.write(chain.first)
                    status, body, close = await self._read_response(reader)
                    self._record(f"{name}.hold", status, body, started, time.perf_counter())
                    if status == 201 and not close:
                        second = time.perf_counter()
                        writer.write(chain.then(body))
                        status, body, close = await self._read_response(reader)
                        self._record(f"{name}.confirm", status, body, second, time.perf_counter())
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError, KeyError) as exc:
                self.errors[f"{name}:{exc.__class__.__name__}"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
                continue
            self._record(name, status, body, started, time.perf_counter())
            if close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    def _record(self, name, status, body, started, finished):
        self.all_status[name][status] += 1
        if self.window is None or self.window[0] <= finished <= self.window[1]:
            self.latency[name].append(finished - started)
            self.status[name][status] += 1
            if self.timeline is not None:
                self.timeline[name].append((round(time.time() - (time.perf_counter() - finished), 4),
                                            round((finished - started) * 1000, 3)))
        if status >= 400 and len(self.samples[status]) < MAX_SAMPLES:
            self.samples[status].append(body[:300].decode("utf-8", "replace"))

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
        top = [name for name, _, _ in self.kinds]  # a chain's parts are not operations of their own
        parts = sorted(name for name in self.all_status if name not in top)
        everything = [x for name in top for x in self.latency[name]]
        statuses = Counter()
        all_statuses = Counter()
        for name in top:
            statuses.update(self.status[name])
            all_statuses.update(self.all_status[name])
        result = {
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
                for name in top + parts
            },
            "samples": {str(k): v for k, v in self.samples.items()},
        }
        if self.timeline is not None:
            result["timeline"] = dict(self.timeline)
        return result


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    if spec["mode"] == "http":
        result = asyncio.run(HttpLoad(spec).run())
    else:
        raise SystemExit(f"unknown mode {spec['mode']!r}")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
