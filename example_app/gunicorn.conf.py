"""Gunicorn settings for the example app.

    gunicorn -c example_app/gunicorn.conf.py "example_app:create_app()"

Run from the repository root. Each worker is its own process with its own copy of the
maintenance state, re-read from the lock file at most once per MAINTENANCE_CHECK_INTERVAL
(1 s by default): `flask --app example_app maintenance on` reaches every worker within it.
"""

wsgi_app = "example_app:create_app()"
bind = "127.0.0.1:8000"
workers = 2
worker_class = "sync"
# A 503 costs microseconds; a stuck request should not hold a sync worker for long.
timeout = 30
graceful_timeout = 10
accesslog = "-"
errorlog = "-"
loglevel = "info"
