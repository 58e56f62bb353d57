"""Holds: tickets taken for a customer until `expiresAt`, then confirmed into a
booking, released, or expired. Exactly one of those happens to a hold, however they
race: each is a conditional UPDATE of its status from HELD."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import exc, select, update
from werkzeug.exceptions import HTTPException

from eventbook import inventory, sales, waitlist
from eventbook.bookings import idempotency, service as bookings
from eventbook.database import retry_deadlocks
from eventbook.errors import error
from eventbook.extensions import db
from eventbook.models import EntryStatus, Hold, HoldStatus, Item, Role, Seat, WaitlistEntry, utcnow
from eventbook.notifications import outbox
from eventbook.sales import refusal


def hold(customer, data):
    """Take the tickets for `customer` until now + HOLD_SECONDS."""
    now = utcnow()
    order = bookings.order_of(customer, data, now)
    expires_at = now + timedelta(seconds=current_app.config["HOLD_SECONDS"])
    for first_try in (True, False):
        try:
            sold = sales.hold(order, expires_at)
            return sold.written or db.session.get(Hold, sold.id)
        except (sales.NotTaken, exc.IntegrityError):  # not taken, or the one-HELD-hold index refused it
            db.session.rollback()
            if first_try and end_own_if_due(customer.id, order.event_id, now):
                continue  # the customer's own hold had expired, and no sweep had ended it yet
            refusal.explain(order)  # returns if what stood in the way came back meanwhile
            if not first_try:
                refusal.taken_meanwhile(order)


def end_own_if_due(customer_id, event_id, now):
    """End the customer's HELD hold on this event if it is past its expiry and no sweep
    has ended it yet, so that it no longer counts as held: whether there was one."""
    return _end_if_due(db.session.scalar(select(Hold).where(
        Hold.user_id == customer_id, Hold.event_id == event_id, Hold.status == HoldStatus.HELD)), now)


def visible(hold_id, user):
    """The hold if `user` is its customer or an admin; 404 for anyone else."""
    held = db.session.get(Hold, hold_id)
    if held is None or not (user.role == Role.ADMIN or held.user_id == user.id):
        error(404, "not_found", "Hold not found")
    return held


def current(hold_id, user):
    """`visible`, as the hold is now: one past its expiry that no sweep has ended yet is
    expired first."""
    held = visible(hold_id, user)
    if _end_if_due(held, utcnow()):
        held = db.session.get(Hold, hold_id, populate_existing=True)
    return held


@retry_deadlocks
def _end_if_due(held, now):
    """Expire `held` (a Hold or None) if it is HELD past its expiry, as the sweep would:
    its tickets come back, exactly once however this races with the sweep (`end`).
    Whether it was due."""
    if held is None or held.status != HoldStatus.HELD or held.expires_at > now:
        return False
    if end([held.id], HoldStatus.EXPIRED, now):
        waitlist.offer_soon(held.event_id)
    return True


def confirm(hold_id, customer, idempotency_key=None):
    """Turn a HELD hold that has not expired into a booking: (booking, status, replayed).
    The sale's own conditions decide (this customer's, HELD, not expired); only a
    confirm that takes nothing reads the hold to say why."""
    now = utcnow()
    key = idempotency.key_of(idempotency_key, f"/api/holds/{hold_id}/confirm", {}, now)
    replayed = idempotency.replay(customer.id, key, now)
    if replayed:
        return bookings.replay(*replayed)
    try:
        sold = sales.confirm(hold_id, customer.id, customer.email, key, now)
    except sales.NotTaken:
        return _not_taken(hold_id, customer, key, now)
    except exc.IntegrityError as refused:
        return bookings.replay(*bookings.conflict(refused, customer.id, key, now))
    outbox.submit(sold.notes)
    return sold.written or bookings.load(sold.id), 201, False


def _not_taken(hold_id, customer, key, now):
    """The answer to a confirm that took nothing, kept under its key: a first use of the
    key at the same moment confirmed it (replayed), the hold was confirmed before (its
    booking, 200), or a refusal (raised)."""
    db.session.rollback()
    replayed = idempotency.replay(customer.id, key, now)
    if replayed:
        return bookings.replay(*replayed)
    try:
        booking_id = _confirmed_before(hold_id, customer, now)
    except HTTPException as refused:
        return bookings.replay(*idempotency.keep_refusal(customer.id, key, refused, now))
    replayed = idempotency.keep_booking(customer.id, key, booking_id, now)
    return bookings.replay(*replayed) if replayed else (bookings.load(booking_id), 200, False)


def _confirmed_before(hold_id, customer, now):
    """Why a confirm took nothing: confirmed before, or by a concurrent confirm (its
    booking's id, answered with a 200); else refused: not this customer's hold (404), its
    event cancelled or started (409 event_closed), expired or released (409
    hold_expired)."""
    held = db.session.get(Hold, hold_id, populate_existing=True)
    if held is None or held.user_id != customer.id:
        error(404, "not_found", "Hold not found")
    _end_if_due(held, now)
    if held.status == HoldStatus.CONFIRMED:
        return held.booking_id
    if held.status == HoldStatus.HELD and held.expires_at > now:
        refusal.closed(held.event, now)
    error(409, "hold_expired", "This hold has expired or was released: its tickets are no longer held")


def release(hold_id, user):
    """Give a HELD hold's tickets and seats back (nothing happens once it is not HELD)."""
    held = current(hold_id, user)  # one past its expiry is EXPIRED, not RELEASED
    _release(held.id, held.user_id, held.event_id)


def release_all(customer_id):
    """Release every HELD hold of a customer (a disabled account's), each in its own
    transaction, as the customer's own release would."""
    held = db.session.execute(
        select(Hold.id, Hold.event_id).where(Hold.user_id == customer_id, Hold.status == HoldStatus.HELD)
        .order_by(Hold.id)
    ).all()
    db.session.rollback()
    for hold_id, event_id in held:
        _release(hold_id, customer_id, event_id)


@retry_deadlocks
def _release(hold_id, customer_id, event_id):
    """Release one hold, in the customer's turn for its event; its tickets go to the next
    in line when they wait."""
    sales.one_order_at_a_time(customer_id, event_id)  # the hold, then its entry: as a leave locks them
    if end([hold_id], HoldStatus.RELEASED, utcnow()):
        waitlist.offer_soon(event_id)


def end(hold_ids, status, now):
    """Move these holds from HELD to `status` (RELEASED or EXPIRED; one past its expiry
    is EXPIRED whatever ends it) and give back their tickets and seats, in one
    transaction that this commits: the events whose tickets came back. A hold that is no
    longer HELD (confirmed, released or expired by someone else meanwhile) is left as it
    is."""
    ended = db.session.execute(
        update(Hold.__table__)
        .where(Hold.id.in_(hold_ids), Hold.status == HoldStatus.HELD)
        .values(status=Hold.ended_as(status, now), ended_at=now)
        .returning(Hold.id, Hold.event_id)
    ).all()
    events = {}
    for ended_id, event_id in ended:
        events.setdefault(event_id, []).append(ended_id)
    for event_id, ids in sorted(events.items()):
        inventory.give_back(event_id, bookings.counts_of(Item.hold_id.in_(ids)), seats=Seat.hold_id.in_(ids))
        db.session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.hold_id.in_(ids), WaitlistEntry.status == EntryStatus.OFFERED)
            .values(status=EntryStatus.LAPSED, updated_at=now)
        )
    db.session.commit()
    return sorted(events)


def expire_due(batch=200):
    """Expire up to `batch` HELD holds past their `expiresAt`: (the events whose tickets
    came back, whether there may be more). Sweepers in several processes take disjoint
    holds (SKIP LOCKED). On PostgreSQL one auto-committed statement does it all
    (`sales.expire`), so the event rows it locks are never held while Python works."""
    now = utcnow()
    expired = sales.expire(batch, now)
    if expired is not None:
        return expired
    ids = db.session.scalars(
        select(Hold.id).where(Hold.status == HoldStatus.HELD, Hold.expires_at <= now)
        .order_by(Hold.id).limit(batch).with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.rollback()
        return [], False
    return end(ids, HoldStatus.EXPIRED, now), len(ids) == batch
