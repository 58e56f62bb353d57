"""Administration of accounts: find them, change their role, disable them."""

import unicodedata

from sqlalchemy import literal, or_, select

from eventbook.auth import service as auth
from eventbook.database import unicode_lower
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.holds import service as holds
from eventbook.models import Role, User
from eventbook.waitlist import service as waitlist


def users(args):
    """The select statement for `GET /api/admin/users`, filters applied, oldest first."""
    stmt = select(User).order_by(User.id)
    if args.get("q"):
        # Any case, in every alphabet: both sides lower-cased by the same function, the
        # database's (Python's lower() and PostgreSQL's differ: a final sigma, a dotted I).
        # In NFC, as names are kept. "%" and "_" are the text's own: escaped with "/" (which lower() leaves as it is).
        escaped = unicodedata.normalize("NFC", args["q"]).replace("/", "//").replace("%", "/%").replace("_", "/_")
        words = unicode_lower(literal(escaped))
        stmt = stmt.where(or_(unicode_lower(User.email).contains(words, escape="/"),
                              unicode_lower(User.name).contains(words, escape="/")))
    if "role" in args:
        stmt = stmt.where(User.role == args["role"])
    return stmt


def change(user_id, admin, data):
    """Set a user's role and/or disabled flag. Disabling also revokes their logins, so
    enabling them again does not bring old sessions back.

    Once the disable has committed, it takes them off every waiting list and releases
    their holds, as their own leaves and releases would: the tickets they kept from
    others go back (to the next in line first). So does a new role other than CUSTOMER,
    with which they could confirm no hold nor leave a list. Sent again, it does what is
    left."""
    user = db.session.get(User, user_id)
    if user is None:
        error(404, "not_found", "User not found")
    demoted = data.get("role", user.role) != user.role
    if user.id == admin.id and (demoted or data.get("disabled")):
        error(403, "forbidden", "An admin cannot demote or disable themself")
    for field, value in data.items():
        setattr(user, field, value)
    if data.get("disabled"):
        db.session.flush()  # the user's row first: a login or a join racing this waits for it (auth.start_session, waitlist)
        auth.revoke_sessions(user.id)
    db.session.commit()
    if user.disabled or user.role != Role.CUSTOMER:
        # after the change has committed, so that no order of theirs as a customer starts
        # anew; the lists first: an offer's hold ends with its entry
        waitlist.leave_all(user.id)
        holds.release_all(user.id)
    return user
