"""The apps the benchmarks compare: one hello-world Flask app in several variants.

``create_app(variant)`` builds one of:

``bare``
    the hello-world app without the extension (the baseline).
``ext``
    the same app with ``Maintenance(app)``. Whether maintenance is on is only the lock file's
    business: "off" is this variant with no lock file, "on (fast path)" is it with one.
``hook``
    ``ext`` with ``MAINTENANCE_FAST_PATH = False``: Flask's whole request cycle runs and the
    ``before_request`` hook refuses (the cost of a 503 without the fast path).
``rule``
    ``ext`` plus a ``@bypass_rule`` that always returns False: a rule needs a request context,
    which the fast path pushes itself to run it, without Flask's request cycle.
``ceiling`` (not Flask; served as ``apps:ceiling``)
    a bare WSGI callable answering a prebuilt 503 of the built-in page's size: the cheapest
    answer a server can give, the upper bound for the fast path over HTTP.
``slow``
    ``ext`` whose ``/`` takes 200 ms (``SLOW_SECONDS``): a page a few clients too many can
    overload, for the time-to-relief scenario (``relief.py``).
``probe``
    ``ext`` wrapped in a middleware that adds ``X-Worker-Pid`` to every answer (the fast path's
    503s too) and waits a few milliseconds first, so that concurrent pollers reach every worker
    of a gunicorn server. Used only to measure propagation, never timed.

The lock file is ``MAINTENANCE_LOCK_FILE`` from ``lock_file=`` or the ``BENCH_LOCK_FILE``
environment variable, so that gunicorn and a ``flask maintenance on`` subprocess load the same
app with the same lock: ``gunicorn 'apps:create_app("ext")'``, ``flask --app 'apps:create_app("probe")'``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask

from flask_maintenance import Maintenance

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

VARIANTS = ("bare", "ext", "hook", "rule", "probe", "slow")

#: How long ``probe`` holds a request before answering (seconds).
PROBE_DELAY = 0.005
#: How long the ``slow`` variant's page takes (seconds).
SLOW_SECONDS = 0.2


def create_app(
    variant: str = "bare", lock_file: str | None = None, check_interval: float | None = None
) -> Flask:
    """One variant of the hello-world app (see the module docstring).

    :param check_interval: ``MAINTENANCE_CHECK_INTERVAL``, when not the default.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    lock_file = lock_file or os.environ.get("BENCH_LOCK_FILE")
    folder = os.path.dirname(lock_file) if lock_file else tempfile.gettempdir()
    # An explicit instance folder: Flask must not create one inside the repository.
    app = Flask(__name__, instance_path=os.path.join(folder, "instance"))
    app.config["SECRET_KEY"] = "benchmark"

    if variant == "slow":

        @app.get("/")
        def slow() -> str:
            time.sleep(SLOW_SECONDS)
            return "Hello, World!"

    else:

        @app.get("/")
        def hello() -> str:
            return "Hello, World!"

    if variant == "bare":
        return app
    if not lock_file:
        raise ValueError("give lock_file= or set BENCH_LOCK_FILE")
    app.config["MAINTENANCE_LOCK_FILE"] = lock_file
    if check_interval is not None:
        app.config["MAINTENANCE_CHECK_INTERVAL"] = check_interval
    app.config["MAINTENANCE_FAST_PATH"] = variant != "hook"
    maintenance = Maintenance(app)
    if variant == "rule":

        @maintenance.bypass_rule
        def nobody() -> bool:
            return False

    if variant == "probe":
        app.wsgi_app = WorkerPid(app.wsgi_app)  # type: ignore[method-assign]
    return app


_CEILING_BODY = b"x" * 2400  # about the size of the built-in maintenance page
_CEILING_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Retry-After", "60"),
    ("Content-Length", str(len(_CEILING_BODY))),
]


def ceiling(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The cheapest possible 503: no Flask, no decision, a prebuilt body."""
    start_response("503 SERVICE UNAVAILABLE", list(_CEILING_HEADERS))
    return [_CEILING_BODY]


class WorkerPid:
    """Adds ``X-Worker-Pid`` to every answer, after holding the request ``PROBE_DELAY`` seconds."""

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Sleep before deciding, so that the answer's arrival time is close to the decision's.
        time.sleep(PROBE_DELAY)
        pid = str(os.getpid())  # per request: gunicorn forks workers after the import

        def start_with_pid(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, [*headers, ("X-Worker-Pid", pid)], *args)

        return self.app(environ, start_with_pid)
