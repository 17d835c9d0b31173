"""The WSGI layer that counts unsafe requests in flight for ``--wait`` (the drain).

:class:`CountUnsafeRequests` starts this process's heartbeat on its first request, and counts
each unsafe request (anything but GET, HEAD and OPTIONS) with the app's
:class:`~flask_maintenance.workers.Worker` until the app returns its response: the view has
run, and Flask has torn the request down (a body streamed after that is not counted). The count
starts before the state is read, so that no request that an earlier state let in goes uncounted.

This layer is for an app without the fast path, around ``app.wsgi_app``; the fast path counts
the same way in its own frame (:class:`~flask_maintenance.fastpath.FastPath`). For a safe request
it costs one attribute test and one set lookup; for an unsafe one, two counter steps.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .gate import SAFE_METHODS
from .workers import Worker

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class CountUnsafeRequests:
    """Counts the unsafe requests that ``wsgi_app`` is working on (see the module docstring)."""

    def __init__(self, wsgi_app: WSGIApplication, worker: Worker) -> None:
        self.wsgi_app = wsgi_app
        self.worker = worker

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        worker = self.worker
        if not worker.serving:
            worker.serve()
        if environ.get("REQUEST_METHOD") in SAFE_METHODS:
            return self.wsgi_app(environ, start_response)
        with worker.in_flight():
            return self.wsgi_app(environ, start_response)
