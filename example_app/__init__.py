"""A small guestbook that shows every feature of flask-maintenance.

Run it with ``flask --app example_app run`` (or under gunicorn with ``gunicorn -c
example_app/gunicorn.conf.py``), then switch maintenance on from another terminal with
``flask --app example_app maintenance on``.

Settings come, in this order, from the defaults below, ``instance/config.py`` and environment
variables prefixed with ``EXAMPLE_`` (``EXAMPLE_SECRET_KEY=...``,
``EXAMPLE_MAINTENANCE_ALLOWED_IPS=10.0.0.0/8``); ``EXAMPLE_INSTANCE_PATH`` moves the instance
folder (the guestbook database and the lock file live there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, session
from werkzeug.middleware.proxy_fix import ProxyFix

from . import admin, api, db, guestbook, health, pages
from .extensions import maintenance


@maintenance.bypass_rule(cookie="session")
def signed_in_admin() -> bool:
    """Admins signed in at /admin keep using the site while visitors get the 503.

    This runs inside the maintenance check, before the app's own hooks: it reads only the
    signed session cookie, never the database, which may be the very thing under maintenance.
    ``cookie="session"`` tells the fast path that visitors without a session cookie can never
    pass, so their 503s stay cheap.
    """
    return session.get("admin") is True


DEFAULTS: dict[str, Any] = {
    # Change both before exposing the app to anyone (EXAMPLE_SECRET_KEY, EXAMPLE_ADMIN_PASSWORD).
    "SECRET_KEY": "dev-only-change-me",
    "ADMIN_PASSWORD": "letmein",
    "SESSION_COOKIE_SAMESITE": "Lax",
    # Number of proxies in front of the app; X-Forwarded-For is trusted only when this is set.
    "PROXY_HOPS": 0,
    # flask-maintenance: see the README's configuration table for every key.
    "MAINTENANCE_RETRY_AFTER": 120,
    # Liveness stays up so the orchestrator does not restart the app; /health/ready is left
    # blocked on purpose so the load balancer drains it during the window.
    "MAINTENANCE_ALLOWED_PATHS": ("/health/live",),
    # The office network and the VPN (documentation ranges: put your own here). Loopback is not
    # listed, so that you see the maintenance page when you try the example on your machine.
    "MAINTENANCE_ALLOWED_IPS": ("192.0.2.0/24", "2001:db8:1::/48"),
    "MAINTENANCE_API_PREFIXES": ("/api",),
    # App commands are refused during maintenance; `init-db` is marked @maintenance.exempt so it
    # can run inside the window, and this key lists more by name (e.g. "db" for Flask-Migrate).
    "MAINTENANCE_CLI_EXEMPT": (),
}


def create_app(config: Mapping[str, Any] | None = None, *, instance_path: str | None = None) -> Flask:
    """Build the guestbook app.

    :param config: settings that override every other source (handy in tests).
    :param instance_path: where the database and the lock file live; the default is
        ``$EXAMPLE_INSTANCE_PATH`` or Flask's ``instance/`` folder next to this package.
    """
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("EXAMPLE_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("EXAMPLE")
    if config:
        app.config.update(config)
    app.config.setdefault("DATABASE", os.path.join(app.instance_path, "guestbook.sqlite3"))

    hops = int(app.config["PROXY_HOPS"])
    if hops:
        # Only with ProxyFix does request.remote_addr (and so MAINTENANCE_ALLOWED_IPS) see the
        # client's address instead of the proxy's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    # The extension puts its check before every other before_request hook, including the one
    # below, so a refused request never reaches the app's code.
    maintenance.init_app(app)

    @app.before_request
    def load_admin_flag() -> None:
        # Runs for every request that got through; like the bypass rule it reads only the
        # session cookie, so it keeps working while the database is being migrated.
        g.admin = session.get("admin") is True

    db.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(guestbook.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    return app


#: For ``flask --app example_app ...`` and ``gunicorn example_app:app``.
app = create_app()
