from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.bookings import service as bookings
from eventbook.bookings.schemas import AttendeeBookingSchema
from eventbook.events import search, service
from eventbook.events.schemas import (
    EventCreateSchema,
    EventQueryArgs,
    EventSchema,
    EventUpdateSchema,
    TicketTypeCreateSchema,
    TicketTypeSchema,
    TicketTypeUpdateSchema,
)
from eventbook.models import Booking as BookingModel, Event as EventModel, Role
from eventbook.pagination import HEADERS_DOC, paginate
from eventbook.schemas import PageArgs

blp = Blueprint("events", __name__, url_prefix="/api/events", description="Events and their tickets")

EVENT_ID = "<int:event_id>"


@blp.route("")
class Events(MethodView):
    @blp.arguments(EventQueryArgs(), location="query")
    @blp.response(200, EventSchema(many=True), headers=HEADERS_DOC)
    def get(self, args):
        """Browse or search events, sorted by date (upcoming SCHEDULED ones by default)"""
        return paginate(search.browse(args), args, EventModel, keyset=search.ORDER)

    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.arguments(EventCreateSchema())
    @blp.response(201, EventSchema, headers={"Location": {"description": "the new event", "schema": {"type": "string"}}})
    def post(self, data):
        """Publish an event"""
        event = service.create(current_user, data)
        return event, {"Location": url_for("events.Event", event_id=event.id)}


@blp.route(f"/{EVENT_ID}")
class Event(MethodView):
    @blp.response(200, EventSchema)
    @blp.alt_response(404, description="not_found")
    def get(self, event_id):
        """One event"""
        return service.get(event_id)

    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.arguments(EventUpdateSchema(partial=True), required=False)
    @blp.response(200, EventSchema)
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="capacity_below_sold (below what is sold and held), event_closed "
                                       "(cancelled, or started: what took place is not changed)")
    def put(self, data, event_id):
        """Change an event (any subset of its fields)"""
        return service.change(event_id, current_user, data)

    patch = put  # API.md: PUT and PATCH both take any subset of the fields

    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.no_body
    @blp.response(204)
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="event_closed (it has started with CONFIRMED bookings: they stand)")
    def delete(self, event_id):
        """Delete an event never booked; otherwise cancel it and its bookings

        An event nobody ever booked is removed with its holds (also those still HELD)
        and its waiting list: they are 404s from then on. Otherwise it becomes
        CANCELLED, its CONFIRMED bookings CANCELLED (each attendee gets EVENT_CANCELLED),
        its HELD holds RELEASED (EXPIRED if past their expiry), its waiting list LAPSED.
        Deleting a cancelled event again is a 204; cancelling one that has started is
        refused."""
        service.remove(event_id, current_user)


@blp.route(f"/{EVENT_ID}/bookings")
@blp.auth(Role.ORGANIZER, Role.ADMIN)
@blp.arguments(PageArgs(), location="query")
@blp.response(200, AttendeeBookingSchema(many=True), headers=HEADERS_DOC)
@blp.alt_response(404, description="not_found")
def event_bookings(args, event_id):
    """The bookings of an event, with each attendee"""
    return paginate(bookings.of_event(event_id, current_user), args, BookingModel)


TYPE_ID = "<int:type_id>"


@blp.route(f"/{EVENT_ID}/ticket-types", methods=["POST"])
@blp.auth(Role.ORGANIZER, Role.ADMIN)
@blp.arguments(TicketTypeCreateSchema())
@blp.response(201, TicketTypeSchema)
@blp.alt_response(404, description="not_found")
@blp.alt_response(409, description="event_closed")
def add_ticket_type(data, event_id):
    """Add a ticket type to an event (at most 20, names unique within the event)"""
    return service.add_ticket_type(event_id, current_user, data)


@blp.route(f"/{EVENT_ID}/ticket-types/{TYPE_ID}")
class TicketType(MethodView):
    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.arguments(TicketTypeUpdateSchema(partial=True), required=False)
    @blp.response(200, TicketTypeSchema)
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="capacity_below_sold (quantity below what is sold and held), "
                                       "event_closed")
    def patch(self, data, event_id, type_id):
        """Change a ticket type: name, price (for tickets taken from now on), quantity, sales window"""
        return service.change_ticket_type(event_id, type_id, current_user, data)

    @blp.auth(Role.ORGANIZER, Role.ADMIN)
    @blp.no_body
    @blp.response(204)
    @blp.alt_response(404, description="not_found")
    @blp.alt_response(409, description="capacity_below_sold (tickets of it are sold, held or set aside, seats "
                                       "have it, or it is the event's last type), event_closed")
    def delete(self, event_id, type_id):
        """Delete a ticket type nothing is sold, held or set aside of

        Past bookings and holds keep naming a deleted type (their items), but it is no
        longer listed, sold or changed (404), and its name may be given to a new type.
        Its WAITING waiting-list entries become LAPSED."""
        service.remove_ticket_type(event_id, type_id, current_user)
