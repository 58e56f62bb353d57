"""The page as a whole in a real Chromium (live gunicorn, SQLite): the README's screenshot,
and a booking made with the keyboard alone."""

import os
import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests import support
from tests.browser import steps

pytestmark = pytest.mark.slow
SCREENSHOT = support.ROOT / "docs" / "screenshot.png"
SHOWCASE = [
    ("Jazz in the Park", "Riverside Park", (("Lawn", "18.00", 300), ("Bench", "32.00", 60)), 12),
    ("Tech Conf 2027", "Convention Center", (("Standard", "120.00", 400), ("Workshop pass", "240.00", 40)), 20),
    ("Chamber Music Evening", "Old Town Hall", (("Seat", "25.00", 120),), 26),
    ("Open Mic Night", "The Lantern", (("Entry", "0.00", 80),), 33),
    ("City Marathon Expo", "Exhibition Halls", (("Day ticket", "8.50", 2000),), 41),
    ("Winter Food Market", "Harbour Square", (("Entry", "5.00", 1500),), 55),
]


def test_screenshot_of_the_event_list(pages, site, tmp_path):
    """Written to docs/screenshot.png (shown in the README) with UPDATE_SCREENSHOT=1;
    otherwise to a temporary file, so that a test run leaves the repository as it was."""
    organizer = site.user("ORGANIZER")
    evening = datetime.now(timezone.utc).replace(hour=19, minute=30, second=0, microsecond=0)
    for title, location, types, days in SHOWCASE:
        date = (evening + timedelta(days=days)).isoformat()
        steps.event(site, organizer, title, types=types, date=date, location=location)
    page = pages.open("desktop")
    page.goto(site.url + "/")
    expect(page.locator(".card.event")).to_have_count(len(SHOWCASE))
    path = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "screenshot.png"
    page.screenshot(path=path)
    assert path.stat().st_size > 10_000


def test_a_booking_with_the_keyboard_alone(pages, site):
    organizer = site.user("ORGANIZER")
    steps.event(site, organizer, "Keyboard Concert", types=(("Standard", "20.00", 50), ("Front row", "45.00", 10)), days=3)
    customer = site.user("CUSTOMER")
    page = pages.open("desktop")
    page.goto(site.url + "/")
    expect(page.get_by_role("link", name="Keyboard Concert")).to_be_visible()

    steps.tab_to(page, "Log in")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Log in")).to_be_focused()
    steps.tab_to(page, "Email")
    page.keyboard.type(customer["email"])
    page.keyboard.press("Tab")
    page.keyboard.type(support.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Upcoming events")).to_be_focused()

    steps.tab_to(page, "Keyboard Concert")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard Concert")).to_be_focused()
    steps.tab_to(page, "Front row (€45.00)")
    page.keyboard.press("ArrowUp")  # a number field steps with the arrow keys
    page.keyboard.press("ArrowUp")
    expect(page.locator("output.total")).to_have_text("€90.00")
    steps.tab_to(page, "Hold tickets")
    page.keyboard.press("Enter")
    expect(page.get_by_role("timer")).to_have_text(steps.TIMER)
    steps.tab_to(page, "Confirm booking")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Booking for Keyboard Concert")).to_be_focused()
    [booking] = site.my_bookings(customer)
    assert booking["ticketsCount"] == 2 and booking["totalAmount"] == "90.00"


def test_what_is_not_there_says_so_in_its_heading_title_and_focus(pages, site):
    """An event that does not exist, a page of the list past the last, a cancelled event:
    each says what it is, and a missing one in its heading and the tab's title."""
    organizer = site.user("ORGANIZER")
    customer = site.user("CUSTOMER")
    steps.event(site, organizer, "Still On", days=6)
    cancelled = steps.event(site, organizer, "Rained Off", days=5)
    booked = site.http.post("/api/bookings", headers=customer["headers"], json={"eventId": cancelled["id"], "ticketsCount": 1})
    assert booked.status_code == 201, booked.text
    assert site.http.delete(f"/api/events/{cancelled['id']}", headers=organizer["headers"]).status_code == 204

    page = pages.open("desktop")
    page.watch.refusal(404, "/api/events/999999")
    page.goto(site.url + "/")
    expect(page.get_by_role("heading", name="Upcoming events")).to_be_visible()
    page.evaluate("location.hash = '#/events/999999'")
    expect(page.get_by_role("heading", name="Event not found")).to_be_focused()
    expect(page).to_have_title("Event not found · eventbook")
    expect(page.get_by_text("Event not found")).to_have_count(1)  # the heading says it once, and leads on
    expect(page.get_by_role("link", name="See the events.")).to_be_visible()

    page.evaluate("location.hash = '#/?page=99'")
    expect(page.get_by_text("There is no page 99.")).to_be_visible()
    page.get_by_role("link", name="Go to the first page.").click()
    expect(page.locator(".card.event").first).to_be_visible()

    page.evaluate(f"location.hash = '#/events/{cancelled['id']}'")
    expect(page.get_by_text("This event is cancelled: nothing is on sale.")).to_be_visible()
    expect(page.get_by_role("table", name="Tickets")).to_have_count(0)


def test_a_confirm_refused_because_the_hold_ended_shows_it_ended(pages, site):
    """A tab that slept past its hold's expiry still counts down: the server's refusal of
    the confirm is what the page then shows, with nothing left to click."""
    import sqlalchemy as sa

    from eventbook.models import Hold

    organizer = site.user("ORGANIZER")
    customer = site.user("CUSTOMER")
    event = steps.event(site, organizer, "Late Show", days=4)
    held = site.http.post("/api/holds", headers=customer["headers"], json={"eventId": event["id"], "ticketsCount": 1})
    assert held.status_code == 201, held.text
    hold_id = held.json()["id"]

    page = pages.open("desktop")
    page.watch.refusal(409, f"/api/holds/{hold_id}/confirm")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/holds/{hold_id}")
    expect(page.locator(".countdown")).to_have_text(steps.TIMER)
    engine = sa.create_engine(site.database_url)  # SQLite: the browser tests' site
    with engine.begin() as connection:
        connection.execute(sa.update(Hold).where(Hold.id == hold_id)
                           .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    engine.dispose()

    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_text("This hold has expired and its tickets were given back.")).to_be_visible()
    expect(page.get_by_role("button", name="Confirm booking")).to_be_disabled()
    expect(page.get_by_role("button", name="Release tickets")).to_be_disabled()
    page.get_by_role("link", name="Back to the event.").click()
    expect(page.get_by_role("heading", name="Late Show")).to_be_focused()


def test_tickets_others_took_meanwhile_show_the_event_as_it_now_is(pages, site):
    """A hold refused because the last tickets went while the page was open: the page
    says so, and shows the event sold out, with its waiting list."""
    organizer = site.user("ORGANIZER")
    customer, others = site.user("CUSTOMER"), [site.user("CUSTOMER") for _ in range(2)]
    event = steps.event(site, organizer, "Last Two", types=(("Standard", "10.00", 2),), days=9)
    page = pages.open("desktop")
    page.watch.refusal(409, "/api/holds")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_text("2 of 2 tickets left")).to_be_visible()
    for other in others:
        booked = site.http.post("/api/bookings", headers=other["headers"], json={"eventId": event["id"], "ticketsCount": 1})
        assert booked.status_code == 201, booked.text

    page.get_by_role("button", name="Hold tickets").click()
    expect(page.locator("#notice")).to_contain_text("Sold out")
    expect(page.get_by_role("cell", name="Sold out")).to_be_visible()
    expect(page.get_by_role("heading", name="Waiting list")).to_be_visible()


def test_a_big_seat_map_is_one_tab_stop_crossed_with_the_arrow_keys(pages, site):
    """300 seats: Tab reaches the map once and leaves it at the next control; the arrow
    keys, Home and End move between free seats (a taken one is passed over); rows stay one
    line each, also on a phone, where the map scrolls sideways within its section."""
    organizer = site.user("ORGANIZER")
    customer, other = site.user("CUSTOMER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Cinema Night", types=(("Seat", "12.00", 300),), days=7, seating="RESERVED")
    rows = [{"label": chr(ord("A") + i), "from": 1, "to": 25} for i in range(12)]
    put = site.http.put(f"/api/events/{event['id']}/seats", headers=organizer["headers"], json={
        "sections": [{"name": "Hall", "ticketTypeId": event["ticketTypes"][0]["id"], "rows": rows}]})
    assert put.status_code == 200, put.text
    seats = {(seat["row"], seat["number"]): seat["id"] for seat in site.http.get(f"/api/events/{event['id']}/seats").json()}
    booked = site.http.post("/api/bookings", headers=other["headers"], json={"eventId": event["id"], "seatIds": [seats["A", 2]]})
    assert booked.status_code == 201, booked.text

    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    steps.tab_to(page, "Hall, row A, seat 1, €12.00")
    focused = page.locator(":focus")
    page.keyboard.press("ArrowRight")  # A2 is taken
    expect(focused).to_have_accessible_name("Hall, row A, seat 3, €12.00")
    page.keyboard.press("ArrowDown")
    expect(focused).to_have_accessible_name("Hall, row B, seat 3, €12.00")
    page.keyboard.press("End")
    expect(focused).to_have_accessible_name("Hall, row B, seat 25, €12.00")
    page.keyboard.press("Space")
    expect(page.locator(".seat-summary")).to_have_text("1 seat chosen, €12.00")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Hold seats")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # back into the map, where it was left
    expect(focused).to_have_accessible_name("Hall, row B, seat 25, €12.00")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("timer")).to_have_text(steps.TIMER)

    phone = pages.open("phone")
    steps.log_in(phone, site, site.user("CUSTOMER")["email"])  # one who has not booked it: the map is shown
    phone.goto(f"{site.url}/#/events/{event['id']}")
    row = phone.get_by_role("group", name="Row A")
    expect(row.get_by_role("button")).to_have_count(25)
    tops = row.get_by_role("button").evaluate_all("buttons => new Set(buttons.map((b) => b.getBoundingClientRect().top)).size")
    assert tops == 1
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_customer_who_booked_an_event_is_led_to_the_booking_when_trying_again(pages, site):
    """One confirmed booking per customer and event: the event's page leads a customer who
    booked it to that booking, with no ticket form; one who booked it elsewhere after the
    page was shown is refused, and the refusal leads to the customer's bookings."""
    organizer = site.user("ORGANIZER")
    customer = site.user("CUSTOMER")
    event = steps.event(site, organizer, "Twice Told", types=(("Standard", "10.00", 20),), days=8)
    page = pages.open("desktop")
    page.watch.refusal(409, "/api/holds")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_label("Standard (€10.00)")).to_be_visible()
    booked = site.http.post("/api/bookings", headers=customer["headers"], json={"eventId": event["id"], "ticketsCount": 1})
    assert booked.status_code == 201, booked.text
    page.get_by_label("Standard (€10.00)").fill("1")
    page.get_by_role("button", name="Hold tickets").click()
    expect(page.get_by_role("alert")).to_contain_text("You already have a confirmed booking for this event")
    page.get_by_role("link", name="See your bookings.").click()
    expect(page.get_by_role("heading", name="My bookings")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Twice Told"))).to_be_visible()

    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_text("You booked 1 ticket for this event")).to_be_visible()
    expect(page.get_by_label("Standard (€10.00)")).to_have_count(0)
    page.get_by_role("link", name="See your booking.").click()
    expect(page).to_have_url(re.compile(rf"#/bookings/{booked.json()['id']}$"))


def test_a_check_in_whose_answer_was_lost_is_welcomed_when_sent_again(pages, site):
    """The network loses the answer to a check-in the server made: sent again, the same
    scan (its nonce) gets the first answer, not "already checked in"; a later scan of
    the code is a new one, and refused."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Lost at the Door", types=(("Floor", "30.00", 10),), days=9)
    booked = site.http.post("/api/bookings", headers=customer["headers"], json={"eventId": event["id"], "ticketsCount": 1})
    assert booked.status_code == 201, booked.text
    code = site.http.get(f"/api/bookings/{booked.json()['id']}/tickets", headers=customer["headers"]).json()[0]["code"]
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/attendees")
    page.get_by_role("link", name="Check-in").click()
    path = f"/api/events/{event['id']}/check-ins"
    page.watch.lost(path)
    cut = []

    def lose_the_first_answer(route):
        if cut:
            route.continue_()
            return
        cut.append(route.fetch().status)  # the server checks the ticket in; its answer never arrives
        route.abort()

    page.route(f"**{path}", lose_the_first_answer)
    page.get_by_label("Ticket code").fill(code)
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    assert cut == [201]
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_text("Welcome in")).to_be_visible()
    page.watch.refusal(409, path)
    page.get_by_label("Ticket code").fill(code)
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_label("Ticket code")).to_have_accessible_description(re.compile("already checked in"))


def test_an_answer_that_comes_after_the_customer_went_elsewhere_leaves_them_there(pages, site):
    """A hold whose answer is slow, and a customer who follows a link meanwhile: the
    page they went to stays, and says the tickets are held; the event's page leads to
    the hold."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Slow Answer", types=(("Standard", "10.00", 20),), days=10)
    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    waiting = []
    page.route("**/api/holds", lambda route: waiting.append(route))  # held back until the customer has left
    page.get_by_label("Standard (€10.00)").fill("2")
    page.get_by_role("button", name="Hold tickets").click()
    for _ in range(50):
        if waiting:
            break
        page.wait_for_timeout(100)
    page.get_by_role("navigation").get_by_role("link", name="Events").click()
    expect(page.get_by_role("heading", name="Upcoming events")).to_be_visible()
    waiting[0].continue_()
    expect(page.locator("#notice")).to_have_text("Tickets held for Slow Answer: its page leads to them.")
    expect(page.get_by_role("heading", name="Upcoming events")).to_be_visible()
    assert site.http.get(f"/api/events/{event['id']}").json()["availableTickets"] == 18
    page.get_by_role("link", name=re.compile("Slow Answer")).click()
    expect(page.get_by_text("You hold 2 tickets for this event.")).to_be_visible()
    page.get_by_role("link", name="Confirm or release them.").click()
    expect(page.get_by_role("button", name="Confirm booking")).to_be_visible()


def test_a_join_sent_again_after_its_answer_was_lost_shows_the_entry(pages, site):
    """The network loses the answer to a join the server made: the join sent again is
    refused as already waiting, and the page shows the customer's place in line."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Lost Join", types=(("Entry", "12.00", 1),), days=11)
    site.book(site.user("CUSTOMER"), event["id"], 1)
    customer = site.user("CUSTOMER")
    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    path = f"/api/events/{event['id']}/waitlist"
    page.watch.lost(path)
    page.watch.refusal(409, path)
    cut = []

    def lose_the_first_answer(route):
        if cut or route.request.method != "POST":
            route.continue_()
            return
        cut.append(route.fetch().status)  # the server puts the customer in line; its answer never arrives
        route.abort()

    page.route(f"**{path}", lose_the_first_answer)
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    assert cut == [201]
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.locator("#notice")).to_contain_text("waiting list already")
    expect(page.get_by_text("You are number 1 in line for 1 ticket.")).to_be_visible()


def test_an_event_created_whose_answer_was_lost_is_not_created_twice(pages, site):
    """The network loses the answer to an event the server made: the page finds the
    organizer's event of that title, place and time, and leads to it, instead of asking
    them to send it again (which would make a second)."""
    organizer = site.user("ORGANIZER")
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.watch.lost("/api/events")
    cut = []

    def lose_the_first_answer(route):
        if cut or route.request.method != "POST":
            route.continue_()
            return
        cut.append(route.fetch().status)  # the server makes the event; its answer never arrives
        route.abort()

    page.route("**/api/events", lose_the_first_answer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New event").click()
    page.get_by_label("Title").fill("Made Once")
    page.get_by_label("Date and time").fill(steps.local_input(45))
    page.get_by_label("Location").fill("Hall 3")
    page.get_by_label("Capacity (tickets in all)").fill("40")
    page.get_by_role("button", name="Create event").click()
    expect(page.locator("#notice")).to_have_text("Event created: Made Once.")
    assert cut == [201]
    mine = site.http.get("/api/events", params={"organizerId": organizer["id"]}).json()
    assert [event["title"] for event in mine] == ["Made Once"]
    expect(page).to_have_url(re.compile(rf"#/manage/{mine[0]['id']}$"))


def test_another_organizers_event_is_not_offered_for_management(pages, site):
    """Its management page says whose it is to manage and leads to its public page,
    without showing tabs whose every request the API would refuse."""
    owner, other = site.user("ORGANIZER"), site.user("ORGANIZER")
    event = steps.event(site, owner, "Not Yours", days=12)
    page = pages.open("desktop")
    steps.log_in(page, site, other["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/attendees")
    expect(page.get_by_text("Only the event's organizer or an admin may manage this event.")).to_be_visible()
    expect(page.get_by_role("navigation", name="Event management")).to_have_count(0)
    page.get_by_role("link", name="See its public page.").click()
    expect(page.get_by_role("heading", name="Not Yours")).to_be_focused()


def test_a_started_event_is_not_offered_for_changes(pages, site):
    """Once it has started the API refuses every change (409 event_closed): the page says
    so and offers no form that could only be refused, by the server's clock (this
    browser's is an hour slow)."""
    import sqlalchemy as sa

    from eventbook.models import Event

    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Already On", days=3)
    engine = sa.create_engine(support._normalized(site.database_url))
    with engine.begin() as connection:
        connection.execute(sa.update(Event.__table__).where(Event.id == event["id"])
                           .values(date=datetime.now(timezone.utc) - timedelta(minutes=5)))
    engine.dispose()
    page = pages.open("desktop")
    page.clock.set_fixed_time(datetime.now(timezone.utc) - timedelta(hours=1))
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/details")
    expect(page.get_by_text("This event has started: it can no longer be changed.")).to_be_visible()
    expect(page.get_by_role("button", name="Save changes")).to_be_disabled()
    expect(page.get_by_role("button", name="Cancel this event")).to_have_count(0)
    page.goto(f"{site.url}/#/manage/{event['id']}/types")
    expect(page.get_by_text("This event has started: it can no longer be changed.")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_be_disabled()
    expect(page.get_by_role("button", name="Add ticket type")).to_have_count(0)


def test_a_refusal_of_the_whole_order_reads_as_a_sentence(pages, site):
    """More than 10 tickets over two types: the 422 is about the order the page built
    (its `items`), shown without that field's name."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Two Kinds", types=(("Stalls", "10.00", 20), ("Circle", "15.00", 20)), days=6)
    page = pages.open("desktop")
    page.watch.refusal(422, "/api/holds")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    page.get_by_label("Stalls (€10.00)").fill("6")
    page.get_by_label("Circle (€15.00)").fill("5")
    page.get_by_role("button", name="Hold tickets").click()
    expect(page.get_by_role("alert")).to_have_text("The request has invalid fields. At most 10 tickets in all.")


def test_a_count_refused_is_shown_at_its_type_and_a_link_follows_a_full_stop(pages, site):
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Counted", types=(("Stalls", "10.00", 20), ("Circle", "15.00", 20)), days=6)
    page = pages.open("desktop")
    page.watch.refusal(422, "/api/holds")
    page.watch.refusal(409, "/api/holds")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    page.get_by_label("Circle (€15.00)").fill("1.5")
    page.get_by_role("button", name="Hold tickets").click()
    circle = page.get_by_label("Circle (€15.00)")
    expect(circle).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{circle.get_attribute('id')}-error")).to_have_text("Not a valid integer.")
    # A refusal with a link after it: the message ends its sentence first.
    held = site.http.post("/api/holds", headers=customer["headers"], json={
        "eventId": event["id"], "items": [{"ticketTypeId": event["ticketTypes"][0]["id"], "count": 1}]})
    assert held.status_code == 201, held.text
    circle.fill("1")
    page.get_by_role("button", name="Hold tickets").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"[.!?)] Open that hold\.$"))


def test_the_waiting_list_is_offered_for_what_one_can_wait_for(pages, site):
    """A type sold out beside one with tickets left: the form starts on the sold-out type.
    A seated event has no waiting list (its seats come back to the map): none is offered."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Two Rooms", types=(("Standard", "10.00", 5), ("VIP", "50.00", 1)), days=8)
    vip = next(t for t in event["ticketTypes"] if t["name"] == "VIP")
    booked = site.http.post("/api/bookings", headers=site.user("CUSTOMER")["headers"],
                            json={"eventId": event["id"], "ticketTypeId": vip["id"], "ticketsCount": 1})
    assert booked.status_code == 201, booked.text
    seated = steps.event(site, organizer, "Small Stage", types=(("Seat", "20.00", 2),), seating="RESERVED", days=8)
    map_ = {"sections": [{"name": "Hall", "ticketTypeId": seated["ticketTypes"][0]["id"],
                          "rows": [{"label": "A", "from": 1, "to": 2}]}]}
    assert site.http.put(f"/api/events/{seated['id']}/seats", headers=organizer["headers"], json=map_).status_code == 200
    seat_ids = [seat["id"] for seat in site.http.get(f"/api/events/{seated['id']}/seats").json()]
    booked = site.http.post("/api/bookings", headers=site.user("CUSTOMER")["headers"],
                            json={"eventId": seated["id"], "seatIds": seat_ids})
    assert booked.status_code == 201, booked.text

    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_label("Ticket type")).to_have_value(str(vip["id"]))
    page.goto(f"{site.url}/#/events/{seated['id']}")
    expect(page.get_by_role("heading", name="Small Stage")).to_be_visible()
    expect(page.get_by_text("Sold out").first).to_be_visible()
    expect(page.get_by_role("heading", name="Waiting list")).to_have_count(0)


def test_a_type_is_offered_for_no_more_than_the_event_has_left(pages, site):
    """A type's own remainder is not capped by the event's free tickets (API.md): capacity
    2, VIP 1 and GA 2, one of each booked, leaves GA "1" of its own and the event none. The
    page shows GA sold out, offers nothing to hold, and offers the waiting list."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Small Hall", types=(("VIP", "50.00", 1), ("GA", "10.00", 2)), totalTickets=2)
    items = [{"ticketTypeId": t["id"], "count": 1} for t in event["ticketTypes"]]
    booked = site.http.post("/api/bookings", headers=site.user("CUSTOMER")["headers"], json={"eventId": event["id"], "items": items})
    assert booked.status_code == 201, booked.text
    ga = next(t for t in site.get_event(event["id"])["ticketTypes"] if t["name"] == "GA")
    assert ga["availableQuantity"] == 1  # the API's figure the page must not show as is

    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_text("Sold out").first).to_be_visible()
    row = page.get_by_role("table", name="Tickets").get_by_role("row", name=re.compile("^GA"))
    expect(row.get_by_role("cell").nth(1)).to_have_text("Sold out")
    expect(page.get_by_text("No tickets are on sale right now.")).to_be_visible()
    expect(page.get_by_role("button", name="Hold tickets")).to_have_count(0)
    expect(page.get_by_role("button", name="Join the waiting list")).to_be_visible()


def test_the_waiting_list_is_offered_when_fewer_are_left_than_one_may_ask_for(pages, site):
    """One ticket left: a customer who wants two may wait for them (the API takes a join for
    more than are left), from two up; once waiting, the ticket form says that holding
    tickets takes them off the list. The count one may hold is what the event has left."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Nearly Full", types=(("Entry", "12.00", 5),), totalTickets=3)
    site.book(site.user("CUSTOMER"), event["id"], 2)
    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_text("1 of 3 tickets left")).to_be_visible()
    expect(page.get_by_label("Entry (€12.00)")).to_have_attribute("max", "1")  # the event's 1, not the type's 3
    wanted = page.get_by_label("Tickets wanted")
    expect(wanted).to_have_attribute("min", "2")
    expect(wanted).to_have_value("2")
    expect(page.get_by_text("holding tickets here takes you off it")).to_have_count(0)
    page.get_by_role("button", name="Join the waiting list").click()
    expect(page.get_by_text("You are number 1 in line for 2 tickets.")).to_be_visible()
    expect(page.get_by_text("You are on this event's waiting list: holding tickets here takes you off it.")).to_be_visible()


def test_the_organizer_sees_each_place_in_line_page_by_page_with_its_type(pages, site):
    """The "#" column is the API's position (none for an entry no longer waiting), the list
    is paged as the attendees are (105 waiting: the last ones too), and with two types
    each entry says which it waits for."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Long Queue", types=(("Stalls", "30.00", 1), ("Circle", "20.00", 1)))
    stalls, circle = event["ticketTypes"]
    items = [{"ticketTypeId": t["id"], "count": 1} for t in event["ticketTypes"]]
    booked = site.http.post("/api/bookings", headers=site.user("CUSTOMER")["headers"], json={"eventId": event["id"], "items": items})
    assert booked.status_code == 201, booked.text
    path = f"/api/events/{event['id']}/waitlist"
    gone, *waiting = site.users(106)
    for i, customer in enumerate([gone, *waiting]):
        joined = site.http.post(path, headers=customer["headers"],
                                json={"ticketsCount": 1, "ticketTypeId": (circle if i % 2 else stalls)["id"]})
        assert joined.status_code == 201, joined.text
    assert site.http.delete(f"{path}/me", headers=gone["headers"]).status_code == 204  # LEFT, first in the list

    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/waitlist")
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader", name="Type")).to_be_visible()

    def cells(email):
        row = table.get_by_role("row", name=re.compile(re.escape(email)))
        return row.get_by_role("cell")

    expect(cells(gone["email"]).first).to_have_text("—")
    expect(cells(gone["email"]).nth(3)).to_have_text("left")
    expect(cells(waiting[0]["email"]).first).to_have_text("1")  # the first still waiting, second in the list
    expect(cells(waiting[0]["email"]).nth(2)).to_have_text("Circle")
    page.get_by_role("link", name="Next →").click()
    expect(cells(waiting[24]["email"]).first).to_have_text("25")
    page.evaluate(f"location.hash = '#/manage/{event['id']}/waitlist?page=5'")
    expect(cells(waiting[-1]["email"]).first).to_have_text("105")
    expect(page.get_by_role("link", name="Next →")).to_have_count(0)


def test_an_admin_may_make_another_admin_a_customer_but_not_themself(pages, site):
    """The API refuses only an admin's demotion of themself (403)."""
    me, other = steps.admin(site), steps.admin(site)
    page = pages.open("desktop")
    steps.log_in(page, site, me)
    page.goto(f"{site.url}/#/admin/users?q={other}")
    page.get_by_role("button", name=f"Make customer: {other}").click()
    row = page.locator(f'tr[data-email="{other}"]')
    expect(row.get_by_role("cell").first).to_have_text("customer")
    expect(page.get_by_role("button", name=f"Make organizer: {other}")).to_be_focused()
    page.goto(f"{site.url}/#/admin/users?q={me}")
    mine = page.locator(f'tr[data-email="{me}"]')
    expect(mine).to_contain_text("(you)")
    expect(mine.get_by_role("button")).to_have_count(0)


def test_registering_from_a_page_that_needs_an_account_comes_back_to_it(pages, site):
    page = pages.open("desktop")
    page.goto(f"{site.url}/#/manage/new")
    expect(page.get_by_text("This page is for an organizer or admin account.")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="register").click()
    page.get_by_label("Email").fill(f"new-{os.urandom(4).hex()}@example.com")
    page.get_by_label("Password").fill(support.PASSWORD)
    page.get_by_label("organise events (organizer)").check()
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"#/manage/new$"))
    expect(page.get_by_label("Title")).to_be_visible()


def test_swagger_ui_opens_with_nothing_refused(pages, site):
    """Its page names no icon, so the browser asks for /favicon.ico: the site's icon."""
    page = pages.open("desktop")
    page.goto(f"{site.url}/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("eventbook")
    expect(page.get_by_text("/api/events/{event_id}/seats").first).to_be_visible()
    icon = site.http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml"), icon.status_code


def test_a_password_is_sent_as_typed_spaces_and_all(pages, site):
    """A password registered with spaces around it through the API logs in on the page
    (the page trims every other field)."""
    email, password = f"spaced-{os.urandom(4).hex()}@example.com", "  correct horse  "
    registered = site.http.post("/api/auth/register", json={"email": email, "password": password, "role": "CUSTOMER"})
    assert registered.status_code == 201, registered.text
    page = pages.open()
    steps.log_in(page, site, email, password)


def test_saving_a_seat_map_unchanged_keeps_every_seat(pages, site):
    """Rows of other numbers than the section's first keep them through the editor, and
    so do a row whose label ends like a range and labels with a comma or quotes (written
    in quotes); a section removed before another is added leaves the names as shown."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Recital", types=(("Stalls", "30.00", 10),), seating="RESERVED")
    [stalls] = event["ticketTypes"]
    rows = [{"label": "A", "from": 1, "to": 6}, {"label": "B", "from": 1, "to": 10}, {"label": "C", "from": 3, "to": 8},
            {"label": "D", "from": 1, "to": 4}, {"label": "D", "from": 7, "to": 10},  # an aisle in row D
            {"label": "Box 1-2", "from": 1, "to": 6},  # a label that reads like a range
            {"label": "Box 3,4", "from": 1, "to": 6}, {"label": 'Row "Q"', "from": 2, "to": 3}]  # a comma, quotes
    put = site.http.put(f"/api/events/{event['id']}/seats", headers=organizer["headers"],
                        json={"sections": [{"name": "Stalls", "ticketTypeId": stalls["id"], "rows": rows}]})
    assert put.status_code == 200, put.text

    def places():
        return [(s["section"], s["row"], s["number"]) for s in site.http.get(f"/api/events/{event['id']}/seats").json()]

    before = places()
    page = pages.open()
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/seats")
    expect(page.get_by_label("Rows")).to_have_value(
        'A, B 1-10, C 3-8, D 1-4, D 7-10, Box 1-2 1-6, "Box 3,4", "Row ""Q""" 2-3')
    page.get_by_role("button", name="Save seat map").click()
    expect(page.get_by_text("Saved: 44 seats.")).to_be_visible()
    assert places() == before

    for name in ("Circle", "Balcony"):
        page.get_by_role("button", name="Add a section").click()
        added = page.locator("fieldset.section-edit").last
        added.get_by_label("Name", exact=True).fill(name)
        added.get_by_label("Rows").fill("D")
        added.get_by_label("Last seat number").fill("4")
    page.locator("fieldset", has_text="Section 2").get_by_role("button", name="Remove section").click()
    page.get_by_role("button", name="Add a section").click()
    box = page.locator("fieldset.section-edit").last
    expect(box.locator("legend")).to_have_text("Section 3")
    box.get_by_label("Name", exact=True).fill("B" * 51)
    box.get_by_label("Rows").fill("E")
    box.get_by_label("Last seat number").fill("2")
    page.watch.refusal(422, f"/api/events/{event['id']}/seats")
    page.get_by_role("button", name="Save seat map").click()
    expect(box.locator(".field-error").first).to_contain_text("50")  # at the field it is about
    box.get_by_label("Name", exact=True).fill("Box")
    page.get_by_role("button", name="Save seat map").click()
    expect(page.get_by_text("Saved: 50 seats.")).to_be_visible()
    assert [place for place in places() if place[0] != "Stalls"] == (
        [("Balcony", "D", n) for n in range(1, 5)] + [("Box", "E", 1), ("Box", "E", 2)])


def test_a_seat_map_with_a_seat_sold_is_shown_but_cannot_be_edited(pages, site):
    """The API refuses a new map once a seat is held or sold (seats_in_use): the editor
    says so and offers nothing to change."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Chamber Night", types=(("Stalls", "30.00", 10),), seating="RESERVED")
    [stalls] = event["ticketTypes"]
    put = site.http.put(f"/api/events/{event['id']}/seats", headers=organizer["headers"],
                        json={"sections": [{"name": "Stalls", "ticketTypeId": stalls["id"],
                                            "rows": [{"label": "A", "from": 1, "to": 8}]}]})
    assert put.status_code == 200, put.text
    [first, *_] = site.http.get(f"/api/events/{event['id']}/seats").json()
    customer = site.user("CUSTOMER")
    booked = site.http.post("/api/bookings", headers=customer["headers"], json={"eventId": event["id"], "seatIds": [first["id"]]})
    assert booked.status_code == 201, booked.text

    page = pages.open()
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/seats")
    expect(page.get_by_text("The map has 8 seats, 1 of them held or sold: it can no longer change.")).to_be_visible()
    expect(page.get_by_label("Rows")).to_have_value("A")
    for name in ("Save seat map", "Add a section", "Remove section"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()
    expect(page.get_by_label("Rows")).to_be_disabled()


def test_only_types_on_sale_now_can_be_chosen_and_the_organizer_sees_held_as_held(pages, site):
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Harvest Fair", types=(("Day", "5.00", 10), ("Early bird", "3.00", 10)))
    early = next(t for t in event["ticketTypes"] if t["name"] == "Early bird")
    later = (datetime.now(timezone.utc) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    changed = site.http.patch(f"/api/events/{event['id']}/ticket-types/{early['id']}", headers=organizer["headers"],
                              json={"salesStart": later})
    assert changed.status_code == 200, changed.text
    customer = site.user("CUSTOMER")
    day = next(t for t in event["ticketTypes"] if t["name"] == "Day")
    held = site.http.post("/api/holds", headers=customer["headers"],
                          json={"eventId": event["id"], "ticketTypeId": day["id"], "ticketsCount": 3})
    assert held.status_code == 201, held.text

    page = pages.open()
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    expect(page.get_by_label("Day (€5.00)")).to_be_visible()
    expect(page.get_by_label("Early bird (€3.00)")).to_have_count(0)  # listed in the table, with its window

    desk = pages.open()
    steps.log_in(desk, site, organizer["email"])
    desk.goto(f"{site.url}/#/manage")
    expect(desk.get_by_role("row", name=re.compile("Harvest Fair"))).to_contain_text("3 / 20")
    expect(desk.get_by_role("columnheader", name="Sold or held")).to_be_visible()
