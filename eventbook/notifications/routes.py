from flask_jwt_extended import current_user
from sqlalchemy import select

from eventbook.api import Blueprint
from eventbook.models import Notification
from eventbook.notifications.schemas import NotificationSchema
from eventbook.pagination import HEADERS_DOC, paginate
from eventbook.schemas import PageArgs

blp = Blueprint("notifications", __name__, url_prefix="/api/notifications",
                description="The emails sent to the caller")


@blp.route("")
@blp.auth()
@blp.arguments(PageArgs(), location="query")
@blp.response(200, NotificationSchema(many=True), headers=HEADERS_DOC)
def list_notifications(args):
    """The caller's notifications, newest first"""
    stmt = (
        select(Notification)
        .where(Notification.user_id == current_user.id)
        .order_by(Notification.id.desc())
    )
    return paginate(stmt, args, Notification)
