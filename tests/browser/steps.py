"""What the browser tests do often: log in through the page, set the scene through the API."""

import re
import uuid
from datetime import datetime, timedelta

from playwright.sync_api import expect

from tests import support

TIMER = re.compile(r"^\d+:\d\d$")


def log_in(page, site, email, password=support.PASSWORD):
    """Log in through the page's form; returns when the page shows the account."""
    page.goto(f"{site.url}/#/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def event(site, organizer, title, types=(("General admission", "0.00", 100),), days=30, **fields):
    """An event made through the API: ticket types as (name, price, quantity)."""
    body = {
        "title": title,
        "description": fields.pop("description", "An evening to remember"),
        "date": fields.pop("date", None) or support.in_days(days),
        "location": fields.pop("location", "Town Hall"),
        "totalTickets": sum(quantity for _, _, quantity in types),
        "ticketTypes": [{"name": n, "price": p, "quantity": q} for n, p, q in types],
        **fields,
    }
    response = site.http.post("/api/events", json=body, headers=organizer["headers"])
    assert response.status_code == 201, response.text
    return response.json()


def admin(site):
    """An ADMIN, made the only way there is: `flask create-admin`, on the site's database."""
    from eventbook import create_app, database

    app = create_app(support.test_config(site.database_url))
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    result = app.test_cli_runner().invoke(args=["create-admin", email, "--password", support.PASSWORD])
    assert result.exit_code == 0, result.output
    app.extensions["eventbook.sweeper"].stop()
    app.extensions["notifications"].shutdown(timeout=5)
    with app.app_context():
        database.dispose()
    return email


def local_input(days):
    """The value of a datetime-local input `days` from now (the browser's clock is this machine's)."""
    return (datetime.now() + timedelta(days=days)).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


def tab_to(page, name, limit=60):
    """Press Tab until the focused element is the control called `name` (a keyboard user's
    way there); fails if it is not reached in `limit` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const el = document.activeElement;"
            " return el ? (el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent || '').trim() : ''; }"
        )
        if focused == name:
            return
    raise AssertionError(f"{name!r} was not reached with {limit} presses of Tab")
