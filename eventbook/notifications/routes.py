from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.models import Notification
from eventbook.notifications import outbox
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
    return paginate(outbox.of_user(current_user.id), args, Notification)
