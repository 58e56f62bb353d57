"""A forgotten password reset in a real Chromium (live gunicorn, SQLite), with the code
of the email the server really sent (tests/smtp.py): asked for from the login form, set
with the code typed in or with the email's link, which fills it in; a wrong or used code
said at its field; afterwards the old password refused and the new one taken."""

import re

import pytest
from playwright.sync_api import expect

from tests import live, support
from tests.browser import steps
from tests.smtp import SMTPServer

pytestmark = pytest.mark.slow
ASK = "/api/auth/password/reset"
CONFIRM = "/api/auth/password/reset/confirm"
LOGIN = "/api/auth/login"
NEW_PASSWORD = "a-fresh-horse-battery"
CODE = re.compile(r"\b\d+\.\d+\.[A-Za-z0-9_-]{43}\b")
REFUSED = "This code is wrong, used or expired: ask for a new one"


@pytest.fixture(scope="module")
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory, smtp):
    """conftest's `site`, its email sent to `smtp` and its links made with its own address
    (PUBLIC_URL): the port is chosen before the server starts, which live.start cannot do."""
    tmp = tmp_path_factory.mktemp("password_reset-sqlite")
    database_url = support.create_database("sqlite", tmp)
    port = support.free_port()
    server = support.Server(database_url, port=port, log_path=tmp / "server.log",
                            env={**smtp.env(), "PUBLIC_URL": f"http://127.0.0.1:{port}"})
    running = live.Live(server, database_url, server.log_path)
    try:
        server.start()
        yield running
    finally:
        live.stop(running)


def reset_email(smtp, address):
    """The text of the password reset email that `address` received."""
    def arrived():
        return next((m for m in smtp.messages if address in m["To"] and m["Subject"] == "Reset your password"), None)

    message = support.wait_until(arrived, message=f"a password reset email to {address}")
    return message.get_body(("plain",)).get_content()


def error_of(page, control):
    """The message slot that forms.js fills next to `control`."""
    return page.locator(f"#{control.get_attribute('id')}-error")


def log_in_fails(page, site, email, password):
    page.goto(f"{site.url}/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("form .error")).to_have_text("Invalid email or password")


def test_a_customer_asks_for_a_code_from_the_login_form_and_sets_a_new_password(pages, site, smtp):
    customer = site.user("CUSTOMER")  # its API login is one the reset ends
    page = pages.open()
    page.watch.refusal(401, LOGIN)
    page.watch.refusal(422, CONFIRM)
    page.watch.refusal(403, CONFIRM)

    page.goto(f"{site.url}/#/login")
    page.get_by_role("link", name="Forgot your password?").click()
    heading = page.get_by_role("heading", name="Forgot your password?")
    expect(heading).to_be_focused()
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("type", "email")
    email.fill(customer["email"])
    page.get_by_role("button", name="Email me a code").click()

    # The server's answer, in the live notice line; the user stays on the view.
    live_line = page.locator('[role="status"][aria-live="polite"]')
    expect(live_line).to_contain_text("If an account has this address, an email with a code to reset its password is on its way")
    expect(page).to_have_url(re.compile(r"#/forgot-password$"))
    expect(heading).to_be_focused()
    expect(page.get_by_role("main").locator("p.error")).to_be_hidden()

    code = CODE.search(reset_email(smtp, customer["email"]))[0]
    page.get_by_role("link", name="I have a code").click()
    expect(page.get_by_role("heading", name="Reset password")).to_be_focused()
    code_field = page.get_by_label("Code", exact=True)
    new = page.get_by_label("New password", exact=True)
    expect(code_field).to_have_value("")
    expect(new).to_have_attribute("type", "password")
    expect(new).to_have_attribute("autocomplete", "new-password")

    # A password that breaks the rules: said at its field.
    code_field.fill(code)
    new.fill("short")
    page.get_by_role("button", name="Reset password").click()
    expect(error_of(page, new)).to_contain_text("Must be 8 to 72 bytes long.")
    expect(new).to_have_attribute("aria-invalid", "true")
    expect(new).to_be_focused()

    new.fill(NEW_PASSWORD)
    page.keyboard.press("Enter")
    expect(live_line).to_contain_text("Your password is reset: log in with the new one.")
    expect(page).to_have_url(re.compile(r"#/login$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_focused()

    # Every login of the account ended; the old password is refused, the new one taken.
    assert site.http.get("/api/auth/me", headers=customer["headers"]).status_code == 401
    log_in_fails(page, site, customer["email"], support.PASSWORD)
    steps.log_in(page, site, customer["email"], NEW_PASSWORD)
    expect(page.locator("#nav .who")).to_contain_text(customer["email"])

    # The code worked once.
    page.goto(f"{site.url}/#/reset-password?code={code}")
    page.get_by_label("New password", exact=True).fill("yet-another-password")
    page.get_by_role("button", name="Reset password").click()
    expect(error_of(page, page.get_by_label("Code", exact=True))).to_have_text(REFUSED)


def test_a_wrong_code_is_said_at_its_field(pages, site):
    page = pages.open("phone")
    page.watch.refusal(403, CONFIRM)
    page.goto(f"{site.url}/#/reset-password")
    code = page.get_by_label("Code", exact=True)
    new = page.get_by_label("New password", exact=True)

    steps.tab_to(page, "Code")
    page.keyboard.type("1.1700000000.not-the-code")
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    expect(error_of(page, code)).to_have_text(REFUSED)
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(code).to_be_focused()
    expect(new).not_to_have_attribute("aria-invalid", "true")
    expect(error_of(page, new)).to_be_hidden()

    # The way to a new code, from there.
    page.get_by_role("link", name="Ask for a new one.").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_focused()


def test_an_address_left_out_is_said_at_its_field(pages, site):
    page = pages.open()
    page.watch.refusal(422, ASK)
    page.goto(f"{site.url}/#/forgot-password")
    email = page.get_by_label("Email")
    page.get_by_role("button", name="Email me a code").click()
    expect(error_of(page, email)).not_to_be_empty()
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(page.locator("#notice")).to_be_hidden()


def test_the_emails_link_opens_the_reset_view_with_the_code_filled_in(pages, site, smtp):
    organizer = site.user("ORGANIZER")
    asked = site.http.post(ASK, json={"email": organizer["email"]})
    assert asked.status_code == 202, asked.text
    text = reset_email(smtp, organizer["email"])
    link = re.search(r"https?://\S+", text)[0]
    code = CODE.search(text)[0]
    assert link == f"{site.url}/#/reset-password?code={code}", text

    page = pages.open("phone")
    page.goto(link)
    expect(page.get_by_role("heading", name="Reset password")).to_be_visible()
    expect(page.get_by_label("Code", exact=True)).to_have_value(code)
    new = page.get_by_label("New password", exact=True)
    new.fill(NEW_PASSWORD)
    new.press("Enter")
    expect(page.locator("#notice")).to_have_text("Your password is reset: log in with the new one.")
    steps.log_in(page, site, organizer["email"], NEW_PASSWORD)
