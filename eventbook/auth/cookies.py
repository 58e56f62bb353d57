"""The browser session: the refresh token in an HttpOnly cookie, and its double-submit
CSRF value in a cookie the page's script reads and echoes in `X-CSRF-Token`.

flask-jwt-extended reads them back (`Blueprint.auth(cookie=True)`: the cookie, and the
header compared with the token's own `csrf` claim), under the names and paths in
config.py. They are written here rather than with its `set_refresh_cookies`, whose
Secure flag is one setting for the app: this one is Secure when the request came over
HTTPS (behind a proxy, PROXY_FIX_X_FOR lets the app see that).
"""

from flask import current_app, request
from flask_jwt_extended import get_csrf_token

SET_COOKIE_DOC = {
    "Set-Cookie": {
        "description": "eventbook_refresh (the refresh token: HttpOnly, SameSite=Strict, Path=/api/auth, "
        "Secure over HTTPS) and eventbook_csrf (its CSRF value, readable by scripts); "
        "logout and a refused refresh clear both",
        "schema": {"type": "string"},
    }
}


def set_session(response, refresh_token):
    max_age = int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
    for name, value, path, http_only in _cookies(refresh_token=refresh_token):
        response.set_cookie(name, value, max_age=max_age, path=path, secure=request.is_secure,
                            httponly=http_only, samesite=current_app.config["JWT_COOKIE_SAMESITE"])
    return response


def clear_session(response):
    for name, _value, path, http_only in _cookies():
        response.delete_cookie(name, path=path, secure=request.is_secure, httponly=http_only,
                               samesite=current_app.config["JWT_COOKIE_SAMESITE"])
    return response


def _cookies(refresh_token=None):
    """(name, value, path, HttpOnly) of the two cookies."""
    config = current_app.config
    csrf = get_csrf_token(refresh_token) if refresh_token else ""
    return (
        (config["JWT_REFRESH_COOKIE_NAME"], refresh_token or "", config["JWT_REFRESH_COOKIE_PATH"], True),
        (config["JWT_REFRESH_CSRF_COOKIE_NAME"], csrf, config["JWT_REFRESH_CSRF_COOKIE_PATH"], False),
    )
