from flask import after_this_request
from flask_jwt_extended import current_user, get_jwt
from flask_jwt_extended.exceptions import CSRFError
from werkzeug.exceptions import HTTPException

from eventbook.api import Blueprint
from eventbook.auth import cookies, resets, service
from eventbook.auth.schemas import (
    LoginSchema,
    LogoutSchema,
    MessageSchema,
    PasswordChangeSchema,
    PasswordResetAskSchema,
    PasswordResetSchema,
    RefreshedSchema,
    RegisteredSchema,
    RegisterSchema,
    TokensSchema,
    UserSchema,
)
from eventbook.errors import envelope
from eventbook.ratelimits import by_address

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")


@blp.errorhandler(CSRFError)
def csrf_refused(_exc):
    """A refresh by cookie without the cookie's CSRF value in the header (or another one)."""
    return envelope(401, "unauthorized", "Missing or wrong X-CSRF-Token header for the session cookie")


@blp.route("/register", methods=["POST"])
@by_address("RATELIMIT_REGISTER")
@blp.arguments(RegisterSchema())
@blp.response(201, RegisteredSchema)
@blp.alt_response(409, description="email_taken")
@blp.alt_response(429, description="rate_limited")
def register(data):
    """Create a CUSTOMER or ORGANIZER account"""
    user = service.register(**data)
    return {"message": "User registered", "user": user}


@blp.route("/login", methods=["POST"])
@by_address("RATELIMIT_LOGIN")
@blp.arguments(LoginSchema())
@blp.response(200, TokensSchema, headers=cookies.SET_COOKIE_DOC)
@blp.alt_response(401, description="Invalid email or password")
@blp.alt_response(429, description="rate_limited")
def login(data):
    """Exchange email and password for an access and a refresh token (also set as a cookie)"""
    user, token, refresh_token = service.log_in(data["email"], data["password"])
    after_this_request(lambda response: cookies.set_session(response, refresh_token))
    return {"token": token, "refresh_token": refresh_token, "user": user}


@blp.route("/refresh", methods=["POST"])
@blp.auth(refresh=True, cookie=True,
          unauthorized="unauthorized, refresh_token_reused (every token of that login is revoked); for a token that "
                       "is ours but expired or revoked, the session's cookies are cleared (Set-Cookie)")
@blp.no_body
@blp.response(200, RefreshedSchema, headers=cookies.SET_COOKIE_DOC)
def refresh():
    """Exchange a refresh token (bearer, or the session cookie with X-CSRF-Token) for new tokens; the old one stops working"""
    try:
        token, refresh_token = service.rotate(get_jwt(), current_user)
    except HTTPException:  # reused, or revoked meanwhile: that session is over
        after_this_request(cookies.clear_session)
        raise
    after_this_request(lambda response: cookies.set_session(response, refresh_token))
    return {"token": token, "refresh_token": refresh_token}


@blp.route("/logout", methods=["POST"])
@blp.auth(refresh=True, any_token=True, cookie=True,  # any bearer token, or the session cookie
          unauthorized="unauthorized: no token, or one that is malformed, expired or revoked (the session's cookies "
                       "are then cleared: Set-Cookie), or a refreshToken in the body that is not the caller's")
@blp.arguments(LogoutSchema(), required=False)
@blp.response(204, headers=cookies.SET_COOKIE_DOC)
def logout(data):
    """Revoke the presented token, every token of its login, and the refresh token given in the body; clear the session cookie"""
    payloads = [get_jwt()]
    if data.get("refresh_token"):
        payloads.append(service.own_refresh_token(data["refresh_token"], current_user))
    service.revoke(*payloads)
    after_this_request(cookies.clear_session)


@blp.route("/password", methods=["POST"])
@by_address("RATELIMIT_LOGIN")
@blp.auth()
@blp.arguments(PasswordChangeSchema())
@blp.response(204)
@blp.alt_response(403, description="forbidden: currentPassword is not the account's password (counted as a failed "
                                   "login of the account)")
@blp.alt_response(429, description="rate_limited: too many attempts, as for login")
def change_password(data):
    """Change the caller's password; every other login of the account ends, this one goes on"""
    service.change_password(current_user, get_jwt(), data["current_password"], data["new_password"])


@blp.route("/password/reset", methods=["POST"])
@by_address("RATELIMIT_PASSWORD_RESET")
@blp.arguments(PasswordResetAskSchema())
@blp.response(202, MessageSchema)
@blp.alt_response(429, description="rate_limited")
def ask_password_reset(data):
    """Email a code that sets a new password to the account with this address; the same answer whether there is one or not"""
    resets.ask(data["email"])
    return {"message": "If an account has this address, an email with a code to reset its password is on its way"}


@blp.route("/password/reset/confirm", methods=["POST"])
@by_address("RATELIMIT_LOGIN")
@blp.arguments(PasswordResetSchema())
@blp.response(204)
@blp.alt_response(403, description="forbidden: the code is wrong, used or expired (also in errors.code); nothing changed")
@blp.alt_response(429, description="rate_limited")
def reset_password(data):
    """Set a new password with a password reset email's code; every login of the account ends"""
    resets.reset(data["code"], data["new_password"])


@blp.route("/me")
@blp.auth()
@blp.response(200, UserSchema)
def me():
    """The caller's own account"""
    return current_user
