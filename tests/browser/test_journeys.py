"""The three roles' main journeys through the web page, in a real Chromium, at a desktop
and a phone viewport, against a live gunicorn on SQLite (one backend is enough: the page
is a client of the API, which the rest of the suite tests on both). Every page must end
with no console error and no request to another origin (tests/browser/conftest.py)."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests import support
from tests.browser import steps

pytestmark = pytest.mark.slow
VIEWPORTS = ["desktop", "phone"]


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_customer_finds_holds_confirms_sees_qr_codes_and_cancels(pages, site, viewport):
    organizer = site.user("ORGANIZER")
    word = f"Gig{uuid.uuid4().hex[:6]}"
    event = steps.event(site, organizer, f"{word} Quartet", types=(("Standard", "25.00", 40), ("VIP", "60.00", 10)))
    customer = site.user("CUSTOMER")
    page = pages.open(viewport)

    # A wrong password is refused next to the form, then the right one logs in.
    page.watch.refusal(401, "/api/auth/login")
    page.goto(f"{site.url}/#/login")
    page.get_by_label("Email").fill(customer["email"])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("form .error")).to_have_text("Invalid email or password")
    steps.log_in(page, site, customer["email"])

    # Find the event by a word of its title.
    page.get_by_label("Search events").fill(word)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 event", exact=True)).to_be_visible()
    page.get_by_role("link", name=f"{word} Quartet").click()
    expect(page.get_by_role("heading", name=f"{word} Quartet")).to_be_visible()

    # Hold 2 Standard tickets: a countdown runs while they are held.
    page.get_by_label("Standard (€25.00)").fill("2")
    expect(page.locator("output.total")).to_have_text("€50.00")
    page.get_by_role("button", name="Hold tickets").click()
    timer = page.get_by_role("timer")
    expect(timer).to_have_text(steps.TIMER)
    first = timer.inner_text()
    expect(timer).not_to_have_text(first)  # it counts down (about a second)
    assert site.get_event(event["id"])["availableTickets"] == 48

    # Confirm: the booking, with one QR code per ticket, each a loaded image.
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name=f"Booking for {word} Quartet")).to_be_visible()
    expect(page.locator("#notice")).to_contain_text("Booking confirmed")
    codes = page.locator("img.qr")
    expect(codes).to_have_count(2)
    page.wait_for_function("() => [...document.querySelectorAll('img.qr')].every(i => i.complete && i.naturalWidth > 0)")
    expect(codes.first).to_have_attribute("src", re.compile(r"^blob:"))
    [booking] = site.my_bookings(customer)
    assert booking["status"] == "CONFIRMED" and booking["ticketsCount"] == 2

    # My bookings lists it; cancelling asks once more, then the tickets go back.
    page.get_by_role("link", name="My bookings").click()
    card = page.locator(".booking", has_text=f"{word} Quartet")
    card.get_by_role("button", name="Cancel booking").click()
    card.get_by_role("button", name="Yes, cancel it").click()
    expect(page.locator(".booking", has_text=f"{word} Quartet").locator(".status")).to_contain_text("Cancelled")
    assert site.my_bookings(customer)[0]["status"] == "CANCELLED"
    assert site.get_event(event["id"])["availableTickets"] == 50


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_organizer_creates_an_event_with_two_ticket_types_and_sees_the_attendee(pages, site, viewport):
    email = f"organizer-{uuid.uuid4().hex[:8]}@example.com"
    title = f"Robot Rock {uuid.uuid4().hex[:6]}"
    page = pages.open(viewport)

    page.goto(f"{site.url}/#/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(support.PASSWORD)
    page.get_by_label("Name (optional)").fill("Olga Organizer")
    page.get_by_label("organise events (organizer)").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="My events")).to_be_visible()

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="New event").click()
    expect(nav.locator("[aria-current=page]")).to_have_text("New event")  # not "My events" too
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date and time").fill(steps.local_input(40))
    page.get_by_label("Location").fill("Hangar 9")
    page.get_by_label("Capacity (tickets in all)").fill("80")
    page.locator('[name="ticketTypes.0.name"]').fill("Floor")
    page.locator('[name="ticketTypes.0.price"]').fill("30.00")
    page.locator('[name="ticketTypes.0.quantity"]').fill("60")
    page.get_by_role("button", name="Add a ticket type").click()
    page.locator('[name="ticketTypes.1.name"]').fill("Balcony")
    page.locator('[name="ticketTypes.1.price"]').fill("cheap")
    page.locator('[name="ticketTypes.1.quantity"]').fill("20")

    # The API's refusal shows next to the field that caused it; nothing is created.
    page.watch.refusal(422, "/api/events")
    page.get_by_role("button", name="Create event").click()
    price = page.locator('[name="ticketTypes.1.price"]')
    expect(price).to_have_attribute("aria-invalid", "true")
    expect(price).to_have_accessible_description(re.compile("decimal"))
    price.fill("45.50")
    page.get_by_role("button", name="Create event").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    event_id = int(page.url.rsplit("/", 1)[-1])
    event = site.get_event(event_id)
    assert [(t["name"], t["price"], t["quantity"]) for t in event["ticketTypes"]] == [
        ("Floor", "30.00", 60), ("Balcony", "45.50", 20)]

    # A customer books 2 Balcony tickets; the organizer sees them among the attendees.
    customer = site.user("CUSTOMER")
    balcony = event["ticketTypes"][1]["id"]
    response = site.http.post("/api/bookings", headers=customer["headers"],
                              json={"eventId": event_id, "items": [{"ticketTypeId": balcony, "count": 2}]})
    assert response.status_code == 201, response.text
    page.get_by_role("link", name="Attendees").click()
    row = page.get_by_role("row", name=re.compile(re.escape(customer["email"])))
    expect(row).to_contain_text("2 × Balcony")
    expect(row).to_contain_text("€91.00")

    # Edit the event and a ticket type.
    page.get_by_role("link", name="Details").click()
    page.get_by_label("Location").fill("Hangar 10")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#notice")).to_contain_text("Changes saved")
    page.get_by_role("link", name="Ticket types").click()
    floor = page.locator("form.type", has=page.get_by_role("heading", name="Floor"))
    floor.get_by_label("Price").fill("35.00")
    floor.get_by_role("button", name="Save").click()
    expect(page.locator("#notice")).to_have_text("Floor saved.")
    event = site.get_event(event_id)
    assert event["location"] == "Hangar 10" and event["ticketTypes"][0]["price"] == "35.00"


def test_organizer_deletes_a_ticket_type_after_being_asked(pages, site):
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Two Rooms", types=(("Floor", "30.00", 10), ("Balcony", "20.00", 5)))
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/types")
    delete = page.get_by_role("button", name="Delete Balcony", exact=True)
    delete.click()
    keep = page.get_by_role("button", name="Keep it: Balcony", exact=True)
    expect(keep).to_be_focused()  # the answer that changes nothing
    keep.click()
    expect(delete).to_be_focused()
    assert [t["name"] for t in site.get_event(event["id"])["ticketTypes"]] == ["Floor", "Balcony"]
    delete.click()
    page.get_by_role("button", name="Yes, delete Balcony", exact=True).click()
    expect(page.locator("#notice")).to_have_text("Balcony deleted.")
    expect(page.get_by_role("button", name="Delete Balcony")).to_have_count(0)
    assert [t["name"] for t in site.get_event(event["id"])["ticketTypes"]] == ["Floor"]


def test_organizer_at_the_door_downloads_the_csv_checks_a_code_in_and_sees_the_figures(pages, site):
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Door Night", types=(("Floor", "30.00", 60), ("Balcony", "45.50", 20)))
    customer = site.user("CUSTOMER")
    balcony = event["ticketTypes"][1]["id"]
    response = site.http.post("/api/bookings", headers=customer["headers"],
                              json={"eventId": event["id"], "items": [{"ticketTypeId": balcony, "count": 2}]})
    assert response.status_code == 201, response.text
    tickets = site.http.get(f"/api/bookings/{response.json()['id']}/tickets", headers=customer["headers"]).json()
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/attendees")

    # The CSV, downloaded with the access token.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download attendees (CSV)").click()
    assert customer["email"] in download.value.path().read_text()

    # Check a ticket in by pasting its code; the same code again is refused beside the field.
    page.get_by_role("link", name="Check-in").click()
    expect(page.get_by_label("Ticket code")).to_be_focused()
    page.get_by_label("Ticket code").fill(tickets[0]["code"])
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_text("Welcome in")).to_contain_text("(Balcony)")  # its type, for the door
    page.watch.refusal(409, f"/api/events/{event['id']}/check-ins")
    page.get_by_label("Ticket code").fill(tickets[0]["code"])
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_label("Ticket code")).to_have_accessible_description(re.compile("already checked in"))
    page.get_by_label("Ticket code").fill("")
    page.get_by_role("button", name="Check in").click()  # nothing typed: that message alone
    expect(page.get_by_role("alert")).to_have_text("Type or paste a ticket's code.")
    expect(page.get_by_label("Ticket code")).not_to_have_attribute("aria-invalid", "true")

    page.get_by_role("link", name="Figures").click()
    expect(page.locator(".figures dt:text-is('Checked in') + dd")).to_have_text("1")
    expect(page.get_by_role("row", name=re.compile("^Balcony"))).to_contain_text("€91.00")

    # The admin's figures count the sale too.
    admin_page = pages.open("desktop")
    steps.log_in(admin_page, site, steps.admin(site))
    admin_page.get_by_role("link", name="Figures").click()
    expect(admin_page.locator(".figures")).to_contain_text("Tickets sold")

    # The customer, inside, is told the booking can no longer be cancelled, not offered a cancel.
    customer_page = pages.open("desktop")
    steps.log_in(customer_page, site, customer["email"])
    customer_page.goto(f"{site.url}/#/bookings/{response.json()['id']}")
    expect(customer_page.get_by_text("A ticket of this booking has been checked in, so it cannot be cancelled.")) \
        .to_be_visible()
    expect(customer_page.get_by_text(re.compile("^Checked in "))).to_have_count(1)
    expect(customer_page.get_by_role("button", name="Cancel booking")).to_have_count(0)


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_admin_disables_a_user_whose_next_request_fails(pages, site, viewport):
    customer = site.user("CUSTOMER")
    admin = steps.admin(site)
    admin_page = pages.open(viewport)
    steps.log_in(admin_page, site, admin)
    customer_page = pages.open(viewport)
    steps.log_in(customer_page, site, customer["email"])

    admin_page.get_by_label("Email or name").fill(customer["email"])
    admin_page.get_by_role("button", name="Search").click()
    disable = admin_page.get_by_role("button", name=f"Disable {customer['email']}")
    expect(disable).to_be_visible()  # bounding_box() does not wait for the search's answer
    box = disable.bounding_box()  # in sight without scrolling sideways, on a phone too
    assert box["x"] + box["width"] <= admin_page.viewport_size["width"], box
    disable.click()
    row = admin_page.get_by_role("row", name=re.compile(re.escape(customer["email"])))
    expect(row.locator(".status")).to_have_text("Active")  # asked twice: a disable gives up holds for good
    keep = admin_page.get_by_role("button", name=f"Keep active: {customer['email']}")
    expect(keep).to_be_focused()  # the answer that changes nothing
    keep.click()
    expect(disable).to_be_focused()
    expect(row.locator(".status")).to_have_text("Active")
    disable.click()
    sure = admin_page.get_by_role("button", name=re.compile(rf"^Yes, disable {re.escape(customer['email'])}: "))
    sure.click()
    expect(row.locator(".status")).to_have_text("Disabled")
    expect(admin_page.get_by_role("button", name=f"Enable {customer['email']}")).to_be_focused()

    # The customer's next request fails: the page says the session is over...
    for status, path in ((401, "/api/bookings/my-bookings"), (401, "/api/auth/refresh"), (401, "/api/auth/login")):
        customer_page.watch.refusal(status, path)
    customer_page.get_by_role("link", name="My bookings").click()
    expect(customer_page.locator("#notice")).to_have_text("Your session has ended. Please log in again.")
    expect(customer_page.get_by_role("link", name="Log in").first).to_be_visible()
    # ... and logging in again is refused like a wrong password.
    customer_page.goto(f"{site.url}/#/login")
    customer_page.get_by_label("Email").fill(customer["email"])
    customer_page.get_by_label("Password").fill(support.PASSWORD)
    customer_page.get_by_role("button", name="Log in").click()
    expect(customer_page.locator("form .error")).to_have_text("Invalid email or password")


def test_organizer_draws_a_seat_map_and_a_customer_picks_seats_on_a_phone(pages, site):
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Opera Gala", types=(("Stalls", "80.00", 10), ("Circle", "40.00", 10)),
                        seating="RESERVED")
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/seats")
    page.get_by_label("Name", exact=True).fill("Stalls")
    page.get_by_label("Rows").fill("A, B")
    page.get_by_label("Last seat number").fill("6")
    page.get_by_role("button", name="Add a section").click()
    circle = page.locator("fieldset", has_text="Section 2")
    circle.get_by_label("Name", exact=True).fill("Circle")
    circle.get_by_label("Ticket type").select_option(label="Circle (€40.00)")
    circle.get_by_label("Rows").fill("C")
    circle.get_by_label("Last seat number").fill("8")
    expect(page.get_by_text("No seat map yet.")).to_be_visible()
    page.get_by_role("button", name="Save seat map").click()
    expect(page.get_by_text("Saved: 20 seats.")).to_be_visible()
    expect(page.get_by_text("The map has 20 seats.")).to_be_visible()  # no longer "No seat map yet."

    customer = site.user("CUSTOMER")
    phone = pages.open("phone")
    steps.log_in(phone, site, customer["email"])
    phone.goto(f"{site.url}/#/events/{event['id']}")
    expect(phone.get_by_text("20 of 20 tickets left")).to_be_visible()
    phone.get_by_role("button", name="Stalls, row A, seat 3, €80.00").click()
    phone.get_by_role("button", name="Stalls, row B, seat 4, €80.00").click()
    expect(phone.locator(".seat-summary")).to_have_text("2 seats chosen, €160.00")

    # Somebody else books B4 meanwhile: the refusal says so beside the button, B4 is marked taken.
    seats = site.http.get(f"/api/events/{event['id']}/seats").json()
    [b4] = [seat["id"] for seat in seats if (seat["section"], seat["row"], seat["number"]) == ("Stalls", "B", 4)]
    other = site.user("CUSTOMER")
    assert site.http.post("/api/bookings", headers=other["headers"],
                          json={"eventId": event["id"], "seatIds": [b4]}).status_code == 201
    phone.watch.refusal(409, "/api/holds")
    phone.get_by_role("button", name="Hold seats").click()
    expect(phone.locator("form.seats .error")).to_have_text(
        "Seat no longer available. Taken meanwhile: Stalls, row B, seat 4.")
    expect(phone.get_by_role("button", name="Stalls, row B, seat 4, taken")).to_be_disabled()
    expect(phone.locator(".seat-summary")).to_have_text("1 seat chosen, €80.00")
    # The figures above the map are read again: B4 went, in all and from its type's.
    expect(phone.get_by_text("19 of 20 tickets left")).to_be_visible()
    stalls = phone.get_by_role("table", name="Tickets").get_by_role("row", name=re.compile("^Stalls"))
    expect(stalls.get_by_role("cell").nth(1)).to_have_text("11")

    phone.get_by_role("button", name="Hold seats").click()
    expect(phone.get_by_role("timer")).to_have_text(steps.TIMER)
    phone.get_by_role("button", name="Confirm booking").click()
    expect(phone.get_by_role("heading", name="Booking for Opera Gala")).to_be_visible()
    expect(phone.get_by_text("Stalls, row A, seat 3")).to_be_visible()


def test_customer_joins_the_waiting_list_and_confirms_the_offer(pages, site):
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Tiny Club Night", types=(("Entry", "12.00", 2),))
    first = site.user("CUSTOMER")
    booking = site.book(first, event["id"], 2)
    customer = site.user("CUSTOMER")
    page = pages.open("phone")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_text("Sold out").first).to_be_visible()
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.locator("#notice")).to_have_text("You are on the waiting list, number 1.")
    expect(page.get_by_text("You are number 1 in line for 1 ticket.")).to_be_visible()
    page.get_by_role("button", name="Leave the waiting list").click()
    expect(page.locator("#notice")).to_have_text("You left the waiting list.")
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.get_by_text("You are number 1 in line for 1 ticket.")).to_be_visible()

    # Two tickets come back: one is offered to the customer, the other goes to the public
    # (the event is no longer sold out), and the page still leads to the offer.
    assert site.http.post(f"/api/bookings/{booking['id']}/cancel", headers=first["headers"]).status_code == 200
    support.wait_until(lambda: site.http.get(f"/api/events/{event['id']}/waitlist/me",
                                             headers=customer["headers"]).json()["status"] == "OFFERED",
                       10, message="the offer")
    page.reload()
    expect(page.get_by_text("1 of 2 tickets left")).to_be_visible()
    expect(page.get_by_role("link", name="confirm them before they go to the next in line.")).to_be_visible()
    # ...and in another browser, where the customer never joined (the page asks the API)
    elsewhere = pages.open("desktop")
    steps.log_in(elsewhere, site, customer["email"])
    elsewhere.goto(f"{site.url}/#/events/{event['id']}")
    expect(elsewhere.get_by_role("link", name="confirm them before they go to the next in line.")).to_be_visible()
    # Holding the public ticket instead is refused, and the refusal leads to the offer.
    page.watch.refusal(409, "/api/holds")
    page.get_by_role("button", name="Hold tickets").click()
    page.get_by_role("link", name="Open that hold.").click()
    expect(page.get_by_role("timer")).to_have_text(steps.TIMER)
    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_role("heading", name="Booking for Tiny Club Night")).to_be_visible()
    assert site.my_bookings(customer)[0]["status"] == "CONFIRMED"
