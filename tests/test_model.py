"""The booking rules of docs/api.md, checked against a model: hypothesis sends random
sequences of requests through HTTP (events of one to three ticket types and seated
events with a small seat map, three customers: bookings by items, counts or seats,
holds, confirms, releases, cancels, waiting-list joins and leaves, check-ins, a type's
quantity changed, an event cancelled) and every answer's status and error code, and
after every step every counter (an event's available and set-aside tickets, each
type's quantity and available quantity, each seat's status, each waiting-list entry),
must be what a small model of those rules, written here, says. After every step the
ticket invariant (support.INVARIANT) holds too.

Offers to the waiting list are made off the request path: here no sweeper thread runs
(NOTIFY_AUTOSTART off), so the offers of returned tickets are made in the request
(`wake` runs them in the caller), and every step ends with the sweeper's offers of what
is set aside, run by the test (`sweep`).

Time passes for one hold at a time (`time_passes`: its `expiresAt` moved into the past in
the database), a waiting-list offer more often than not. Such a hold is past its expiry
but still HELD, its tickets out, until either the sweeper's expiry pass (`sweeper_pass`,
or `time_passes` running it at once) or something that touches it ends it as EXPIRED:
reading, confirming (409 `hold_expired`) or releasing it, its customer holding the
event again, joining its waiting list, or booking it when that booking is refused
first (a hold past expiry is no obstacle to a booking). Its tickets then come back, set
aside for the waiting list if anyone waits; an offer's entry is LAPSED and the next in
line is offered.

Offers need someone waiting for a sold-out event and tickets coming back, and expiries
need holds, so generation is steered there: every example starts with an event sold out
to one customer (by a booking or a hold) and others on its waiting list
(`sold_out_with_a_waiting_list`); joins go mostly where too few tickets are left
(`join_where_short`); cancels and releases mostly to sales of events someone waits for
(`give_back_to_waiting`); a confirm, a release or a new order sometimes comes after the
hold's expiry; events have few tickets. Hypothesis turns rules off at random in each
example (swarm testing), hence the steering spread over several rules.

Where docs/api.md does not say which of two refusals comes first, the model accepts
either; each such place says so (`# either:`).
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from eventbook.extensions import db
from eventbook.models import Hold, utcnow
from eventbook.waitlist import service as waitlist
from tests import support

pytestmark = pytest.mark.parametrize("config_overrides", [{"NOTIFY_AUTOSTART": False}])  # no sweeper thread

# Every example starts from empty tables; the examples share the test's app and database
# on purpose (one migrated database per backend), hence the health check suppressed. No
# shrinking: it would run hundreds more sequences of requests, past the suite's timeout;
# a failure is reported with its whole sequence, and derandomize runs it again.
SETTINGS = settings(max_examples=12, stateful_step_count=30, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# -- the model ---------------------------------------------------------------------------


@dataclass(eq=False)
class Type:
    id: int
    quantity: int
    available: int
    set_aside: int = 0


@dataclass(eq=False)
class Event:
    id: int
    seating: str
    total: int
    available: int
    types: dict  # id -> Type, in the event's order
    seats: dict = field(default_factory=dict)  # id -> [ticket type id, status]
    status: str = "SCHEDULED"  # or CANCELLED, or DELETED (a DELETE of an event nobody booked)
    set_aside: int = 0
    booked: bool = False  # anyone ever booked it: a DELETE cancels it instead of removing it

    def __repr__(self):  # as hypothesis reports a draw
        return f"<{self.seating} event {self.id}>"

    def _repr_pretty_(self, printer, cycle):
        printer.text(repr(self))


@dataclass(eq=False)
class Sale:
    """A hold or a booking."""

    id: int | None  # None: an offer the API made, its id read back from the waiting list
    event: Event
    user: int
    items: dict  # ticket type id -> count
    seats: list
    status: str  # a hold's HELD, CONFIRMED, RELEASED, EXPIRED, GONE (removed with its event); a booking's CONFIRMED, CANCELLED
    is_booking: bool = False
    expired: bool = False  # a hold past its expiresAt (still HELD until something ends it)
    booking: "Sale | None" = None  # a confirmed hold's
    tickets: list = field(default_factory=list)  # [(ticket id, code)]
    checked_in: set = field(default_factory=set)

    def __repr__(self):
        return f"<{'booking' if self.is_booking else 'hold'} {self.id}>"

    _repr_pretty_ = Event._repr_pretty_


@dataclass(eq=False)
class Entry:
    event: Event
    user: int
    type_id: int
    count: int
    status: str = "WAITING"
    hold: Sale | None = None

    def __repr__(self):
        return f"<entry of customer {self.user} for {self.event}>"

    _repr_pretty_ = Event._repr_pretty_


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    extra: tuple = ()  # (name, value) pairs the error body must carry

    def matches(self, response):
        body = response.get_json() or {}
        return (response.status_code, body.get("code")) == (self.status, self.code) and all(
            body.get(name) == value for name, value in self.extra)


def short(left, wanted, type_id=None):
    """The refusal of an order of `wanted` when `left` are left (None if enough are)."""
    if left >= wanted:
        return None
    code = "sold_out" if left == 0 else "not_enough_tickets"
    return Refusal(409, code, (("availableTickets", left), ("ticketTypeId", type_id)))


# -- the machine -------------------------------------------------------------------------


class BookingRules(RuleBasedStateMachine):
    app = client = database_url = None  # the test's, set by the test

    def __init__(self):
        super().__init__()
        support.empty_tables(self.app)  # every example starts from empty tables, as every test does
        self.organizer = self.actor("ORGANIZER", "organizer@example.com")
        self.customers = [self.actor("CUSTOMER", f"customer{n}@example.com") for n in range(3)]
        self.events, self.sales, self.entries = [], [], []

    # -- HTTP
    def actor(self, role, email):
        support.ok(self.client.post("/api/auth/register", json={"email": email, "password": support.PASSWORD,
                                                                 "role": role}), 201)
        body = support.ok(self.client.post("/api/auth/login", json={"email": email, "password": support.PASSWORD}))
        return {"id": body["user"]["id"], "headers": support.bearer(body["token"])}

    def send(self, method, path, actor, json=None):
        return self.client.open(path, method=method, json=json, headers=actor["headers"])

    def expect(self, response, refusals, success=None):
        """The response is one of `refusals` (nothing else is accepted), or, when there
        are none, a `success` status."""
        if refusals:
            assert any(refusal.matches(response) for refusal in refusals), (
                response.status_code, response.get_json(), refusals)
            return None
        assert response.status_code == success, (response.status_code, response.get_json(), success)
        return response.get_json()

    # -- what the model says
    def bookings(self):
        return [s for s in self.sales if s.is_booking]

    def holds(self):
        return [s for s in self.sales if not s.is_booking and s.id is not None]

    def confirmed_booking(self, event, user):
        return any(b.event is event and b.user == user and b.status == "CONFIRMED" for b in self.bookings())

    def held(self, event, user):
        """The customer's HELD hold of the event not past its expiry (one past it is no
        obstacle: docs/api.md "Buying")."""
        return next((h for h in self.holds() if h.event is event and h.user == user and h.status == "HELD"
                     and not h.expired), None)

    def held_past_expiry(self, event, user):
        return next((h for h in self.holds() if h.event is event and h.user == user and h.status == "HELD"
                     and h.expired), None)

    def offers(self):
        return [e.hold for e in self.entries if e.hold is not None and e.hold.id is not None]

    def live_entry(self, event, user):
        return next((e for e in self.entries if e.event is event and e.user == user
                     and e.status in ("WAITING", "OFFERED")), None)

    def waiting(self, event, type_id=None):
        return [e for e in self.entries if e.event is event and e.status == "WAITING"
                and (type_id is None or e.type_id == type_id)]

    def order_refusals(self, event, user, order):
        """What may refuse `order` (a request body), in the order docs/api.md says; []
        when it is sold."""
        if event.status == "DELETED":
            return [Refusal(404, "not_found")]
        first = None
        if event.status == "CANCELLED":
            first = Refusal(409, "event_closed")
        elif self.confirmed_booking(event, user):
            first = Refusal(409, "already_booked")
        elif self.held(event, user):
            first = Refusal(409, "already_holding", (("holdId", self.held(event, user).id),))
        misfit = (("seatIds" in order) != (event.seating == "RESERVED")
                  or ("ticketsCount" in order and "ticketTypeId" not in order and len(event.types) > 1))
        if misfit:  # either: docs/api.md orders "cannot fit the event" neither before nor after these
            return [Refusal(422, "validation_error")] + ([first] if first else [])
        if first:  # "These two are said first, even when nothing is left of the event."
            return [first]
        if "seatIds" in order:
            if any(seat_id not in event.seats for seat_id in order["seatIds"]):
                return [Refusal(404, "not_found")]
            taken = sorted(s for s in order["seatIds"] if event.seats[s][1] != "AVAILABLE")
            return [Refusal(409, "seats_taken", (("unavailableSeatIds", taken),))] if taken else []
        items = self.items_of(event, order)
        if len(items) == 1:
            [(type_id, count)] = items.items()
            kind = event.types[type_id]
            refusal = short(min(kind.available, event.available), count, type_id)
            return [refusal] if refusal else []
        # either: an order of several types short of the event's and of a type's tickets
        # may be told either; several short types, any of them
        refusals = [short(event.available, sum(items.values()))]
        refusals += [short(event.types[t].available, count, t) for t, count in items.items()]
        return [refusal for refusal in refusals if refusal]

    @staticmethod
    def items_of(event, order):
        if "seatIds" in order:
            return dict(Counter(event.seats[s][0] for s in order["seatIds"]))
        if "items" in order:
            return {item["ticketTypeId"]: item["count"] for item in order["items"]}
        return {order.get("ticketTypeId", next(iter(event.types))): order["ticketsCount"]}

    def take(self, event, user, order, status):
        """The model's sale of `order`: tickets (and seats) taken, the customer's waiting
        entry LEFT."""
        items = self.items_of(event, order)
        event.available -= sum(items.values())
        for type_id, count in items.items():
            event.types[type_id].available -= count
        seats = sorted(order.get("seatIds", []))
        for seat_id in seats:
            event.seats[seat_id][1] = status
        for entry in self.waiting(event):
            if entry.user == user:
                entry.status = "LEFT"
        return items, seats

    def give_back(self, event, items, seats):
        someone_waits = bool(self.waiting(event))
        count = sum(items.values())
        if someone_waits:
            event.set_aside += count
        else:
            event.available += count
        for type_id, count in items.items():
            kind = event.types[type_id]
            if self.waiting(event, type_id):
                kind.set_aside += count
            else:
                kind.available += count
        for seat_id in seats:
            if seat_id in event.seats:
                event.seats[seat_id][1] = "AVAILABLE"

    def offer(self, event):
        """Offers in queue order (docs/api.md "Waiting list")."""
        if event.status != "SCHEDULED":
            return
        while True:
            if event.set_aside or any(kind.set_aside for kind in event.types.values()):
                never = [e for e in self.waiting(event)
                         if e.count > event.types[e.type_id].quantity or e.count > event.total]
                for entry in never:
                    entry.status = "LAPSED"
            head = next((e for e in self.waiting(event)
                         if event.types[e.type_id].available + event.types[e.type_id].set_aside > 0), None)
            if head is None or not self.take_for_offer(event, event.types[head.type_id], head.count):
                self.set_aside_to_public(event)
                return
            head.status = "OFFERED"
            head.hold = Sale(None, event, head.user, {head.type_id: head.count}, [], "HELD")
            self.sales.append(head.hold)

    @staticmethod
    def take_for_offer(event, kind, count):
        if event.set_aside + event.available < count or kind.set_aside + kind.available < count:
            return False
        for counter in (event, kind):
            counter.available -= max(count - counter.set_aside, 0)
            counter.set_aside = max(counter.set_aside - count, 0)
        return True

    def set_aside_to_public(self, event):
        for type_id, kind in event.types.items():
            if kind.set_aside and not self.waiting(event, type_id):
                kind.available, kind.set_aside = kind.available + kind.set_aside, 0
        served = any(event.types[e.type_id].available + event.types[e.type_id].set_aside > 0
                     for e in self.waiting(event))
        if event.set_aside and not served:
            event.available, event.set_aside = event.available + event.set_aside, 0

    def settle(self, *woken, expire=False):
        """The offers the request made (`wake`), then the sweeper's periodic pass, in the
        API and in the model: with `expire`, its expiry of the holds past their expiry
        first, else only its offers of what is set aside."""
        sweep(self.app, expire)
        if expire:
            due = sorted((h for h in self.holds() if h.status == "HELD" and h.expired), key=lambda h: h.id)
            for held in due:
                self.end_hold(held, "EXPIRED")
            woken += tuple(held.event for held in due)
        for event in woken:
            self.offer(event)
        for event in self.events:
            if event.status == "SCHEDULED" and (event.set_aside or any(k.set_aside for k in event.types.values())):
                self.offer(event)

    # -- choosing
    def draw_order(self, data, event):
        """A request body for `event`: mostly one that fits it, sometimes one that does
        not (seats on a GENERAL event, counts on a RESERVED one, several types and no
        `ticketTypeId`)."""
        types = list(event.types)
        fits = data.draw(st.integers(0, 9)) < 9  # hypothesis draws small values most
        if (event.seating == "RESERVED") == fits:
            seats = list(event.seats) or [s for e in self.events for s in e.seats]
            if seats:
                # now and then a seat of another event (404)
                others = [s for e in self.events if e is not event for s in e.seats]
                if others and data.draw(st.integers(0, 9)) == 9:
                    return {"eventId": event.id, "seatIds": [data.draw(st.sampled_from(others))]}
                picked = data.draw(st.lists(st.sampled_from(seats), min_size=1, max_size=3, unique=True))
                return {"eventId": event.id, "seatIds": picked}
        count = data.draw(st.integers(1, 3))
        form = data.draw(st.sampled_from(["count", "items", "bare"]))
        if form == "bare" and (len(types) == 1 or not fits):
            return {"eventId": event.id, "ticketsCount": count}
        if form == "items":
            picked = data.draw(st.lists(st.sampled_from(types), min_size=1, max_size=len(types), unique=True))
            return {"eventId": event.id, "items": [{"ticketTypeId": t, "count": data.draw(st.integers(1, 3))}
                                                   for t in picked]}
        return {"eventId": event.id, "ticketsCount": count, "ticketTypeId": data.draw(st.sampled_from(types))}

    def pick_event(self, data, seating=None):
        """Mostly an event still on sale (of `seating`, if given), now and then any."""
        live = [e for e in self.events if e.status == "SCHEDULED" and seating in (None, e.seating)]
        if live and data.draw(st.integers(0, 5)) < 5:
            return data.draw(st.sampled_from(live))
        return data.draw(st.sampled_from([e for e in self.events if seating in (None, e.seating)] or self.events))

    def customer(self, data):
        index = data.draw(st.integers(0, len(self.customers) - 1))
        return index, self.customers[index]

    # -- every example starts with a sold-out event and a waiting list (steering)
    @initialize(data=st.data(), total=st.integers(1, 3), hold=st.booleans(), joining=st.integers(1, 2))
    def sold_out_with_a_waiting_list(self, data, total, hold, joining):
        """A GENERAL event of one type, sold out to the first customer by a booking or a
        hold, and the others on its waiting list: whatever comes back is offered."""
        self.publish_general_event([total], total)
        event = self.events[-1]
        self.sell(event, 0, {"eventId": event.id, "ticketsCount": total}, hold)
        for user in range(1, 1 + joining):
            self.join(data, event, user, next(iter(event.types)), data.draw(st.integers(1, min(2, total))))

    # -- rules: the organizer
    @precondition(lambda self: len(self.events) < 3)
    @rule(quantities=st.lists(st.integers(1, 3), min_size=1, max_size=3), total=st.integers(1, 4))
    def publish_general_event(self, quantities, total):
        types = [{"name": f"T{n}", "price": "10.00", "quantity": q} for n, q in enumerate(quantities)]
        body = support.ok(self.send("POST", "/api/events", self.organizer, {
            "title": "Model", "date": support.in_days(30), "location": "Hall", "totalTickets": total,
            "ticketTypes": types}), 201)
        self.events.append(Event(body["id"], "GENERAL", total, total,
                                 {t["id"]: Type(t["id"], t["quantity"], t["quantity"]) for t in body["ticketTypes"]}))

    @precondition(lambda self: len(self.events) < 3)
    @rule(rows=st.lists(st.integers(1, 3), min_size=1, max_size=2))
    def publish_seated_event(self, rows):
        types = [{"name": f"S{n}", "price": "20.00", "quantity": 1} for n in range(len(rows))]
        body = support.ok(self.send("POST", "/api/events", self.organizer, {
            "title": "Seated", "date": support.in_days(30), "location": "Hall", "totalTickets": len(rows),
            "seating": "RESERVED", "ticketTypes": types}), 201)
        ids = [t["id"] for t in body["ticketTypes"]]
        sections = [{"name": f"S{n}", "ticketTypeId": type_id, "rows": [{"label": "A", "from": 1, "to": size}]}
                    for n, (type_id, size) in enumerate(zip(ids, rows, strict=True))]
        assert support.ok(self.send("PUT", f"/api/events/{body['id']}/seats", self.organizer,
                                    {"sections": sections})) == {"seats": sum(rows)}
        seats = support.ok(self.client.get(f"/api/events/{body['id']}/seats"))
        self.events.append(Event(body["id"], "RESERVED", sum(rows), sum(rows),
                                 {t: Type(t, size, size) for t, size in zip(ids, rows, strict=True)},
                                 {s["id"]: [s["ticketTypeId"], "AVAILABLE"] for s in seats}))

    @precondition(lambda self: self.events)
    @rule(data=st.data(), quantity=st.integers(0, 7))
    def change_quantity(self, data, quantity):
        event = self.pick_event(data, "GENERAL")
        kind = event.types[data.draw(st.sampled_from(list(event.types)))]
        response = self.send("PATCH", f"/api/events/{event.id}/ticket-types/{kind.id}", self.organizer,
                             {"quantity": quantity})
        if event.status == "DELETED":
            refusals = [Refusal(404, "not_found")]
        elif event.status == "CANCELLED":
            refusals = [Refusal(409, "event_closed")]
        elif event.seating == "RESERVED" and quantity != kind.quantity:
            refusals = [Refusal(422, "validation_error")]
        elif quantity < kind.quantity - kind.available - kind.set_aside:
            refusals = [Refusal(409, "capacity_below_sold", (("sold", kind.quantity - kind.available - kind.set_aside),))]
        else:
            refusals = []
        body = self.expect(response, refusals, 200)
        if body is None:
            return self.settle()
        growth = quantity - kind.quantity
        extra = growth if growth > 0 and self.waiting(event, kind.id) else 0  # a rise goes to those waiting for it
        free = kind.available + growth - extra
        kind.quantity, kind.available, kind.set_aside = quantity, max(free, 0), kind.set_aside + extra + min(free, 0)
        before = kind.available
        self.settle(*([event] if growth > 0 else []))
        # either: the offer a rise allows is made off the request path, before or after the answer
        assert body["quantity"] == kind.quantity and body["availableQuantity"] in (before, kind.available), body

    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def cancel_event(self, data):
        if data.draw(st.integers(0, 2)) < 2:  # a rarer step than the others: sales need time to happen
            return
        event = data.draw(st.sampled_from(self.events))
        response = self.send("DELETE", f"/api/events/{event.id}", self.organizer)
        if event.status == "DELETED":
            return self.expect(response, [Refusal(404, "not_found")])
        self.expect(response, [], 204)
        if event.status == "CANCELLED":
            return self.settle()
        if not event.booked:  # nobody ever booked it: removed, with its holds and waiting list
            event.status = "DELETED"
            for sale in self.holds():
                if sale.event is event:
                    sale.status = "GONE"
            self.entries = [e for e in self.entries if e.event is not event]
            return self.settle()
        event.status, event.available, event.set_aside = "CANCELLED", event.total, 0
        for kind in event.types.values():
            kind.available, kind.set_aside = kind.quantity, 0
        for seat in event.seats.values():
            seat[1] = "AVAILABLE"
        for sale in self.sales:
            if sale.event is event and sale.status == ("CONFIRMED" if sale.is_booking else "HELD"):
                sale.status = "CANCELLED" if sale.is_booking else "RELEASED"
        for entry in self.entries:
            if entry.event is event and entry.status in ("WAITING", "OFFERED"):
                entry.status = "LAPSED"
        self.settle()

    @precondition(lambda self: any(b.tickets for b in self.bookings()))
    @rule(data=st.data())
    def check_in(self, data):
        booking = data.draw(st.sampled_from([b for b in self.bookings() if b.tickets]))
        ticket_id, code = data.draw(st.sampled_from(booking.tickets))
        elsewhere = [e for e in self.events if e is not booking.event and e.status != "DELETED"]
        at = data.draw(st.sampled_from(elsewhere)) if elsewhere and data.draw(st.integers(0, 5)) == 5 else booking.event
        if data.draw(st.integers(0, 4)) == 4:  # an undo: 204, checked in or not
            self.expect(self.send("DELETE", f"/api/events/{at.id}/check-ins/{ticket_id}", self.organizer),
                        [Refusal(404, "not_found")] if at is not booking.event else [], 204)
            if at is booking.event:
                booking.checked_in.discard(ticket_id)
            return self.settle()
        response = self.send("POST", f"/api/events/{at.id}/check-ins", self.organizer, {"code": code})
        if at is not booking.event:
            refusals = [Refusal(404, "not_found")]
        elif booking.status != "CONFIRMED":
            refusals = [Refusal(409, "ticket_void")]
        elif ticket_id in booking.checked_in:
            refusals = [Refusal(409, "already_checked_in")]
        else:
            refusals = []
        if self.expect(response, refusals, 201) is not None:
            booking.checked_in.add(ticket_id)
        self.settle()

    # -- rules: the customers
    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def book(self, data):
        self.order(data, hold=False)

    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def hold(self, data):
        self.order(data, hold=True)

    def order(self, data, hold):
        event = self.pick_event(data)
        user, _ = self.customer(data)
        own = self.held(event, user)
        if own and data.draw(st.integers(0, 2)) == 0:  # steering: the customer's hold has expired meanwhile
            self.let_expire(own)
        self.sell(event, user, self.draw_order(data, event), hold)

    def sell(self, event, user, order, hold):
        """The customer's booking (or hold) of `order`, answered as the model says."""
        actor = self.customers[user]
        response = self.send("POST", "/api/holds" if hold else "/api/bookings", actor, order)
        own = self.held_past_expiry(event, user)
        if own and hold:  # the customer's HELD hold (past expiry) stands in the way of the new one: ended first
            self.expire_now(own)
        refusals = self.order_refusals(event, user, order)
        if own and not hold and refusals:  # a booking refused first: the customer's hold is ended, and it tries again
            self.expire_now(own)
            refusals = self.order_refusals(event, user, order)
        body = self.expect(response, refusals, 201)
        if body is None:
            return self.settle()
        items, seats = self.take(event, user, order, "HELD" if hold else "BOOKED")
        sale = Sale(body["id"], event, user, items, seats, "HELD" if hold else "CONFIRMED")
        self.check_sale(body, sale)
        if not hold:
            self.booked(sale)
        self.sales.append(sale)
        self.settle()

    def booked(self, booking):
        booking.is_booking = True
        booking.event.booked = True
        tickets = support.ok(self.send("GET", f"/api/bookings/{booking.id}/tickets", self.customers[booking.user]))
        assert len(tickets) == sum(booking.items.values()), tickets
        booking.tickets = [(t["id"], t["code"]) for t in tickets]

    @staticmethod
    def check_sale(body, sale):
        assert body["status"] == sale.status and body["eventId"] == sale.event.id, body
        assert body["ticketsCount"] == sum(sale.items.values()), body
        assert {i["ticketTypeId"]: i["count"] for i in body["items"]} == sale.items, body
        assert sorted(s["id"] for s in body["seats"]) == sale.seats, body

    @precondition(lambda self: self.holds())
    @rule(data=st.data())
    def confirm(self, data):
        live = [h for h in self.holds() if h.status == "HELD" and not h.expired]
        # mostly a hold that can still be confirmed: ended ones pile up (offers that lapsed)
        held = data.draw(st.sampled_from(live if live and data.draw(st.integers(0, 2)) else self.holds()))
        if held.status == "HELD" and not held.expired and data.draw(st.integers(0, 3)) == 0:
            self.let_expire(held)  # steering: a confirm too late
        user, actor = self.customer(data) if data.draw(st.integers(0, 5)) == 5 else (held.user, self.customers[held.user])
        response = self.send("POST", f"/api/holds/{held.id}/confirm", actor)
        if user != held.user or held.status == "GONE":
            return self.expect(response, [Refusal(404, "not_found")]) or self.settle()
        if held.status == "CONFIRMED":
            assert self.expect(response, [], 200)["id"] == held.booking.id
            return self.settle()
        if held.status != "HELD" or held.expired:
            self.expect(response, [Refusal(409, "hold_expired")])  # "even before any sweep"
            if held.status == "HELD":  # this finds it past expiry: it ends, its tickets come back
                self.expire_now(held)
            return self.settle()
        body = self.expect(response, [], 201)
        booking = Sale(body["id"], held.event, user, dict(held.items), list(held.seats), "CONFIRMED")
        self.check_sale(body, booking)
        held.status, held.booking = "CONFIRMED", booking
        for seat_id in held.seats:
            held.event.seats[seat_id][1] = "BOOKED"
        for entry in self.entries:
            if entry.hold is held:
                entry.status = "CONVERTED"
        self.booked(booking)
        self.sales.append(booking)
        self.settle()

    @precondition(lambda self: self.holds())
    @rule(data=st.data())
    def release(self, data):
        waited = [s for s in self.for_the_waiting() if not s.is_booking]
        if waited and data.draw(st.integers(0, 2)) < 2:  # steering: mostly one whose tickets go to the waiting list
            return self.hand_back(data.draw(st.sampled_from(waited)))
        held = data.draw(st.sampled_from(self.holds()))
        if held.status == "HELD" and not held.expired and data.draw(st.integers(0, 3)) == 0:
            self.let_expire(held)  # steering: a release too late
        user, actor = self.customer(data) if data.draw(st.integers(0, 5)) == 5 else (held.user, self.customers[held.user])
        response = self.send("DELETE", f"/api/holds/{held.id}", actor)
        if user != held.user or held.status == "GONE":
            return self.expect(response, [Refusal(404, "not_found")]) or self.settle()
        self.expect(response, [], 204)
        if held.status != "HELD":
            return self.settle()
        if held.expired:  # found past its expiry: EXPIRED, not RELEASED
            self.expire_now(held)
            return self.settle()
        self.end_hold(held)
        self.settle(held.event)

    def expire_now(self, held):
        """A request finds `held` past its expiry before any sweep: it ends as EXPIRED, and
        the offers its tickets allow are made at once (`wake`, in the request)."""
        self.end_hold(held, "EXPIRED")
        self.offer(held.event)

    def end_hold(self, held, status="RELEASED"):
        held.status = status
        self.give_back(held.event, held.items, held.seats)
        for entry in self.entries:
            if entry.hold is held and entry.status == "OFFERED":
                entry.status = "LAPSED"

    @precondition(lambda self: self.bookings())
    @rule(data=st.data())
    def cancel_booking(self, data):
        waited = [s for s in self.for_the_waiting() if s.is_booking]
        if waited and data.draw(st.integers(0, 2)) < 2:  # steering: mostly one whose tickets go to the waiting list
            booking = data.draw(st.sampled_from(waited))
            return self.cancelled(booking, self.send("POST", f"/api/bookings/{booking.id}/cancel",
                                                     self.customers[booking.user]))
        booking = data.draw(st.sampled_from(self.bookings()))
        who = data.draw(st.integers(0, 7))
        actor = self.organizer if who == 7 else self.customers[booking.user] if who < 6 else self.customer(data)[1]
        response = self.send("POST", f"/api/bookings/{booking.id}/cancel", actor)
        if actor is self.organizer:  # the event's owner sees it, may not cancel it
            return self.expect(response, [Refusal(403, "forbidden")]) or self.settle()
        if actor is not self.customers[booking.user]:
            return self.expect(response, [Refusal(404, "not_found")]) or self.settle()
        self.cancelled(booking, response)

    def cancelled(self, booking, response):
        """The customer's cancel of `booking` answered `response`."""
        if booking.status == "CONFIRMED" and booking.checked_in:  # its holder is inside
            return self.expect(response, [Refusal(409, "already_checked_in")]) or self.settle()
        body = self.expect(response, [], 200)
        assert body["status"] == "CANCELLED", body
        if booking.status != "CONFIRMED":  # again: no change
            return self.settle()
        booking.status = "CANCELLED"
        self.give_back(booking.event, booking.items, booking.seats)
        self.settle(booking.event)

    @precondition(lambda self: self.events)
    @rule(data=st.data(), count=st.integers(1, 2))
    def join_waiting_list(self, data, count):
        if self.short_of() and data.draw(st.integers(0, 3)) < 3:  # steering: mostly a join that is taken
            return self.join_where_short(data)
        event = self.pick_event(data, "GENERAL")
        user, _ = self.customer(data)
        self.join(data, event, user, data.draw(st.sampled_from(list(event.types))), count)

    def short_of(self):
        """(event, type id, customer) where the customer may join the waiting list, as too
        few tickets of the type are left for them, for an entry that tickets coming back
        can serve."""
        return [(event, type_id, user) for event in self.events if event.status == "SCHEDULED"
                and event.seating == "GENERAL" for type_id, kind in event.types.items()
                if min(event.available, kind.available) < min(2, kind.quantity, event.total)
                for user in range(len(self.customers))
                if not (self.confirmed_booking(event, user) or self.held(event, user) or self.live_entry(event, user))]

    @precondition(lambda self: self.short_of())
    @rule(data=st.data())
    def join_where_short(self, data):
        """Steering: a join that is taken, so that returned tickets have someone to go to
        (also most of `join_waiting_list`'s)."""
        event, type_id, user = data.draw(st.sampled_from(self.short_of()))
        kind = event.types[type_id]
        left = min(event.available, kind.available)
        self.join(data, event, user, type_id, data.draw(st.integers(left + 1, min(2, kind.quantity, event.total))))

    def join(self, data, event, user, type_id, count):
        actor = self.customers[user]
        body = {"ticketsCount": count}
        if len(event.types) > 1 or data.draw(st.booleans()):
            body["ticketTypeId"] = type_id
        response = self.send("POST", f"/api/events/{event.id}/waitlist", actor, body)
        own = self.held_past_expiry(event, user)
        if own and event.status != "DELETED":  # ended first, as joining finds it past expiry
            self.expire_now(own)
        if event.status == "DELETED":
            refusals = [Refusal(404, "not_found")]
        elif event.status == "CANCELLED":
            refusals = [Refusal(409, "event_closed")]
        elif event.seating == "RESERVED":
            refusals = [Refusal(422, "validation_error")]
        else:
            # either: docs/api.md lists these four without an order, so any that applies
            left = min(event.available, event.types[type_id].available)
            refusals = [refusal for refusal, applies in [
                (Refusal(409, "tickets_available", (("availableTickets", left),)), left >= count),
                (Refusal(409, "already_booked"), self.confirmed_booking(event, user)),
                (Refusal(409, "already_holding", (("holdId", getattr(self.held(event, user), "id", None)),)),
                 self.held(event, user) is not None),
                (Refusal(409, "already_waiting"), self.live_entry(event, user) is not None),
            ] if applies]
        if self.expect(response, refusals, 201) is None:
            return self.settle()
        self.entries.append(Entry(event, user, type_id, count))
        self.settle(event)

    @precondition(lambda self: self.events)
    @rule(data=st.data())
    def leave_waiting_list(self, data):
        live = [e for e in self.entries if e.status in ("WAITING", "OFFERED")]
        if live and data.draw(st.integers(0, 3)) < 3:
            entry = data.draw(st.sampled_from(live))
            event, user, actor = entry.event, entry.user, self.customers[entry.user]
        else:
            event = data.draw(st.sampled_from(self.events))
            user, actor = self.customer(data)
        response = self.send("DELETE", f"/api/events/{event.id}/waitlist/me", actor)
        if event.status == "DELETED":
            return self.expect(response, [Refusal(404, "not_found")]) or self.settle()
        self.expect(response, [], 204)
        entry = self.live_entry(event, user)
        if entry is None:
            return self.settle()
        offered, entry.status = entry.status == "OFFERED", "LEFT"
        if offered and entry.hold.status == "HELD":
            self.end_hold(entry.hold)
        self.settle(event)

    def for_the_waiting(self):
        """Bookings (none checked in: those are not cancelled) and HELD holds of events
        someone waits for."""
        return [s for s in self.sales if s.id is not None and self.waiting(s.event) and not s.checked_in
                and s.status == ("CONFIRMED" if s.is_booking else "HELD")]

    @precondition(lambda self: self.for_the_waiting())
    @rule(data=st.data())
    def give_back_to_waiting(self, data):
        """Steering: a cancel or a release by its customer, of a sale of an event someone
        waits for: an offer follows."""
        self.hand_back(data.draw(st.sampled_from(self.for_the_waiting())))

    def hand_back(self, sale):
        """Its customer cancels `sale` (a booking) or releases it (a hold)."""
        actor = self.customers[sale.user]
        if sale.is_booking:
            return self.cancelled(sale, self.send("POST", f"/api/bookings/{sale.id}/cancel", actor))
        self.expect(self.send("DELETE", f"/api/holds/{sale.id}", actor), [], 204)
        if sale.expired:
            self.expire_now(sale)
            return self.settle()
        self.end_hold(sale)
        self.settle(sale.event)

    # -- rules: time
    @precondition(lambda self: any(h.status == "HELD" and not h.expired for h in self.holds()))
    @rule(data=st.data())
    def time_passes(self, data):
        """A HELD hold (more often than not a waiting-list offer) passes its expiresAt;
        then nothing touches it, the sweeper's pass expires it, or its customer confirms,
        reads or releases it before any sweep."""
        live = [h for h in self.holds() if h.status == "HELD" and not h.expired]
        offers = [h for h in live if h in self.offers()]
        held = data.draw(st.sampled_from(offers if offers and data.draw(st.integers(0, 3)) else live))
        self.let_expire(held)
        then = data.draw(st.sampled_from(["nothing", "sweep", "confirm", "read", "release"]))
        actor = self.customers[held.user]
        if then == "sweep":
            return self.settle(expire=True)
        if then == "confirm":
            self.expect(self.send("POST", f"/api/holds/{held.id}/confirm", actor), [Refusal(409, "hold_expired")])
        elif then == "read":  # reading it ends it (docs/api.md "Buying")
            body = self.expect(self.send("GET", f"/api/holds/{held.id}", actor), [], 200)
            assert (body["id"], body["status"]) == (held.id, "EXPIRED"), body
        elif then == "release":
            self.expect(self.send("DELETE", f"/api/holds/{held.id}", actor), [], 204)
        if then != "nothing":
            self.expire_now(held)
        self.settle()

    def let_expire(self, held):
        """Time passes for `held`: its expiresAt moved into the past in the database (as
        tests/test_holds.py does); nothing else changes until something ends it."""
        with self.app.app_context():
            db.session.execute(sa.update(Hold).where(Hold.id == held.id)
                               .values(expires_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
        held.expired = True

    @precondition(lambda self: any(h.status == "HELD" and h.expired for h in self.holds()))
    @rule()
    def sweeper_pass(self):
        self.settle(expire=True)

    # -- what the API says must be what the model says
    @invariant()
    def counters_agree(self):
        for event in self.events:
            response = self.client.get(f"/api/events/{event.id}")
            if event.status == "DELETED":
                assert response.status_code == 404, response.get_json()
                continue
            body = support.ok(response)
            assert (body["status"], body["totalTickets"], body["availableTickets"], body["setAsideTickets"]) == (
                event.status, event.total, event.available, event.set_aside), (event, body)
            assert {t["id"]: (t["quantity"], t["availableQuantity"]) for t in body["ticketTypes"]} == {
                t.id: (t.quantity, t.available) for t in event.types.values()}, (event, body["ticketTypes"])
            if event.seating == "RESERVED":
                seats = support.ok(self.client.get(f"/api/events/{event.id}/seats"))
                assert {s["id"]: s["status"] for s in seats} == {i: s[1] for i, s in event.seats.items()}, event
            else:
                self.waiting_list_agrees(event)

    def waiting_list_agrees(self, event):
        listed = support.ok(self.send("GET", f"/api/events/{event.id}/waitlist?perPage=100", self.organizer))
        mine = [e for e in self.entries if e.event is event]
        assert [(e["userId"] if "userId" in e else e["user"]["id"], e["ticketTypeId"], e["ticketsCount"], e["status"])
                for e in listed] == [(self.customers[e.user]["id"], e.type_id, e.count, e.status) for e in mine], (
            listed, mine)
        for entry, shown in zip(mine, listed, strict=True):
            if entry.hold is not None and entry.hold.id is None:  # the offer the API made: its id
                entry.hold.id = shown["holdId"]
            assert shown["holdId"] == (entry.hold.id if entry.hold else None), (shown, entry)

    @invariant()
    def ticket_invariant_holds(self):
        """support.INVARIANT, read through the app's own pool (support.invariant_violations
        opens and closes a connection at every step)."""
        with self.app.app_context():
            found = [(what, tuple(row)) for what, query in support.INVARIANT.items()
                     for row in db.session.execute(sa.text(query))]
            db.session.rollback()
        assert found == []


def sweep(app, expire=False):
    """The hold sweeper's periodic pass, then its offers: with `expire`, the sweeper's own
    (HoldSweeper.sweep: the holds past their expiry expired, batch after batch), else only
    the offers of what is set aside."""
    with app.app_context():
        events = app.extensions["eventbook.sweeper"].sweep() if expire else waitlist.events_to_offer()
        for event_id in sorted(events):
            waitlist.offer(event_id)


def test_the_api_follows_the_model_of_the_booking_rules(app, client, database_url):
    machine = type("Rules", (BookingRules,), {"app": app, "client": client, "database_url": database_url})
    run_state_machine_as_test(machine, settings=SETTINGS)
