"""The WSGI layer that counts unsafe requests in flight for ``--wait`` (the drain).

:class:`CountUnsafeRequests` starts this process's heartbeat on its first request, and counts
each unsafe request (anything but GET, HEAD and OPTIONS) with the app's
:class:`~flask_maintenance.workers.Worker` until the app returns its response: the view has
run, and Flask has torn the request down (a body streamed after that is not counted). The count
starts before the state is read, so that no request that an earlier state let in goes uncounted.

The fast path is this layer (it subclasses it, deciding in ``_answer``); an app without the fast
path gets the layer on its own, around ``app.wsgi_app``. For a safe request it costs one
attribute test and one set lookup; for an unsafe one, two counter steps.
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
            return self._answer(environ, start_response)
        with worker.in_flight():
            return self._answer(environ, start_response)

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The request's answer: from the app this layer wraps."""
        return self.wsgi_app(environ, start_response)
