"""gunicorn settings, read from the environment the way a PaaS (Render) sets it.

gthread workers: each worker process serves GUNICORN_THREADS requests at once and
runs its own notification pool and sweeper.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app writes its own access log line, with the request id
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# Several instances may run under one HOME (tests, scale-out on one host): no shared
# control socket for them to fight over.
control_socket_disable = True


def post_worker_init(worker):
    # Start delivering at once: rows left PENDING by a crash must not wait for a request.
    app = worker.wsgi
    if app.config["NOTIFY_AUTOSTART"]:
        app.extensions["notifications"].start()


def worker_exit(server, worker):
    # SIGTERM: requests have finished; stop the pool, give back what it did not start.
    app = getattr(worker, "wsgi", None)
    if app is not None:
        app.extensions["notifications"].shutdown()
