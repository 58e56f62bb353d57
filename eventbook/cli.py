"""`flask` commands: create-admin, seed-demo, notifications retry (and flask-smorest's
`flask openapi write FILE`)."""

import random
import secrets
import sys
from datetime import timedelta
from functools import wraps

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from eventbook import database, sales
from eventbook.auth import service as auth
from eventbook.auth.schemas import RegisterSchema
from eventbook.events import service as event_service
from eventbook.extensions import db
from eventbook.models import Notification, Role, User, utcnow
from eventbook.notifications import delivery, outbox


def register(app):
    app.cli.add_command(create_admin)
    app.cli.add_command(seed_demo)
    app.cli.add_command(notifications)


class Field(click.ParamType):
    """A field of an API schema as a click type: the command takes what the API takes."""

    name = "text"

    def __init__(self, field):
        self.field = field

    def convert(self, value, param, ctx):
        try:
            return self.field.deserialize(value)
        except ValidationError as exc:
            self.fail("; ".join(exc.messages), param, ctx)


REGISTRATION = RegisterSchema().fields


def connected(command):
    """Run `command` once the database answers (`database.connect`). A statement that
    fails on the database's side (a lock held past DB_LOCK_TIMEOUT_SECONDS, a lost
    connection) ends it with one line too, its transaction rolled back (what the command
    committed before stays: seed-demo commits its events before its bookings)."""

    @wraps(command)
    def run(*args, **kwargs):
        database.connect(db.engine).close()
        try:
            return command(*args, **kwargs)
        except OperationalError as failed:
            db.session.rollback()
            sys.exit(f"eventbook: the database refused the command, try again: {database.reason(failed)}")

    return run


@click.command("create-admin")
@with_appcontext
@connected
@click.argument("email", type=Field(REGISTRATION["email"]))
@click.option("--name", type=Field(REGISTRATION["name"]), help="Display name.")
@click.password_option(type=Field(REGISTRATION["password"]), envvar="ADMIN_PASSWORD",
                       help="Prompted for when not given (or ADMIN_PASSWORD).")
def create_admin(email, name, password):
    """Create an ADMIN account (the only way to get one)."""
    try:
        user = auth.register(email, password, Role.ADMIN, name)
    except HTTPException as exc:  # 409 email_taken
        raise click.ClickException((getattr(exc, "data", None) or {}).get("message") or exc.description) from exc
    click.echo(f"Created admin {user.email} (id {user.id})")


@click.command("seed-demo")
@with_appcontext
@connected
@click.option("--customers", default=20, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--events", default=10, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--bookings", default=50, show_default=True, type=click.IntRange(0, 10_000_000),
              help="Bookings to make, spread over events and customers.")
@click.option("--password", type=Field(REGISTRATION["password"]), default="demo-password", show_default=True,
              help="Password of every demo account.")
def seed_demo(customers, events, bookings, password):
    """Fill the database with a demo organizer, customers, events and bookings.

    Bookings are sold the way the API sells them (`eventbook.sales`), so each event's
    available tickets go down by what its bookings hold, and each booking's
    confirmation is written PENDING like any other: a running server's notification
    sweeper delivers them (to the log, by default); this command sends nothing itself."""
    stamp = f"{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    password_hash = auth.hash_password(password)
    organizer = User(email=f"organizer-{stamp}@demo.eventbook", name="Demo Organizer",
                     role=Role.ORGANIZER, password_hash=password_hash)
    db.session.add(organizer)
    db.session.flush()
    people = []
    with click.progressbar(range(customers), label="customers") as bar:
        for n in bar:
            people.append(User(email=f"customer{n}-{stamp}@demo.eventbook", name=f"Customer {n}",
                               role=Role.CUSTOMER, password_hash=password_hash))
            if len(people) % 1000 == 0:
                db.session.add_all(people[-1000:])
                db.session.flush()
    db.session.add_all(people[len(people) - len(people) % 1000:])
    db.session.flush()
    now = utcnow()
    made = []
    with click.progressbar(range(events), label="events") as bar:
        for n in bar:
            made.append(event_service.new(organizer.id, {
                "title": f"Demo event {n}", "description": "A demo event", "location": "Demo Hall",
                "date": now + timedelta(days=1 + n % 365, hours=n % 24),
                "total_tickets": random.choice([50, 100, 250, 1000])}, now))
    db.session.add_all(made)
    db.session.commit()
    done = sold_out = 0
    left = {event.id: event.total_tickets for event in made}
    pairs = [(event, person) for event in made for person in people]  # a customer books an event once
    random.shuffle(pairs)
    with click.progressbar(pairs[:bookings], label="bookings") as bar:
        for event, person in bar:
            count = min(random.randint(1, 4), left[event.id])
            if not count:
                sold_out += 1
                continue
            order = sales.Order(event_id=event.id, customer_id=person.id, email=person.email,
                                items=((None, count),), now=utcnow())
            try:
                sales.book(order)
            except sales.NotTaken:  # sold out meanwhile (another process)
                sold_out += 1
                continue
            left[event.id] -= count
            done += 1
    click.echo(f"Seeded {organizer.email}, {len(people)} customers, {len(made)} events, {done} bookings "
               f"(password: {password})")
    if done < bookings:
        why = []
        if bookings > len(pairs):
            why.append(f"{len(people)} customers x {len(made)} events allow {len(pairs)} (one booking per customer "
                       "and event): add --customers or --events")
        if sold_out:
            why.append(f"{sold_out} found their event sold out")
        click.echo(f"{bookings - done} bookings fewer than the {bookings} asked for: {'; '.join(why)}")


@click.group(cls=AppGroup)  # AppGroup gives each subcommand an app context
def notifications():
    """Inspect and retry notifications."""


@notifications.command("retry")
@connected
def retry():
    """Put every FAILED notification back in the queue."""
    count = delivery.retry_failed()
    click.echo(f"{count} failed notification(s) queued again")


@notifications.command("status")
@connected
def status():
    """Count the emails by status (as the admin's figures do: not the rows that stand for
    a large audience until a worker writes its attendees' own)."""
    for name, count in db.session.execute(
        db.select(Notification.status, db.func.count()).where(outbox.EMAILS).group_by(Notification.status)
    ):
        click.echo(f"{name}: {count}")
    click.echo(f"workers per process: {current_app.config['NOTIFY_WORKERS']}")
