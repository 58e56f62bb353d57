"""Password reset by email.

Whoever forgot their password asks for a reset with their address (`ask`): the answer
is the same whether an account has it or not, and an enabled account that has it gets a
PASSWORD_RESET email through the outbox, as every notification goes. The email carries a
code that sets a new password once (`reset`), and every login of the account ends.

The code is stored nowhere. It is the account's id, the time the reset was asked for,
and an HMAC (SHA-256, under a key derived from JWT_SECRET_KEY) of both with the
account's password hash as it is then: made when the email is sent (`code_for`), checked
against the account as it is when the code comes back. So nothing in the database, a
backup or a log can set a password; a code works for PASSWORD_RESET_MINUTES after the
request, and only while the password is the one it was made for: its own use, a change,
or another reset's ends it.
"""

import hashlib
import hmac
import re
from base64 import urlsafe_b64encode
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from eventbook import ratelimits
from eventbook.auth import service, throttle
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import User, utcnow
from eventbook.notifications import outbox
from eventbook.schemas import MAX_INT

CODE = re.compile(r"([1-9][0-9]{0,9})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
REFUSED = "This code is wrong, used or expired: ask for a new one"


def ask(email):
    """Write a PASSWORD_RESET email for the enabled account with this address, if there
    is one and it has not had RATELIMIT_PASSWORD_RESET_ACCOUNT of them already (counted
    for any address, so the count says nothing either, and for every spelling of it:
    `throttle.account_digest`)."""
    if not _counted(email):
        return
    user = service.account(email)
    if user is None or user.disabled:
        db.session.rollback()
        return
    outbox.commit(outbox.password_reset(user, current_app.config["PASSWORD_RESET_MINUTES"], utcnow()))


def _counted(email):
    if not ratelimits.enabled():
        return True
    digest = throttle.account_digest(email)
    limits = ratelimits.limits_of(current_app.config["RATELIMIT_PASSWORD_RESET_ACCOUNT"])
    return all([ratelimits.hit(item, "reset-account", digest) for item in limits])  # a list: every limit counts it


def code_for(user_id, asked_at):
    """The code of the reset asked for at `asked_at` by this account, as its password is
    now (the PASSWORD_RESET email's, made as it is sent)."""
    password_hash = db.session.scalar(select(User.password_hash).where(User.id == user_id))
    db.session.rollback()
    issued = int(asked_at.timestamp())
    return f"{user_id}.{issued}.{_mac(user_id, issued, password_hash or '')}"


def reset(code, new_password):
    """Set the password of the code's account to `new_password` (in NFKC form, as
    registering takes it), end every login of the account, and tell its address
    (PASSWORD_CHANGED). A code that is malformed, forged, expired, already used (or made
    for a password since changed), or of a disabled account, is a 403 (`errors.code`).
    Two resets with one code at once: the password's conditional UPDATE lets one
    through."""
    found = CODE.fullmatch(code)
    user_id, issued = (int(found[1]), int(found[2])) if found else (0, 0)
    now = utcnow().timestamp()
    user = db.session.execute(select(User.id, User.email, User.password_hash, User.disabled)
                              .where(User.id == user_id)).first() \
        if 0 < user_id <= MAX_INT else None
    db.session.rollback()  # no connection, and no snapshot, held while bcrypt takes its time
    lifetime = timedelta(minutes=current_app.config["PASSWORD_RESET_MINUTES"]).total_seconds()
    if (user is None or user.disabled or not issued - 60 <= now <= issued + lifetime
            or not hmac.compare_digest(found[3], _mac(user_id, issued, user.password_hash))):
        _refuse()
    new_hash = service.hash_password(new_password)
    changed = db.session.execute(
        update(User).where(User.id == user_id, User.password_hash == user.password_hash, User.disabled.is_(False))
        .values(password_hash=new_hash).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:  # used (or the password changed) since it was read, or the account disabled
        db.session.rollback()
        _refuse()
    service.revoke_sessions(user_id)
    outbox.commit(outbox.password_changed(user, utcnow(), reset=True))


def _refuse():
    """A code is a credential: a wrong one is refused as a wrong current password is."""
    error(403, "forbidden", REFUSED, errors={"code": [REFUSED]})


def _mac(user_id, issued, password_hash):
    key = hmac.new(current_app.config["JWT_SECRET_KEY"].encode(), b"eventbook password reset", hashlib.sha256)
    message = f"{user_id}\x00{issued}\x00{password_hash}".encode()
    digest = hmac.new(key.digest(), message, hashlib.sha256).digest()
    return urlsafe_b64encode(digest).decode().rstrip("=")
