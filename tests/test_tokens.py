"""Token attacks (OWASP JWT cheat sheet): every one is a 401 in the error envelope."""

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa

from eventbook.extensions import db
from eventbook.models import User
from tests.support import bearer

ME = "/api/auth/me"


def assert_unauthorized(response):
    body = response.get_json()
    assert response.status_code == 401, body
    assert set(body) == {"status", "code", "message", "errors"}
    assert (body["status"], body["code"], body["errors"]) == (401, "unauthorized", {})
    assert body["message"]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def test_the_real_token_works(client, customer):
    # The baseline that every attack below is a variation of.
    assert client.get(ME, headers=customer.headers).status_code == 200


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(client, customer, scheme):
    assert client.get(ME, headers={"Authorization": f"{scheme} {customer.token}"}).status_code == 200
    assert_unauthorized(client.get(ME, headers={"Authorization": f"{scheme} garbage"}))


@pytest.mark.parametrize("headers", [
    {"Authorization": "bearer"},
    {"Authorization": "bearer "},
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer garbage"},
    {"Authorization": "Bearer a.b.c"},
    {"Authorization": "Bearer ....."},
    {"Authorization": "Bearer " + "x" * 8000},  # longer header values are a 431 (tests/test_bad_input.py)
])
def test_missing_or_garbage_token(client, headers):
    assert_unauthorized(client.get(ME, headers=headers))


@pytest.mark.parametrize("scheme", ["Basic", "Token", "JWT", ""])
def test_wrong_scheme(client, customer, scheme):
    assert_unauthorized(client.get(ME, headers={"Authorization": f"{scheme} {customer.token}".strip()}))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none(client, customer, alg):
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = customer.token.split(".")[1]
    assert_unauthorized(client.get(ME, headers=bearer(f"{header}.{payload}.")))
    signature = customer.token.split(".")[2]
    assert_unauthorized(client.get(ME, headers=bearer(f"{header}.{payload}.{signature}")))


def test_signed_with_another_key(client, customer):
    forged = jwt.encode(claims_of(customer.token), "another-secret-key-that-is-long-enough-000", algorithm="HS256")
    assert_unauthorized(client.get(ME, headers=bearer(forged)))


def test_tampered_payload(client, customer, make_user):
    victim = make_user("ORGANIZER")
    header, payload, signature = customer.token.split(".")
    claims = claims_of(customer.token)
    claims["sub"] = str(victim.id)
    tampered = b64url(json.dumps(claims, separators=(",", ":")).encode())
    assert tampered != payload
    assert_unauthorized(client.get(ME, headers=bearer(f"{header}.{tampered}.{signature}")))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_right_key_but_hs512(app, client, customer):
    token = jwt.encode(claims_of(customer.token), app.config["JWT_SECRET_KEY"], algorithm="HS512")
    assert_unauthorized(client.get(ME, headers=bearer(token)))


def test_expired_token_signed_with_the_app_key(app, client, customer):
    now = int(time.time())
    claims = {**claims_of(customer.token), "iat": now - 3600, "nbf": now - 3600, "exp": now - 60}
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = client.get(ME, headers=bearer(token))
    assert_unauthorized(response)
    assert response.get_json()["message"] == "Token has expired"


def test_an_altered_token_is_refused_as_invalid(client, customer):
    header, payload, signature = customer.token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for token in (f"{header}.{payload}.{flipped}", f"{header}.{payload}", f"{payload}.{header}.{signature}"):
        response = client.get(ME, headers=bearer(token))
        assert_unauthorized(response)
        assert response.get_json()["message"] == "Invalid token"
    assert client.get(ME, headers=customer.headers).get_json()["id"] == customer.id


# `exp` is whole seconds, so a 3-second token lives between 2 and 3 seconds.
@pytest.mark.parametrize("config_overrides", [{"JWT_ACCESS_TOKEN_EXPIRES": timedelta(seconds=3)}])
def test_issued_token_expires(client, customer):
    assert client.get(ME, headers=customer.headers).status_code == 200
    time.sleep(3.5)
    response = client.get(ME, headers=customer.headers)
    assert_unauthorized(response)
    assert response.get_json()["message"] == "Token has expired"


def test_token_not_yet_valid(app, client, customer):
    now = int(time.time())
    claims = {**claims_of(customer.token), "iat": now + 3600, "nbf": now + 3600, "exp": now + 7200}
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert_unauthorized(client.get(ME, headers=bearer(token)))


@pytest.mark.parametrize("sub", ["not-a-number", "99999999999999999999", "-1", "", 1, None])
def test_malformed_sub_with_the_app_key(app, client, customer, sub):
    # Only whoever holds the key can make these; they must still never be a 500.
    claims = {**claims_of(customer.token), "sub": sub}
    claims = {key: value for key, value in claims.items() if value is not None}
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert_unauthorized(client.get(ME, headers=bearer(token)))


@pytest.mark.parametrize("change", [{"exp": None}, {"jti": None}, {"type": "other"}],
                         ids=["no exp", "no jti", "another type"])
def test_a_token_without_the_claims_we_issue_with_the_app_key(app, client, customer, change):
    # A token that never expires, or that cannot be revoked alone, is not one of ours.
    # (One without a type is an access token to flask-jwt-extended, as documented.)
    claims = {key: value for key, value in {**claims_of(customer.token), **change}.items() if value is not None}
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = client.get(ME, headers=bearer(token))
    assert_unauthorized(response)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_revoked_token(client, customer):
    assert client.post("/api/auth/logout", headers=customer.headers).status_code == 204
    assert_unauthorized(client.get(ME, headers=customer.headers))


def test_refresh_token_is_not_an_access_token(client, customer):
    assert_unauthorized(client.get(ME, headers=bearer(customer.refresh_token)))
    assert_unauthorized(client.get("/api/notifications", headers=bearer(customer.refresh_token)))


def test_token_of_a_deleted_user(app, client, customer):
    with app.app_context():
        db.session.execute(sa.delete(User).where(User.id == customer.id))
        db.session.commit()
    assert_unauthorized(client.get(ME, headers=customer.headers))
    assert_unauthorized(client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)))


def test_a_token_id_with_a_nul_signed_with_the_app_key(app, client, customer):
    # Our token ids are UUIDs; PostgreSQL's text cannot even hold a NUL. (PyJWT itself
    # refuses an id that is not text.)
    for issued in (customer.token, customer.refresh_token):
        token = jwt.encode({**claims_of(issued), "jti": "a\x00b"}, app.config["JWT_SECRET_KEY"], algorithm="HS256")
        assert_unauthorized(client.get(ME, headers=bearer(token)))
        assert_unauthorized(client.post("/api/auth/refresh", headers=bearer(token)))
        assert_unauthorized(client.post("/api/auth/logout", headers=bearer(token)))
    assert client.get(ME, headers=customer.headers).status_code == 200


@pytest.mark.parametrize("change", [{"jti": "a\x00b"}, {"family": ["1"]}, {"family": "1"}, {"exp": None}],
                         ids=["NUL id", "a list for a family", "text for a family", "no exp"])
def test_a_refresh_token_in_a_logouts_body_not_made_as_we_make_them(app, client, customer, change):
    """The body's refreshToken is not the request's own token, and is checked the same way."""
    claims = {key: value for key, value in {**claims_of(customer.refresh_token), **change}.items() if value is not None}
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    response = client.post("/api/auth/logout", headers=customer.headers, json={"refreshToken": token})
    assert_unauthorized(response)
    assert client.get(ME, headers=customer.headers).status_code == 200  # refused whole: nothing was revoked


@pytest.mark.parametrize("csrf", [1, None, ["1"]], ids=["a number", "null", "a list"])
def test_a_cookie_whose_csrf_claim_is_not_text_with_the_app_key(app, client, customer, csrf):
    claims = {**claims_of(customer.refresh_token), "csrf": csrf}
    token = jwt.encode(claims, app.config["JWT_SECRET_KEY"], algorithm="HS256")
    client.set_cookie("eventbook_refresh", token, path="/api/auth")
    for path in ("/api/auth/refresh", "/api/auth/logout"):
        response = client.post(path, headers={"X-CSRF-Token": "1"})
        assert_unauthorized(response)
    assert client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)).status_code == 200
