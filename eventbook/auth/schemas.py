import unicodedata

import idna
from marshmallow import ValidationError, fields, post_load, validate

from eventbook.models import Role
from eventbook.schemas import Reply, Schema, Text, Title, UTCDateTime


def as_password(password):
    """A password as it is hashed and checked: in Unicode's NFKC form, so that the same
    characters typed on another keyboard or system (an "é" as one letter or as "e" and a
    combining accent, a ligature, a fullwidth letter) are the same password (NIST SP
    800-63B, 5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


class Password(Text):
    """8 to 72 bytes in NFKC form (`as_password`): bcrypt looks at 72 bytes at most, and
    bcrypt 5 refuses more.

    JSON Schema counts characters, and a character is 1 to 4 bytes of UTF-8, so the
    document gives the character counts those bytes allow (2 to 72) as minLength and
    maxLength, and the rule itself as `x-minBytes` / `x-maxBytes` of the password's
    `x-unicodeNormalization` form, and in the description. The character counts are
    held as written too (NFKC can make one character several, or several one): every
    password the server accepts fits the schema, and a client that follows the document
    (x- rules included) is never refused."""

    def __init__(self, min_bytes=8, **kwargs):
        self.min_bytes = min_bytes
        super().__init__(
            load_only=True, required=True,
            metadata={"minLength": -(-min_bytes // 4), "maxLength": 72, "x-minBytes": min_bytes, "x-maxBytes": 72,
                      "x-unicodeNormalization": "NFKC", "format": "password",
                      "description": f"{min_bytes} to 72 bytes once encoded as UTF-8 (x-minBytes, x-maxBytes): "
                                     f"{min_bytes} to 72 ASCII characters, fewer where a character takes more bytes; "
                                     "taken in Unicode's NFKC form (counted so too), so that the same characters "
                                     "typed another way are the same password"},
            **kwargs,
        )

    def _deserialize(self, value, attr, data, **kwargs):
        written = super()._deserialize(value, attr, data, **kwargs)
        value = as_password(written)
        if not (self.min_bytes <= len(value.encode("utf-8")) <= 72
                and self.metadata["minLength"] <= len(written) <= self.metadata["maxLength"]):
            raise ValidationError(f"Must be {self.min_bytes} to 72 bytes long.")
        return value


class Email(fields.Email):
    """An address as plain characters, so that no two accounts look alike: in Unicode's
    NFKC form (no fullwidth or other compatibility letters: "ｅxample.com" is
    "example.com") and without invisible or formatting characters (a zero-width space, a
    soft hyphen, a bidirectional override), which name the same domain once it is
    looked up (IDNA) or only look the same."""

    def __init__(self, **kwargs):
        super().__init__(required=True, validate=validate.Length(max=254), metadata={
            "description": "an email address; Unicode in NFKC form, without invisible or formatting characters; "
                           "at most 64 bytes before the @; case does not matter (stored lower-case), nor "
                           "how the domain is spelt (its xn-- labels are stored in Unicode)"}, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = unicode_domain(super()._deserialize(value, attr, data, **kwargs).strip().lower())
        if any(character.isspace() for character in value):  # a quoted local part's: no mailbox we send to
            raise self.make_error("invalid")
        if unicodedata.normalize("NFKC", value) != value or any(
                unicodedata.category(character) in INVISIBLE for character in value):
            raise ValidationError("Write the address in plain characters: no fullwidth, invisible or "
                                  "formatting characters.")
        if len(value.rpartition("@")[0].encode()) > 64:
            raise ValidationError("The part before the @ must be at most 64 bytes long (RFC 5321).")
        return value


def as_stored(email):
    """An address as accounts are stored and looked up: trimmed, in NFKC form, lower-case,
    its domain in Unicode (one that registering refuses as written, such as "A" and a
    combining ring for "Å", a fullwidth or a mathematical letter, finds the account of
    its plain form)."""
    return unicode_domain(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email.strip()).lower()))


def unicode_domain(address):
    """`address` with its domain's ASCII-compatible labels ("xn--", IDNA 2008) in Unicode,
    so that "bücher.de" and "xn--bcher-kva.de", one domain, are one address. A domain
    that is not valid IDNA is left as it is."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain:
        return address
    try:
        return f"{local}@{idna.decode(domain)}"
    except idna.IDNAError:
        return address


INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Cn", "Zs", "Zl", "Zp"}  # controls, formats, private use, unassigned, spaces


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.String(dump_only=True)
    name = fields.String(dump_only=True, allow_none=True)
    role = fields.String(dump_only=True, metadata={"enum": [Role.CUSTOMER, Role.ORGANIZER, Role.ADMIN]})
    created_at = UTCDateTime(dump_only=True)


class AdminUserSchema(UserSchema):
    """A user as administration sees it: with `disabled`."""

    disabled = fields.Boolean(dump_only=True, metadata={"description": "a disabled account cannot log in"})


class RegisterSchema(Schema):
    email = Email()
    password = Password()
    role = fields.String(required=True, validate=validate.OneOf([Role.CUSTOMER, Role.ORGANIZER]))
    name = Title(100, load_default=None, allow_none=True)

    @post_load
    def default_name(self, data, **kwargs):
        data["name"] = data["name"] or None
        return data


class RegisteredSchema(Reply):
    message = fields.String()
    user = fields.Nested(UserSchema)


class LoginSchema(Schema):
    # Any string is accepted here: credentials that cannot exist simply never match (401).
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024),
                                     metadata={"format": "password", "description": "the password the account has now"})
    new_password = Password()


class PasswordResetAskSchema(Schema):
    # Any string is accepted, as at login: an address no account has gets the same answer.
    email = fields.String(required=True, validate=validate.Length(min=1, max=254),
                          metadata={"description": "the account's email address"})


class PasswordResetSchema(Schema):
    code = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200),
                         metadata={"description": "the code of the password reset email"})
    new_password = Password()


class MessageSchema(Reply):
    message = fields.String()


class RefreshedSchema(Reply):
    token = fields.String(metadata={"description": "access token (Authorization: Bearer ...)"})
    refresh_token = fields.String(metadata={
        "description": "the next refresh token (also in the eventbook_refresh cookie); the one used stops working"})


class TokensSchema(RefreshedSchema):
    user = fields.Nested(UserSchema)


class LogoutSchema(Schema):
    refresh_token = Text(
        validate=validate.Length(max=4096),
        metadata={"description": "also revoke this refresh token (it must be the caller's)"},
    )
