"""Accounts, passwords and tokens."""

from datetime import datetime, timezone

import bcrypt
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import Integer, String, bindparam, exc, exists, select

from eventbook.database import autocommit
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import RevokedToken, User, utcnow
from eventbook.schemas import MAX_INT


def hash_password(password):
    rounds = current_app.config["BCRYPT_ROUNDS"]
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def _dummy_hash():
    # Checked against when the email is unknown, so both failures take the same time.
    app = current_app._get_current_object()
    if "dummy_hash" not in app.extensions:
        app.extensions["dummy_hash"] = hash_password("not-a-real-password")
    return app.extensions["dummy_hash"]


def register(email, password, role, name=None):
    user = User(email=email, password_hash=hash_password(password), role=role, name=name)
    db.session.add(user)
    try:
        db.session.commit()
    except exc.IntegrityError:
        db.session.rollback()
        error(409, "email_taken", "An account with this email already exists")
    return user


def authenticate(email, password):
    """The user with these credentials, or a 401 that does not say which one was wrong."""
    try:
        candidate = password.encode()
        email.encode()
    except UnicodeEncodeError:  # lone surrogates: no account can have them
        candidate, email = b"", ""
    possible = "\x00" not in email and 0 < len(candidate) <= 72
    user = db.session.scalar(select(User).where(User.email == email.strip().lower())) if possible else None
    stored = user.password_hash if user else _dummy_hash()
    matches = possible and bcrypt.checkpw(candidate, stored.encode())
    if user is None or not matches:
        error(401, "unauthorized", "Invalid email or password")
    return user


def issue_tokens(user):
    identity = str(user.id)
    return create_access_token(identity), create_refresh_token(identity)


def revoke(*payloads):
    """Revoke the tokens with these decoded payloads (already revoked ones are fine).
    Expired rows are deleted by `eventbook.housekeeping`."""
    now = utcnow()
    for payload in payloads:
        expires = datetime.fromtimestamp(payload["exp"], timezone.utc)
        if expires > now and db.session.get(RevokedToken, payload["jti"]) is None:
            db.session.add(RevokedToken(jti=payload["jti"], expires_at=expires))
    try:
        db.session.commit()
    except exc.IntegrityError:  # revoked concurrently: the outcome is the same
        db.session.rollback()


def own_refresh_token(token, user):
    """The payload of `token` if it is a refresh token of `user`, else a 401."""
    try:
        payload = decode_token(token, allow_expired=True)
    except Exception:  # noqa: BLE001 - any decoding failure means "not a token of ours"
        payload = None
    if not payload or payload.get("type") != "refresh" or payload.get("sub") != str(user.id):
        error(401, "unauthorized", "refreshToken is not a refresh token of this account")
    return payload


def token_owner(payload):
    """(the token's user or None, whether the token is revoked), in one query."""
    sub = payload.get("sub")
    user_id = int(sub) if isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 10 else 0
    if not 0 < user_id <= MAX_INT:
        return None, False
    # A read that needs no transaction: on the request's auto-commit connection, so the
    # session begins a transaction only when a service writes (a booking without an
    # Idempotency-Key reuses that connection for its one statement: bookings.service.book).
    with autocommit() as connection:
        row = connection.execute(TOKEN_OWNER, {"user_id": user_id, "jti": str(payload.get("jti"))}).first()
    if row is None:
        return None, False
    return row, row.revoked


# Built once: every authenticated request runs it. It gives a plain row (id, email, name,
# role, created_at), not an ORM object, since callers only read it.
_users, _revoked = User.__table__, RevokedToken.__table__
TOKEN_OWNER = select(
    _users.c.id, _users.c.email, _users.c.name, _users.c.role, _users.c.created_at,
    exists().where(_revoked.c.jti == bindparam("jti", type_=String)).label("revoked"),
).where(_users.c.id == bindparam("user_id", type_=Integer))
