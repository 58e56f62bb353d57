"""Password reset by email: POST /api/auth/password/reset asks for it (the same 202
whether an account has the address or not), the email arrives at a real SMTP server
(tests.smtp) with a code, and POST /api/auth/password/reset/confirm sets a new password
with it once, ending every login of the account. The code is in no table and no log.
A reset, or a change, is told to the account's address."""

import logging
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests import support
from tests.support import PASSWORD, ok

ASKED = "If an account has this address, an email with a code to reset its password is on its way"
REFUSED = "This code is wrong, used or expired: ask for a new one"
NEW_PASSWORD = "a-brand-new-password"
CODE = re.compile(r"\b(\d+\.\d+\.[A-Za-z0-9_-]{43})\b")


@pytest.fixture
def settings():
    """Config for one test: parametrize `settings` to change it."""
    return {}


@pytest.fixture
def config_overrides(smtp, settings):
    return {**smtp.config(), **settings}


def ask(client, email, addr="127.0.0.1"):
    response = client.post("/api/auth/password/reset", json={"email": email}, environ_base={"REMOTE_ADDR": addr})
    return response


def reset(client, code, password=NEW_PASSWORD):
    return client.post("/api/auth/password/reset/confirm", json={"code": code, "newPassword": password})


def emails_to(smtp, address, count=1):
    support.wait_until(lambda: len([m for m in smtp.messages if m["To"] == address]) >= count, 15,
                       message=f"{count} emails to {address}")
    return [m for m in smtp.messages if m["To"] == address]


def code_of(message):
    return CODE.search(message.get_body(("plain",)).get_content())[1]


def logs_in(client, email, password):
    return client.post("/api/auth/login", json={"email": email, "password": password}).status_code == 200


def refused(response):
    """The errors of a refused code (403: a code is a credential, as a current password is)."""
    body = response.get_json()
    assert response.status_code == 403, body
    assert body["code"] == "forbidden" and body["message"] == REFUSED and set(body["errors"]) == {"code"}, body
    return body["errors"]["code"]


def invalid(response, field):
    body = response.get_json()
    assert response.status_code == 422, body
    assert body["code"] == "validation_error" and set(body["errors"]) == {field}, body


def test_a_reset_email_sets_a_new_password_once_and_ends_every_login(client, customer, login, smtp):
    other_login = login(customer.email)
    assert ok(ask(client, customer.email), 202) == {"message": ASKED}
    [message] = emails_to(smtp, customer.email)
    assert message["Subject"] == "Reset your password"
    text = message.get_body(("plain",)).get_content()
    assert customer.email in text and "60 minutes" in text and "/api/auth/password/reset/confirm" in text
    code = code_of(message)

    assert reset(client, code).status_code == 204
    assert logs_in(client, customer.email, NEW_PASSWORD)
    assert not logs_in(client, customer.email, PASSWORD)
    for actor in (customer, other_login):  # every login of the account ended
        assert client.get("/api/auth/me", headers=actor.headers).status_code == 401
        assert client.post("/api/auth/refresh", headers=support.bearer(actor.refresh_token)).status_code == 401
    # once: the code was made for the password it replaced
    assert refused(reset(client, code, "yet-another-password")) == [REFUSED]
    assert logs_in(client, customer.email, NEW_PASSWORD)


def test_an_unknown_address_gets_the_same_answer_and_no_email(app, client, customer, smtp):
    unknown = ask(client, "nobody@example.com")
    known = ask(client, customer.email)
    assert (unknown.status_code, unknown.get_json()) == (known.status_code, known.get_json()) == (202, {"message": ASKED})
    emails_to(smtp, customer.email)
    smtp.settle(quiet=0.5)
    assert [m["To"] for m in smtp.messages] == [customer.email]
    assert rows(app, "SELECT recipient FROM notifications WHERE kind = 'PASSWORD_RESET'") == [(customer.email,)]


def test_the_address_is_found_however_it_is_written(client, make_user, smtp):
    user = make_user(email="mixed.case@example.com")
    ok(ask(client, "  Mixed.Case@EXAMPLE.com "), 202)
    emails_to(smtp, user.email)


def test_the_code_is_stored_nowhere_and_logged_nowhere(app, client, customer, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    ok(ask(client, customer.email), 202)
    [message] = emails_to(smtp, customer.email)
    code = code_of(message)
    support.wait_until(lambda: rows(app, "SELECT status FROM notifications") == [("SENT",)], 15, message="SENT")
    for table, in rows(app, "SELECT name FROM sqlite_master WHERE type = 'table'" if app.config[
            "SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
        for row in rows(app, f'SELECT * FROM "{table}"'):
            assert not any(code in str(value) or code.rsplit(".", 1)[1] in str(value) for value in row), table
    ours = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records
                     if not record.name.startswith("mail.log"))  # the test's SMTP server logs what it receives
    assert "Password reset email sent to" in ours and code.rsplit(".", 1)[1] not in ours


def test_a_reset_and_a_change_are_told_to_the_account_by_email_and_neither_is_listed(client, customer, login,
                                                                                     smtp):
    """Whoever changes the password (its owner, or a thief with it or with the inbox),
    the address hears of it; GET /api/notifications lists neither email: a stolen access
    token must not read a reset's code."""
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    assert reset(client, code).status_code == 204
    told = emails_to(smtp, customer.email, 2)[1]
    assert told["Subject"] == "Your password was changed"
    text = told.get_body(("plain",)).get_content()
    assert f"The password of the eventbook account {customer.email} was reset on " in text
    assert code not in text

    again = login(customer.email, NEW_PASSWORD)
    assert client.post("/api/auth/password", json={"currentPassword": NEW_PASSWORD, "newPassword": "third-password"},
                       headers=again.headers).status_code == 204
    told = emails_to(smtp, customer.email, 3)[2]
    assert told["Subject"] == "Your password was changed"
    assert f"{customer.email} was changed on " in told.get_body(("plain",)).get_content()
    assert ok(client.get("/api/notifications", headers=again.headers)) == []
    smtp.settle(quiet=0.5)
    assert len(smtp.messages) == 3


def test_a_password_changed_since_the_request_voids_the_code(client, customer, smtp):
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    assert client.post("/api/auth/password", json={"currentPassword": PASSWORD, "newPassword": "changed-meanwhile"},
                       headers=customer.headers).status_code == 204
    assert refused(reset(client, code)) == [REFUSED]
    assert logs_in(client, customer.email, "changed-meanwhile")


def test_of_two_codes_the_first_used_voids_the_other(client, customer, smtp):
    ok(ask(client, customer.email), 202)
    ok(ask(client, customer.email), 202)
    first, second = (code_of(message) for message in emails_to(smtp, customer.email, 2))
    assert reset(client, second).status_code == 204
    assert refused(reset(client, first, "yet-another-password")) == [REFUSED]
    assert logs_in(client, customer.email, NEW_PASSWORD)


@pytest.mark.parametrize("mangle", [
    lambda code: code[:-1] + ("A" if code[-1] != "A" else "B"),  # another MAC
    lambda code: "9" + code,  # another account
    lambda code: code.replace(".", ".1", 1),  # another time
    lambda code: code[:-1],  # too short
    lambda code: code + "=",
    lambda code: "0.0." + "A" * 43,
    lambda code: "99999999999." + code.split(".", 1)[1],  # past the largest id
    lambda code: code.replace(".", "\x00", 1),
], ids=["mac", "account", "time", "short", "padded", "zero", "huge-id", "nul"])
def test_a_wrong_code_is_refused_and_changes_nothing(client, customer, smtp, mangle):
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    refused(reset(client, mangle(code)))
    assert logs_in(client, customer.email, PASSWORD)
    assert client.get("/api/auth/me", headers=customer.headers).status_code == 200
    assert reset(client, code).status_code == 204  # the real one still works


def test_a_code_of_another_deployment_is_refused(client, customer, smtp, app):
    """The MAC is keyed by the app's secret: the same account and time under another key
    is refused."""
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    app.config["JWT_SECRET_KEY"] = "another-secret-key-that-is-long-enough-012345"
    refused(reset(client, code))


@pytest.mark.parametrize(("body", "field"), [
    ({"newPassword": NEW_PASSWORD}, "code"),
    ({"code": None, "newPassword": NEW_PASSWORD}, "code"),
    ({"code": "", "newPassword": NEW_PASSWORD}, "code"),
    ({"code": 12, "newPassword": NEW_PASSWORD}, "code"),
    ({"code": "x" * 201, "newPassword": NEW_PASSWORD}, "code"),
    ({"code": "1.2.3"}, "newPassword"),
    ({"code": "1.2.3", "newPassword": NEW_PASSWORD, "extra": 1}, "extra"),
])
def test_a_reset_needs_a_code_and_a_new_password_and_nothing_else(client, body, field, smtp):
    invalid(client.post("/api/auth/password/reset/confirm", json=body), field)


@pytest.mark.parametrize("body", [{}, {"email": ""}, {"email": None}, {"email": "x" * 255}, {"email": "a@b.c", "x": 1}])
def test_asking_needs_an_address_and_nothing_else(client, body, smtp):
    assert client.post("/api/auth/password/reset", json=body).status_code == 422
    smtp.settle(quiet=0.3)
    assert smtp.messages == []


def test_a_new_password_that_breaks_the_rules_is_refused_and_the_code_still_works(client, customer, smtp):
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    invalid(reset(client, code, "short"), "newPassword")
    invalid(reset(client, code, "x" * 73), "newPassword")
    assert logs_in(client, customer.email, PASSWORD)
    assert reset(client, code).status_code == 204


def test_the_new_password_is_taken_in_nfkc_form(client, customer, smtp):
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    assert reset(client, code, "caf\u00e9-au-lait").status_code == 204
    assert logs_in(client, customer.email, "cafe\u0301-au-lait")  # an accent typed as its own mark


def test_an_email_asked_for_an_hour_ago_is_refused(app, client, customer, smtp):
    """The code counts from the request, not from when the email left: a mail server that
    refused it for an hour delivers a code that no longer works; one under the hour
    still does."""
    smtp.refuse()
    ok(ask(client, customer.email), 202)
    support.wait_until(lambda: smtp.handler.refused >= 1, 15, message="a refused attempt")
    asked_before(app, timedelta(minutes=61))
    smtp.accept()
    assert refused(reset(client, code_of(emails_to(smtp, customer.email)[0]))) == [REFUSED]

    smtp.refuse()
    ok(ask(client, customer.email), 202)
    support.wait_until(lambda: smtp.handler.refused >= 2, 15, message="a refused attempt")
    asked_before(app, timedelta(minutes=59))
    smtp.accept()
    assert reset(client, code_of(emails_to(smtp, customer.email, 2)[1])).status_code == 204


def test_a_disabled_account_gets_no_email_and_its_code_is_refused(client, customer, admin, smtp):
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    ok(client.patch(f"/api/admin/users/{customer.id}", json={"disabled": True}, headers=admin.headers))
    refused(reset(client, code))
    ok(ask(client, customer.email), 202)
    smtp.settle(quiet=0.6)
    assert len(emails_to(smtp, customer.email)) == 1
    ok(client.patch(f"/api/admin/users/{customer.id}", json={"disabled": False}, headers=admin.headers))
    assert reset(client, code).status_code == 204  # enabled again, the password unchanged: the code works


@pytest.mark.parametrize("settings", [{"PUBLIC_URL": "https://tickets.example.com"}], ids=["public-url"])
def test_under_public_url_the_email_links_to_the_page_with_the_code(client, customer, smtp):
    ok(ask(client, customer.email), 202)
    [message] = emails_to(smtp, customer.email)
    code = code_of(message)
    assert f"https://tickets.example.com/#/reset-password?code={code}" in message.get_body(("plain",)).get_content()


def test_two_resets_with_one_code_at_once_let_one_through(app, client, customer, smtp):
    ok(ask(client, customer.email), 202)
    code = code_of(emails_to(smtp, customer.email)[0])
    start, answers = threading.Barrier(4), []

    def send(n):
        start.wait()
        answers.append((n, app.test_client().post("/api/auth/password/reset/confirm",
                                                  json={"code": code, "newPassword": f"password-number-{n}"})))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [n for n, response in answers if response.status_code == 204]
    assert len(answers) == 4 and len(winners) == 1, [(n, r.status_code, r.get_json()) for n, r in answers]
    assert all(refused(response) == [REFUSED] for n, response in answers if n not in winners)
    assert logs_in(client, customer.email, f"password-number-{winners[0]}")


LIMITS = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://", "RATELIMIT_PASSWORD_RESET": "4 per minute",
          "RATELIMIT_PASSWORD_RESET_ACCOUNT": "2 per hour", "RATELIMIT_LOGIN": "1000 per minute"}


@pytest.mark.parametrize("settings", [LIMITS], ids=["limits"])
def test_an_account_gets_a_few_reset_emails_an_hour_and_the_answer_does_not_say(app, client, customer, smtp):
    """Past RATELIMIT_PASSWORD_RESET_ACCOUNT, from any addresses, an account's owner gets
    no more emails (nobody can fill an inbox with them); the answer stays the same 202,
    as for an address no account has."""
    fullwidth = chr(ord(customer.email[0]) - ord("a") + ord("\uff41")) + customer.email[1:]  # "ｃustomer..."
    spellings = [customer.email, customer.email.upper(), fullwidth, f" {fullwidth.upper()}"]
    answers = [ask(client, email, addr=f"203.0.113.{n}") for n, email in enumerate(spellings, 1)]
    assert [(a.status_code, a.get_json()) for a in answers] == [(202, {"message": ASKED})] * 4
    emails_to(smtp, customer.email, 2)
    smtp.settle(quiet=0.6)
    assert len(emails_to(smtp, customer.email)) == 2


@pytest.mark.parametrize("settings", [LIMITS], ids=["limits"])
def test_an_address_asking_too_often_is_rate_limited(client, customer, smtp):
    for n in range(4):
        ok(ask(client, f"someone-{n}@example.com", addr="203.0.113.9"), 202)
    limited = ask(client, customer.email, addr="203.0.113.9")
    assert limited.status_code == 429 and limited.get_json()["code"] == "rate_limited"
    assert limited.headers["Retry-After"].isdigit()
    ok(ask(client, customer.email, addr="203.0.113.10"), 202)  # another address is served


def rows(app, sql, **params):
    from eventbook.extensions import db

    with app.app_context():
        found = [tuple(row) for row in db.session.execute(sa.text(sql), params)]
        db.session.rollback()
    return found


def asked_before(app, ago):
    """The PENDING email's request made `ago` earlier."""
    from eventbook.extensions import db
    from eventbook.models import Notification

    with app.app_context():
        db.session.execute(sa.update(Notification).where(Notification.status == "PENDING")
                           .values(created_at=datetime.now(timezone.utc) - ago))
        db.session.commit()
