"""The web page: one HTML document at `/`, its scripts and styles under `/static/`.

A plain Flask blueprint, outside the OpenAPI document (as health.py's `assets`). The
page is a client of the API on the same origin, like any other: it holds no state of
its own on the server. Its Content-Security-Policy (eventbook/web.py: PAGE_CSP) allows
scripts and styles from this origin only, so nothing here may be inline.
"""

import re

from flask import Blueprint, current_app, render_template

blp = Blueprint("page", __name__, static_folder="static", static_url_path="/static", template_folder="templates")

# Parts of the page that need an endpoint some deployments may not have yet: the page
# shows each part only when the app serves its route (listed in <body data-features>).
FEATURES = {
    "waitlist": "/api/events/{}/waitlist",
    "seats": "/api/events/{}/seats",
    "tickets": "/api/bookings/{}/tickets/{}/qr",
    "checkin": "/api/events/{}/check-ins",
    "csv": "/api/events/{}/attendees.csv",
    "stats": "/api/events/{}/stats",
    "adminstats": "/api/admin/stats",
}
VARIABLE = re.compile(r"<[^>]+>")


def features(app):
    """The names of FEATURES whose route this app serves, space-separated."""
    if "eventbook.page.features" not in app.extensions:
        routes = {VARIABLE.sub("{}", rule.rule) for rule in app.url_map.iter_rules()}
        app.extensions["eventbook.page.features"] = " ".join(
            name for name, route in FEATURES.items() if route in routes)
    return app.extensions["eventbook.page.features"]


@blp.route("/")
def index():
    """The page: everything else happens in its script, against /api."""
    return render_template("index.html", features=features(current_app))


@blp.route("/favicon.ico")
def favicon():
    """The site's icon where a browser asks for it unbidden (Swagger UI's page names none)."""
    return blp.send_static_file("favicon.svg")
