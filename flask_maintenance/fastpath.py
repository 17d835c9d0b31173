"""A WSGI layer around Flask that decides every request before Flask's request cycle starts.

A ``before_request`` hook that returns a 503 still pays for the whole Flask request cycle (~55 µs)
and runs after Flask opened the session and ran the app's ``url_value_preprocessors``; answering
here with a prebuilt body costs a few µs, which is what lets a drowning server recover, and a
refused request never touches the session store or the database.

It asks :meth:`Gate.decide <flask_maintenance.gate.Gate.decide>` and sends plain refusals itself.
What needs the app (bypass rules, the view's features, a custom page, the app's CORS headers) is
done by :func:`flask_maintenance.hook.finish` in a request context of this layer's own; a request
that passes goes on to Flask untouched (with the banner header added while there is one).

It sits directly around Flask's own ``wsgi_app``, inside any middleware the app already had, so it
sees the environ exactly as Flask will (a prefix-stripping middleware has stripped, ProxyFix has
fixed ``REMOTE_ADDR``). Where it cannot find that spot, it stays out and says so once; the
request hook then decides instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask import Response
from flask.ctx import RequestContext

from .gate import SAFE_METHODS, Action, Gate, Verdict, script_root
from .hook import finish
from .inflight import CountUnsafeRequests
from .languages import choose
from .probes import probe_answer, probe_paths, send
from .responses import STATUS_LINE, banner_header

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_maintenance")
_debug = functools.partial(logger.isEnabledFor, logging.DEBUG)

# Module constants: cheaper than the enum's class attributes on the hot path.
_PASS, _REFUSE = Action.PASS, Action.REFUSE
_ASK_FEATURES = Action.ASK_FEATURES
#: Attributes in which WSGI middleware commonly keep the app they wrap.
_INNER_APP_ATTRIBUTES = ("app", "wsgi_app", "application", "wsgi", "wrapped", "_app")
_MAX_DEPTH = 32
#: The banner's language follows Accept-Language (another Vary header is combined with it).
_VARY_LANGUAGE = (("Vary", "Accept-Language"),)


class FastPath(CountUnsafeRequests):
    """Wraps Flask's own ``wsgi_app``; see the module docstring.

    Its base class counts unsafe requests in flight (the drain); the decision is ``_answer``.
    """

    def __init__(self, wsgi_app: WSGIApplication, app: Flask, gate: Gate) -> None:
        super().__init__(wsgi_app, gate.worker)
        self.app = app
        self.gate = gate
        self.probes = probe_paths(gate.settings.status_path)

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        gate = self.gate
        state = gate.cache.get()
        readiness = self.probes.get(environ.get("PATH_INFO"))  # type: ignore[arg-type]
        if readiness is not None:  # /live and /ready, in every state (see probes.py)
            return send(probe_answer(readiness, state), environ, start_response)
        if state.idle:
            return self.wsgi_app(environ, start_response)
        verdict = gate.decide(state, environ)
        action = verdict.action
        if action is _PASS:
            return self._serve(verdict, environ, start_response)
        if action is _REFUSE:
            return self._prebuilt(verdict, environ, start_response)
        try:
            response = self._in_app(verdict, environ)
        except Exception:
            # The app's own parts (a URL converter, a receiver, a template, the session) must
            # not turn the answer into a 500: fall back to what needs none of them.
            gate.warn_once("finishing a maintenance decision in the app failed; used the built-in answer")
            if action is _ASK_FEATURES:
                return self._serve(verdict, environ, start_response)  # the mode lets it through
            return self._prebuilt(verdict, environ, start_response)
        if response is None:
            return self._serve(verdict, environ, start_response)
        return response(environ, start_response)

    def _prebuilt(
        self, verdict: Verdict, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The built-in refusal, sent without Flask."""
        state = verdict.state
        root = script_root(environ) if environ.get("SCRIPT_NAME") else ""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        answer = self.gate.answer(
            state,
            verdict.as_json,
            verdict.feature,
            root,
            environ.get("HTTP_ACCEPT_LANGUAGE"),
            method not in SAFE_METHODS,
        )
        next(answer.counter)
        if _debug():  # the same quiet record the app's refusals write, when asked for
            logger.debug("refused %s %s (mode %s)", method, environ.get("PATH_INFO"), state.mode)
        start_response(STATUS_LINE, list(answer.wsgi_headers))
        return [] if method == "HEAD" else [answer.body]

    def _serve(
        self, verdict: Verdict, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Hand the request to Flask, adding ``X-Maintenance-Banner`` while there is a banner."""
        state = verdict.state
        if state.banner is None:
            return self.wsgi_app(environ, start_response)
        header = banner_header(state, *choose(environ.get("HTTP_ACCEPT_LANGUAGE"), state.languages))

        def start_with_banner(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            if not any(name.lower() == "x-maintenance-banner" for name, _ in headers):
                headers = [*headers, ("X-Maintenance-Banner", header), *_VARY_LANGUAGE]
            return start_response(status, headers, *exc_info)

        return self.wsgi_app(environ, start_with_banner)

    def _in_app(self, verdict: Verdict, environ: WSGIEnvironment) -> Response | None:
        """Finish the decision in a request context of our own; ``None`` when it passes.

        The context has no session (the store may be what is down) unless a bypass rule may
        need one; then it is opened as Flask opens it, and if that fails the rule sees none.
        """
        return finish(
            self.app,
            self.gate,
            verdict,
            environ,
            within=functools.partial(_pushed, self.app, self.gate, environ),
        )


@contextmanager
def _pushed(app: Flask, gate: Gate, environ: WSGIEnvironment, with_session: bool) -> Iterator[None]:
    """A request context of our own for ``environ``, popped whatever happens.

    Neither opening the session nor the app's teardown may fail the answer.
    """
    ctx = None
    if with_session:
        ctx = RequestContext(app, environ)
        try:
            ctx.push()  # opens the session, as Flask does
        except Exception:
            gate.warn_once("the session could not be opened for a bypass rule; the rules see none")
            _pop_quietly(ctx, gate)
            ctx = None
    if ctx is None:
        ctx = RequestContext(app, environ, session=app.session_interface.make_null_session(app))
        try:
            ctx.push()  # matches the URL: an app's converter may fail
        except BaseException:
            _pop_quietly(ctx, gate)  # a half-pushed context must not outlive the request
            raise
    try:
        yield
    finally:
        _pop_quietly(ctx, gate)


def _pop_quietly(ctx: RequestContext, gate: Gate) -> None:
    try:
        ctx.pop()
    except Exception:
        gate.warn_once("the app's teardown failed after a maintenance answer")


def install(app: Flask, gate: Gate) -> bool:
    """Put a :class:`FastPath` directly around ``app``'s own ``wsgi_app``; return whether it could.

    Middleware installed before this keep the app's ``wsgi_app`` in an attribute (``.app`` for
    Werkzeug's, ``.application`` for WhiteNoise's, ...): the fast path goes inside the innermost.
    """
    if _is_flask_own(app, app.wsgi_app):
        app.wsgi_app = FastPath(app.wsgi_app, app, gate)  # type: ignore[method-assign]
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
    setattr(middleware, attribute, FastPath(getattr(middleware, attribute), app, gate))
    return True


def _is_flask_own(app: Flask, candidate: Any) -> bool:
    """Whether ``candidate`` is ``app.wsgi_app`` as Flask defines it (a bound method of ``app``)."""
    own = getattr(type(app).wsgi_app, "__func__", type(app).wsgi_app)
    return getattr(candidate, "__self__", None) is app and getattr(candidate, "__func__", None) is own


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
