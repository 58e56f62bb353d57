"""The waiting list: while anyone waits, tickets that come back are set aside
(`eventbook.inventory.give_back`) and offered in queue order (`service.offer`), off the
request path: `offer_soon` wakes this process's sweeper (`eventbook.holds.sweeper`), or
makes them in the caller where no sweeper thread runs (a command, NOTIFY_AUTOSTART off)."""

from flask import current_app


def offer_soon(event_id):
    """Make the offers that the tickets just returned to `event_id` allow (`wake`)."""
    current_app.extensions["eventbook.sweeper"].wake(event_id)
