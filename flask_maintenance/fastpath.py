"""A WSGI layer around Flask that refuses what it can decide before Flask does anything.

A ``before_request`` hook that returns a 503 still pays for the whole Flask request cycle
(~55 µs); answering here with a prebuilt body costs a few µs, which is what lets a drowning server
recover. It asks :meth:`Gate.decide <flask_maintenance.gate.Gate.decide>` and sends only plain
refusals itself; every other verdict goes on to the app with the request, and the hook acts on it
without deciding again.

It sits directly around Flask's own ``wsgi_app``, inside any middleware the app already had, so it
sees the environ exactly as Flask will (a prefix-stripping middleware has stripped, ProxyFix has
fixed ``REMOTE_ADDR``). Where it cannot find that spot, it stays out and says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .gate import IDLE, Action, Gate
from .responses import STATUS_LINE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_maintenance")

_REFUSE = Action.REFUSE  # a module constant: cheaper than the enum's class attribute
#: Attributes in which WSGI middleware commonly keep the app they wrap.
_INNER_APP_ATTRIBUTES = ("app", "wsgi_app", "application", "wrapped", "_app")
_MAX_DEPTH = 32


class FastPath:
    """Wraps Flask's own ``wsgi_app``; see the module docstring."""

    def __init__(self, wsgi_app: WSGIApplication, gate: Gate) -> None:
        self.wsgi_app = wsgi_app
        self.gate = gate

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        gate = self.gate
        state = gate.cache.get()
        verdict = IDLE if state.idle else gate.decide(state, environ)
        if verdict.action is _REFUSE:
            answer = gate.answer(state, verdict.as_json)
            method = environ.get("REQUEST_METHOD", "GET").upper()
            # The same quiet record the hook writes: DEBUG per refused request, never more.
            logger.debug("refused %s %s (maintenance, mode %s)", method, environ.get("PATH_INFO"), state.mode)
            start_response(STATUS_LINE, answer.wsgi_headers())
            return [] if method == "HEAD" else [answer.body]
        token = gate.verdict.set(verdict)
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            gate.verdict.reset(token)


def install(app: Flask, gate: Gate) -> bool:
    """Put a :class:`FastPath` directly around ``app``'s own ``wsgi_app``; return whether it could.

    Middleware installed before this keep the app's ``wsgi_app`` in an attribute (``.app`` for
    Werkzeug's, ``.application`` for WhiteNoise's, ...): the fast path goes inside the innermost.
    """
    if _is_flask_own(app, app.wsgi_app):
        app.wsgi_app = FastPath(app.wsgi_app, gate)  # type: ignore[method-assign]
        return True
    holder = _holder_of_flask_own(app)
    if holder is None:
        logger.warning(
            "maintenance fast path disabled for %s: app.wsgi_app was wrapped (%s) before "
            "Maintenance(app), and Flask's own wsgi_app cannot be found inside it; every request "
            "goes to the request hook. Call Maintenance(app) before wrapping app.wsgi_app to "
            "keep the fast path.",
            app.name,
            type(app.wsgi_app).__name__,
        )
        return False
    middleware, attribute = holder
    setattr(middleware, attribute, FastPath(getattr(middleware, attribute), gate))
    return True


def _is_flask_own(app: Flask, candidate: Any) -> bool:
    """Whether ``candidate`` is ``app.wsgi_app`` as Flask defines it (a bound method of ``app``)."""
    return getattr(candidate, "__self__", None) is app and getattr(candidate, "__func__", None) is getattr(
        type(app).wsgi_app, "__func__", type(app).wsgi_app
    )


def _holder_of_flask_own(app: Flask) -> tuple[Any, str] | None:
    """The middleware, and its attribute, that holds ``app``'s own ``wsgi_app``."""
    node: Any = app.wsgi_app
    for _ in range(_MAX_DEPTH):
        inner = None
        for attribute in _INNER_APP_ATTRIBUTES:
            candidate = getattr(node, attribute, None)
            if candidate is None or candidate is app:
                continue
            if _is_flask_own(app, candidate):
                return node, attribute
            if inner is None and callable(candidate):
                inner = candidate
        if inner is None:
            return None
        node = inner
    return None
