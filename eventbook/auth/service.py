"""Accounts, passwords, tokens and their families (one per login)."""

import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import bcrypt
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from sqlalchemy import Integer, String, and_, bindparam, exc, exists, select, update

from eventbook.auth import throttle
from eventbook.auth.schemas import as_password, as_stored
from eventbook.database import Prepared, autocommit
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import RevokedToken, TokenFamily, User, utcnow
from eventbook.notifications import outbox
from eventbook.schemas import MAX_INT

FAMILY = "family"  # the claim naming a token's family
REVOKED = "Token has been revoked"  # a token, or its family, revoked: token_owner's refusal
REUSED = "This refresh token was already used: every token of its login is revoked"


def hash_password(password):
    rounds = current_app.config["BCRYPT_ROUNDS"]
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def _dummy_hash():
    # Checked against when the email is unknown, so both failures take the same time.
    extensions = current_app.extensions
    if "dummy_hash" not in extensions:
        extensions["dummy_hash"] = hash_password("not-a-real-password")
    return extensions["dummy_hash"]


def register(email, password, role, name=None):
    user = User(email=email, password_hash=hash_password(password), role=role, name=name)
    db.session.add(user)
    try:
        db.session.commit()
    except exc.IntegrityError:
        db.session.rollback()
        error(409, "email_taken", "An account with this email already exists")
    return user


def log_in(email, password):
    """(user, access token, refresh token) for these credentials, in a new token family;
    else a 401 that does not say what was wrong (nor that the account is disabled), or a
    429 when this address is throttled for this account (`throttle`)."""
    throttle.check(email)
    user = _verified(email, password)
    if user is None:
        throttle.failed(email)
        error(401, "unauthorized", "Invalid email or password")
    tokens = start_session(user)
    throttle.succeeded(email)
    return user, *tokens


def _verified(email, password):
    """The enabled user with these credentials, else None, in the same time either way.

    The password is checked in NFKC form, as registering hashes it, then as written if
    that differs: an account registered before passwords were normalised (7 December
    2026) was hashed as written. How many checks run depends on the password sent
    alone, never on the account."""
    try:
        candidates = [candidate for candidate in dict.fromkeys((as_password(password).encode(), password.encode()))
                      if 0 < len(candidate) <= 72]
    except UnicodeEncodeError:  # lone surrogates: no account can have them
        candidates = []
    user = account(email) if candidates else None
    if user is not None:
        db.session.expunge(user)  # kept as read: ending the transaction below does not expire it
    db.session.rollback()  # no connection, and no snapshot, held while bcrypt takes its time
    stored = user.password_hash if user else _dummy_hash()
    matches = any(bcrypt.checkpw(candidate, stored.encode()) for candidate in candidates)
    return user if user is not None and matches and not user.disabled else None


def account(email):
    """The account with this address, as login finds it: in its stored form, or as
    written first (an account registered before addresses had to be in NFKC form, 3
    December 2026, may be stored otherwise); None."""
    try:
        email.encode()
    except UnicodeEncodeError:  # lone surrogates: no account can have them
        return None
    if "\x00" in email:
        return None
    written = email.strip().lower()
    return db.session.scalars(select(User).where(User.email.in_({written, as_stored(email)}))
                              .order_by(User.email != written)).first()


def change_password(user, payload, current, new):
    """Give `user` the password `new` once `current` is theirs, and end every other login
    of the account (a thief's among them); the login that asks (its token `payload`)
    goes on, and the account's address is told (PASSWORD_CHANGED). A wrong `current`
    counts as a failed login of the account (`throttle`) and is a 403: the caller is
    signed in, but may not do this without the password.

    Two changes at once from two logins: the user's row lock orders them, and the
    second finds its own login ended by the first (401), as any later request of it
    would; or, if the first's password was in before it checked its own, a 403."""
    throttle.check(user.email)
    verified = _verified(user.email, current)
    if verified is None or verified.id != user.id:
        throttle.failed(user.email)
        error(403, "forbidden", "The current password is wrong")
    new_hash = hash_password(new)  # before the row lock: bcrypt takes its time
    db.session.execute(update(User).where(User.id == user.id).values(password_hash=new_hash)
                       .execution_options(synchronize_session=False))
    family_id = payload.get(FAMILY)
    if family_id is not None and db.session.scalar(
            select(TokenFamily.revoked_at).where(TokenFamily.id == family_id)) is not None:
        db.session.rollback()
        error(401, "unauthorized", REVOKED)
    others = TokenFamily.user_id == user.id
    if family_id is not None:
        others = and_(others, TokenFamily.id != family_id)
    _revoke_families(others)
    outbox.commit(outbox.password_changed(user, utcnow()))
    throttle.succeeded(user.email)


def start_session(user):
    """Log in: a new token family; its access and refresh token.

    An admin's disable racing the login either comes first, and the login is the usual
    401, or revokes the new family with the others: the family is written before the
    user's `disabled` is read again, under a lock that the disable's UPDATE waits for
    (on SQLite the write already is the database's only one)."""
    jti = str(uuid.uuid4())
    family = TokenFamily(user_id=user.id, refresh_jti=jti, expires_at=utcnow() + _refresh_lifetime())
    db.session.add(family)
    db.session.flush()
    if disabled_now(user.id):
        db.session.rollback()
        error(401, "unauthorized", "Invalid email or password")
    db.session.commit()
    return _tokens(user.id, family.id, jti)


def disabled_now(user_id):
    """Whether the user is disabled, read under a share lock of their row until the
    transaction ends: an admin's disable being written (`admin.service.change`) is
    waited for, and one that starts after waits for this transaction. On SQLite the
    caller holds the write lock already."""
    return db.session.scalar(select(User.disabled).where(User.id == user_id).with_for_update(read=True))


def rotate(payload, user):
    """Refresh: a new access and refresh token for the refresh token `payload`, which
    stops being accepted. Presenting one that was already rotated revokes its family
    (401 refresh_token_reused)."""
    family_id = payload.get(FAMILY)
    if family_id is None:  # issued before families: it joins one, and is revoked
        revoke(payload)
        return start_session(user)
    jti = str(uuid.uuid4())
    # One of two refreshes with the same token matches: the database decides under its row lock.
    rotated = db.session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.refresh_jti == payload["jti"], TokenFamily.revoked_at.is_(None))
        .values(refresh_jti=jti, expires_at=utcnow() + _refresh_lifetime())
        .execution_options(synchronize_session=False)
    ).rowcount
    if rotated:
        db.session.commit()
        return _tokens(user.id, family_id, jti)
    _revoke_families(TokenFamily.id == family_id)
    db.session.commit()
    if not was_rotated(payload):  # its family was revoked since the token was checked (a logout)
        error(401, "unauthorized", REVOKED)
    error(401, "refresh_token_reused", REUSED)


def was_rotated(payload):
    """Is `payload` a refresh token that its family has since replaced by another? Its
    presenting is a reuse, however often it comes back, and whether or not the family
    is revoked already (by the first reuse, or by two refreshes racing with it)."""
    family_id = payload.get(FAMILY)
    if payload.get("type") != "refresh" or _positive_int(family_id) is None:
        return False
    current = db.session.scalar(select(TokenFamily.refresh_jti).where(TokenFamily.id == family_id))
    return current is not None and current != payload.get("jti")


def _tokens(user_id, family_id, refresh_jti):
    identity, claims = str(user_id), {FAMILY: family_id}
    return (create_access_token(identity, additional_claims=claims),
            create_refresh_token(identity, additional_claims={**claims, "jti": refresh_jti}))


def _refresh_lifetime():
    return current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]


def revoke(*payloads):
    """Revoke the tokens with these decoded payloads and their families (already revoked
    ones are fine). Expired rows are deleted by `eventbook.housekeeping`.

    A token revoked by another request in the meantime (two logouts at once) fails the
    insert and rolls back this whole transaction, families included: it runs again, and
    then finds that token revoked."""
    for attempt in range(3):
        try:
            _revoke(payloads)
            db.session.commit()
            return
        except exc.IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise


def _revoke(payloads):
    now = utcnow()
    families = {payload[FAMILY] for payload in payloads if payload.get(FAMILY) is not None}
    if families:
        _revoke_families(TokenFamily.id.in_(families))
    for payload in payloads:
        expires = datetime.fromtimestamp(payload["exp"], timezone.utc)
        if expires > now and db.session.get(RevokedToken, payload["jti"]) is None:
            db.session.add(RevokedToken(jti=payload["jti"], expires_at=expires))


def revoke_sessions(user_id):
    """Revoke every login of this user (their tokens from before families expire alone)."""
    _revoke_families(TokenFamily.user_id == user_id)


def _revoke_families(condition):
    """How many live families matching `condition` this revoked (in the session's transaction)."""
    return db.session.execute(
        update(TokenFamily).where(condition, TokenFamily.revoked_at.is_(None)).values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def own_refresh_token(token, user):
    """The payload of `token` if it is a refresh token of `user`, else a 401."""
    try:
        payload = decode_token(token, allow_expired=True)
    except Exception:  # noqa: BLE001 - any decoding failure means "not a token of ours"
        payload = None
    if not payload or not _made_by_us(payload) or payload["type"] != "refresh" or payload.get("sub") != str(user.id):
        error(401, "unauthorized", "refreshToken is not a refresh token of this account")
    return payload


def _made_by_us(payload):
    """Has the token the claims we issue, as we issue them? An expiry, a text id to
    revoke it by (without NUL, which PostgreSQL's text cannot hold), one of our two types,
    and a family that is absent (issued before families) or an id. Only whoever holds the
    key could sign one that has not."""
    jti, family_id = payload.get("jti"), payload.get(FAMILY)
    return ("exp" in payload and isinstance(jti, str) and bool(jti) and "\x00" not in jti
            and payload.get("type") in ("access", "refresh")
            and (family_id is None or _positive_int(family_id) is not None))


def token_owner(payload):
    """(the token's user or None, why the token is refused or None), in one query.

    Refused: not made as we make tokens (`_made_by_us`), revoked (logout), its family
    revoked (logout, or a reused refresh token), or its user disabled."""
    if not _made_by_us(payload):
        return None, "Invalid token"
    sub, family_id = payload.get("sub"), payload.get(FAMILY)
    user_id = _positive_int(int(sub)) if isinstance(sub, str) and sub.isascii() and sub.isdigit() and len(sub) <= 10 else None
    if user_id is None:
        return None, "Invalid token"
    # A read that needs no transaction: on the request's auto-commit connection, so the
    # session begins a transaction only when a service writes (a booking without an
    # Idempotency-Key reuses that connection for its one statement: bookings.service.book).
    with autocommit() as connection:
        row = TOKEN_OWNER.execute(
            connection, {"user_id": user_id, "jti": payload["jti"], "family": family_id or 0}
        ).mappings().first()
    if row is None:
        return None, None
    user = SimpleNamespace(**row)
    if user.revoked or (family_id is not None and not user.family_live):
        return user, REVOKED
    if user.disabled:
        return user, "Account is disabled"
    return user, None


def _positive_int(value):
    """`value` if it is an int that fits the database's integer, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT else None


# Every authenticated request runs it, so PostgreSQL plans it once per connection. It
# gives a plain row (id, email, name, role, created_at, disabled, and the checks), not
# an ORM object, since callers only read it.
_users, _revoked, _families = User.__table__, RevokedToken.__table__, TokenFamily.__table__
TOKEN_OWNER = Prepared("eventbook_token_owner", select(
    _users.c.id, _users.c.email, _users.c.name, _users.c.role, _users.c.created_at, _users.c.disabled,
    exists().where(_revoked.c.jti == bindparam("jti", type_=String)).label("revoked"),
    exists().where(and_(
        _families.c.id == bindparam("family", type_=Integer),
        _families.c.user_id == _users.c.id,
        _families.c.revoked_at.is_(None),
    )).label("family_live"),
).where(_users.c.id == bindparam("user_id", type_=Integer)))
