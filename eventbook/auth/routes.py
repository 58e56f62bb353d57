from flask import current_app, request
from flask_jwt_extended import current_user, get_jwt

from eventbook.api import Blueprint
from eventbook.auth import service
from eventbook.auth.schemas import (
    AccessTokenSchema,
    LoginSchema,
    LogoutSchema,
    RegisteredSchema,
    RegisterSchema,
    TokensSchema,
    UserSchema,
)
from eventbook.extensions import limiter

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Accounts and tokens")


def _login_email():
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"login:{email.strip().lower()}" if isinstance(email, str) else f"login-addr:{request.remote_addr}"


@blp.route("/register", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_REGISTER"])
@blp.arguments(RegisterSchema())
@blp.response(201, RegisteredSchema)
@blp.alt_response(409, description="email_taken")
@blp.alt_response(429, description="rate_limited")
def register(data):
    """Create a CUSTOMER or ORGANIZER account"""
    user = service.register(**data)
    return {"message": "User registered", "user": user}


@blp.route("/login", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"])
@limiter.limit(
    lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"],
    key_func=_login_email,
    deduct_when=lambda response: response.status_code == 401,
)
@blp.arguments(LoginSchema())
@blp.response(200, TokensSchema)
@blp.alt_response(401, description="Invalid email or password")
@blp.alt_response(429, description="rate_limited")
def login(data):
    """Exchange email and password for an access and a refresh token"""
    user = service.authenticate(data["email"], data["password"])
    token, refresh_token = service.issue_tokens(user)
    return {"token": token, "refresh_token": refresh_token, "user": user}


@blp.route("/refresh", methods=["POST"])
@blp.auth(refresh=True)
@blp.response(200, AccessTokenSchema)
def refresh():
    """Exchange a refresh token for a new access token"""
    token, _ = service.issue_tokens(current_user)
    return {"token": token}


@blp.route("/logout", methods=["POST"])
@blp.auth(any_token=True)
@blp.arguments(LogoutSchema(), required=False)
@blp.response(204)
def logout(data):
    """Revoke the presented token, and the refresh token given in the body"""
    payloads = [get_jwt()]
    if data.get("refresh_token"):
        payloads.append(service.own_refresh_token(data["refresh_token"], current_user))
    service.revoke(*payloads)


@blp.route("/me")
@blp.auth()
@blp.response(200, UserSchema)
def me():
    """The caller's own account"""
    return current_user
