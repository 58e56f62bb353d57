from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.models import Role
from eventbook.pagination import HEADERS_DOC
from eventbook.schemas import PageArgs
from eventbook.waitlist import service
from eventbook.waitlist.schemas import EntrySchema, JoinSchema, QueuedEntrySchema

blp = Blueprint("waitlist", __name__, url_prefix="/api/events", description="Waiting lists of sold-out events")

EVENT_ID = "<int:event_id>"


@blp.route(f"/{EVENT_ID}/waitlist")
class Waitlist(MethodView):
    @blp.auth(Role.CUSTOMER)
    @blp.arguments(JoinSchema())
    @blp.response(201, EntrySchema, headers={"Location": {"description": "your entry", "schema": {"type": "string"}}})
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="tickets_available (book them instead), already_waiting, already_booked, "
                                       "already_holding (with holdId), event_closed, sales_closed (outside the type's sales window)")
    @blp.alt_response(422, description="validation_error, also for a seated event (it has no waiting list: its "
                                       "returned seats go straight back to the seat map)")
    def post(self, data, event_id):
        """Join an event's waiting list (only while fewer tickets are available than asked)"""
        entry = service.join(event_id, current_user, data)
        return entry, {"Location": url_for("waitlist.Mine", event_id=event_id)}

    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, QueuedEntrySchema(many=True), headers=HEADERS_DOC)
    @blp.alt_response(404, description="not_found")
    def get(self, args, event_id):
        """An event's waiting list in queue order, with each customer"""
        return service.queue(event_id, current_user, args)


@blp.route(f"/{EVENT_ID}/waitlist/me")
class Mine(MethodView):
    @blp.auth(Role.CUSTOMER)
    @blp.response(200, EntrySchema)
    @blp.alt_response(404, description="not_found: you have no entry (or left)")
    def get(self, event_id):
        """Your entry on an event's waiting list, with your position"""
        return service.mine(event_id, current_user)

    @blp.auth(Role.CUSTOMER)
    @blp.no_body
    @blp.response(204)
    @blp.alt_response(404, description="not_found: no such event")
    def delete(self, event_id):
        """Leave an event's waiting list (an offer made to you is released)"""
        service.leave(event_id, current_user)
