"""Addresses stored with an xn-- domain are stored in Unicode, as registering stores them.

Since 7 December 2026 an address's domain is kept in Unicode ("bücher.de", not
"xn--bcher-kva.de", one domain), so that one address is one account however its domain
is spelt. Accounts registered before kept the form they were given; this stores theirs
in Unicode too, so that registering the other spelling is refused (409 email_taken) for
them as well. An address whose Unicode form another account already has is left as it
is, and named in the migration's log: two accounts that are one person's, for an
admin to settle. A domain that is not valid IDNA is left as it is, as registering
leaves it. The downgrade keeps the Unicode forms (both are the same address).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import logging

import idna
import sqlalchemy as sa
from alembic import op

log = logging.getLogger("eventbook.migrations")

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def unicode_form(address):
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError):
        return address


def upgrade():
    connection = op.get_bind()
    stored = connection.execute(sa.text("SELECT id, email FROM users WHERE email LIKE '%xn--%'")).all()
    for user_id, email in stored:
        unicode = unicode_form(email)
        if unicode == email:
            continue
        taken = connection.execute(sa.text("SELECT id FROM users WHERE email = :email"), {"email": unicode}).scalar()
        if taken is not None:
            log.warning("account %s (%s) and account %s (%s) have one address: left as they are",
                        user_id, email, taken, unicode)
            continue
        connection.execute(sa.text("UPDATE users SET email = :email WHERE id = :id"), {"email": unicode, "id": user_id})


def downgrade():
    pass
