from flask import Response, stream_with_context
from flask_jwt_extended import current_user

from eventbook.api import Blueprint
from eventbook.models import Role
from eventbook.ratelimits import per_account
from eventbook.tickets import attendees, service
from eventbook.tickets.schemas import CheckInSchema, ScanSchema, TicketSchema

blp = Blueprint("tickets", __name__, url_prefix="/api", description="At the door: tickets, QR codes, check-in")

BOOKING_ID = "<int:booking_id>"
EVENT_ID = "<int:event_id>"
TICKET_ID = "<int:ticket_id>"


# Check-ins count against one limit per organizer (or admin), whichever gate scans.
checkin_limit = per_account("RATELIMIT_CHECKIN", scope="check-ins")


@blp.route(f"/bookings/{BOOKING_ID}/tickets")
@blp.auth()
@blp.response(200, TicketSchema(many=True))
@blp.alt_response(404, description="not_found (also when the caller may not see the booking)")
def booking_tickets(booking_id):
    """A booking's tickets, one per unit or seat (its customer, the event's organizer, an admin)"""
    return service.of_booking(booking_id, current_user)


@blp.route(f"/bookings/{BOOKING_ID}/tickets/{TICKET_ID}/qr")
@blp.auth()
@blp.response(200, {"type": "string"}, content_type="image/svg+xml", description="an SVG image")
@blp.alt_response(404, description="not_found")
def ticket_qr(booking_id, ticket_id):
    """A ticket's QR code, as SVG: it holds the ticket's code"""
    return Response(service.qr_svg(booking_id, ticket_id, current_user), mimetype="image/svg+xml")


@blp.route(f"/events/{EVENT_ID}/check-ins", methods=["POST"])
@blp.auth(Role.ORGANIZER, Role.ADMIN)
@checkin_limit
@blp.arguments(ScanSchema())
@blp.response(201, CheckInSchema)
@blp.alt_response(404, description="not_found: no such event, or no ticket of this event has this code")
@blp.alt_response(409, description="already_checked_in (with checkedInAt, the first scan's time), ticket_void "
                                   "(its booking was cancelled)")
@blp.alt_response(429, description="rate_limited (RATELIMIT_CHECKIN per organizer)")
def check_in(data, event_id):
    """Check a ticket in by its code: exactly one scan of a code wins"""
    ticket, checked_in_at = service.check_in(event_id, current_user, data["code"], data["nonce"])
    return {"ticket": ticket, "checked_in_at": checked_in_at}


@blp.route(f"/events/{EVENT_ID}/check-ins/{TICKET_ID}", methods=["DELETE"])
@blp.auth(Role.ORGANIZER, Role.ADMIN)
@blp.no_body
@checkin_limit
@blp.response(204)
@blp.alt_response(404, description="not_found: no such event, or the ticket is not of this event")
@blp.alt_response(429, description="rate_limited")
def undo_check_in(event_id, ticket_id):
    """Undo a ticket's check-in"""
    service.undo(event_id, ticket_id, current_user)


@blp.route(f"/events/{EVENT_ID}/attendees.csv")
@blp.auth(Role.ORGANIZER, Role.ADMIN)
@blp.response(200, {"type": "string"}, content_type="text/csv",
              description="a header line, then one line per ticket of a CONFIRMED booking (UTF-8): "
                          + ", ".join(attendees.HEADER),
              headers={"Content-Disposition": {"description": 'attachment; filename="event-{id}-attendees.csv"',
                                               "schema": {"type": "string"}}})
@blp.alt_response(404, description="not_found")
def attendee_list(event_id):
    """An event's attendees, one line per ticket, as CSV (streamed)"""
    return Response(
        stream_with_context(service.attendee_lines(event_id, current_user)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="event-{event_id}-attendees.csv"'},
    )
