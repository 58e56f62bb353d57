"""The hold sweeper: one thread per process that gives back the tickets of expired holds
and makes waiting-list offers, off the request path.

- Every HOLD_SWEEP_SECONDS it expires due holds in bounded batches (each batch claimed
  with FOR UPDATE SKIP LOCKED, so sweepers of several processes take disjoint holds;
  the conditional UPDATE of each hold's status decides against a racing confirm or
  release), resting between batches three times as long as each took, so that a large
  backlog leaves the requests of its process (and the database) three quarters of the
  time; then it offers the tickets set aside on any event to its waiting list.
- `wake(event_id)` (a cancel, a release, a larger capacity) runs the offers of that
  event at once instead of at the next round.

A hold past `expiresAt` is never confirmed, swept or not: confirming checks the time
itself. The sweep only decides when its tickets come back.
"""

import logging
import os
import threading
import time

from eventbook import logs
from eventbook.holds import service as holds
from eventbook.waitlist import service as waitlist

log = logging.getLogger(__name__)

BATCH = 200  # holds expired per transaction
REST = 3  # between two batches of a backlog: this many times as long as the last one took


class HoldSweeper:
    def __init__(self, app=None):
        self._pid = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # a sweep() run by hand, with no thread, runs to the end
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        self.app = app
        self.interval = app.config["HOLD_SWEEP_SECONDS"]
        app.extensions["eventbook.sweeper"] = self

    def start(self):
        """Start the thread in this process (again after a fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stopping = threading.Event()
            self._woken = threading.Event()
            self._events = set()
            self._thread = threading.Thread(target=self._run, name="hold-sweeper", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    def stop(self, timeout=10):
        if self._pid != os.getpid():
            return
        self._stopping.set()
        self._woken.set()
        self._thread.join(timeout)
        self._pid = None

    def wake(self, event_id):
        """Offer what just came back to `event_id`, now (in this process's thread; in the
        caller's when none runs, as in a command)."""
        if self._pid != os.getpid():
            with self.app.app_context():
                waitlist.offer(event_id)
            return
        with self._lock:
            self._events.add(event_id)
        self._woken.set()

    def _run(self):
        next_sweep = time.monotonic()
        while not self._stopping.is_set():
            self._woken.wait(max(0.0, next_sweep - time.monotonic()))
            self._woken.clear()
            if self._stopping.is_set():
                return
            with self._lock:
                events, self._events = self._events, set()
            try:
                with self.app.app_context():
                    if time.monotonic() >= next_sweep:
                        next_sweep = time.monotonic() + self.interval
                        events |= self.sweep()
                    for event_id in sorted(events):
                        waitlist.offer(event_id)
            except Exception:  # noqa: BLE001 - database down: the next round tries again
                logs.round_failed(log, "hold sweep")

    def sweep(self):
        """Expire every due hold, batch after batch: the events to make offers for."""
        events = set(waitlist.events_to_offer())
        more = True
        while more and not self._stopping.is_set():
            started = time.monotonic()
            expired_events, more = holds.expire_due(BATCH)
            events.update(expired_events)
            if more:  # a large backlog: requests get most of the time between batches
                self._stopping.wait(REST * (time.monotonic() - started))
        return events
