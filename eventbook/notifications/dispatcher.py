"""The bounded pool that delivers the outbox, and the sweeper that keeps it honest.

- `submit(ids)` is called after a commit. It never blocks: when the pool already holds
  NOTIFY_QUEUE_SIZE notifications the row simply stays PENDING and the sweeper takes it
  later.
- Notifications wait in an in-memory inbox, which the pool's threads drain in
  batches: one claim UPDATE per batch, not per email. With the log backend one thread
  takes up to BATCH at a time after waiting GATHER_SECONDS for a batch to form (and
  marks them SENT in one UPDATE); more start while the inbox holds more than the
  running ones take. With SMTP, where an email takes far longer than its bookkeeping,
  every thread up to NOTIFY_WORKERS takes an even share (at most SLOW_BATCH), and each
  email is marked SENT as soon as it has left.
- The sweeper runs at start and every NOTIFY_SWEEP_SECONDS, claiming due rows in
  batches that fit in the pool: leftovers of a full queue, retries whose backoff is
  over, rows of a process that died. It also renews the claims of batches still being
  delivered, every ninth of NOTIFY_CLAIM_TIMEOUT_SECONDS, so that an email slower than
  the lease is not taken and sent again. Every PURGE_EXPIRED_SECONDS it deletes
  expired idempotency keys and revoked tokens, and lapses the waiting lists of events
  that have started, whose set-aside tickets go back to the public
  (`eventbook.housekeeping`).
- `shutdown()` (gunicorn's worker_exit, or interpreter exit) stops taking work, lets
  running deliveries finish within NOTIFY_SHUTDOWN_SECONDS and gives back the claims
  of jobs that never started.
"""

import atexit
import collections
import contextlib
import itertools
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from eventbook import housekeeping, logs
from eventbook.extensions import db
from eventbook.models import Notification, NotificationStatus as Status
from eventbook.notifications import delivery, outbox

log = logging.getLogger(__name__)

BATCH = 50  # notifications a thread takes from the inbox at a time (log backend)
GATHER_SECONDS = 0.05  # a thread that finds less than a batch waits this long for more
SLOW_BATCH = 10  # at most, and an even share of the inbox, when emails are slow (SMTP)


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
        self.renew_seconds = config["NOTIFY_CLAIM_TIMEOUT_SECONDS"] / 9  # twice within the third left at a start
        self.shutdown_seconds = config["NOTIFY_SHUTDOWN_SECONDS"]
        self.purge_seconds = config["PURGE_EXPIRED_SECONDS"]
        # Emails that leave fast (the log backend): one thread, big batches. Slow ones
        # (SMTP): every thread busy, each with its share of what waits.
        self.slow = config["EMAIL_BACKEND"] != "log" or config["NOTIFY_DELIVERY_DELAY_MS"] > 0

    # -- lifecycle ---------------------------------------------------------------

    def start(self):
        """Start the pool and the sweeper in this process (again after a fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stopping = threading.Event()
            self._held = 0  # notifications in the inbox or being delivered, at most self.capacity
            self._claiming = 0  # of those, slots a sweep holds while it claims rows to fill them
            self._idle = threading.Condition(threading.Lock())
            self._inbox = collections.deque()  # (id, claim token or None) not yet started
            self._running = 0  # batch runners handed to the executor
            # Claims being delivered: token -> [threads delivering part of it, time.monotonic()
            # of its leases' last renewal or of the start] (a sweep's batch may be split
            # between threads).
            self._delivering = {}
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
        with self._idle:
            self._stopping.set()
        self._sweeper.join(timeout)  # a sweep under way finishes (and gives back what it claimed)
        with self._idle:
            never_started = list(self._inbox)
            self._inbox.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._release_slot(len(never_started))
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._held > 0 and time.monotonic() < deadline:
                self._idle.wait(deadline - time.monotonic())
        self._give_back([nid for nid, token in never_started if token is not None])
        # `_held`: deliveries still running at the deadline. What was queued here and never
        # started was given back just above; like every PENDING row, the next start sends it.
        log.info("notification pool stopped (%s deliveries still running, %s queued ones given back; PENDING rows "
                 "wait for the next start)", self._held, len(never_started))
        atexit.unregister(self.shutdown)  # nothing left to stop, and the app it holds may be freed

    # -- work --------------------------------------------------------------------

    def submit(self, ids):
        """Queue freshly committed notifications; never blocks, never drops."""
        if not ids:
            return
        self.start()
        granted = self._reserve(len(ids))  # the rest stays PENDING: the sweeper takes it
        self._enqueue([(notification_id, None) for notification_id in ids[:granted]])

    def _enqueue(self, items):
        if not items:
            return
        with self._idle:
            stopping = self._stopping.is_set()
            if not stopping:
                self._inbox.extend(items)
                more = self._running == 0 or len(self._inbox) > (0 if self.slow else BATCH * self._running)
                start = self._running < self.workers and more
                self._running += start
        if stopping:  # rows stay PENDING (or are given back) for the next start
            self._release_slot(len(items))
            self._give_back([nid for nid, token in items if token is not None])
        elif start:
            try:
                self._executor.submit(self._drain)
            except RuntimeError:  # shut down meanwhile: shutdown() gives back the inbox
                with self._idle:
                    self._running -= 1

    def _drain(self):
        """A pool thread: deliver batches from the inbox until it is empty."""
        while True:
            if not self.slow and len(self._inbox) < BATCH:
                self._stopping.wait(GATHER_SECONDS)  # under load, one claim for many emails
            with self._idle:
                if not self._inbox:
                    self._running -= 1
                    return
                waiting = len(self._inbox)
                size = min(SLOW_BATCH, -(-waiting // self.workers)) if self.slow else min(BATCH, waiting)
                batch = [self._inbox.popleft() for _ in range(size)]
            try:
                created = self._deliver(batch)
            except Exception:  # noqa: BLE001 - the rows stay claimed; their leases will run out
                logs.round_failed(log, f"delivery of notifications {[nid for nid, _ in batch]}")
                created = []
            finally:
                self._release_slot(len(batch))
            self.submit(created)

    def _deliver(self, batch):
        fresh = [nid for nid, token in batch if token is None]
        swept = collections.defaultdict(list)
        for nid, token in batch:
            if token is not None:
                swept[token].append(nid)
        created = []
        with self.app.app_context():
            if fresh:
                token = self._token()
                with self._renewed(token):
                    created += delivery.deliver(delivery.claim(fresh, token), token, self._stopping)
            for token, ids in swept.items():
                with self._renewed(token):
                    created += delivery.deliver(delivery.load_claimed(ids, token), token, self._stopping)
        return created

    @contextlib.contextmanager
    def _renewed(self, token):
        """While the block runs, the sweeper renews the leases that `token` holds."""
        with self._idle:
            self._delivering.setdefault(token, [0, time.monotonic()])[0] += 1
        try:
            yield
        finally:
            with self._idle:
                entry = self._delivering[token]
                entry[0] -= 1
                if not entry[0]:
                    del self._delivering[token]

    def renew(self):
        """Renew the leases of claims being delivered whose last renewal is due."""
        due = time.monotonic() - self.renew_seconds
        with self._idle:
            tokens = [token for token, (_, renewed) in self._delivering.items() if renewed <= due]
            for token in tokens:
                self._delivering[token][1] = time.monotonic()
        if tokens:
            with self.app.app_context():
                delivery.renew(tokens)

    def _give_back(self, ids):
        if not ids:
            return
        try:
            with self.app.app_context():
                delivery.release(ids, self._prefix)
        except Exception:  # noqa: BLE001 - the leases will run out by themselves
            log.exception("could not give back claims")

    def _token(self):
        return f"{self._prefix}-{next(self._counter)}"

    def _reserve(self, wanted, claiming=False):
        with self._idle:
            granted = max(min(wanted, self.capacity - self._held), 0)
            self._held += granted
            if claiming:
                self._claiming += granted
            return granted

    def _claimed(self, granted, count):
        """A sweep's claim of `count` rows for its `granted` slots is over."""
        with self._idle:
            self._claiming -= granted
            self._held -= granted - count
            self._idle.notify_all()

    def _release_slot(self, count=1):
        with self._idle:
            self._held -= count
            self._idle.notify_all()

    def _sweep_forever(self):
        next_purge = next_sweep = time.monotonic()
        while not self._stopping.is_set():
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - database down: the leases may run out, and the rows be taken again
                logs.round_failed(log, "renewal of notification claims")
            if time.monotonic() >= next_sweep:
                try:
                    full_batch = self.sweep()
                except Exception:  # noqa: BLE001 - database down: try again next round
                    logs.round_failed(log, "notification sweep")
                    full_batch = False
                next_sweep = time.monotonic() + (0 if full_batch else self.sweep_seconds)
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + self.purge_seconds
                self._purge()
            self._stopping.wait(max(0.0, min(next_sweep - time.monotonic(), self.renew_seconds)))

    def _purge(self):
        """The sweeper's other chore: expired idempotency keys and revoked tokens, and
        waiting lists of events that have started."""
        try:
            with self.app.app_context():
                keys, tokens, lapsed = housekeeping.purge_expired()
        except Exception:  # noqa: BLE001 - database down: next time
            logs.round_failed(log, "purge of expired rows")
            return
        if keys or tokens:
            log.info("purged %s expired idempotency keys and %s expired revoked tokens", keys, tokens)
        if lapsed:
            log.info("%s waiting-list entries of events that have started lapsed", lapsed)

    def sweep(self, batch=100):
        """Claim due rows that fit in the pool and queue them; True if there may be more."""
        granted = self._reserve(batch, claiming=True)
        if not granted:
            return False
        try:
            with self.app.app_context():
                claimed = delivery.claim_due(granted, self._token)
        except BaseException:
            self._claimed(granted, 0)  # database down: give the slots back, or the pool fills up for good
            raise
        self._claimed(granted, len(claimed))
        self._enqueue(claimed)
        return len(claimed) == granted

    # -- figures -----------------------------------------------------------------

    def stats(self, counted=True):
        """The delivery figures; `pending` and `failed` are counted in the database, or
        None when not `counted`."""
        if counted:
            counts = dict(
                db.session.execute(
                    select(Notification.status, func.count())
                    .where(Notification.status.in_([Status.PENDING, Status.FAILED]), outbox.EMAILS)
                    .group_by(Notification.status)
                ).all()
            )
        else:
            counts = {Status.PENDING: None, Status.FAILED: None}
        in_flight = 0
        if self._pid == os.getpid():
            with self._idle:
                in_flight = self._held - self._claiming  # slots held for a claim under way are not notifications
        return {
            "pending": counts.get(Status.PENDING, 0),
            "failed": counts.get(Status.FAILED, 0),
            "in_flight": in_flight,
            "workers": self.workers,
            "queue_capacity": self.capacity,
        }


def _register_exit(callback):
    """Run `callback` at interpreter exit. Python joins the executor's threads (after they
    finish what is queued) before atexit callbacks run, so outside gunicorn (whose
    worker_exit hook calls `shutdown()` first) queued deliveries finish before this."""
    atexit.register(callback)
