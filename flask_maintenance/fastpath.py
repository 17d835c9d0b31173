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

from .answer import STATUS_LINE
from .gate import SAFE_METHODS, Action, Gate, Verdict, script_root
from .hook import finish
from .languages import ACCEPT_LANGUAGE_PREFIX
from .probes import probe_answer, probe_paths, send

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

logger = logging.getLogger("flask_maintenance")

# Module constants: cheaper than the enum's class attributes on the hot path.
_PASS, _REFUSE = Action.PASS, Action.REFUSE
_ASK_FEATURES = Action.ASK_FEATURES
#: Attributes in which WSGI middleware commonly keep the app they wrap.
_INNER_APP_ATTRIBUTES = ("app", "wsgi_app", "application", "wsgi", "wrapped", "_app")
_MAX_DEPTH = 32
_BANNER_LENGTH = len("X-Maintenance-Banner")
#: The banner's language follows Accept-Language (another Vary header is combined with it).
_VARY_LANGUAGE = ("Vary", "Accept-Language")


class FastPath:
    """Wraps Flask's own ``wsgi_app``; see the module docstring.

    It also counts the unsafe requests in flight (the drain), as
    :class:`~flask_maintenance.inflight.CountUnsafeRequests` does for an app without it: in
    the same frame as the decision, since every request comes this way.
    """

    def __init__(self, wsgi_app: WSGIApplication, app: Flask, gate: Gate) -> None:
        self.wsgi_app = wsgi_app
        self.worker = gate.worker
        self.app = app
        self.gate = gate
        self.probes = probe_paths(gate.settings.status_path)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        worker = self.worker
        if not worker.serving:
            worker.serve()
        raw_method = environ.get("REQUEST_METHOD")
        # Counted before the state is read (see inflight.py); a try costs nothing until it raises.
        work = None if raw_method in SAFE_METHODS else worker.begin()
        try:
            gate = self.gate
            state = gate.cache.get()
            readiness = self.probes.get(environ.get("PATH_INFO"))  # type: ignore[arg-type]
            if readiness is not None:  # /live and /ready, in every state (see probes.py)
                return send(probe_answer(readiness, state), environ, start_response)
            if state.idle:  # off: one clock comparison (in get) and this test
                return self.wsgi_app(environ, start_response)
            verdict = gate.decide(state, environ)
            # Unpacked: cheaper than the fields' descriptors.
            action, state, as_json, feature = verdict
            if action is not _REFUSE:
                if action is _PASS:
                    return self._serve(verdict, environ, start_response)
                finished = self._finish(verdict, environ, start_response)
                if finished is not None:
                    return finished
            # The built-in refusal, sent without Flask (here rather than in a method: every
            # refused request comes this way): a prebuilt body and headers with Content-Length,
            # a C-level count, and the debug line only when the log wants it.
            method = raw_method or "GET"
            write = method not in SAFE_METHODS and method.upper() not in SAFE_METHODS
            answer = None
            prepared = gate.current
            if feature is None and prepared.state is state and not environ.get("SCRIPT_NAME"):
                # Nearly every refusal: its language's answers by the raw header (cut as
                # choose() cuts it), one dictionary look-up; the slot is gate.plain_slot's.
                accept_language = environ.get("HTTP_ACCEPT_LANGUAGE") or ""
                if len(accept_language) > ACCEPT_LANGUAGE_PREFIX:
                    accept_language = accept_language[:ACCEPT_LANGUAGE_PREFIX]
                answers = prepared.by_header.get(accept_language) or prepared.answers_for(accept_language)
                answer = answers[as_json + 2 * write]
            if answer is None:
                root = script_root(environ) if environ.get("SCRIPT_NAME") else ""
                language = environ.get("HTTP_ACCEPT_LANGUAGE")
                answer = gate.answer(state, as_json, feature, root, language, write)
            next(answer.counter)
            if gate.debug_refusals:  # the same quiet record the app's refusals write
                logger.debug("refused %s %s (mode %s)", method, environ.get("PATH_INFO"), state.mode)
            start_response(STATUS_LINE, list(answer.wsgi_headers))
            # No body for HEAD exactly, as the server and Flask read it: they send one for "head"
            # (another method), so leaving it out would fall short of Content-Length.
            return [] if method == "HEAD" else [answer.body]
        finally:
            if work is not None:
                work.end()

    def _finish(
        self, verdict: Verdict, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """Finish a decision that needs the app; ``None``: send the built-in refusal."""
        try:
            response = self._in_app(verdict, environ)
        except Exception:
            # The app's own parts (a URL converter, a receiver, a template, the session) must
            # not turn the answer into a 500: fall back to what needs none of them.
            self.gate.warn_once(
                "finishing a maintenance decision in the app failed; used the built-in answer"
            )
            if verdict.action is _ASK_FEATURES:
                return self._serve(verdict, environ, start_response)  # the mode lets it through
            return None
        if response is None:
            return self._serve(verdict, environ, start_response)
        return response(environ, start_response)

    def _serve(
        self, verdict: Verdict, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        """Hand the request to Flask, adding ``X-Maintenance-Banner`` while there is a banner.

        The header is built once per state and language (:class:`~flask_maintenance.gate.Prepared`)
        and added here, in the WSGI layer: no ``after_this_request`` and no Response object per
        request. Every banner and readonly GET comes this way.
        """
        prepared = self.gate.current
        if prepared.state is not verdict.state:
            prepared = self.gate.prepared(verdict.state)
        if not prepared.banner:
            return self.wsgi_app(environ, start_response)
        accept_language = environ.get("HTTP_ACCEPT_LANGUAGE") or ""  # keyed as by_header
        if len(accept_language) > ACCEPT_LANGUAGE_PREFIX:
            accept_language = accept_language[:ACCEPT_LANGUAGE_PREFIX]
        banner = prepared.banner_by_header.get(accept_language) or prepared.banner_for(accept_language)

        # A closure (not a partial): werkzeug calls it from Python, which a C partial would not let
        # the interpreter inline.
        def start_with_banner(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            # The app's own X-Maintenance-Banner wins (the length test spares most lower() calls).
            for name, _ in headers:
                if len(name) == _BANNER_LENGTH and name.lower() == "x-maintenance-banner":
                    return start_response(status, headers, *exc_info)
            return start_response(status, [*headers, banner, _VARY_LANGUAGE], *exc_info)

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
        app.wsgi_app = _fast_path(app.wsgi_app, app, gate)  # type: ignore[method-assign, assignment]
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
    setattr(middleware, attribute, _fast_path(getattr(middleware, attribute), app, gate))
    return True


def _fast_path(wsgi_app: WSGIApplication, app: Flask, gate: Gate) -> WSGIApplication:
    """A :class:`FastPath` around ``wsgi_app``, as the bound method that is called per request.

    Calling an instance looks its ``__call__`` up on every call (some 700 machine instructions
    in CPython 3.11, more than the whole decision of a request while off); a bound method is
    called directly. The instance stays reachable as the method's ``__self__``.
    """
    return FastPath(wsgi_app, app, gate).__call__


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
