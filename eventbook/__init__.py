"""eventbook: an event-booking API that never sells a ticket that does not exist."""

import logging

from flask import Flask
from sqlalchemy import make_url
from werkzeug.middleware.proxy_fix import ProxyFix

import config as settings
from eventbook import database, errors, logs, ratelimits, sales, web
from eventbook.api import docs_assets
from eventbook.extensions import api, cors, db, jwt, migrate
from eventbook.holds.sweeper import HoldSweeper
from eventbook.notifications.dispatcher import Dispatcher

DEV_SECRET = "dev-only-secret-never-use-in-production-0123456789"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


def create_app(config_class=settings.Config):
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.from_object(config_class)
    problems = settings.validate(app.config)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    if not app.config["JWT_SECRET_KEY"]:
        app.config["JWT_SECRET_KEY"] = DEV_SECRET  # debug/testing only: validate() refuses it otherwise
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = database.engine_options(app.config)
    app.config["SQLALCHEMY_BINDS"] = database.binds(app.config)

    web.configure_urls(app)
    logs.configure(app)
    register_extensions(app)
    register_blueprints(app)
    errors.register(app)
    web.register(app)
    app.teardown_request(database.release_autocommit)
    app.teardown_request(database.end_session)
    register_commands(app)
    if app.config["PROXY_FIX_X_FOR"]:
        hops = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # the client and HTTPS, never the host
    if app.config["JWT_SECRET_KEY"] == DEV_SECRET:
        logging.getLogger("eventbook").warning("JWT_SECRET_KEY is not set: using an insecure development key")
    return app


def register_extensions(app):
    db.init_app(app)
    migrate.init_app(app, db, directory=str(settings.BASE_DIR / "migrations"))
    jwt.init_app(app)
    api.init_app(app)
    ratelimits.init_app(app)
    if app.config["CORS_ORIGINS"]:
        app.after_request(web.vary_by_origin)
        cors.init_app(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
                      expose_headers=["X-Total-Count", "Link", "X-Request-ID", "Location", "Retry-After", "ETag",
                                      "Idempotent-Replayed", "X-RateLimit-Limit", "X-RateLimit-Remaining",
                                      "X-RateLimit-Reset"])
    Dispatcher(app)
    HoldSweeper(app)
    sales.init_app(app, make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name())

    from eventbook.auth import tokens  # noqa: F401 - registers the JWT loaders


def register_blueprints(app):
    from eventbook import health
    from eventbook.admin.routes import blp as admin
    from eventbook.auth.routes import blp as auth
    from eventbook.bookings.routes import blp as bookings
    from eventbook.events.routes import blp as events
    from eventbook.holds.routes import blp as holds
    from eventbook.notifications.routes import blp as notifications
    from eventbook.seats.routes import blp as seats
    from eventbook.stats.routes import blp as stats
    from eventbook.tickets.routes import blp as tickets
    from eventbook.waitlist.routes import blp as waitlist

    for blueprint in (auth, events, seats, bookings, holds, waitlist, notifications, tickets, stats, health.blp):
        api.register_blueprint(blueprint)
    api.register_blueprint(admin)
    app.register_blueprint(docs_assets)
    from eventbook import page
    app.register_blueprint(page.blp)


def register_commands(app):
    from eventbook import cli

    cli.register(app)
