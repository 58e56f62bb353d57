"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import sys

from eventbook import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    print(f"eventbook: {exc}", file=sys.stderr)
    sys.exit(3)  # gunicorn's "worker failed to boot": the master stops instead of respawning
