"""A real Chromium (Debian's package, headless, driven by Playwright) against a live
gunicorn. Without /usr/bin/chromium the browser tests are skipped with a message saying
how to enable them; in CI (CI=true) they fail instead.

One backend is enough here: the page is a client of the API, whose behaviour on both
databases the rest of the suite covers. Each module gets one server on SQLite.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from tests import live, support

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
HOW_TO_ENABLE = "`apt-get install chromium` (as root) enables them"
# No background traffic of the browser's own: every request a test sees is the page's.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2},
}
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")
# The page asks for the customer's waiting-list entry on every event it shows them: a 404
# when there is none, which the browser logs as an error (events.js `waitlist`).
NO_ENTRY = re.compile(r"/api/events/\d+/waitlist/me")


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: {HOW_TO_ENABLE}"
        if support.IN_CI:
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(f"Browser tests skipped: {reason}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory, request):
    """A live gunicorn on a fresh SQLite database, for the tests of one module."""
    running = live.start("sqlite", tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1], workers=2)
    yield running
    live.stop(running)


class Watch:
    """What a page did that it should not: console errors, uncaught exceptions, requests
    to another origin. An API refusal the test provokes on purpose is declared with
    `refusal(status, path)`: the browser logs every 4xx as a console error."""

    def __init__(self, page, origin):
        self.origin = origin
        self.problems = []
        self.refusals = set()
        self.losses = set()
        page.on("console", self.console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("request", self.request)

    def refusal(self, status, path):
        self.refusals.add((status, path))

    def lost(self, path):
        """Requests to `path` that the test cuts off after the server answered them (the
        browser logs each as a failed load)."""
        self.losses.add(path)

    def console(self, message):
        if message.type not in ("error", "warning"):
            return
        refused = REFUSED.match(message.text)
        path = urlsplit(message.location.get("url", "")).path
        if refused and (int(refused.group(1)), path) in self.refusals:
            return
        if refused and refused.group(1) == "404" and NO_ENTRY.fullmatch(path):
            return
        if message.text.startswith("Failed to load resource: net::") and path in self.losses:
            return
        self.problems.append(f"console {message.type}: {message.text} ({message.location.get('url')})")

    def request(self, request):
        url = request.url
        same = url.startswith(self.origin + "/") or url.startswith(f"blob:{self.origin}/")
        if not same:
            self.problems.append(f"request to another origin: {request.method} {url}")


class Pages:
    """pages.open("phone") -> a new page in its own browser context (its own cookies);
    at the end of the test, each page must have had no console error and no request
    to another origin."""

    def __init__(self, browser, site):
        self.browser = browser
        self.site = site
        self.opened = []

    def open(self, viewport="desktop", context=None):
        context = context or self.browser.new_context(**VIEWPORTS[viewport], accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.watch = Watch(page, self.site.url)
        self.opened.append((context, page))
        return page

    def problems(self):
        return [f"{page.url}: {problem}" for _, page in self.opened for problem in page.watch.problems]

    def close(self):
        for context in {id(c): c for c, _ in self.opened}.values():
            context.close()


@pytest.fixture
def pages(browser, site):
    site.log_offset = site.log_path.stat().st_size if site.log_path.exists() else 0  # quote this test's log only
    site.broken_before = set(support.invariant_violations(site.database_url))
    opened = Pages(browser, site)
    yield opened
    problems = opened.problems()
    opened.close()
    assert not problems, "\n".join(problems) + f"\n--- server log ---\n{site.log()}"
    site.assert_invariant()

