"""Accessibility of the page in a real Chromium (live gunicorn, SQLite), as an audit with
axe-core and the keyboard found it wanting: the focus ring's contrast, messages a screen
reader is told of, where the focus goes when what had it goes away, controls that act
only when asked to, names that start with what a button shows, seats told apart by more
than colour, and a table that keeps its words whole on a narrow screen."""

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from eventbook.models import Hold
from tests.browser import steps

pytestmark = pytest.mark.slow


def channels(css_colour):
    """(r, g, b) of a computed colour, "rgb(180, 83, 9)"."""
    return tuple(int(n) for n in re.findall(r"\d+", css_colour)[:3])


def luminance(rgb):
    """WCAG 2's relative luminance of an sRGB colour."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (n / 255 for n in rgb)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a, b):
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def ticket_code(site, organizer, customer, title):
    """An event with one ticket booked by `customer`: (event, the ticket's code)."""
    event = steps.event(site, organizer, title, types=(("Floor", "30.00", 10),), days=9)
    booked = site.http.post("/api/bookings", headers=customer["headers"], json={"eventId": event["id"], "ticketsCount": 1})
    assert booked.status_code == 201, booked.text
    tickets = site.http.get(f"/api/bookings/{booked.json()['id']}/tickets", headers=customer["headers"])
    return event, tickets.json()[0]["code"]


def held(site, customer, title, left=None):
    """A hold of one ticket of a new event, taken through the API: its id. With `left` (a
    timedelta), its expiry moved to that long from now, in the database."""
    event = steps.event(site, site.user("ORGANIZER"), title, days=4)
    hold = site.http.post("/api/holds", headers=customer["headers"], json={"eventId": event["id"], "ticketsCount": 1})
    assert hold.status_code == 201, hold.text
    if left is not None:
        engine = sa.create_engine(site.database_url)
        with engine.begin() as connection:
            connection.execute(sa.update(Hold).where(Hold.id == hold.json()["id"])
                               .values(expires_at=datetime.now(timezone.utc) + left))
        engine.dispose()
    return hold.json()["id"]


def test_the_focus_ring_stands_out_three_to_one_from_what_is_around_it(pages, site):
    """WCAG 1.4.11: the ring is drawn outside the control, on the page's wash or on a
    card or the header, both white."""
    page = pages.open("desktop")
    page.goto(site.url + "/")
    expect(page.get_by_label("Search events")).to_be_visible()
    steps.tab_to(page, "Search events")
    ring = page.evaluate(
        """() => {
            const el = document.activeElement, style = getComputedStyle(el);
            return {visible: el.matches(":focus-visible"), style: style.outlineStyle, width: parseFloat(style.outlineWidth),
                    colour: style.outlineColor, page: getComputedStyle(document.body).backgroundColor,
                    header: getComputedStyle(document.querySelector("header")).backgroundColor};
        }"""
    )
    assert ring["visible"] and ring["style"] == "solid" and ring["width"] >= 2, ring
    for around in (ring["page"], ring["header"]):
        ratio = contrast(channels(ring["colour"]), channels(around))
        assert ratio >= 3, f"focus ring {ring['colour']} on {around}: {ratio:.2f}:1"


def test_a_check_in_refused_at_the_field_that_has_the_focus_is_said_each_time(pages, site):
    """Enter pressed in the code field: the refusal is shown at that field, which keeps
    the focus, so nothing would be read out. The announcer (a live region that is always
    there) says it, and says it again when the same code is refused again."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event, code = ticket_code(site, organizer, customer, "Said at the Door")
    path = f"/api/events/{event['id']}/check-ins"
    assert site.http.post(path, headers=organizer["headers"], json={"code": code}).status_code == 201
    page = pages.open("desktop")
    page.watch.refusal(404, path)
    page.watch.refusal(409, path)
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/check-in")
    field = page.get_by_label("Ticket code")
    expect(field).to_be_focused()
    announcer = page.locator('[aria-live="assertive"]')
    expect(announcer).to_have_count(1)

    page.keyboard.type("no-such-code")
    page.keyboard.press("Enter")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    message = page.locator(f"#{field.get_attribute('id')}-error").inner_text()
    expect(announcer).to_have_text(message)

    # What the announcer holds after each change: emptied, then filled, for each refusal.
    announcer.evaluate(
        """(el) => {
            window.said = [];
            const record = () => window.said.push(el.textContent);
            const changes = {childList: true, characterData: true, subtree: true};
            new MutationObserver(record).observe(el, changes);
        }"""
    )
    field.fill(code)
    for times in (1, 2):
        page.keyboard.press("Enter")
        page.wait_for_function("(n) => window.said.filter((text) => text.includes('already checked in')).length === n", arg=times)
    said = page.evaluate("window.said")
    assert len(said) == 4 and said[0] == said[2] == "" and said[1] == said[3], said
    expect(announcer).to_contain_text("This ticket was already checked in")
    expect(field).to_be_focused()


def test_undoing_a_check_in_from_the_keyboard_leaves_the_focus_in_the_code_field(pages, site):
    """The Undo button is beside the status, not in it (the status is read out whole);
    once it has done its work it goes, and the focus goes to the field of the next scan."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event, code = ticket_code(site, organizer, customer, "Undone at the Door")
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/check-in")
    field = page.get_by_label("Ticket code")
    expect(field).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    status = page.get_by_role("status").filter(has_text="Welcome in")
    expect(status).to_be_visible()
    expect(status.get_by_role("button")).to_have_count(0)
    expect(field).to_be_focused()

    steps.tab_to(page, "Undo")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Check-in undone.")).to_be_visible()
    expect(field).to_be_focused()
    expect(page.get_by_role("button", name="Undo")).to_have_count(0)


def test_a_hold_that_ends_under_the_focused_button_leaves_the_focus_on_why(pages, site):
    """The hold's time runs out (the page's clock is moved on) while Release has the
    focus: both buttons are disabled, and the focus goes to the line saying the hold ended."""
    customer = site.user("CUSTOMER")
    hold_id = held(site, customer, "Out of Time")
    page = pages.open("desktop")
    page.clock.install()
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/holds/{hold_id}")
    expect(page.get_by_role("timer")).to_have_text(steps.TIMER)
    steps.tab_to(page, "Release tickets")

    page.clock.fast_forward("30:00")  # a hold lasts 10 minutes
    expect(page.get_by_role("button", name="Release tickets")).to_be_disabled()
    expect(page.get_by_text("This hold has expired and its tickets were given back.")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Back to the event.")).to_be_focused()


def test_removing_a_row_of_a_form_leaves_the_focus_beside_it(pages, site):
    """A ticket type of the new-event form, a section of the seat-map editor: the focus
    goes to the next row, else the previous one, else to the button that adds one."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Rows Removed", types=(("Stalls", "30.00", 10),), seating="RESERVED")
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/new")
    add = page.get_by_role("button", name="Add a ticket type")
    add.click()
    add.click()
    for i, name in enumerate(["First", "Second", "Third"]):
        page.locator(f'[name="ticketTypes.{i}.name"]').fill(name)
    rows = page.locator("fieldset.type-edit")
    focused = page.locator(":focus")

    rows.nth(1).get_by_role("button", name="Remove ticket type 2", exact=True).press("Enter")
    expect(focused).to_have_value("Third")  # the next row's first control
    expect(focused).to_have_attribute("name", "ticketTypes.1.name")
    rows.nth(1).get_by_role("button", name="Remove ticket type 2", exact=True).press("Enter")  # Third's, renamed
    expect(focused).to_have_value("First")  # none after it: the previous row's
    rows.nth(0).get_by_role("button", name="Remove ticket type 1", exact=True).press("Enter")
    expect(add).to_be_focused()  # none left: the button that adds one
    expect(rows).to_have_count(0)

    page.goto(f"{site.url}/#/manage/{event['id']}/seats")
    more = page.get_by_role("button", name="Add a section")
    more.click()
    sections = page.locator("fieldset.section-edit")
    sections.nth(1).get_by_label("Name", exact=True).fill("Circle")
    sections.nth(0).get_by_role("button", name="Remove section 1", exact=True).press("Enter")
    expect(focused).to_have_value("Circle")
    expect(focused).to_have_attribute("name", "sections.0.name")
    sections.nth(0).get_by_role("button", name="Remove section 1", exact=True).press("Enter")  # Circle's, renamed
    expect(more).to_be_focused()


def test_the_buttons_of_repeated_rows_are_told_apart_by_their_names(pages, site):
    """A Save, Delete or Remove in each of several rows is named by its row too ("Save
    Balcony", "Remove ticket type 2"), starting with the word it shows (WCAG 2.5.3)."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Rows Named", types=(("Floor", "30.00", 10), ("Balcony", "20.00", 5)), days=9)
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/types")
    for name in ("Floor", "Balcony"):
        expect(page.get_by_role("button", name=f"Save {name}", exact=True)).to_have_text("Save")
        expect(page.get_by_role("button", name=f"Delete {name}", exact=True)).to_have_text("Delete")

    page.goto(f"{site.url}/#/manage/new")
    add = page.get_by_role("button", name="Add a ticket type")
    add.click()
    add.click()
    removes = page.locator("fieldset.type-edit").get_by_role("button")
    expect(removes).to_have_text(["Remove"] * 3)
    for n in (1, 2, 3):
        expect(removes.nth(n - 1)).to_have_accessible_name(f"Remove ticket type {n}")


def test_the_show_choice_of_my_events_waits_for_its_button(pages, site):
    """Looking through the options with the arrow keys changes nothing but the choice;
    the Show button shows it."""
    organizer = site.user("ORGANIZER")
    steps.event(site, organizer, "Shown When Asked", days=5)
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage")
    expect(page.get_by_role("link", name="Shown When Asked")).to_be_visible()
    show = page.get_by_label("Show")
    show.focus()
    page.keyboard.press("ArrowDown")
    expect(show).to_have_value("scheduled")
    assert page.evaluate("location.hash") == "#/manage"  # a change event would have led on at once
    expect(show).to_be_focused()

    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Show", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/manage\?show=scheduled$"))
    expect(page.get_by_label("Show")).to_have_value("scheduled")


def test_a_role_button_is_named_first_by_the_words_it_shows(pages, site):
    """WCAG 2.5.3 (axe label-content-name-mismatch): "Make customer" said to voice control
    must find the button that shows it."""
    organizer = site.user("ORGANIZER")
    page = pages.open("desktop")
    steps.log_in(page, site, steps.admin(site))
    page.goto(f"{site.url}/#/admin/users")
    page.get_by_label("Email or name").fill(organizer["email"])
    page.get_by_role("button", name="Search").click()
    buttons = page.locator(f'tr[data-email="{organizer["email"]}"]').get_by_role("button")
    expect(buttons).to_have_count(2)
    for button in buttons.all():
        shown = button.inner_text().strip()
        expect(button).to_have_accessible_name(re.compile(rf"^{re.escape(shown)}\b"))
    expect(page.get_by_role("button", name=f"Make customer: {organizer['email']}")).to_be_visible()
    # the row is drawn again with the new role; the focus stays on its role button
    page.get_by_role("button", name=f"Make customer: {organizer['email']}").click()
    expect(page.get_by_role("button", name=f"Make organizer: {organizer['email']}")).to_be_focused()


def test_the_notice_is_put_in_a_live_region_already_on_the_page(pages, site):
    """A region shown in the step its text is set is not read out by many screen
    readers: the notice line is inside one that is always there and displayed."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Noticed", types=(("Floor", "30.00", 10),))
    page = pages.open("desktop")
    steps.log_in(page, site, organizer["email"])
    page.goto(f"{site.url}/#/manage/{event['id']}/types")
    live = page.locator('[role="status"][aria-live="polite"]').filter(has=page.locator("#notice"))
    expect(live).to_have_count(1)
    expect(page.locator("#notice")).to_be_hidden()
    assert live.evaluate("el => getComputedStyle(el).display") != "none"

    floor = page.locator("form.type", has=page.get_by_role("heading", name="Floor"))
    floor.get_by_label("Price").fill("35.00")
    floor.get_by_role("button", name="Save").click()
    expect(live).to_have_text("Floor saved.")
    expect(page.locator("#notice")).to_be_visible()


def test_a_hold_opened_with_under_a_minute_left_warns_in_sight_at_the_next_tick(pages, site):
    """The one-minute warning is put in its live region by the countdown's ticks, not as
    the region is put on the page (which is not read out); and it is shown, not only said."""
    customer = site.user("CUSTOMER")
    hold_id = held(site, customer, "Last Minute", left=timedelta(seconds=50))
    page = pages.open("desktop")
    page.clock.install()
    steps.log_in(page, site, customer["email"])
    page.clock.pause_at(datetime.now() + timedelta(seconds=1))  # the countdown ticks when the test says
    page.evaluate(f"location.hash = '#/holds/{hold_id}'")
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^0:\d\d$"))
    warning = page.get_by_role("main").locator('[aria-live="polite"]')
    expect(warning).to_have_text("")

    page.clock.run_for(1000)
    expect(warning).to_have_text("One minute left to confirm.")
    box = warning.bounding_box()
    assert box["width"] > 100 and box["height"] > 10, box  # shown, not for screen readers only


def test_a_countdown_of_an_hour_or_more_shows_its_hours(pages, site):
    """A waiting-list offer may last a day: its countdown reads 23:59:59, not 1439:59."""
    customer = site.user("CUSTOMER")
    hold_id = held(site, customer, "A Day to Decide", left=timedelta(days=1))
    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/holds/{hold_id}")
    expect(page.get_by_role("timer")).to_have_text(re.compile(r"^23:59:\d\d$"))


def test_a_seat_shows_it_is_chosen_or_taken_by_more_than_colour(pages, site):
    """WCAG 1.4.1: a chosen seat has a ring, a taken one a hatch and its number struck
    through; with the system's colours forced, a chosen seat is highlighted. The legend
    reads as words, its sample seats for the eye only."""
    organizer, customer = site.user("ORGANIZER"), site.user("CUSTOMER")
    event = steps.event(site, organizer, "Colour Blind", types=(("Seat", "12.00", 4),), days=7, seating="RESERVED")
    put = site.http.put(f"/api/events/{event['id']}/seats", headers=organizer["headers"], json={
        "sections": [{"name": "Hall", "ticketTypeId": event["ticketTypes"][0]["id"], "rows": [{"label": "A", "from": 1, "to": 4}]}]})
    assert put.status_code == 200, put.text
    seats = {seat["number"]: seat["id"] for seat in site.http.get(f"/api/events/{event['id']}/seats").json()}
    booked = site.http.post("/api/bookings", headers=site.user("CUSTOMER")["headers"],
                            json={"eventId": event["id"], "seatIds": [seats[2]]})
    assert booked.status_code == 201, booked.text

    page = pages.open("desktop")
    steps.log_in(page, site, customer["email"])
    page.goto(f"{site.url}/#/events/{event['id']}")
    free = page.get_by_role("button", name="Hall, row A, seat 1, €12.00")
    taken = page.get_by_role("button", name="Hall, row A, seat 2, taken")
    chosen = page.get_by_role("button", name="Hall, row A, seat 3, €12.00")
    chosen.click()
    expect(chosen).to_have_attribute("aria-pressed", "true")

    def look(seat):
        return seat.evaluate(
            """(el) => { const s = getComputedStyle(el);
                return {ring: s.boxShadow, border: s.borderTopWidth, line: s.textDecorationLine,
                        image: s.backgroundImage, background: s.backgroundColor}; }"""
        )

    free_look, chosen_look, taken_look = look(free), look(chosen), look(taken)
    shapes = ("ring", "border")
    assert [free_look[k] for k in shapes] != [chosen_look[k] for k in shapes], (free_look, chosen_look)
    assert "line-through" in taken_look["line"] or "gradient" in taken_look["image"], taken_look
    legend = page.locator(".legend").aria_snapshot()
    assert "free" in legend and "yours" in legend and "1" not in legend, legend

    page.emulate_media(forced_colors="active")
    expect(chosen).to_have_css("forced-color-adjust", "none")
    assert look(chosen)["background"] != look(free)["background"]


def test_the_tickets_table_keeps_its_words_whole_on_a_narrow_screen(pages, site):
    """At 320 px wide no word of the event's Tickets table is broken over two lines
    ("Pri-ce", "L-e-ft"): as the other list tables, it shows a card per type."""
    organizer = site.user("ORGANIZER")
    event = steps.event(site, organizer, "Narrow Room", types=(("Standard", "25.00", 40), ("Front row", "145.00", 10)))
    page = pages.open("phone")
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{site.url}/#/events/{event['id']}")
    table = page.get_by_role("table", name="Tickets")
    expect(table.get_by_role("cell", name=re.compile("145.00"))).to_be_visible()
    broken = table.evaluate(
        """(table) => {
            const broken = [];
            const hidden = (el) => el !== table && (getComputedStyle(el).clipPath !== "none" || hidden(el.parentElement));
            const walker = document.createTreeWalker(table, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                if (hidden(node.parentElement)) continue; // the column names, for screen readers only on a narrow screen
                for (const word of node.textContent.matchAll(/\\S+/g)) {
                    const range = document.createRange();
                    range.setStart(node, word.index);
                    range.setEnd(node, word.index + word[0].length);
                    const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                    if (lines.size > 1) broken.push(word[0]);
                }
            }
            return broken;
        }"""
    )
    assert broken == [], broken
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
