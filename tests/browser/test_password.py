"""Changing the password in a real Chromium (live gunicorn, SQLite): reached from the
navigation with the keyboard, refusals shown at the field they are about, and after the
change the old password refused, the new one taken, every other login ended and the
page's own login going on, a reload included."""

import pytest
from playwright.sync_api import expect

from tests import support
from tests.browser import steps

pytestmark = pytest.mark.slow
PATH = "/api/auth/password"
NEW_PASSWORD = "a-new-horse-battery"


def error_of(page, control):
    """The message slot that forms.js fills next to `control`."""
    return page.locator(f"#{control.get_attribute('id')}-error")


def test_a_customer_changes_the_password_and_stays_logged_in(pages, site):
    customer = site.user("CUSTOMER")  # its API login is one the change ends
    page = pages.open()
    page.watch.refusal(403, PATH)
    page.watch.refusal(422, PATH)
    steps.log_in(page, site, customer["email"])

    steps.tab_to(page, "Change password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Change password")).to_be_focused()
    current = page.get_by_label("Current password", exact=True)
    new = page.get_by_label("New password", exact=True)
    expect(current).to_have_attribute("autocomplete", "current-password")
    expect(new).to_have_attribute("autocomplete", "new-password")
    expect(page.get_by_text("8 to 72 bytes")).to_be_visible()
    # The account's address, for a password manager, and out of everyone's way.
    username = page.locator('form input[autocomplete="username"]')
    expect(username).to_have_value(customer["email"])
    expect(username).to_be_hidden()
    box = page.get_by_role("main").locator("p.error")

    # A wrong current password: said at that field, which gets the focus.
    steps.tab_to(page, "Current password")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    expect(error_of(page, current)).to_have_text("The current password is wrong")
    expect(current).to_have_attribute("aria-invalid", "true")
    expect(current).to_be_focused()
    expect(new).not_to_have_attribute("aria-invalid", "true")
    expect(box).to_be_hidden()

    # A new password too short: said at that field; the other's message goes.
    current.fill(support.PASSWORD)
    new.fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(error_of(page, new)).to_contain_text("Must be 8 to 72 bytes long.")
    expect(new).to_have_attribute("aria-invalid", "true")
    expect(new).to_be_focused()
    expect(error_of(page, current)).to_be_hidden()
    expect(current).not_to_have_attribute("aria-invalid", "true")

    # The change: said in the live notice line, the form shown again empty.
    new.fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    live = page.locator('[role="status"][aria-live="polite"]')
    expect(live).to_contain_text("Your password is changed.")
    expect(page.locator("#notice")).to_be_visible()
    expect(page.get_by_label("Current password", exact=True)).to_have_value("")
    expect(page.get_by_label("New password", exact=True)).to_have_value("")
    expect(page.get_by_role("heading", name="Change password")).to_be_focused()
    expect(page.get_by_role("main").locator("p.error")).to_be_hidden()

    # Through the API: the old password refused, the new one taken, the other login ended.
    login = "/api/auth/login"
    assert site.http.post(login, json={"email": customer["email"], "password": support.PASSWORD}).status_code == 401
    taken = site.http.post(login, json={"email": customer["email"], "password": NEW_PASSWORD})
    assert taken.status_code == 200, taken.text
    assert site.http.get("/api/auth/me", headers=customer["headers"]).status_code == 401

    # The page's own login goes on: its requests, and after a reload its refresh cookie.
    page.get_by_role("link", name="My bookings").click()
    expect(page.get_by_text("No bookings yet.")).to_be_visible()
    page.reload()
    expect(page.locator("#nav .who")).to_contain_text(customer["email"])
    expect(page.get_by_role("heading", name="My bookings")).to_be_visible()
    expect(page.get_by_text("No bookings yet.")).to_be_visible()
    expect(page.locator("#notice")).to_be_hidden()


@pytest.mark.parametrize("role", ["ORGANIZER", "ADMIN"])
def test_every_role_is_offered_the_change_and_a_visitor_is_asked_to_log_in(pages, site, role):
    page = pages.open("phone")
    page.goto(f"{site.url}/#/account/password")
    expect(page.get_by_role("heading", name="Please log in")).to_be_visible()
    expect(page.get_by_role("link", name="Change password")).to_have_count(0)

    steps.log_in(page, site, site.user(role)["email"] if role == "ORGANIZER" else steps.admin(site))
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", name="Change password")).to_be_focused()
    expect(page.get_by_role("link", name="Change password")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("button", name="Change password")).to_be_visible()
