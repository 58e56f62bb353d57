"""The page's session in a real Chromium (live gunicorn, SQLite): the access token in
memory only, the refresh cookie after a reload, tabs that refresh one at a time, a
replayed refresh cookie that ends the login cleanly, logging out."""

import pytest
from playwright.sync_api import expect

from tests.browser import steps

pytestmark = pytest.mark.slow


def shows_account(page, email):
    expect(page.locator("#nav .who")).to_contain_text(email)


def test_a_reload_keeps_the_login_and_tabs_opened_at_once_all_stay_logged_in(pages, site):
    customer = site.user("CUSTOMER")
    page = pages.open()
    steps.log_in(page, site, customer["email"])
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert "eyJ" not in stored  # no token (a JWT starts with eyJ) in any storage

    page.reload()
    shows_account(page, customer["email"])

    # Four more tabs load at the same moment: each refreshes with the one cookie, in turn.
    tabs = [pages.open(context=page.context) for _ in range(4)]
    for tab in tabs:
        tab.goto(f"{site.url}/#/bookings", wait_until="commit")
    page.get_by_role("link", name="My bookings").click()
    for tab in (page, *tabs):
        expect(tab.get_by_role("heading", name="My bookings")).to_be_visible()
        expect(tab.get_by_text("No bookings yet.")).to_be_visible()
        expect(tab.locator("#notice")).to_be_hidden()


def test_a_replayed_refresh_cookie_ends_the_login_cleanly(pages, site):
    customer = site.user("CUSTOMER")
    page = pages.open()
    steps.log_in(page, site, customer["email"])
    stolen = page.context.cookies()
    page.reload()  # the page refreshes: the cookie it used is rotated away
    shows_account(page, customer["email"])

    # The old cookie comes back (a copy an attacker kept): the server takes it as theft.
    page.context.add_cookies(stolen)
    page.watch.refusal(401, "/api/auth/refresh")
    page.reload()
    expect(page.locator("#notice")).to_contain_text("You were logged out")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    # Every token of that login is revoked, the ones the page rotated to included.
    page.reload()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_log_out_ends_the_session_and_a_reload_does_not_try_to_resume_it(pages, site):
    customer = site.user("CUSTOMER")
    page = pages.open("phone")
    steps.log_in(page, site, customer["email"])
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"].startswith("eventbook_")]

    refreshes = []
    page.on("request", lambda request: refreshes.append(request.url) if "/api/auth/refresh" in request.url else None)
    page.reload()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("heading", name="Upcoming events")).to_be_visible()
    assert refreshes == []


def test_a_reload_during_a_network_blip_keeps_the_login_or_says_why_not(pages, site):
    """The first refresh after a reload is lost on the way: the page asks again and the
    login carries on. While the server stays out of reach, the page says so instead of
    showing the user as logged out without a word; a later reload resumes the login."""
    customer = site.user("CUSTOMER")
    page = pages.open()
    steps.log_in(page, site, customer["email"])
    page.watch.lost("/api/auth/refresh")
    lost = []

    def lose(route, times):
        if len(lost) < times:
            lost.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/api/auth/refresh", lambda route: lose(route, 1))
    page.reload()
    shows_account(page, customer["email"])
    assert len(lost) == 1
    expect(page.locator("#notice")).to_be_hidden()

    page.unroute("**/api/auth/refresh")
    lost.clear()
    page.route("**/api/auth/refresh", lambda route: lose(route, 99))
    page.reload()
    # The page asks three times, 1 and 3 s apart (api.js `resume`): past the default 5 s on a loaded machine.
    expect(page.locator("#notice")).to_contain_text("The server could not be reached", timeout=15_000)
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    assert len(lost) == 3  # asked three times in all
    page.unroute("**/api/auth/refresh")
    page.reload()
    shows_account(page, customer["email"])
