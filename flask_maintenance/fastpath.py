"""A WSGI layer in front of Flask that sheds the requests it can refuse from the environ alone.

A ``before_request`` hook that returns a 503 still pays for the whole Flask request cycle (~55 µs);
answering here with a prebuilt body costs a few µs, which is what lets a drowning server recover.
It reads the raw environ on purpose, for speed, and decides only what needs no app context:
anything it is not sure of (an allowed path or address, a bypass cookie, app bypass rules, a
custom template) falls through unchanged to the hook, which stays the source of truth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.proxy_fix import ProxyFix

from .gate import Gate
from .responses import STATUS_LINE
from .signals import request_blocked

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger("flask_maintenance")


class FastPath:
    """Wraps ``app.wsgi_app``; see the module docstring."""

    def __init__(self, wsgi_app: WSGIApplication, gate: Gate) -> None:
        self.wsgi_app = wsgi_app
        self.gate = gate
        # With ProxyFix inside this layer, REMOTE_ADDR here is still the proxy's: leave
        # forwarded requests to the hook, which sees the fixed address.
        self._proxy_inside = _wraps_proxy_fix(wsgi_app)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        gate = self.gate
        state = gate.cache.get()
        # request_blocked receivers need a request context: the hook's job.
        if not state.blocking or request_blocked.receivers:
            return self.wsgi_app(environ, start_response)
        raw_path = environ.get("PATH_INFO", "")
        if not raw_path.isascii():
            # WSGI carries the path as latin-1 text; request.path is its UTF-8 reading.
            try:
                raw_path = raw_path.encode("latin-1").decode("utf-8", "replace")
            except UnicodeEncodeError:  # not a valid WSGI string: let the hook decide
                return self.wsgi_app(environ, start_response)
        # Werkzeug's request.path folds leading slashes the same way.
        path = "/" + raw_path.lstrip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        if gate.passes_anyway(state, path, method) or self._may_bypass(environ):
            return self.wsgi_app(environ, start_response)
        as_json = gate.wants_json(path, environ.get("HTTP_ACCEPT"))
        if gate.settings.template and not as_json:
            return self.wsgi_app(environ, start_response)
        answer = gate.answer(state, as_json)
        # The same quiet record the hook writes: DEBUG per refused request, never more.
        logger.debug("refused %s %s (maintenance, mode %s)", method, path, state.mode)
        start_response(STATUS_LINE, answer.wsgi_headers())
        return [] if method == "HEAD" else [answer.body]

    def _may_bypass(self, environ: WSGIEnvironment) -> bool:
        gate = self.gate
        cookies = environ.get("HTTP_COOKIE", "")
        if gate.cookie.name + "=" in cookies:
            return True
        if any(rule.may_pass(cookies) for rule in gate.rules):  # app rules run in the hook
            return True
        if not gate.allowlist:
            return False
        if self._proxy_inside and "HTTP_X_FORWARDED_FOR" in environ:
            return True
        return gate.allowlist.allows(environ.get("REMOTE_ADDR"))


def _wraps_proxy_fix(wsgi_app: Any) -> bool:
    """Whether a ProxyFix sits somewhere inside ``wsgi_app`` (middleware keep the next in ``.app``)."""
    for _ in range(16):
        if isinstance(wsgi_app, ProxyFix):
            return True
        wsgi_app = getattr(wsgi_app, "app", getattr(wsgi_app, "wsgi_app", None))
        if wsgi_app is None:
            return False
    return False
