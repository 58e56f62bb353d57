"""The one template of each notification kind, and the parameters each is written with.

An outbox row stores its kind and the parameters of its template (JSON), written by
the same transaction as the change it tells about. Subject and body are rendered here,
from the row, when the email is sent and when the notification is listed.
"""

from datetime import datetime, timezone

from eventbook.errors import tickets
from eventbook.models import NotificationKind as Kind

WHEN = "%A %d %B %Y, %H:%M UTC"
WHEN_TO_THE_SECOND = "%A %d %B %Y, %H:%M:%S UTC"  # a time that is not on the minute

TEMPLATES = {
    Kind.BOOKING_CONFIRMED: (
        "Booking confirmed: {title}",
        "Your booking #{booking} of {tickets} for {title} on {when} at {location} is confirmed."
        " Total: {total}.",
    ),
    Kind.BOOKING_CANCELLED: (
        "Booking cancelled: {title}",
        "Your booking #{booking} of {tickets} for {title} on {when} at {location} has been cancelled.",
    ),
    Kind.EVENT_UPDATED: (
        "Event updated: {title}",
        "{title}{formerly} has changed. It now takes place on {when} at {location}."
        " Your booking #{booking}: {tickets}.",
    ),
    Kind.EVENT_CANCELLED: (
        "Event cancelled: {title}",
        "{title}, planned on {when} at {location}, has been cancelled."
        " Your booking #{booking} of {tickets} is cancelled.",
    ),
    Kind.WAITLIST_OFFER: (
        "Tickets for you: {title}",
        "{tickets} for {title} on {when} at {location} {are} held for you until {until}."
        " Confirm hold #{hold} to book them.",
    ),
    Kind.PASSWORD_CHANGED: (
        "Your password was changed",
        "The password of the eventbook account {email} was {how} on {when}, and every other login of the"
        " account ended. If that was not you, reset it now (Log in, Forgot your password?): whoever changed it"
        " knows the new one.",
    ),
    # `code` and `link` are put in as the email is sent (`eventbook.auth.resets`), never stored.
    Kind.PASSWORD_RESET: (
        "Reset your password",
        "Someone asked to reset the password of the eventbook account {email}.\n\n"
        "To choose a new one, {instructions}\n\n{code}\n\n"
        "The code works once, within {minutes} minutes of the request, and only while the password is"
        " the one it has now. If you did not ask for it, ignore this email: the password stays as it is.",
    ),
}


def of_event(event, was=None):
    """The parameters every kind takes from its event; `was`, the title it had before a
    change of it, which attendees booked it under."""
    return {"title": event.title, "date": event.date.isoformat(), "location": event.location,
            **({"was": was} if was is not None else {})}


def of_booking(booking, event):
    return {**of_event(event), "booking": booking.id, "tickets": booking.tickets_count,
            "total": str(booking.total_amount), "currency": event.currency}


def of_offer(hold, event):
    return {**of_event(event), "hold": hold.id, "tickets": hold.tickets_count, "until": hold.expires_at.isoformat()}


def render(note):
    """(subject, body) of a notification: a row or a dict with kind, params, booking_id."""
    get = note.get if isinstance(note, dict) else lambda name: getattr(note, name)
    params = get("params")
    if params is None:  # a row written before templates: it keeps its own text
        return get("subject"), get("body")
    subject, body = TEMPLATES[get("kind")]
    fields = {**params, "booking": params.get("booking", get("booking_id"))}
    if "date" in params:
        fields["when"] = _when(params["date"])
    if "code" in params:
        fields["instructions"] = (
            f"open {params['link']}\nor send this code with it to POST /api/auth/password/reset/confirm:"
            if params.get("link") else
            "enter this code in the web page (Log in, Forgot your password?), or send it with the new password to"
            " POST /api/auth/password/reset/confirm:")
    fields["formerly"] = f" (formerly {params['was']})" if "was" in params else ""
    if "tickets" in params:
        fields["tickets"], fields["are"] = tickets(params["tickets"]), "is" if params["tickets"] == 1 else "are"
    if "total" in params:
        fields["total"] = f"{params['total']} {params.get('currency', '')}".strip()
    if "until" in params:
        fields["until"] = _when(params["until"])
    return subject.format(**fields), body.format(**fields)


def _when(iso):
    """The time, to the minute unless it is not on one: a date moved by seconds must read
    as another time."""
    when = datetime.fromisoformat(iso).astimezone(timezone.utc)
    return when.strftime(WHEN_TO_THE_SECOND if when.second or when.microsecond else WHEN)
