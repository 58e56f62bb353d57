from flask import url_for
from flask.views import MethodView
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.bookings import idempotency, service
from eventbook.bookings.schemas import BookingSchema, IdempotencyHeader, MyBookingsArgs, OrderSchema
from eventbook.models import Booking as BookingModel, Role
from eventbook.pagination import HEADERS_DOC, paginate
from eventbook.ratelimits import per_account

blp = Blueprint("bookings", __name__, url_prefix="/api/bookings", description="Buying and cancelling tickets")

BOOKING_ID = "<int:booking_id>"
REPLAYED_DOC = {"Idempotent-Replayed": {"description": "true when this answers a repeated Idempotency-Key",
                                        "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "the booking", "schema": {"type": "string"}}, **REPLAYED_DOC}


def booking_response(booking, status, replayed):
    headers = {"Location": url_for("bookings.Booking", booking_id=booking.id)}
    if replayed:
        headers.update(idempotency.REPLAYED_HEADER)
    return booking, status, headers


@blp.route("")
class Bookings(MethodView):
    @blp.auth(Role.CUSTOMER)
    @per_account("RATELIMIT_BOOKING", scope="sales")
    @blp.arguments(IdempotencyHeader(), location="headers")
    @blp.arguments(OrderSchema())
    @blp.response(201, BookingSchema, headers=LOCATION)
    @blp.alt_response(404, description="not_found: no such event")
    @blp.alt_response(409, description="not_enough_tickets, sold_out (with availableTickets, and ticketTypeId when a type "
                                       "ran short or the order is of one type), already_booked, already_holding (with "
                                       "holdId: the customer holds tickets of this event, a waiting-list offer included), "
                                       "event_closed, sales_closed, seats_taken (with unavailableSeatIds), "
                                       "idempotency_key_reused; a repeated Idempotency-Key gets its first refusal "
                                       "again", headers=REPLAYED_DOC)
    @blp.alt_response(429, description="rate_limited")
    def post(self, headers, data):
        """Book tickets: a hold and its confirm in one transaction"""
        return booking_response(*service.book(current_user, data, headers.get("idempotency_key")))


@blp.route("/my-bookings")
@blp.auth()
@blp.arguments(MyBookingsArgs(), location="query")
@blp.response(200, BookingSchema(many=True), headers=HEADERS_DOC)
def my_bookings(args):
    """The caller's bookings, newest first (of one event with eventId)"""
    return paginate(service.mine(current_user, args.get("event_id")), args, BookingModel)


@blp.route(f"/{BOOKING_ID}")
class Booking(MethodView):
    @blp.auth()
    @blp.response(200, BookingSchema)
    @blp.alt_response(404, description="not_found (also when the caller may not see it)")
    def get(self, booking_id):
        """One booking (its customer, the event's organizer, or an admin)"""
        return service.visible(booking_id, current_user)


@blp.route(f"/{BOOKING_ID}/cancel", methods=["POST"])
@blp.auth()
@blp.no_body
@blp.response(200, BookingSchema)
@blp.alt_response(403, description="forbidden: the event's organizer sees the booking but may not cancel it")
@blp.alt_response(404, description="not_found")
@blp.alt_response(409, description="event_closed (the event has started), already_checked_in (with checkedInAt: a "
                                   "ticket of it was checked in; undo the check-in first)")
def cancel(booking_id):
    """Cancel a booking and return its tickets (again: no change)"""
    return service.cancel(booking_id, current_user)
