"""A CONFIRMED booking's tickets (one per unit or seat, each with an unguessable code)
and their QR codes, for its customer, the event's organizer and admins."""

import re

import pytest
import segno

from tests.support import ok, refused

CODE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")  # URL-safe; 22 base64 characters hold 128 bits
TYPES = [{"name": "Standard", "price": "25.00", "quantity": 8}, {"name": "VIP", "price": "70.00", "quantity": 4}]


def tickets(client, actor, booking_id):
    return client.get(f"/api/bookings/{booking_id}/tickets", headers=actor.headers)


def qr(client, actor, booking_id, ticket_id):
    return client.get(f"/api/bookings/{booking_id}/tickets/{ticket_id}/qr", headers=actor.headers)


@pytest.fixture
def seat_map(client, organizer):
    """Put a seat map on a RESERVED event of `organizer`: [(section, row, number)] of one
    ticket type, each row's numbers following on -> their ids, in that order."""

    def put(event, places):
        sections = {}
        for section, row, number in places:
            sections.setdefault(section, {}).setdefault(row, []).append(number)
        body = {"sections": [{"name": section, "ticketTypeId": event["ticketTypes"][0]["id"],
                              "rows": [{"label": row, "from": min(numbers), "to": max(numbers)}
                                       for row, numbers in rows.items()]} for section, rows in sections.items()]}
        ok(client.put(f"/api/events/{event['id']}/seats", json=body, headers=organizer.headers))
        seats = {(seat["section"], seat["row"], seat["number"]): seat["id"]
                 for seat in ok(client.get(f"/api/events/{event['id']}/seats"))}
        return [seats[place] for place in places]

    return put


def test_a_booking_has_one_ticket_per_unit_with_its_own_code(client, shop, customer, make_user, make_event):
    event = make_event(totalTickets=12, ticketTypes=TYPES)
    standard, vip = (shop.types(event["id"])[name]["id"] for name in ("Standard", "VIP"))
    booking = ok(shop.book(customer, event["id"], items=[{"ticketTypeId": standard, "count": 2},
                                                         {"ticketTypeId": vip, "count": 1}]), 201)
    listed = ok(tickets(client, customer, booking["id"]))
    assert sorted(t["ticketTypeId"] for t in listed) == sorted([standard, standard, vip])
    for ticket in listed:
        assert set(ticket) == {"id", "bookingId", "ticketTypeId", "seat", "code", "checkedInAt"}
        assert ticket["bookingId"] == booking["id"] and ticket["seat"] is None and ticket["checkedInAt"] is None
        assert CODE.match(ticket["code"]), ticket["code"]
    assert len({t["code"] for t in listed}) == 3
    assert [t["id"] for t in listed] == sorted(t["id"] for t in listed)
    # by ticket type, whatever order the items came in, on both databases
    other = make_user()
    again = ok(shop.book(other, event["id"], items=[{"ticketTypeId": vip, "count": 1},
                                                    {"ticketTypeId": standard, "count": 2}]), 201)
    assert [t["ticketTypeId"] for t in ok(tickets(client, other, again["id"]))] == sorted([vip, standard, standard])


def test_a_booking_from_a_hold_has_its_tickets(client, shop, customer, make_event):
    event = make_event(totalTickets=5)
    held = ok(shop.hold(customer, event["id"], 3), 201)
    booking = ok(shop.confirm(customer, held["id"]), 201)
    listed = ok(tickets(client, customer, booking["id"]))
    assert len(listed) == 3 and all(CODE.match(t["code"]) for t in listed)


def test_a_seated_booking_has_one_ticket_per_seat(client, shop, customer, make_event, seat_map):
    event = make_event(totalTickets=3, seating="RESERVED")
    seat_ids = seat_map(event, [("Stalls", "A", 1), ("Stalls", "A", 2), ("Stalls", "B", 1)])
    booking = ok(shop.book(customer, event["id"], seatIds=seat_ids[:2]), 201)
    listed = ok(tickets(client, customer, booking["id"]))
    assert sorted((t["seat"]["id"], t["seat"]["section"], t["seat"]["row"], t["seat"]["number"]) for t in listed) == [
        (seat_ids[0], "Stalls", "A", 1), (seat_ids[1], "Stalls", "A", 2)]


def test_codes_are_different_for_every_ticket_of_every_booking(client, shop, make_user, make_event):
    event = make_event(totalTickets=50)
    codes = set()
    for _ in range(5):
        customer = make_user()
        booking = ok(shop.book(customer, event["id"], 10), 201)
        codes |= {t["code"] for t in ok(tickets(client, customer, booking["id"]))}
    assert len(codes) == 50


def test_the_customer_the_owner_and_admins_see_the_tickets_others_get_404(
        client, shop, make_user, organizer, admin, make_event):
    event = make_event(owner=organizer, totalTickets=5)
    customer, stranger, other_organizer = make_user(), make_user(), make_user("ORGANIZER")
    booking = ok(shop.book(customer, event["id"], 2), 201)
    mine = ok(tickets(client, customer, booking["id"]))
    for who in (organizer, admin):
        assert ok(tickets(client, who, booking["id"])) == mine
        assert qr(client, who, booking["id"], mine[0]["id"]).status_code == 200
    for who in (stranger, other_organizer):
        refused(tickets(client, who, booking["id"]), 404, "not_found")
        refused(qr(client, who, booking["id"], mine[0]["id"]), 404, "not_found")
    refused(client.get(f"/api/bookings/{booking['id']}/tickets"), 401, "unauthorized")
    refused(tickets(client, customer, 999_999), 404, "not_found")
    refused(tickets(client, customer, 2**31), 404, "not_found")


def test_the_qr_code_is_an_svg_of_the_tickets_code(client, shop, customer, make_event):
    event = make_event(totalTickets=5)
    booking = ok(shop.book(customer, event["id"], 2), 201)
    first, second = ok(tickets(client, customer, booking["id"]))
    response = qr(client, customer, booking["id"], first["id"])
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    svg = response.get_data(as_text=True)
    assert svg.startswith("<?xml") and "<svg" in svg and "<script" not in svg
    assert first["code"] not in svg  # the code is drawn, not written
    # The same symbol as segno makes of the code, and another one for another code.
    assert _modules(svg) == _modules(_svg_of(first["code"]))
    assert _modules(qr(client, customer, booking["id"], second["id"]).get_data(as_text=True)) != _modules(svg)


def _svg_of(code):
    import io

    buffer = io.BytesIO()
    segno.make_qr(code, error="m").save(buffer, kind="svg", scale=4, border=4)
    return buffer.getvalue().decode()


def _modules(svg):
    return re.search(r' d="([^"]+)"', svg).group(1)


def test_a_ticket_of_another_booking_has_no_qr_code_here(client, shop, make_user, make_event):
    event = make_event(totalTickets=5)
    alice, bob = make_user(), make_user()
    alices = ok(shop.book(alice, event["id"], 1), 201)
    bobs = ok(shop.book(bob, event["id"], 1), 201)
    [bobs_ticket] = ok(tickets(client, bob, bobs["id"]))
    refused(qr(client, alice, alices["id"], bobs_ticket["id"]), 404, "not_found")
    refused(qr(client, alice, alices["id"], 999_999), 404, "not_found")
