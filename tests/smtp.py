"""A real SMTP server for the notification tests, built on aiosmtpd's Controller.

    with SMTPServer() as smtp:                 # records every message it accepts
        ... EMAIL_BACKEND=smtp, MAIL_SERVER=smtp.host, MAIL_PORT=smtp.port ...
        smtp.wait_for(3)
        smtp.messages[0]["To"], smtp.by_notification()

    with SMTPServer(refuse="451 4.3.0 Try again later") as smtp:   # refuses every message
        ...
        smtp.accept()                          # from now on, accept (same port)

    with SMTPServer(delay=2.5) as smtp:        # a slow server: each DATA answered after 2.5 s

    with SMTPServer(refuse_recipient="550 5.1.1 No such mailbox") as smtp:  # refuses every RCPT TO

    with SMTPServer(quit_reply="421 4.3.2 Shutting down") as smtp:  # takes messages, then a bad goodbye

    with SMTPServer(smtputf8=False) as smtp:   # no SMTPUTF8: no non-ASCII address

The server listens on 127.0.0.1 on a free port, in a thread of the test process, so
both the app under test (in-process) and a live gunicorn can reach it.
"""

import asyncio
import email
import threading
import time
from email import policy

from aiosmtpd.controller import Controller

from tests import support

NOTIFICATION_HEADER = "X-Eventbook-Notification"


class Handler:
    """aiosmtpd handler: records accepted messages; or answers every DATA with `refuse`,
    every RCPT TO with `refuse_recipient`, QUIT with `quit_reply`. Each DATA is answered
    `delay` seconds after it arrives (a slow server)."""

    def __init__(self, refuse=None, delay=0.0, refuse_recipient=None, quit_reply=None):
        self.refuse = refuse
        self.refuse_recipient = refuse_recipient
        self.quit_reply = quit_reply
        self.delay = delay
        self.messages = []  # email.message.EmailMessage, in arrival order
        self.envelopes = []  # (mail_from, rcpt_tos) of accepted messages
        self.refused = 0  # DATA commands answered with `refuse`
        self.refused_at = []  # time.monotonic() of each refusal
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if self.refuse_recipient:
            with self.lock:
                self.refused += 1
                self.refused_at.append(time.monotonic())
            return self.refuse_recipient
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        return self.quit_reply or "221 Bye"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.refuse:
                self.refused += 1
                self.refused_at.append(time.monotonic())
                return self.refuse
            message = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted for delivery"


class SMTPServer:
    """A started-on-demand SMTP server; `refuse` is the reply to every message (e.g.
    "451 4.3.0 Try again later" or "550 5.7.1 Refused"), None to accept them;
    `refuse_recipient` the reply to every recipient, None to accept them."""

    host = "127.0.0.1"

    def __init__(self, refuse=None, port=None, delay=0.0, refuse_recipient=None, quit_reply=None, smtputf8=True):
        self.handler = Handler(refuse, delay, refuse_recipient, quit_reply)
        self.smtputf8 = smtputf8
        self.port = port
        self.controller = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self):
        last = None
        for _ in range(5):  # a free port can be taken between probing and binding
            port = self.port or support.free_port()
            controller = Controller(self.handler, hostname=self.host, port=port, ready_timeout=10,
                                    enable_SMTPUTF8=self.smtputf8)
            try:
                controller.start()
            except Exception as exc:  # noqa: BLE001 - retry on another port
                last = exc
                if self.port:
                    break
                continue
            self.controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP server: {last!r}")

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def config(self):
        """App config overrides that send mail here."""
        return {"EMAIL_BACKEND": "smtp", "MAIL_SERVER": self.host, "MAIL_PORT": self.port}

    def env(self):
        """The same, as environment variables for a live server."""
        return {"EMAIL_BACKEND": "smtp", "MAIL_SERVER": self.host, "MAIL_PORT": str(self.port)}

    # -- behaviour -----------------------------------------------------------------

    def accept(self):
        self.handler.refuse = self.handler.refuse_recipient = None

    def refuse(self, reply="451 4.3.0 Try again later"):
        self.handler.refuse = reply

    # -- what arrived --------------------------------------------------------------

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def refused(self):
        with self.handler.lock:
            return self.handler.refused

    @property
    def refused_at(self):
        with self.handler.lock:
            return list(self.handler.refused_at)

    def by_notification(self):
        """{notification id: number of messages received carrying it}."""
        counts = {}
        for message in self.messages:
            raw = message[NOTIFICATION_HEADER]
            key = int(raw) if raw is not None and raw.strip().isdigit() else raw
            counts[key] = counts.get(key, 0) + 1
        return counts

    def wait_for(self, count, timeout=15):
        """The messages, once at least `count` have arrived."""
        return support.wait_until(
            lambda: len(self.messages) >= count and self.messages,
            timeout,
            message=f"{count} messages at the SMTP server (got {len(self.messages)})",
        )

    def settle(self, quiet=1.0, timeout=30):
        """Wait until no new message arrived for `quiet` seconds; return the messages."""
        deadline = time.monotonic() + timeout
        seen, since = len(self.messages), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = len(self.messages)
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return self.messages
