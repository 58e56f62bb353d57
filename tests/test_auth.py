"""Accounts and tokens: register, login, refresh, logout, me, and `flask create-admin`."""

import threading

import jwt
import pytest
import sqlalchemy as sa

from tests import support
from tests.support import PASSWORD, bearer

USER_KEYS = {"id", "email", "name", "role", "createdAt"}


def register(client, **fields):
    body = {"email": "alice@example.com", "password": PASSWORD, "role": "CUSTOMER", **fields}
    return client.post("/api/auth/register", json=body)


def assert_error(response, status, code):
    body = response.get_json()
    assert response.status_code == status, body
    assert set(body) == {"status", "code", "message", "errors"}
    assert (body["status"], body["code"]) == (status, code)
    return body


# -- register ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["CUSTOMER", "ORGANIZER"])
def test_register_returns_the_user_without_password(client, role):
    response = register(client, role=role, name="Alice")
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"message", "user"}
    assert set(body["user"]) == USER_KEYS
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["name"] == "Alice"
    assert body["user"]["role"] == role
    assert PASSWORD not in response.get_data(as_text=True)
    assert "$2b$" not in response.get_data(as_text=True)


def test_name_is_optional(client):
    response = register(client)
    assert response.status_code == 201
    assert response.get_json()["user"]["name"] is None


def test_email_is_case_insensitive_and_unique(client, login):
    assert register(client, email="Alice@Example.COM").get_json()["user"]["email"] == "alice@example.com"
    assert_error(register(client, email="alice@example.com"), 409, "email_taken")
    assert_error(register(client, email="ALICE@example.com", role="ORGANIZER"), 409, "email_taken")
    assert login("aLiCe@example.com").email == "alice@example.com"


@pytest.mark.parametrize("look_alike", [
    "alice@\uff45xample.com",  # a fullwidth e
    "alice@example.com\u200b",  # a zero-width space
    "al\u00adice@example.com",  # a soft hyphen
    "alice@example.com\u202e",  # a right-to-left override
    "alice@exa\u0301mple.com",  # an a and a combining accent, which NFKC writes as one letter: á
])
def test_an_email_that_only_looks_like_another_is_refused(client, look_alike):
    assert register(client, email="alice@example.com").status_code == 201
    body = assert_error(register(client, email=look_alike), 422, "validation_error")
    assert "email" in body["errors"]
    assert register(client, email="jos\u00e9@exampl\u00e9.com").status_code == 201  # accents, composed, are fine


def test_an_address_written_another_way_logs_in_to_its_account(client, login):
    """Registering refuses an address not in plain characters; logging in with one finds
    the account of its plain form, as the failed-login count does."""
    assert register(client, email="\u00e5sa@example.com").status_code == 201  # å, one letter
    assert login("A\u030asa@example.com").email == "\u00e5sa@example.com"  # A and a combining ring
    assert login("\u00e5sa@\uff45xample.com").email == "\u00e5sa@example.com"  # a fullwidth e
    assert login("\u212bsa@example.com").email == "\u00e5sa@example.com"  # the Angstrom sign: NFKC's capital \u00c5
    assert register(client, email="alice@example.com").status_code == 201
    assert login("\U0001d400lice@example.com").email == "alice@example.com"  # a mathematical bold capital A


def test_a_domain_in_its_xn_form_is_the_same_address(client, login):
    """"xn--bcher-kva" is how DNS spells "bücher": one domain, so one account, stored with
    the domain in Unicode; either form logs in. Labels that are not valid IDNA stay as
    written."""
    created = register(client, email="Eve@XN--BCHER-KVA.example")
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["user"]["email"] == "eve@b\u00fccher.example"
    assert_error(register(client, email="eve@b\u00fccher.example"), 409, "email_taken")
    assert login("eve@xn--bcher-kva.example").email == "eve@b\u00fccher.example"
    assert login("eve@b\u00fccher.example").email == "eve@b\u00fccher.example"
    odd = register(client, email="eve@xn--zz.example")  # no valid A-label: an ASCII domain as any other
    assert odd.status_code == 201 and odd.get_json()["user"]["email"] == "eve@xn--zz.example"


def test_an_account_stored_before_addresses_had_to_be_plain_still_logs_in(client, login, database_url):
    """Registered when a fullwidth letter was still taken: the address as written finds it."""
    assert register(client, email="bob@example.com").status_code == 201
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE users SET email = :legacy WHERE email = 'bob@example.com'"),
                               {"legacy": "b\uff4fb@example.com"})
    finally:
        engine.dispose()
    assert login("B\uff4fb@example.com").email == "b\uff4fb@example.com"


@pytest.mark.parametrize("local, status", [("a" * 64, 201), ("a" * 65, 422), ("\u00e9" * 32, 201), ("\u00e9" * 33, 422)])
def test_the_part_before_the_at_is_64_bytes_at_most(client, local, status):
    response = register(client, email=f"{local}@example.com")
    assert response.status_code == status, response.get_json()
    if status == 422:
        assert response.get_json()["errors"] == {
            "email": ["The part before the @ must be at most 64 bytes long (RFC 5321)."]}


@pytest.mark.parametrize("email", ['"two words"@example.com', "two words@example.com", "a@exam ple.com"])
def test_an_address_with_a_space_is_not_an_address(client, email):
    body = assert_error(register(client, email=email), 422, "validation_error")
    assert body["errors"] == {"email": ["Not a valid email address."]}


def test_admin_role_cannot_be_registered(client):
    body = assert_error(register(client, role="ADMIN"), 422, "validation_error")
    assert "role" in body["errors"]


@pytest.mark.parametrize("extra", [{"id": 1}, {"isAdmin": True}, {"Role": "ADMIN"},
                                   {"user": {"role": "ADMIN"}}, {"passwordHash": "x"}])
def test_unknown_fields_are_refused(client, extra):
    body = assert_error(register(client, **extra), 422, "validation_error")
    assert set(extra) <= set(body["errors"])
    assert register(client).status_code == 201  # nothing was created by the refused request


@pytest.mark.parametrize("password, status", [
    ("é" * 36, 201),  # 36 characters, 72 bytes
    ("é" * 36 + "a", 422),  # 73 bytes
    ("a" * 73, 422),
    ("abcdefg", 422),
    ("", 422),
])
def test_password_length_is_counted_in_bytes(client, login, password, status):
    response = register(client, password=password)
    assert response.status_code == status, response.get_json()
    if status == 201:
        assert login("alice@example.com", password).role == "CUSTOMER"
    else:
        assert "password" in response.get_json()["errors"]


@pytest.mark.parametrize("fields", [
    {"email": "not-an-email"}, {"email": ""}, {"email": 5}, {"email": "a@" + "b" * 260 + ".com"},
    {"role": "customer"}, {"role": None}, {"password": 12345678}, {"name": ""}, {"name": "x" * 101},
])
def test_invalid_fields_are_422(client, fields):
    body = assert_error(register(client, **fields), 422, "validation_error")
    assert set(fields) <= set(body["errors"])


def test_missing_fields_are_422(client):
    body = assert_error(client.post("/api/auth/register", json={}), 422, "validation_error")
    assert {"email", "password", "role"} <= set(body["errors"])


# -- login -------------------------------------------------------------------------


def test_login_returns_tokens_and_user(client):
    register(client, role="ORGANIZER")
    response = client.post("/api/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "refreshToken", "user"}
    assert body["token"] != body["refreshToken"]
    assert set(body["user"]) == USER_KEYS
    assert body["user"]["role"] == "ORGANIZER"
    assert client.get("/api/auth/me", headers=bearer(body["token"])).get_json() == body["user"]


def test_unknown_email_and_wrong_password_get_the_same_401(client):
    register(client)
    wrong_password = client.post("/api/auth/login", json={"email": "alice@example.com", "password": "wrong-password"})
    unknown_email = client.post("/api/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    assert_error(wrong_password, 401, "unauthorized")
    assert wrong_password.get_json() == unknown_email.get_json()
    # every 401 says how to authenticate (RFC 9110), not only the token checks'
    assert wrong_password.headers["WWW-Authenticate"] == unknown_email.headers["WWW-Authenticate"] == "Bearer"


def test_password_over_72_bytes_never_logs_in(client):
    password = "é" * 36  # 72 bytes; bcrypt would ignore anything after them
    register(client, password=password)
    for attempt in (password + "x", "a" * 500, "é" * 1000):
        response = client.post("/api/auth/login", json={"email": "alice@example.com", "password": attempt})
        assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("registered, typed", [
    ("p\u00e4ssw\u00f6rter", "pa\u0308sswo\u0308rter"),  # an umlaut as one letter; as a letter and a combining mark
    ("pa\u0308sswo\u0308rter", "p\u00e4ssw\u00f6rter"),
    ("\ufb01ne-password", "fine-password"),  # the ligature "fi"
    ("\uff50\uff41\uff53\uff53word-1", "password-1"),  # fullwidth letters
])
def test_a_password_typed_another_way_is_the_same_password(client, login, registered, typed):
    """Passwords are taken in NFKC form: the same characters from another keyboard or
    system log in, and so does the password exactly as registered."""
    assert register(client, password=registered).status_code == 201
    assert login("alice@example.com", typed).email == "alice@example.com"
    assert login("alice@example.com", registered).email == "alice@example.com"
    wrong = client.post("/api/auth/login", json={"email": "alice@example.com", "password": typed + "x"})
    assert_error(wrong, 401, "unauthorized")


def test_a_password_counts_its_bytes_in_nfkc_form(client):
    """"\u337f" (one 3-byte character) is four characters, 12 bytes, in NFKC form: 24 of
    them are 72 bytes as sent but 288 as taken, so too long."""
    body = assert_error(register(client, password="\u337f" * 24), 422, "validation_error")
    assert body["errors"] == {"password": ["Must be 8 to 72 bytes long."]}
    assert register(client, password="\u337f" * 6).status_code == 201  # 72 bytes as taken


@pytest.mark.parametrize("password", [
    "\ufdfa",  # one character, 33 bytes in NFKC form: fewer characters than the document's minLength
    "\u03c9\u0313\u0342\u0345" * 20,  # 80 characters, 60 bytes in NFKC form: more than its maxLength
])
def test_a_password_also_fits_the_documents_character_counts_as_written(client, password):
    """The document's minLength and maxLength (2 and 72 characters) hold for the password
    as sent, whatever its NFKC form: the server refuses nothing the document allows and
    takes nothing it does not."""
    body = assert_error(register(client, password=password), 422, "validation_error")
    assert body["errors"] == {"password": ["Must be 8 to 72 bytes long."]}


def test_an_account_hashed_before_passwords_were_normalised_still_logs_in(client, login, database_url, app):
    """Its hash is of the password as written, not in NFKC form: that still logs in."""
    assert register(client).status_code == 201
    written = "pa\u0308sswo\u0308rter"  # not NFKC
    with app.app_context():
        from eventbook.auth.service import hash_password
        legacy = hash_password(written)
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE users SET password_hash = :legacy WHERE email = 'alice@example.com'"),
                               {"legacy": legacy})
    finally:
        engine.dispose()
    assert login("alice@example.com", written).email == "alice@example.com"


@pytest.mark.postgresql_only("SQLite has no server sessions to watch")
def test_a_login_holds_no_transaction_open_while_the_password_is_checked(client, database_url, monkeypatch):
    """While bcrypt checks the password the login holds no pooled connection in a
    transaction, and no snapshot that vacuum must wait for: what the database shows
    during the check itself."""
    import bcrypt

    email = "slow-hash@example.com"
    assert client.post("/api/auth/register", json={"email": email, "password": support.PASSWORD,
                                                   "role": "CUSTOMER"}).status_code == 201
    engine = sa.create_engine(support._normalized(database_url), isolation_level="AUTOCOMMIT")
    seen, checked = [], []
    check = bcrypt.checkpw

    def watched(password, hashed):
        with engine.connect() as watching:
            seen.extend(watching.execute(sa.text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction' AND query LIKE '%FROM users%'")).scalars())
        checked.append(True)
        return check(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", watched)
    try:
        response = client.post("/api/auth/login", json={"email": email, "password": support.PASSWORD})
    finally:
        engine.dispose()
    assert response.status_code == 200 and checked
    assert not seen, seen


def test_login_with_missing_fields_is_422(client):
    body = assert_error(client.post("/api/auth/login", json={"email": "alice@example.com"}), 422, "validation_error")
    assert "password" in body["errors"]


# -- refresh, logout, me -------------------------------------------------------------


def test_refresh_token_gives_working_tokens_and_stops_working(client, customer):
    response = client.post("/api/auth/refresh", headers=bearer(customer.refresh_token))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "refreshToken"}
    assert customer.refresh_token not in (body["token"], body["refreshToken"])
    me = client.get("/api/auth/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == customer.id
    assert client.post("/api/auth/refresh", headers=bearer(body["refreshToken"])).status_code == 200
    # the first one was rotated: presenting it again is reuse (tests/test_sessions.py)
    assert_error(client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)), 401, "refresh_token_reused")


def test_access_token_cannot_refresh(client, customer):
    assert_error(client.post("/api/auth/refresh", headers=customer.headers), 401, "unauthorized")


def test_logout_revokes_the_presented_token_and_its_login(client, customer, login):
    other_login = login(customer.email)
    response = client.post("/api/auth/logout", headers=customer.headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get("/api/auth/me", headers=customer.headers), 401, "unauthorized")
    # the refresh token of that login was not sent, and is revoked too
    assert_error(client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)), 401, "unauthorized")
    # another login of the same account is another session
    assert client.get("/api/auth/me", headers=other_login.headers).status_code == 200
    assert client.post("/api/auth/refresh", headers=bearer(other_login.refresh_token)).status_code == 200


def test_logout_with_refresh_token_in_body_revokes_both(client, customer):
    response = client.post("/api/auth/logout", json={"refreshToken": customer.refresh_token}, headers=customer.headers)
    assert response.status_code == 204
    assert_error(client.get("/api/auth/me", headers=customer.headers), 401, "unauthorized")
    assert_error(client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)), 401, "unauthorized")


def test_logout_with_the_refresh_token_itself(client, customer):
    assert client.post("/api/auth/logout", headers=bearer(customer.refresh_token)).status_code == 204
    assert_error(client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)), 401, "unauthorized")


# A body token that is not the caller's refresh token is a bad token (401) and revokes nothing.
def test_logout_refuses_someone_elses_refresh_token(client, customer, make_user):
    other = make_user()
    response = client.post("/api/auth/logout", json={"refreshToken": other.refresh_token}, headers=customer.headers)
    assert_error(response, 401, "unauthorized")
    assert client.post("/api/auth/refresh", headers=bearer(other.refresh_token)).status_code == 200


@pytest.mark.parametrize("refresh_token", ["garbage", "access"])
def test_logout_refuses_a_body_token_that_is_not_a_refresh_token(client, customer, refresh_token):
    refresh_token = customer.token if refresh_token == "access" else refresh_token
    response = client.post("/api/auth/logout", json={"refreshToken": refresh_token}, headers=customer.headers)
    assert_error(response, 401, "unauthorized")


@pytest.mark.postgresql_only("SQLite has one writer at a time: two logouts never overlap")
def test_a_logout_racing_another_still_revokes_the_other_login(app, database_url, customer, login):
    """Two logouts with the same access token at once, one also naming another login's
    refresh token: the second to insert the access token's revocation fails on its key,
    and must not lose that other login's revocation with it."""
    other = login(customer.email)
    jti = jwt.decode(customer.token, options={"verify_signature": False})["jti"]
    answers = []
    engine = sa.create_engine(support._normalized(database_url))
    try:
        with engine.connect() as racing:  # the other logout, between its insert and its commit
            racing.execute(sa.text("INSERT INTO revoked_tokens (jti, expires_at) VALUES (:jti, now() + interval '1 hour')"),
                           {"jti": jti})
            logout = threading.Thread(target=lambda: answers.append(app.test_client().post(
                "/api/auth/logout", json={"refreshToken": other.refresh_token}, headers=customer.headers)))
            logout.start()
            support.wait_until(lambda: support.waiting_for_locks(engine) == 1, 10,
                               message="the logout, its families revoked, waiting on the access token's key")
            racing.commit()
            logout.join(30)
    finally:
        engine.dispose()
    assert answers[0].status_code == 204
    client = app.test_client()
    assert_error(client.post("/api/auth/refresh", headers=bearer(other.refresh_token)), 401, "unauthorized")
    assert_error(client.get("/api/auth/me", headers=other.headers), 401, "unauthorized")


def test_second_logout_with_the_same_token_is_401(client, customer):
    assert client.post("/api/auth/logout", headers=customer.headers).status_code == 204
    assert_error(client.post("/api/auth/logout", headers=customer.headers), 401, "unauthorized")


def test_logout_without_token_is_401(client):
    assert_error(client.post("/api/auth/logout"), 401, "unauthorized")


# -- password change ---------------------------------------------------------------


def change_password(client, actor, current, new):
    return client.post("/api/auth/password", json={"currentPassword": current, "newPassword": new},
                       headers=actor.headers)


def test_a_password_change_ends_every_other_login_and_keeps_this_one(client, customer, login):
    """A thief who logged in with the old password is out at once, access and refresh
    token alike; the login that changed it goes on, and refreshes."""
    other = login(customer.email)
    response = change_password(client, customer, support.PASSWORD, "a-new-password-1")
    assert response.status_code == 204 and response.data == b""
    assert client.get("/api/auth/me", headers=customer.headers).status_code == 200
    assert client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)).status_code == 200
    assert_error(client.get("/api/auth/me", headers=other.headers), 401, "unauthorized")
    assert_error(client.post("/api/auth/refresh", headers=bearer(other.refresh_token)), 401, "unauthorized")
    wrong = client.post("/api/auth/login", json={"email": customer.email, "password": support.PASSWORD})
    assert_error(wrong, 401, "unauthorized")
    assert login(customer.email, "a-new-password-1").id == customer.id


def test_a_wrong_current_password_is_403_and_changes_nothing(client, customer, login):
    other = login(customer.email)
    body = assert_error(change_password(client, customer, "not-the-password", "a-new-password-1"), 403, "forbidden")
    assert body["message"] == "The current password is wrong"
    assert client.get("/api/auth/me", headers=other.headers).status_code == 200
    assert login(customer.email).id == customer.id  # the old password still logs in


@pytest.mark.parametrize("new, says", [
    ("short", "Must be 8 to 72 bytes long."), ("\u00e9" * 36 + "a", "Must be 8 to 72 bytes long."),
    (None, "Field may not be null."),
])
def test_the_new_password_follows_the_rules_of_registering(client, customer, login, new, says):
    body = assert_error(change_password(client, customer, support.PASSWORD, new), 422, "validation_error")
    assert body["errors"] == {"newPassword": [says]}
    assert login(customer.email).id == customer.id


@pytest.mark.parametrize("body", [{}, {"newPassword": "a-new-password-1"}, {"currentPassword": support.PASSWORD},
                                  {"currentPassword": support.PASSWORD, "newPassword": "a-new-password-1", "role": "ADMIN"}])
def test_a_password_change_needs_both_passwords_and_nothing_else(client, customer, login, body):
    assert_error(client.post("/api/auth/password", json=body, headers=customer.headers), 422, "validation_error")
    assert login(customer.email).id == customer.id


def test_a_password_change_needs_an_access_token(client, customer):
    assert_error(client.post("/api/auth/password", json={"currentPassword": support.PASSWORD,
                                                         "newPassword": "a-new-password-1"}), 401, "unauthorized")
    refresh = client.post("/api/auth/password", json={"currentPassword": support.PASSWORD,
                                                      "newPassword": "a-new-password-1"},
                          headers=bearer(customer.refresh_token))
    assert_error(refresh, 401, "unauthorized")


def test_two_logins_changing_the_password_at_once_one_wins(app, customer, login):
    """Each change ends the other's login: of two at once, exactly one answers 204,
    whichever order the database puts them in, and the password is the winner's. The
    other is a 401 (its login ended) or, when the winner's password was in before it
    checked its own, a 403 (the password it gave is no longer the account's)."""
    other = login(customer.email)
    barrier = threading.Barrier(2)
    answers = {}

    def change(actor, new):
        client = app.test_client()
        barrier.wait(10)
        answers[new] = change_password(client, actor, support.PASSWORD, new).status_code

    threads = [threading.Thread(target=change, args=(actor, new))
               for actor, new in ((customer, "first-new-password"), (other, "second-new-password"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers.values()) in ([204, 401], [204, 403]), answers
    [winner] = [new for new, status in answers.items() if status == 204]
    assert login(customer.email, winner).id == customer.id


def test_me_returns_the_caller(client, make_user):
    organizer = make_user("ORGANIZER", email="org@example.com", name="Olga")
    response = client.get("/api/auth/me", headers=organizer.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_KEYS
    assert (body["id"], body["email"], body["name"], body["role"]) == (organizer.id, "org@example.com", "Olga", "ORGANIZER")
    assert body["createdAt"].endswith("Z")


def test_me_without_token_is_401(client):
    assert_error(client.get("/api/auth/me"), 401, "unauthorized")


# -- flask create-admin ----------------------------------------------------------------


def test_create_admin_makes_an_admin_who_can_log_in(app, client, login):
    result = app.test_cli_runner().invoke(args=["create-admin", "Root@Example.com", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    admin = login("root@example.com")
    assert admin.role == "ADMIN"
    assert client.get("/api/auth/me", headers=admin.headers).get_json()["role"] == "ADMIN"


def test_create_admin_refuses_bad_input(app, client, customer):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-admin", customer.email.upper(), "--password", PASSWORD]).exit_code != 0
    assert client.get("/api/auth/me", headers=customer.headers).get_json()["role"] == "CUSTOMER"
    assert runner.invoke(args=["create-admin", "not-an-email", "--password", PASSWORD]).exit_code != 0
    assert runner.invoke(args=["create-admin", "root@example.com", "--password", "short"]).exit_code != 0
    response = client.post("/api/auth/login", json={"email": "root@example.com", "password": "short"})
    assert_error(response, 401, "unauthorized")
