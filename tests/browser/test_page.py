"""The page as a whole in a real Chromium (live gunicorn, SQLite): the README's screenshot,
and a booking made with the keyboard alone."""

import os
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
