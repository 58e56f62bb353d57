"""Figures: an event's (for its organizer and admins) and the whole system's (admins).
Counts are integers; money is a decimal string of CONFIRMED bookings."""

from types import SimpleNamespace

from eventbook.stats import service
from tests.support import ok, refused, wait_until

TYPES = [{"name": "Standard", "price": "25.10", "quantity": 15}, {"name": "VIP", "price": "70.05", "quantity": 5}]


def stats(client, actor, event_id):
    return client.get(f"/api/events/{event_id}/stats", headers=actor.headers)


def tickets(client, actor, booking):
    return ok(client.get(f"/api/bookings/{booking['id']}/tickets", headers=actor.headers))


def check_in(client, actor, event_id, code):
    return ok(client.post(f"/api/events/{event_id}/check-ins", json={"code": code}, headers=actor.headers), 201)


def test_an_events_figures_and_each_types(client, shop, make_user, organizer, make_event):
    event = make_event(owner=organizer, totalTickets=20, ticketTypes=TYPES)
    standard, vip = (shop.types(event["id"])[name]["id"] for name in ("Standard", "VIP"))
    alice, bob, carol, dave = (make_user() for _ in range(4))
    alices = ok(shop.book(alice, event["id"], items=[{"ticketTypeId": standard, "count": 2},
                                                     {"ticketTypeId": vip, "count": 1}]), 201)
    bobs = ok(shop.book(bob, event["id"], ticketsCount=1, ticketTypeId=vip), 201)
    carols = ok(shop.book(carol, event["id"], ticketsCount=3, ticketTypeId=standard), 201)
    carols_first = check_in(client, organizer, event["id"], tickets(client, carol, carols)[0]["code"])["ticket"]
    assert client.delete(f"/api/events/{event['id']}/check-ins/{carols_first['id']}",
                         headers=organizer.headers).status_code == 204
    ok(shop.cancel(carol, carols["id"]))  # neither sold nor checked in any more (undone first, as a cancel needs)
    ok(shop.hold(dave, event["id"], ticketsCount=2, ticketTypeId=standard), 201)
    check_in(client, organizer, event["id"], next(t for t in tickets(client, alice, alices)
                                                  if t["ticketTypeId"] == standard)["code"])
    check_in(client, organizer, event["id"], tickets(client, bob, bobs)[0]["code"])

    figures = ok(stats(client, organizer, event["id"]))
    assert figures == {
        "capacity": 20, "sold": 4, "held": 2, "available": 14, "setAside": 0, "checkedIn": 2,
        "revenue": "190.30", "currency": "EUR",
        "byType": [
            {"ticketTypeId": standard, "name": "Standard", "sold": 2, "held": 2, "available": 11, "checkedIn": 1,
             "revenue": "50.20"},
            {"ticketTypeId": vip, "name": "VIP", "sold": 2, "held": 0, "available": 3, "checkedIn": 1,
             "revenue": "140.10"},
        ],
        "waiting": 0,
    }
    event_now = shop.event(event["id"])
    assert figures["available"] == event_now["availableTickets"]
    assert figures["capacity"] - figures["available"] - figures["setAside"] == figures["sold"] + figures["held"]


def test_a_cancelled_events_check_ins_are_not_counted(client, shop, make_user, organizer, make_event):
    """Cancelling the event cancels bookings whose tickets were checked in (doors open,
    then a storm): neither sold nor checked in any more."""
    event = make_event(owner=organizer, totalTickets=5)
    buyer = make_user()
    booking = ok(shop.book(buyer, event["id"], 2), 201)
    check_in(client, organizer, event["id"], tickets(client, buyer, booking)[0]["code"])
    assert ok(stats(client, organizer, event["id"]))["checkedIn"] == 1
    assert client.delete(f"/api/events/{event['id']}", headers=organizer.headers).status_code == 204
    figures = ok(stats(client, organizer, event["id"]))
    assert (figures["sold"], figures["checkedIn"], figures["byType"][0]["checkedIn"]) == (0, 0, 0)


def test_an_event_with_nothing_sold(client, organizer, make_event):
    event = make_event(owner=organizer, totalTickets=7)
    figures = ok(stats(client, organizer, event["id"]))
    assert (figures["sold"], figures["held"], figures["available"], figures["revenue"]) == (0, 0, 7, "0.00")
    [only] = figures["byType"]
    assert only["revenue"] == "0.00" and only["available"] == 7 and only["checkedIn"] == 0


def test_the_waiting_count_and_an_undone_check_in(client, shop, make_user, organizer, make_event):
    event = make_event(owner=organizer, totalTickets=2)
    buyer = make_user()
    booking = ok(shop.book(buyer, event["id"], 2), 201)
    for _ in range(2):
        ok(client.post(f"/api/events/{event['id']}/waitlist", json={"ticketsCount": 1},
                       headers=make_user().headers), 201)
    ticket = tickets(client, buyer, booking)[0]
    check_in(client, organizer, event["id"], ticket["code"])
    assert ok(stats(client, organizer, event["id"]))["checkedIn"] == 1
    client.delete(f"/api/events/{event['id']}/check-ins/{ticket['id']}", headers=organizer.headers)
    figures = ok(stats(client, organizer, event["id"]))
    assert (figures["waiting"], figures["checkedIn"], figures["available"]) == (2, 0, 0)


def test_an_events_figures_are_its_own(client, shop, make_user, organizer, make_event):
    """Two events with types of the same names: each counts its own sales and check-ins."""
    first, second = (make_event(owner=organizer, totalTickets=20, ticketTypes=TYPES) for _ in range(2))
    buyer = make_user()
    for event, counts in ((first, (3, 1)), (second, (1, 2))):
        types = shop.types(event["id"])
        booking = ok(shop.book(buyer, event["id"], items=[{"ticketTypeId": types["Standard"]["id"], "count": counts[0]},
                                                          {"ticketTypeId": types["VIP"]["id"], "count": counts[1]}]), 201)
        check_in(client, organizer, event["id"], tickets(client, buyer, booking)[-1]["code"])
    figures = [ok(stats(client, organizer, event["id"])) for event in (first, second)]
    assert [[(t["sold"], t["checkedIn"]) for t in f["byType"]] for f in figures] == [[(3, 0), (1, 1)], [(1, 0), (2, 1)]]
    assert [(f["sold"], f["checkedIn"], f["revenue"]) for f in figures] == [(4, 1, "145.35"), (3, 1, "165.20")]


def test_a_type_added_while_the_figures_are_read_is_counted(client, shop, make_user, organizer, make_event,
                                                            monkeypatch):
    """The figures are read by the ids of the event's types, read just before: a type
    added in between is read again, with its sales."""
    event = make_event(owner=organizer, totalTickets=20, ticketTypes=TYPES)
    vip = shop.types(event["id"])["VIP"]["id"]
    ok(shop.book(make_user(), event["id"], ticketsCount=2, ticketTypeId=vip), 201)
    managed = service.managed
    monkeypatch.setattr(service, "managed", lambda *args: SimpleNamespace(ticket_types=managed(*args).ticket_types[:1]))
    figures = ok(stats(client, organizer, event["id"]))
    assert [(t["name"], t["sold"]) for t in figures["byType"]] == [("Standard", 0), ("VIP", 2)]
    assert (figures["sold"], figures["revenue"], figures["available"]) == (2, "140.10", 18)


def test_only_the_owner_and_admins_see_an_events_figures(client, make_user, organizer, admin, customer, make_event):
    event = make_event(owner=organizer)
    assert ok(stats(client, admin, event["id"]))["capacity"] == 100
    refused(stats(client, make_user("ORGANIZER"), event["id"]), 403, "forbidden")
    refused(stats(client, customer, event["id"]), 403, "forbidden")
    refused(client.get(f"/api/events/{event['id']}/stats"), 401, "unauthorized")
    refused(stats(client, organizer, 999_999), 404, "not_found")


def test_the_systems_figures_for_admins(client, shop, make_user, organizer, admin, make_event):
    euro = make_event(owner=organizer, totalTickets=10, ticketTypes=[TYPES[0]])
    dollar = make_event(owner=organizer, totalTickets=10, currency="USD",
                        ticketTypes=[{"name": "Seat", "price": "40.00", "quantity": 10}])
    doomed, full = make_event(owner=organizer, totalTickets=3), make_event(owner=organizer, totalTickets=1)
    alice, bob, carol, dave, erin, frank, gina = (make_user() for _ in range(7))
    ok(shop.book(alice, euro["id"], 2), 201)
    ok(shop.book(bob, dollar["id"], 1), 201)
    ok(shop.cancel(carol, ok(shop.book(carol, euro["id"], 1), 201)["id"]))
    ok(shop.hold(dave, dollar["id"], 1), 201)
    ok(shop.book(erin, doomed["id"], 1), 201)
    assert client.delete(f"/api/events/{doomed['id']}", headers=organizer.headers).status_code == 204
    ok(shop.book(frank, full["id"], 1), 201)
    ok(client.post(f"/api/events/{full['id']}/waitlist", json={"ticketsCount": 1}, headers=gina.headers), 201)

    def settled():  # 7 emails: 5 confirmations, carol's cancellation, erin's event cancellation
        figures = ok(client.get("/api/admin/stats", headers=admin.headers))
        return figures if figures["notificationsByStatus"] == {"PENDING": 0, "SENT": 7, "FAILED": 0} else None

    figures = wait_until(settled, 15, message="every notification sent")
    assert figures == {
        "usersByRole": {"CUSTOMER": 7, "ORGANIZER": 1, "ADMIN": 1},
        "eventsByStatus": {"SCHEDULED": 3, "CANCELLED": 1},
        "bookings": 3,
        "ticketsSold": 4,
        "revenueByCurrency": {"EUR": "50.20", "USD": "40.00"},
        "activeHolds": 1,
        "waitingEntries": 1,
        "notificationsByStatus": {"PENDING": 0, "SENT": 7, "FAILED": 0},
    }


def test_only_admins_see_the_systems_figures(client, organizer, customer):
    for who in (organizer, customer):
        refused(client.get("/api/admin/stats", headers=who.headers), 403, "forbidden")
    refused(client.get("/api/admin/stats"), 401, "unauthorized")
