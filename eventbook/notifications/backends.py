"""How an email leaves: a log line (default) or SMTP."""

import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from eventbook.notifications import templates

log = logging.getLogger("eventbook.email")

LABELS = {
    "BOOKING_CONFIRMED": "Booking confirmation",
    "BOOKING_CANCELLED": "Booking cancellation",
    "EVENT_UPDATED": "Event update",
    "EVENT_CANCELLED": "Event cancellation",
    "WAITLIST_OFFER": "Waiting list offer",
}


def send(config, note):
    """Deliver one notification (a dict with id, kind, recipient, params...)."""
    if config["EMAIL_BACKEND"] == "smtp":
        _send_smtp(config, note)
    log.info(
        "%s email sent to %s", LABELS.get(note["kind"], note["kind"]), note["recipient"],
        extra={"notification_id": note["id"], "backend": config["EMAIL_BACKEND"]},
    )


def _send_smtp(config, note):
    subject, body = templates.render(note)
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = note["recipient"]
    message["Subject"] = subject
    # Stable per notification, so a receiver can drop the rare redelivery after a crash.
    message["Message-ID"] = make_msgid(idstring=f"notification-{note['id']}", domain="eventbook")
    message["X-Eventbook-Notification"] = str(note["id"])
    message.set_content(body)
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT"]) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(message)
