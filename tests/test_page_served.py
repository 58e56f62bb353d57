"""The web page as the server hands it out (no browser needed; tests/browser drives it in
Chromium): one HTML document at /, its files under /static/, a Content-Security-Policy
with nothing inline allowed."""

import re

from eventbook.page import FEATURES

MODULE_IMPORT = re.compile(r'^import .* from "\./([\w-]+\.js)";$', re.M)


def test_the_page_is_served_at_the_root_with_a_strict_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    html = response.get_data(as_text=True)
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/static/js/app.js">']
    assert not re.search(r"\s(style|on\w+)=", html)  # no inline style or event handler either


def test_every_module_and_file_the_page_loads_is_served_with_its_type(client):
    html = client.get("/").get_data(as_text=True)
    for path in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
        assert client.get(path).status_code == 200, path
    seen, queue = set(), ["app.js"]
    while queue:
        name = queue.pop()
        response = client.get(f"/static/js/{name}")
        assert response.status_code == 200, name
        assert response.mimetype == "text/javascript", name  # module scripts need it (nosniff)
        seen.add(name)
        queue += [m for m in MODULE_IMPORT.findall(response.get_data(as_text=True)) if m not in seen]
    assert {"api.js", "events.js", "bookings.js", "manage.js", "admin.js", "seats.js"} <= seen


def test_the_page_lists_the_features_whose_routes_exist(app, client):
    html = client.get("/").get_data(as_text=True)
    listed = re.search(r'data-features="([^"]*)"', html).group(1).split()
    routes = {re.sub(r"<[^>]+>", "{}", rule.rule) for rule in app.url_map.iter_rules()}
    assert listed == [name for name, route in FEATURES.items() if route in routes]
    assert "waitlist" in listed


def test_a_missing_file_is_a_json_404_and_the_api_keeps_its_own_policy(client):
    response = client.get("/static/js/nothing.js")
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"
    api = client.get("/api/events")
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
