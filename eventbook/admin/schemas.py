from marshmallow import ValidationError, fields, validate

from eventbook.models import Role
from eventbook.schemas import PageArgs, Schema, Text

ROLES = [Role.CUSTOMER, Role.ORGANIZER, Role.ADMIN]


class UserQueryArgs(PageArgs):
    q = Text(validate=validate.Length(max=254), metadata={"description": "in email or name, case-insensitive"})
    role = fields.String(validate=validate.OneOf(ROLES))


class StrictBoolean(fields.Boolean):
    """JSON true or false only (marshmallow also takes 1, "yes", "on"...)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class UserChangeSchema(Schema):
    # ADMIN is given only by `flask create-admin`: a stolen admin token cannot make more admins.
    role = fields.String(validate=validate.OneOf([Role.CUSTOMER, Role.ORGANIZER]),
                         metadata={"description": "CUSTOMER or ORGANIZER (admins are made with flask create-admin)"})
    disabled = StrictBoolean(metadata={
        "description": "a disabled account's tokens stop working at once, it cannot log in, and its holds "
                       "and waiting-list places are given up"})
