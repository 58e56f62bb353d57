"""The bounded pool that delivers the outbox, and the sweeper that keeps it honest.

- `submit(ids)` is called after a commit. It never blocks: when the pool already holds
  NOTIFY_QUEUE_SIZE jobs the row simply stays PENDING and the sweeper takes it later.
- The sweeper runs at start and every NOTIFY_SWEEP_SECONDS, claiming due rows in
  batches that fit in the pool: leftovers of a full queue, retries whose backoff is
  over, rows of a process that died.
- `shutdown()` (gunicorn's worker_exit, or interpreter exit) stops taking work, lets
  running deliveries finish within NOTIFY_SHUTDOWN_SECONDS and gives back the claims
  of jobs that never started.
"""

import itertools
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from eventbook.extensions import db
from eventbook.models import Notification, NotificationStatus as Status
from eventbook.notifications import delivery

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, app=None):
        self._pid = None
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        self.app = app
        app.extensions["notifications"] = self
        config = app.config
        self.workers = config["NOTIFY_WORKERS"]
        self.capacity = config["NOTIFY_QUEUE_SIZE"]
        self.sweep_seconds = config["NOTIFY_SWEEP_SECONDS"]
        self.shutdown_seconds = config["NOTIFY_SHUTDOWN_SECONDS"]

    # -- lifecycle ---------------------------------------------------------------

    def start(self):
        """Start the pool and the sweeper in this process (again after a fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stopping = threading.Event()
            self._held = 0  # jobs queued or running, at most self.capacity
            self._idle = threading.Condition(threading.Lock())
            self._jobs = {}  # future -> (id, token or None) of jobs not yet done
            self._prefix = uuid.uuid4().hex[:12]
            self._counter = itertools.count()
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="notify")
            self._sweeper = threading.Thread(target=self._sweep_forever, name="notify-sweeper", daemon=True)
            self._sweeper.start()
            self._pid = os.getpid()
            _register_exit(self.shutdown)

    def shutdown(self, timeout=None):
        if self._pid != os.getpid() or self._stopping.is_set():
            return
        timeout = self.shutdown_seconds if timeout is None else timeout
        self._stopping.set()
        self._sweeper.join(timeout)  # a sweep under way finishes (and gives back what it claimed)
        jobs = dict(self._jobs)
        self._executor.shutdown(wait=False, cancel_futures=True)
        never_started = [job for future, job in jobs.items() if future.cancelled()]
        self._release_slot(len(never_started))
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._held > 0 and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
        claimed = [nid for nid, token in never_started if token is not None]
        if claimed:
            try:
                with self.app.app_context():
                    delivery.release(claimed, self._prefix)
            except Exception:  # noqa: BLE001 - the leases will run out by themselves
                log.exception("could not release claims at shutdown")
        log.info("notification pool stopped (%s left to the next start)", self._held)

    # -- work --------------------------------------------------------------------

    def submit(self, ids):
        """Queue freshly committed notifications; never blocks, never drops."""
        if not ids:
            return
        self.start()
        for notification_id in ids:
            if self._stopping.is_set() or not self._reserve(1):
                return  # stays PENDING: the sweeper takes it
            self._queue(notification_id, None)

    def _queue(self, notification_id, token):
        try:
            future = self._executor.submit(self._run, notification_id, token)
        except RuntimeError:  # shut down meanwhile: the row stays PENDING for the next start
            self._release_slot()
            if token is not None:
                with self.app.app_context():
                    delivery.release([notification_id], self._prefix)
            return
        self._jobs[future] = (notification_id, token)
        future.add_done_callback(lambda done: self._jobs.pop(done, None))

    def _token(self):
        return f"{self._prefix}-{next(self._counter)}"

    def _reserve(self, wanted):
        with self._idle:
            granted = min(wanted, self.capacity - self._held)
            self._held += max(granted, 0)
            return max(granted, 0)

    def _release_slot(self, count=1):
        with self._idle:
            self._held -= count
            self._idle.notify_all()

    def _run(self, notification_id, token):
        try:
            with self.app.app_context():
                if token is None:
                    token = self._token()
                    note = delivery.claim_one(notification_id, token)
                else:
                    note = delivery.load_claimed(notification_id, token)
                if note is None:
                    return
                created = delivery.deliver(note, token, self._stopping)
            self.submit(created)
        except Exception:  # noqa: BLE001 - the row stays claimed; its lease will run out
            log.exception("delivery of notification %s crashed", notification_id)
        finally:
            self._release_slot()

    def _sweep_forever(self):
        while not self._stopping.is_set():
            try:
                full_batch = self.sweep()
            except Exception:  # noqa: BLE001 - database down: try again next round
                log.warning("notification sweep failed", exc_info=True)
                full_batch = False
            if not full_batch:
                self._stopping.wait(self.sweep_seconds)

    def sweep(self, batch=100):
        """Claim due rows that fit in the pool and queue them; True if there may be more."""
        granted = self._reserve(batch)
        if not granted:
            return False
        try:
            with self.app.app_context():
                claimed = delivery.claim_due(granted, self._token)
        except BaseException:
            self._release_slot(granted)  # database down: give the slots back, or the pool fills up for good
            raise
        self._release_slot(granted - len(claimed))
        if self._stopping.is_set():  # shutting down meanwhile: leave them to the next start
            self._release_slot(len(claimed))
            with self.app.app_context():
                delivery.release([nid for nid, _ in claimed], self._prefix)
            return False
        for notification_id, token in claimed:
            self._queue(notification_id, token)
        return len(claimed) == granted

    # -- figures -----------------------------------------------------------------

    def stats(self):
        counts = dict(
            db.session.execute(
                select(Notification.status, func.count())
                .where(Notification.status.in_([Status.PENDING, Status.FAILED]))
                .group_by(Notification.status)
            ).all()
        )
        return {
            "pending": counts.get(Status.PENDING, 0),
            "failed": counts.get(Status.FAILED, 0),
            "in_flight": self._held if self._pid == os.getpid() else 0,
            "workers": self.workers,
            "queue_capacity": self.capacity,
        }


def _register_exit(callback):
    """Run `callback` at interpreter exit *before* the executor drains its queue
    (concurrent.futures joins its threads in the same hook list, registered earlier)."""
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(callback)
            return
        except RuntimeError:  # interpreter already shutting down
            return
    import atexit

    atexit.register(callback)
