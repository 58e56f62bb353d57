"""An event's attendee list as CSV: a header, one line per ticket of a CONFIRMED
booking, UTF-8, streamed in pages, every cell quoted and formula cells neutralised."""

import csv
import io

import pytest
import sqlalchemy as sa

from eventbook.extensions import db
from eventbook.models import Ticket, User
from eventbook.tickets import attendees
from tests.support import ok, refused

HEADER = ["Booking ID", "Name", "Email", "Ticket type", "Seat", "Code", "Checked in at"]


def download(client, actor, event_id):
    return client.get(f"/api/events/{event_id}/attendees.csv", headers=actor.headers)


def rows(response):
    assert response.status_code == 200, response.get_json()
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8"), newline="")))


@pytest.fixture
def rename(app):
    """Give a user a name the API would not accept (a leading tab, say), in the database."""

    def rename(actor, name):
        with app.app_context():
            db.session.execute(sa.update(User).where(User.id == actor.id).values(name=name))
            db.session.commit()

    return rename


def test_one_line_per_ticket_of_confirmed_bookings(client, shop, make_user, organizer, make_event):
    event = make_event(owner=organizer, totalTickets=20)
    alice, bob, carol, dave = (make_user(name=name) for name in ("Alice", "Bob", "Carol", "Dave"))
    alices = ok(shop.book(alice, event["id"], 2), 201)
    bobs = ok(shop.book(bob, event["id"], 1), 201)
    ok(shop.cancel(carol, ok(shop.book(carol, event["id"], 3), 201)["id"]))  # cancelled: not listed
    ok(shop.hold(dave, event["id"], 2), 201)  # held, not sold: not listed
    listed = ok(client.get(f"/api/bookings/{alices['id']}/tickets", headers=alice.headers))
    checked = ok(client.post(f"/api/events/{event['id']}/check-ins", json={"code": listed[1]["code"]},
                             headers=organizer.headers), 201)
    [bobs_ticket] = ok(client.get(f"/api/bookings/{bobs['id']}/tickets", headers=bob.headers))
    response = download(client, organizer, event["id"])
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="event-{event["id"]}-attendees.csv"'
    assert response.is_streamed
    assert rows(response) == [
        HEADER,
        [str(alices["id"]), "Alice", alice.email, "General admission", "", listed[0]["code"], ""],
        [str(alices["id"]), "Alice", alice.email, "General admission", "", listed[1]["code"], checked["checkedInAt"]],
        [str(bobs["id"]), "Bob", bob.email, "General admission", "", bobs_ticket["code"], ""],
    ]
    assert response.get_data().startswith(b'"Booking ID","Name"')  # every cell quoted, no byte order mark


def test_an_event_without_attendees_is_the_header_alone(client, organizer, make_event):
    event = make_event(owner=organizer)
    assert rows(download(client, organizer, event["id"])) == [HEADER]


def test_many_pages_come_out_whole_and_in_order(client, shop, make_user, organizer, make_event, monkeypatch):
    monkeypatch.setattr(attendees, "PAGE", 2)  # bookings
    event = make_event(owner=organizer, totalTickets=30)
    codes = []
    for count in (4, 3, 1, 2, 1):  # pages of 7, 3 and 1 tickets
        customer = make_user()
        booking = ok(shop.book(customer, event["id"], count), 201)
        codes += [t["code"] for t in ok(client.get(f"/api/bookings/{booking['id']}/tickets",
                                                   headers=customer.headers))]
    assert [row[5] for row in rows(download(client, organizer, event["id"]))[1:]] == [
        attendees.neutralised(code) for code in codes]


def test_a_code_starting_with_a_minus_is_neutralised_and_still_checks_in(
        app, client, shop, customer, organizer, make_event):
    event = make_event(owner=organizer, totalTickets=5)
    booking = ok(shop.book(customer, event["id"], 1), 201)
    with app.app_context():
        db.session.execute(sa.update(Ticket).where(Ticket.booking_id == booking["id"]).values(code="-2+3" + "x" * 18))
        db.session.commit()
    [_, line] = rows(download(client, organizer, event["id"]))
    assert line[5] == "'-2+3" + "x" * 18
    ok(client.post(f"/api/events/{event['id']}/check-ins", json={"code": line[5]}, headers=organizer.headers), 201)


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_cells_are_neutralised(client, shop, customer, organizer, make_event, rename, name):
    event = make_event(owner=organizer, totalTickets=5)
    ok(shop.book(customer, event["id"], 1), 201)
    rename(customer, name)
    [_, line] = rows(download(client, organizer, event["id"]))
    assert line[1] == "'" + name


def test_text_keeps_its_commas_quotes_and_accents(client, shop, customer, organizer, make_event, rename):
    event = make_event(owner=organizer, totalTickets=5, ticketTypes=[
        {"name": 'Balcony, "front"', "price": "10.00", "quantity": 5}])
    ok(shop.book(customer, event["id"], 1), 201)
    rename(customer, "Zoë Ørsted, Jr.")
    [_, line] = rows(download(client, organizer, event["id"]))
    assert line[1:4] == ["Zoë Ørsted, Jr.", customer.email, 'Balcony, "front"']


def test_only_the_owner_and_admins_download_it(client, make_user, organizer, admin, customer, make_event):
    event = make_event(owner=organizer)
    assert rows(download(client, admin, event["id"])) == [HEADER]
    refused(download(client, make_user("ORGANIZER"), event["id"]), 403, "forbidden")
    refused(download(client, customer, event["id"]), 403, "forbidden")
    refused(client.get(f"/api/events/{event['id']}/attendees.csv"), 401, "unauthorized")
    refused(download(client, organizer, 999_999), 404, "not_found")


def test_a_type_added_and_booked_during_a_download_comes_out_named(client, shop, make_user, organizer, make_event,
                                                                     monkeypatch):
    """The list is read a page at a time while it is sent: a booking of a type added
    meanwhile is a line like any other, with its type's name."""
    monkeypatch.setattr(attendees, "PAGE", 1)  # bookings
    event = make_event(owner=organizer, totalTickets=10)
    ok(shop.book(make_user(), event["id"]), 201)
    response = client.get(f"/api/events/{event['id']}/attendees.csv", headers=organizer.headers, buffered=False)
    chunks = iter(response.response)
    sent = [next(chunks), next(chunks)]  # the header, then the first booking's page
    late = ok(client.post(f"/api/events/{event['id']}/ticket-types", headers=organizer.headers,
                          json={"name": "Late", "price": "5.00", "quantity": 2}), 201)
    ok(shop.book(make_user(), event["id"], ticketsCount=1, ticketTypeId=late["id"]), 201)
    sent.extend(chunks)
    response.close()
    lines = list(csv.reader(io.StringIO(b"".join(sent).decode("utf-8"), newline="")))
    assert [line[3] for line in lines[1:]] == [event["ticketTypes"][0]["name"], "Late"]
