"""Postman's own tools against a live server: what a client who imports the document gets.

1. `flask --app wsgi openapi write` writes the document, as the README tells a Postman
   user to; Postman's converter (openapi-to-postmanv2, pinned in .ci/postman/) makes the
   collection with the Postman app's default import setting (parameters from examples).
2. A gunicorn server on a fresh SQLite database; an organizer, a customer and an admin
   (`flask create-admin`); the organizer's event and the customer's booking: the ids
   of eventbook/examples.py's PARAMETERS.
3. Postman's runner (newman) sends the whole collection as anonymous, then as each role,
   with its token in the collection's {{bearerToken}} and the server in {{baseUrl}}. A
   collection-level test checks every answer: never a 5xx, never a 422 (the examples are
   valid requests), and every error in the JSON envelope {status, code, message, errors}.
   Logout is moved to the end of the collection, since it revokes the run's token.
4. Every operation of the document must have been sent in every run.

    .venv/bin/python .ci/postman.py          # or: make postman; exits non-zero on any finding
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from eventbook.examples import PARAMETERS, SEATED  # noqa: E402
from tests import support  # noqa: E402

TOOLS = ROOT / ".ci" / "postman"
BIN = TOOLS / "node_modules" / ".bin"
PASSWORD = "postman-run-password"
CHECKS = """
const code = pm.response.code;
pm.test("not a server error", () => pm.expect(code).to.be.below(500));
pm.test("the example is not refused as invalid (422)", () => pm.expect(code).to.not.equal(422));
if (code >= 400) {
  pm.test("the error is the JSON envelope", () => {
    const body = pm.response.json();
    pm.expect(body.status).to.equal(code);
    pm.expect(body.code).to.be.a("string");
    pm.expect(body.message).to.be.a("string");
    pm.expect(body.errors).to.be.an("object");
  });
}
"""


def run(*command, **kwargs):
    print("+", " ".join(str(part) for part in command), flush=True)
    return subprocess.run([str(part) for part in command], check=True, **kwargs)


def install_tools():
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed (Node 20): Postman's converter and runner are npm packages")
    if not (BIN / "newman").exists() or not (BIN / "openapi2postmanv2").exists():
        run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=TOOLS)


def requests(items):
    """Every request item of a collection, depth first."""
    for item in items:
        if "item" in item:
            yield from requests(item["item"])
        else:
            yield item


def operation(item):
    request = item["request"]
    return f"{request['method']} /{'/'.join(request['url']['path'])}"


def prepare(collection):
    """The checks on every answer; logout last (it revokes the token the run uses)."""
    collection["event"] = [{"listen": "test", "script": {"type": "text/javascript", "exec": CHECKS.strip().splitlines()}}]

    def without_logout(items):
        kept, moved = [], []
        for item in items:
            if "item" in item:
                item["item"], found = without_logout(item["item"])
                moved += found
                kept.append(item)
            elif operation(item) == "POST /api/auth/logout":
                moved.append(item)
            else:
                kept.append(item)
        return kept, moved

    collection["item"], moved = without_logout(collection["item"])
    collection["item"] += moved
    return collection


def document_operations(document):
    return {f"{method.upper()} {path.replace('{', ':').replace('}', '')}"
            for path, item in document["paths"].items() for method in item if method != "parameters"}


def seed(url, env):
    """The three roles' tokens; the organizer's event (and its first ticket type), the
    customer's booking of it, the customer's hold on a second event, and a third event,
    RESERVED, for the seat map's operations."""
    http = httpx.Client(base_url=url, timeout=30)
    for role in ("ORGANIZER", "CUSTOMER"):
        response = http.post("/api/auth/register", json={"email": f"{role.lower()}@postman.test", "password": PASSWORD,
                                                        "role": role})
        assert response.status_code == 201, response.text
    run(sys.executable, "-m", "flask", "--app", "wsgi", "create-admin", "admin@postman.test", cwd=ROOT,
        env={**env, "ADMIN_PASSWORD": PASSWORD}, stdout=subprocess.DEVNULL)
    tokens = {}
    for role in ("ORGANIZER", "CUSTOMER", "ADMIN"):
        response = http.post("/api/auth/login", json={"email": f"{role.lower()}@postman.test", "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens[role] = response.json()["token"]
    in_a_month = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = http.post("/api/events", headers={"Authorization": f"Bearer {tokens['ORGANIZER']}"},
                      json={"title": "Postman Conf", "date": in_a_month, "location": "Hall 1", "totalTickets": 50})
    assert event.status_code == 201, event.text
    booking = http.post("/api/bookings", headers={"Authorization": f"Bearer {tokens['CUSTOMER']}"},
                        json={"eventId": event.json()["id"], "ticketsCount": 1})
    assert booking.status_code == 201, booking.text
    other = http.post("/api/events", headers={"Authorization": f"Bearer {tokens['ORGANIZER']}"},
                      json={"title": "Postman Fair", "date": in_a_month, "location": "Hall 2", "totalTickets": 50})
    assert other.status_code == 201, other.text
    held = http.post("/api/holds", headers={"Authorization": f"Bearer {tokens['CUSTOMER']}"},
                     json={"eventId": other.json()["id"], "ticketsCount": 1})
    assert held.status_code == 201, held.text
    customer = http.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['CUSTOMER']}"}).json()
    seated = http.post("/api/events", headers={"Authorization": f"Bearer {tokens['ORGANIZER']}"},
                       json={"title": "Postman Opera", "date": in_a_month, "location": "Hall 3", "totalTickets": 26,
                             "seating": "RESERVED"})
    assert seated.status_code == 201, seated.text
    assert {"event_id": seated.json()["id"], "type_id": seated.json()["ticketTypes"][0]["id"]} == SEATED, seated.text
    tickets = http.get(f"/api/bookings/{booking.json()['id']}/tickets",
                       headers={"Authorization": f"Bearer {tokens['CUSTOMER']}"}).json()
    made = {"event_id": event.json()["id"], "booking_id": booking.json()["id"],
            "type_id": event.json()["ticketTypes"][0]["id"], "hold_id": held.json()["id"], "user_id": customer["id"],
            "ticket_id": tickets[0]["id"]}
    expected = {name: PARAMETERS[name] for name in made}
    assert made == expected, f"examples.py's ids are {expected}, the run made {made}: keep them and this seed together"
    return tokens


def main():
    install_tools()
    work = Path(tempfile.mkdtemp(prefix="eventbook-postman-"))
    database = support.create_database("sqlite", work)
    env = {**os.environ, "DATABASE_URL": database, "JWT_SECRET_KEY": "postman-ci-secret-0123456789abcdefghijklmnop",
           "BCRYPT_ROUNDS": "4", "RATELIMIT_ENABLED": "false", "LOG_FORMAT": "json"}
    env.pop("FLASK_DEBUG", None)

    run(sys.executable, "-m", "flask", "--app", "wsgi", "openapi", "write", work / "openapi.json", cwd=ROOT, env=env)
    document = json.loads((work / "openapi.json").read_text())
    run(BIN / "openapi2postmanv2", "-s", work / "openapi.json", "-o", work / "collection.json",
        "-O", "parametersResolution=Example", stdout=subprocess.DEVNULL)
    collection = prepare(json.loads((work / "collection.json").read_text()))
    (work / "collection.json").write_text(json.dumps(collection, indent=1))
    declared = {variable["key"] for variable in collection.get("variable", [])}
    assert {"baseUrl", "bearerToken"} <= declared, f"the collection declares {declared}"
    names = {item["id"]: operation(item) for item in requests(collection["item"])}

    server = support.Server(database, workers=1, threads=8, log_path=work / "server.log")
    problems = []
    try:
        server.start()
        tokens = seed(server.url, env)
        # The customer books before the organizer's run cancels the event (DELETE); the admin's comes last.
        tokens = {"anonymous": "", **{role: tokens[role] for role in ("CUSTOMER", "ORGANIZER", "ADMIN")}}
        for role, token in tokens.items():
            report = work / f"newman-{role}.json"
            result = subprocess.run([str(BIN / "newman"), "run", str(work / "collection.json"),
                                     "--env-var", f"baseUrl={server.url}", "--env-var", f"bearerToken={token}",
                                     "--reporters", "cli,json", "--reporter-json-export", str(report),
                                     "--disable-unicode", "--color", "off"], capture_output=True, text=True)
            run_data = json.loads(report.read_text())["run"]
            sent = [(names.get(e["item"]["id"], e["item"]["name"]), e.get("response", {}).get("code"))
                    for e in run_data["executions"]]
            statuses = Counter(code for _, code in sent)
            print(f"newman as {role}: {len(sent)} requests, answers {dict(sorted(statuses.items(), key=str))}, "
                  f"{len(run_data['failures'])} failures (exit {result.returncode})")
            for failure in run_data["failures"]:
                source = failure.get("source", {})
                problems.append(f"{role}: {names.get(source.get('id'), source.get('name'))}: "
                                f"{failure['error'].get('test') or failure['error'].get('name')}: {failure['error'].get('message')}")
            unsent = document_operations(document) - {name for name, code in sent if code is not None}
            problems += [f"{role}: {name} was not sent (or got no answer)" for name in sorted(unsent)]
            if result.returncode and not run_data["failures"]:
                problems.append(f"{role}: newman exited {result.returncode}:\n{result.stdout[-2000:]}")
    finally:
        server.stop()
    if problems:
        print("\n".join(["Postman run: problems found", *problems, f"(files in {work})"]), file=sys.stderr)
        raise SystemExit(1)
    print(f"Postman run: {len(document_operations(document))} operations, {len(tokens)} runs, no problem")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
