"""How an email leaves: a log line (default) or SMTP."""

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import idna

from eventbook.notifications import templates
from eventbook.schemas import ONE_LINE_BREAKER

log = logging.getLogger("eventbook.email")

LABELS = {
    "BOOKING_CONFIRMED": "Booking confirmation",
    "BOOKING_CANCELLED": "Booking cancellation",
    "EVENT_UPDATED": "Event update",
    "EVENT_CANCELLED": "Event cancellation",
    "WAITLIST_OFFER": "Waiting list offer",
    "PASSWORD_RESET": "Password reset",
    "PASSWORD_CHANGED": "Password change",
}


def send(config, note):
    """Deliver one notification (a dict with id, kind, recipient, params...)."""
    if config["EMAIL_BACKEND"] == "smtp":
        _send_smtp(config, note)
    log.info(
        "%s email sent to %s", LABELS.get(note["kind"], note["kind"]), note["recipient"],
        extra={"notification_id": note["id"], "backend": config["EMAIL_BACKEND"]},
    )


def permanent(exc):
    """Is this failure the mail server's final answer for this message? An SMTP reply
    in the 5xx range (unknown mailbox, relaying denied, message refused) is: sending it
    again would get the same answer, as is a server that cannot take an address this
    message needs (SMTPUTF8 for a non-ASCII one). Connection errors and 4xx replies are
    not."""
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500


def header_text(text):
    """`text` as one header line: every control or bidirectional-override character (CR
    and LF among them) becomes a space. EmailMessage refuses CR and LF in a header by
    raising, and a notification that always raises would be retried until it FAILED."""
    return " ".join(ONE_LINE_BREAKER.sub(" ", text).split())


def ascii_domain(address):
    """`address` with a non-ASCII domain in its ASCII form ("xn--" labels, IDNA 2008 as
    UTS 46 maps it: the "ß" of "straße.de" is kept, not made "ss"), the form every mail
    server takes: only a non-ASCII part before the @ then needs a server with SMTPUTF8.
    A domain IDNA cannot encode is left as it is, for a server with SMTPUTF8 to take or
    refuse."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:
        return address


def _send_smtp(config, note):
    subject, body = templates.render(note)
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]  # checked at start (config.validate)
    message["To"] = header_text(ascii_domain(note["recipient"]))
    message["Subject"] = header_text(subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(config, note["id"])
    message["X-Eventbook-Notification"] = str(note["id"])
    message.set_content(body)
    smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT"])
    try:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(message)
    finally:
        _close(smtp)


def message_id(config, notification_id):
    """The same for every attempt at one notification, so that a receiver can drop the
    rare copy sent again (a crash, or a reply lost after the server took the message):
    the notification's id at the sender's domain."""
    domain = parseaddr(config["MAIL_FROM"])[1].rpartition("@")[2] or "eventbook"
    return f"<notification-{notification_id}@{domain}>"


def _close(smtp):
    """Say goodbye. The message, once accepted, is delivered whatever the server answers
    to QUIT (or if it has gone already): that answer must not make it a failure to retry."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
