from flask_jwt_extended import current_user

from eventbook.admin import service
from eventbook.admin.schemas import UserChangeSchema, UserQueryArgs
from eventbook.api import Blueprint
from eventbook.auth.schemas import AdminUserSchema
from eventbook.models import Role, User
from eventbook.pagination import HEADERS_DOC, paginate

blp = Blueprint("admin", __name__, url_prefix="/api/admin", description="Administration (ADMIN only)")


@blp.route("/users")
@blp.auth(Role.ADMIN)
@blp.arguments(UserQueryArgs(), location="query")
@blp.response(200, AdminUserSchema(many=True), headers=HEADERS_DOC)
def users(args):
    """Accounts, oldest first, filtered by text (email or name) and role"""
    return paginate(service.users(args), args, User)


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@blp.auth(Role.ADMIN)
@blp.arguments(UserChangeSchema(), required=False)
@blp.response(200, AdminUserSchema)
@blp.alt_response(404, description="not_found")
def change_user(data, user_id):
    """Change an account's role or disable it (not one's own)"""
    return service.change(user_id, current_user, data)
