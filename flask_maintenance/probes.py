"""``<status path>/live`` and ``<status path>/ready``: the probes of orchestrators and proxies.

- ``/live`` always answers 200: the process is up and serving (a Kubernetes liveness probe).
- ``/ready`` answers 503 while maintenance blocks the site (mode ``full``), else 200: ``readonly``
  and ``banner`` stay ready, so reads keep flowing. A proxy that serves the page itself while the
  app is in maintenance (HAProxy's health checks, see :mod:`flask_maintenance.haproxy`) asks it.

Both are answered before anything of the app runs (no session, no ``before_request`` function,
no database), by the WSGI fast path or, without it, by the request hook, in every mode, with a
prebuilt body, so a probe costs no more than a fast-path refusal. They are deliberately not part
of :meth:`Gate.decide <flask_maintenance.gate.Gate.decide>`: one dictionary look-up of the path
decides whether a request is a probe at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .answer import Answer

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from .model import State

LIVE = "/live"
READY = "/ready"

_STATUS_LINES = {200: "200 OK", 503: "503 SERVICE UNAVAILABLE"}


def _answer(status: int, document: dict[str, object]) -> Answer:
    return Answer(
        status=status,
        headers=(("Content-Type", "application/json"), ("Cache-Control", "no-store")),
        body=json.dumps(document).encode() + b"\n",
        retry_after=0,
    )


#: The three answers there are, built once.
ALIVE = _answer(200, {"live": True})
IS_READY = _answer(200, {"ready": True})
NOT_READY = _answer(503, {"ready": False, "reason": "maintenance"})


def probe_paths(status_path: str) -> dict[str, bool]:
    """The probes' paths under ``status_path``, each mapped to whether it is the readiness probe.

    Keyed as the server passes them in ``PATH_INFO`` (UTF-8 bytes read as Latin-1, untouched
    otherwise), so that the fast path and the hook both match the raw value, exactly, with one
    look-up: ``//_maintenance/live`` is no probe, as the docs say.
    """
    wsgi_path = status_path.encode("utf-8").decode("latin-1")
    return {wsgi_path + LIVE: False, wsgi_path + READY: True}


def probe_answer(readiness: bool, state: State) -> Answer:
    """The answer of the liveness probe, or of the readiness probe in ``state``."""
    if not readiness:
        return ALIVE
    # Only a site-wide refusal makes the process unready: readonly serves every read.
    return NOT_READY if state.blocking and state.mode == "full" else IS_READY


def send(answer: Answer, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Send a probe's answer as a WSGI app would (no body for ``HEAD``)."""
    start_response(_STATUS_LINES[answer.status], list(answer.wsgi_headers))
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]
