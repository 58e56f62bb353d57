"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import sys

from eventbook import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"eventbook: {exc}")
