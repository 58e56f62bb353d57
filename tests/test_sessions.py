"""Browser sessions: the refresh token in an HttpOnly cookie with a double-submit CSRF
value, rotated on every refresh; a refresh token presented again after its rotation
revokes every token of its login (its family), as the OAuth security BCP describes.

The test client keeps cookies like a browser: after a login through it, its jar holds
that login's session cookies, sent to /api/auth/* only.
"""

import threading
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie

import jwt
import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token, create_refresh_token

from eventbook.extensions import db
from eventbook.models import TokenFamily
from tests.support import PASSWORD, bearer, wait_until

REFRESH, CSRF = "eventbook_refresh", "eventbook_csrf"


def set_cookies(response):
    """The cookies a response sets, by name (SimpleCookie morsels: value and attributes)."""
    jar = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        jar.load(header)
    return jar


def csrf_header(client):
    return {"X-CSRF-Token": client.get_cookie(CSRF).value}


def refresh_by_cookie(client, headers=None):
    return client.post("/api/auth/refresh", headers=csrf_header(client) if headers is None else headers)


def assert_401(response, code="unauthorized"):
    body = response.get_json()
    assert response.status_code == 401, body
    assert (body["status"], body["code"]) == (401, code)
    return body


def test_login_sets_the_session_cookies(client, customer):
    response = client.post("/api/auth/login", json={"email": customer.email, "password": PASSWORD})
    body, cookies = response.get_json(), set_cookies(response)
    assert set(body) == {"token", "refreshToken", "user"}  # the JSON answer is unchanged
    refresh, csrf = cookies[REFRESH], cookies[CSRF]
    assert refresh.value == body["refreshToken"]
    assert (refresh["httponly"], refresh["samesite"], refresh["path"], refresh["secure"]) == (True, "Strict", "/api/auth", "")
    # the page's script reads it, and it is the refresh token's own CSRF claim
    assert (csrf["httponly"], csrf["samesite"], csrf["path"]) == ("", "Strict", "/")
    assert csrf.value == jwt.decode(body["refreshToken"], options={"verify_signature": False})["csrf"]
    assert int(refresh["max-age"]) == int(csrf["max-age"]) == 7 * 24 * 3600


def test_the_cookies_are_secure_over_https(client, customer):
    response = client.post("/api/auth/login", json={"email": customer.email, "password": PASSWORD},
                           base_url="https://localhost")
    cookies = set_cookies(response)
    assert cookies[REFRESH]["secure"] is True and cookies[CSRF]["secure"] is True


@pytest.mark.parametrize("config_overrides", [{"PROXY_FIX_X_FOR": 1}])
@pytest.mark.parametrize("proto, secure", [("https", True), ("http", "")])
def test_behind_a_proxy_its_forwarded_scheme_decides(client, customer, proto, secure):
    response = client.post("/api/auth/login", json={"email": customer.email, "password": PASSWORD},
                           headers={"X-Forwarded-Proto": proto, "X-Forwarded-For": "198.51.100.7"})
    assert set_cookies(response)[REFRESH]["secure"] == secure


def test_refresh_by_cookie_rotates_the_session(client, customer):
    first_cookie = client.get_cookie(REFRESH, path="/api/auth").value
    assert first_cookie == customer.refresh_token
    response = refresh_by_cookie(client)
    assert response.status_code == 200, response.get_json()
    body, cookies = response.get_json(), set_cookies(response)
    assert set(body) == {"token", "refreshToken"}
    assert cookies[REFRESH].value == body["refreshToken"] != first_cookie
    assert cookies[CSRF].value == client.get_cookie(CSRF).value
    assert client.get("/api/auth/me", headers=bearer(body["token"])).get_json()["id"] == customer.id
    # the jar now holds the new cookie, which refreshes in turn
    assert refresh_by_cookie(client).status_code == 200


def test_a_cookie_refresh_needs_the_csrf_header(client, customer, make_user):
    body = assert_401(refresh_by_cookie(client, headers={}))
    assert "X-CSRF-Token" in body["message"]
    assert_401(refresh_by_cookie(client, headers={"X-CSRF-Token": "forged-value"}))
    # text that is not ASCII cannot match either: refused as wrong, not a 500
    assert "X-CSRF-Token" in assert_401(refresh_by_cookie(client, headers={"X-CSRF-Token": "é"}))["message"]
    assert_401(client.post("/api/auth/logout", headers={"X-CSRF-Token": "Ã©"}))
    stranger_csrf = client.get_cookie(CSRF).value
    make_user()  # another login through this client: the jar now holds the other session
    assert_401(refresh_by_cookie(client, headers={"X-CSRF-Token": stranger_csrf}))
    # nothing was rotated or revoked by the refused requests
    assert refresh_by_cookie(client).status_code == 200
    # a bearer refresh token does not use the cookie, nor its CSRF header
    assert client.post("/api/auth/refresh", headers={**bearer(customer.refresh_token),
                                                     "X-CSRF-Token": "é"}).status_code == 200


def test_a_reused_refresh_token_revokes_its_whole_login(client, customer, login):
    rotated = client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)).get_json()
    reused = client.post("/api/auth/refresh", headers=bearer(customer.refresh_token))
    assert_401(reused, "refresh_token_reused")
    assert set_cookies(reused)[REFRESH].value == ""  # the session cookie is cleared
    # every token of that login stops working: the first access token, and the pair the thief (or the owner) got
    for token in (customer.token, rotated["token"]):
        assert_401(client.get("/api/auth/me", headers=bearer(token)))
    # the winner's refresh token was never rotated: revoked; the rotated one stays a reuse each time it comes back
    assert_401(client.post("/api/auth/refresh", headers=bearer(rotated["refreshToken"])), "unauthorized")
    for _ in range(2):
        assert_401(client.post("/api/auth/refresh", headers=bearer(customer.refresh_token)), "refresh_token_reused")
    # another login of the same account is not affected, and logging in again works
    assert client.get("/api/auth/me", headers=login(customer.email).headers).status_code == 200


def test_a_stolen_cookie_used_after_its_owner_refreshed_is_detected(client, customer):
    stolen = {"refresh": client.get_cookie(REFRESH, path="/api/auth").value, "csrf": client.get_cookie(CSRF).value}
    owner = refresh_by_cookie(client).get_json()  # the owner's page refreshes first
    client.set_cookie(REFRESH, stolen["refresh"], path="/api/auth")
    assert_401(refresh_by_cookie(client, headers={"X-CSRF-Token": stolen["csrf"]}), "refresh_token_reused")
    assert_401(client.get("/api/auth/me", headers=bearer(owner["token"])))


@pytest.mark.parametrize("at_once", [2, 6])
def test_refreshes_with_one_token_at_once(app, customer, at_once):
    """One rotates; the others present a token that is no longer the latest, which the
    server cannot tell from theft: each is told so, the family is revoked, the winner's
    tokens too."""
    barrier, answers = threading.Barrier(at_once), []

    def refresh():
        client = app.test_client()
        barrier.wait()
        response = client.post("/api/auth/refresh", headers=bearer(customer.refresh_token))
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=refresh) for _ in range(at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answers.sort(key=lambda answer: answer[0])
    assert [status for status, _ in answers] == [200] + [401] * (at_once - 1), answers
    assert {body["code"] for _, body in answers[1:]} == {"refresh_token_reused"}, answers
    assert_401(app.test_client().get("/api/auth/me", headers=bearer(answers[0][1]["token"])))


def test_logout_clears_the_cookies_and_revokes_their_token(client, customer):
    csrf = client.get_cookie(CSRF).value
    response = client.post("/api/auth/logout", headers=customer.headers)
    assert response.status_code == 204
    cookies = set_cookies(response)
    for name, path in ((REFRESH, "/api/auth"), (CSRF, "/")):
        assert (cookies[name].value, cookies[name]["path"], cookies[name]["max-age"]) == ("", path, "0")
    assert client.get_cookie(REFRESH, path="/api/auth") is None
    # a copy of the cookie kept from before is revoked with the login
    client.set_cookie(REFRESH, customer.refresh_token, path="/api/auth")
    assert_401(refresh_by_cookie(client, headers={"X-CSRF-Token": csrf}))


def test_logout_by_the_session_cookie_alone(client, customer):
    """A page that lost its access token (a reload) still logs out: the cookie, with its
    CSRF header, is a token of the login."""
    assert_401(client.post("/api/auth/logout"))  # the cookie without its CSRF header: nothing happens
    assert client.get("/api/auth/me", headers=customer.headers).status_code == 200
    rotated = refresh_by_cookie(client).get_json()  # the cookie now holds the rotated token
    response = client.post("/api/auth/logout", headers=csrf_header(client))
    assert response.status_code == 204
    cookies = set_cookies(response)
    assert (cookies[REFRESH].value, cookies[CSRF].value) == ("", "")
    assert client.get_cookie(REFRESH, path="/api/auth") is None
    # the whole login is over
    assert_401(client.get("/api/auth/me", headers=bearer(rotated["token"])))
    assert_401(client.post("/api/auth/refresh", headers=bearer(rotated["refreshToken"])))


def test_a_cookie_logout_of_a_login_ended_elsewhere_clears_the_cookies(app, client, customer):
    csrf = csrf_header(client)
    assert app.test_client().post("/api/auth/logout", headers=customer.headers).status_code == 204  # elsewhere
    response = client.post("/api/auth/logout", headers=csrf)
    assert_401(response)
    assert client.get_cookie(REFRESH, path="/api/auth") is None


def test_a_cookie_refresh_of_a_login_ended_elsewhere_clears_the_cookies(app, client, customer):
    forged = refresh_by_cookie(client, headers={"X-CSRF-Token": "forged-value"})
    assert_401(forged)
    assert not forged.headers.getlist("Set-Cookie")  # another site's request must not log the browser out
    assert app.test_client().post("/api/auth/logout", headers=customer.headers).status_code == 204  # elsewhere
    response = refresh_by_cookie(client)
    assert_401(response)
    cookies = set_cookies(response)
    for name, path in ((REFRESH, "/api/auth"), (CSRF, "/")):
        assert (cookies[name].value, cookies[name]["path"], cookies[name]["max-age"]) == ("", path, "0")
    assert client.get_cookie(REFRESH, path="/api/auth") is None


def test_tokens_from_before_families_keep_working_until_they_expire(app, client, customer):
    with app.app_context():
        access, refresh = create_access_token(str(customer.id)), create_refresh_token(str(customer.id))
    assert client.get("/api/auth/me", headers=bearer(access)).get_json()["id"] == customer.id
    response = client.post("/api/auth/refresh", headers=bearer(refresh))
    assert response.status_code == 200
    assert "family" in jwt.decode(response.get_json()["refreshToken"], options={"verify_signature": False})
    assert_401(client.post("/api/auth/refresh", headers=bearer(refresh)))  # used once: revoked


@pytest.mark.parametrize("config_overrides", [{"PURGE_EXPIRED_SECONDS": 1}], ids=["purge-every-1s"])
def test_the_sweeper_deletes_expired_families(app, client, make_user):
    gone, kept = make_user(), make_user()
    with app.app_context():
        past = datetime.now(timezone.utc) - timedelta(minutes=1)
        db.session.execute(sa.update(TokenFamily).where(TokenFamily.user_id == gone.id).values(expires_at=past))
        db.session.commit()
    app.extensions["notifications"].start()  # the sweeper purges at start, then every second

    def families():
        with app.app_context():
            owners = db.session.scalars(sa.select(TokenFamily.user_id)).all()
            db.session.rollback()
        return owners if len(owners) == 1 else None

    assert wait_until(families, 5, 0.1, message="the expired family purged") == [kept.id]
    assert client.post("/api/auth/refresh", headers=bearer(kept.refresh_token)).status_code == 200


def test_the_openapi_document_describes_both_ways_to_refresh(client):
    spec = client.get("/api/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["refreshCookie"] == {"type": "apiKey", "in": "cookie", "name": REFRESH}
    assert (schemes["csrfHeader"]["in"], schemes["csrfHeader"]["name"]) == ("header", "X-CSRF-Token")
    security = spec["paths"]["/api/auth/refresh"]["post"]["security"]
    assert security == [{"bearerAuth": []}, {"refreshCookie": [], "csrfHeader": []}]
