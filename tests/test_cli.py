"""The `flask` commands, through `app.test_cli_runner()`, checked through the API.

Each test runs on SQLite and PostgreSQL; the conftest checks the ticket invariant
after each one (seed-demo writes bookings directly, so it must keep it too)."""

import json

import pytest
import sqlalchemy as sa

from eventbook import create_app
from eventbook.extensions import db
from eventbook.models import Booking, Event, Notification, User
from tests import support


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def login(client, email, password):
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return body["user"], {"Authorization": f"Bearer {body['token']}"}


# -- seed-demo -------------------------------------------------------------------


def test_seed_demo_creates_what_the_api_shows(app, client):
    result = invoke(app, "seed-demo", "--customers", "5", "--events", "3", "--bookings", "6")
    assert result.exit_code == 0, result.output
    assert "5 customers, 3 events, 6 bookings" in result.output
    assert "password: demo-password" in result.output

    events = client.get("/api/events?perPage=100")
    assert events.status_code == 200
    listed = events.get_json()
    assert events.headers["X-Total-Count"] == "3"
    assert sorted(e["title"] for e in listed) == ["Demo event 0", "Demo event 1", "Demo event 2"]

    with app.app_context():
        organizer = db.session.scalar(sa.select(User).where(User.role == "ORGANIZER"))
        customers = db.session.scalars(sa.select(User).where(User.role == "CUSTOMER")).all()
        bookings = db.session.scalars(sa.select(Booking)).all()
        per_customer = {c.email: sum(1 for b in bookings if b.user_id == c.id) for c in customers}
        sold = {e.id: sum(b.tickets_count for b in bookings if b.event_id == e.id)
                for e in db.session.scalars(sa.select(Event)).all()}
        organizer_email = organizer.email
        notifications = db.session.scalar(sa.select(sa.func.count()).select_from(Notification))
    assert organizer_email in result.output
    assert len(customers) == 5 and len(bookings) == 6
    assert notifications == 6  # each demo booking is confirmed like any other

    # the API agrees with what was written: tickets left = total - booked
    for event in listed:
        assert event["availableTickets"] == event["totalTickets"] - sold[event["id"]]

    # the demo accounts work with the demo password, and see their bookings
    _, headers = login(client, organizer_email, "demo-password")
    assert client.get("/api/auth/me", headers=headers).get_json()["role"] == "ORGANIZER"
    email, count = max(per_customer.items(), key=lambda item: item[1])
    _, headers = login(client, email, "demo-password")
    mine = client.get("/api/bookings/my-bookings?perPage=100", headers=headers)
    assert mine.status_code == 200 and len(mine.get_json()) == count


def test_seed_demo_twice_adds_a_second_set(app, client):
    """Running it again (even within the same second) adds new demo accounts."""
    for _ in range(2):
        result = invoke(app, "seed-demo", "--customers", "2", "--events", "1", "--bookings", "2")
        assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    with app.app_context():
        organizers = db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.role == "ORGANIZER"))
    assert organizers == 2
    assert client.get("/api/events").headers["X-Total-Count"] == "2"


def test_seed_demo_says_why_it_made_fewer_bookings_than_asked(app, client):
    result = invoke(app, "seed-demo", "--customers", "2", "--events", "1", "--bookings", "5")
    assert result.exit_code == 0, result.output
    assert "1 events, 2 bookings" in result.output
    assert "3 bookings fewer than the 5 asked for: 2 customers x 1 events allow 2" in result.output
    event = client.get("/api/events").get_json()[0]
    assert event["availableTickets"] < event["totalTickets"]


def test_seed_demo_rejects_negative_sizes(app):
    result = invoke(app, "seed-demo", "--customers", "-1")
    assert result.exit_code == 2
    assert "--customers" in result.output


@pytest.mark.parametrize("password", ["", "short", "x" * 73], ids=["empty", "short", "73 bytes"])
def test_seed_demo_takes_a_password_as_registration_does(app, password):
    result = invoke(app, "seed-demo", "--customers", "1", "--events", "1", "--password", password)
    assert result.exit_code == 2, f"{result.output}{result.exception!r}"
    assert "Error: Invalid value for '--password': Must be 8 to 72 bytes long." in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0  # nothing was created


# -- create-admin ----------------------------------------------------------------


def test_create_admin_makes_an_admin_who_can_log_in(app, client):
    result = invoke(app, "create-admin", "Root@Example.com", "--password", support.PASSWORD, "--name", "Root")
    assert result.exit_code == 0, result.output
    assert "Created admin root@example.com" in result.output
    user, headers = login(client, "root@example.com", support.PASSWORD)
    assert user["role"] == "ADMIN"


def test_create_admin_with_a_short_password_fails_clearly(app, client):
    result = invoke(app, "create-admin", "short@example.com", "--password", "short")
    assert result.exit_code != 0
    assert "Error:" in result.output and "8 to 72 bytes" in result.output
    assert "Traceback" not in result.output
    response = client.post("/api/auth/login", json={"email": "short@example.com", "password": "short"})
    assert response.status_code == 401  # nothing was created


def test_create_admin_with_a_bad_email_fails_clearly(app):
    result = invoke(app, "create-admin", "not-an-email", "--password", support.PASSWORD)
    assert result.exit_code != 0
    assert "Not a valid email address" in result.output


def test_create_admin_takes_a_name_as_registration_does(app, client):
    """At most 100 characters (the column's size), as POST /api/auth/register takes it."""
    result = invoke(app, "create-admin", "long@example.com", "--password", support.PASSWORD, "--name", "x" * 101)
    assert result.exit_code == 2, f"{result.output}{result.exception!r}"
    assert "Error: Invalid value for '--name': Longer than maximum length 100." in result.output
    response = client.post("/api/auth/login", json={"email": "long@example.com", "password": support.PASSWORD})
    assert response.status_code == 401  # nothing was created

    result = invoke(app, "create-admin", "long@example.com", "--password", support.PASSWORD, "--name", "x" * 100)
    assert result.exit_code == 0, result.output
    _, headers = login(client, "long@example.com", support.PASSWORD)
    assert client.get("/api/auth/me", headers=headers).get_json()["name"] == "x" * 100


def test_create_admin_reads_the_password_from_the_environment(app, client):
    result = app.test_cli_runner().invoke(args=["create-admin", "env@example.com"],
                                          env={"ADMIN_PASSWORD": support.PASSWORD})
    assert result.exit_code == 0, result.output
    assert login(client, "env@example.com", support.PASSWORD)[0]["role"] == "ADMIN"


def test_create_admin_with_an_email_taken_fails_clearly(app, client):
    assert invoke(app, "create-admin", "taken@example.com", "--password", support.PASSWORD).exit_code == 0
    result = invoke(app, "create-admin", "taken@example.com", "--password", support.PASSWORD)
    assert result.exit_code == 1
    assert "Error: An account with this email already exists" in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a clean exit, not a crash


# -- notifications ---------------------------------------------------------------


def test_notifications_retry_prints_a_count_and_requeues(app, client, customer, make_event, wait_for_notifications):
    assert invoke(app, "notifications", "retry").output.strip() == "0 failed notification(s) queued again"

    event = make_event(totalTickets=5)
    booked = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=customer.headers)
    assert booked.status_code == 201
    note = wait_for_notifications(customer, 1)[0]
    with app.app_context():  # as if every attempt had failed
        db.session.execute(sa.update(Notification).where(Notification.id == note["id"])
                           .values(status="FAILED", last_error="SMTPDataError: 550", attempts=5))
        db.session.commit()

    status = invoke(app, "notifications", "status")
    assert status.exit_code == 0, status.output
    assert "FAILED: 1" in status.output

    result = invoke(app, "notifications", "retry")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 failed notification(s) queued again"

    def sent_again():
        notes = client.get("/api/notifications", headers=customer.headers).get_json()
        return [n for n in notes if n["id"] == note["id"] and n["status"] == "SENT" and n["attempts"] == 1]

    support.wait_until(sent_again, 15, message="the retried notification to be SENT")


@pytest.mark.postgresql_only("SQLite's lock is its busy timeout")
@pytest.mark.parametrize("config_overrides", [{"DB_LOCK_TIMEOUT_SECONDS": 1}], ids=["lock-timeout-1s"])
def test_a_command_held_up_by_a_lock_stops_in_one_line_and_changes_nothing(app, database_url, client, customer,
                                                                          make_event, wait_for_notifications):
    event = make_event(totalTickets=5)
    booked = client.post("/api/bookings", json={"eventId": event["id"], "ticketsCount": 1}, headers=customer.headers)
    assert booked.status_code == 201
    note = wait_for_notifications(customer, 1)[0]
    with app.app_context():
        db.session.execute(sa.update(Notification).where(Notification.id == note["id"]).values(status="FAILED"))
        db.session.commit()
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as locking:  # a psql session holding the row
            locking.execute(sa.text("SELECT id FROM notifications WHERE id = :id FOR UPDATE"), {"id": note["id"]})
            result = invoke(app, "notifications", "retry")
            locking.rollback()
    finally:
        engine.dispose()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    lines = [line for line in result.output.splitlines() if line.startswith("eventbook:")]
    assert len(lines) == 1 and "lock" in lines[0], result.output
    assert "FAILED: 1" in invoke(app, "notifications", "status").output
    assert invoke(app, "notifications", "retry").output.strip() == "1 failed notification(s) queued again"


# -- without a usable database --------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def unusable(request, tmp_path):
    """(app, the driver's reason) for an app whose database cannot be used: PostgreSQL on a
    port where nothing listens, or an SQLite file that is not a database."""
    if request.param == "postgresql":
        url, reason = f"postgresql://postgres:s3cret@127.0.0.1:{support.free_port()}/eventbook", "Connection refused"
    else:
        (tmp_path / "notes.txt").write_text("not a database\n")
        url, reason = f"sqlite:///{tmp_path / 'notes.txt'}", "file is not a database"
    app = create_app(support.test_config(url))
    yield app, reason
    support.stop_background(app)


@pytest.mark.parametrize("args", [
    ["notifications", "status"], ["notifications", "retry"], ["create-admin", "root@example.com", "--password", support.PASSWORD],
    ["seed-demo"], ["db", "upgrade"],
], ids=" ".join)
def test_every_command_says_in_one_line_that_it_cannot_connect(unusable, args):
    app, reason = unusable
    result = invoke(app, *args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    lines = [line for line in result.output.splitlines() if line.startswith("eventbook:")]
    assert len(lines) == 1 and lines[0].startswith("eventbook: cannot connect to DATABASE_URL"), result.output
    assert reason in lines[0] and "s3cret" not in result.output


# -- openapi ---------------------------------------------------------------------


def test_openapi_write_makes_a_document_for_postman(app, tmp_path):
    target = tmp_path / "openapi.json"
    result = invoke(app, "openapi", "write", str(target))
    assert result.exit_code == 0, result.output
    document = json.loads(target.read_text())
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "eventbook" and document["info"]["version"]
    for path in ("/api/auth/register", "/api/auth/login", "/api/events", "/api/events/{event_id}",
                 "/api/bookings", "/api/bookings/my-bookings", "/api/bookings/{booking_id}/cancel",
                 "/api/notifications", "/api/health"):
        assert path in document["paths"], f"{path} missing from {sorted(document['paths'])}"
    assert "post" in document["paths"]["/api/bookings"]
    schemes = document.get("components", {}).get("securitySchemes", {})
    assert any(s.get("scheme") == "bearer" for s in schemes.values()), schemes
    # Postman's import: baseUrl from the first server (make run's address), and the
    # server's variables become collection variables, its bearer token among them.
    assert document["servers"][0]["url"] == "http://127.0.0.1:5000"
    assert "bearerToken" in document["servers"][0]["variables"]


def test_serving_the_document_does_not_change_the_one_written(app, client, tmp_path):
    """The served document names this deployment; the written one still names make run's
    address, whatever was served before in the same process."""
    assert client.get("/api/openapi.json").get_json()["servers"][0]["url"] == "/"
    target = tmp_path / "openapi.json"
    assert invoke(app, "openapi", "write", str(target)).exit_code == 0
    assert json.loads(target.read_text())["servers"][0]["url"] == "http://127.0.0.1:5000"


def test_every_operation_of_the_document_has_its_request_examples(app, tmp_path):
    """What Postman sends for each operation (eventbook/examples.py): a body example
    wherever there is a body, and an example for every path parameter."""
    target = tmp_path / "openapi.json"
    assert invoke(app, "openapi", "write", str(target)).exit_code == 0
    document = json.loads(target.read_text())
    missing = []
    for path, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method == "parameters":
                continue
            name = f"{method.upper()} {path}"
            for parameter in shared + operation.get("parameters", []):
                if parameter["in"] == "path" and "example" not in parameter:
                    missing.append(f"{name}: path parameter {parameter['name']}")
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                if "example" not in content:
                    missing.append(f"{name}: {media} body")
    assert not missing, f"add them to eventbook/examples.py: {missing}"


def test_the_served_document_names_this_deployment_never_the_requests_host(client):
    response = client.get("/api/openapi.json", base_url="https://attacker.example.net")
    assert response.status_code == 200
    servers = response.get_json()["servers"]
    assert [server["url"] for server in servers] == ["/"]  # relative to where the document is read
    assert "bearerToken" in servers[0]["variables"]


def test_the_document_lists_itself_and_swagger_ui_as_they_answer(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path, media in (("/api/openapi.json", "application/json"), ("/api/docs", "text/html")):
        assert list(paths[path]) == ["get"], path
        documented = paths[path]["get"]["responses"]
        response = client.get(path)
        assert str(response.status_code) in documented and response.mimetype == media, path
        assert media in documented[str(response.status_code)]["content"], path


@pytest.mark.parametrize("config_overrides", [{"PUBLIC_URL": "https://events.example.com"}])
def test_the_served_document_names_the_public_url(client):
    response = client.get("/api/openapi.json", base_url="https://attacker.example.net")
    assert [server["url"] for server in response.get_json()["servers"]] == ["https://events.example.com"]
