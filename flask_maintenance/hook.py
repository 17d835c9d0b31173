"""What only the app can decide: bypass rules, the features of the matched view, custom pages.

These act on a verdict of :meth:`Gate.decide <flask_maintenance.gate.Gate.decide>` that needs a
request context. The WSGI fast path runs them in a request context of its own (see
:mod:`flask_maintenance.fastpath`), where none of the app's ``url_value_preprocessors`` or
``before_request`` functions run. Apps without the fast path run them through
:func:`request_hook`, the first ``before_request`` function, after Flask opened the session.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from flask import Flask, Response, after_this_request, request
from werkzeug.datastructures import Headers

from .gate import SAFE_METHODS, Action, Gate, Verdict, script_root
from .languages import choose
from .model import Feature, State, features_of
from .probes import probe_answer, probe_paths
from .signals import request_blocked

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

logger = logging.getLogger("flask_maintenance")

# Module constants: an enum member looked up on its class costs more than the hook's real work.
_PASS, _ASK_RULES, _ASK_FEATURES = Action.PASS, Action.ASK_RULES, Action.ASK_FEATURES


def finish(
    app: Flask,
    gate: Gate,
    verdict: Verdict,
    environ: WSGIEnvironment,
    within: Callable[[bool], AbstractContextManager[None]] | None = None,
) -> Response | None:
    """The refusal for this request, or ``None`` when it passes after all.

    :param within: gives a request context of the caller's own (the fast path's), with a session
        only when asked for one (``within(True)``: a bypass rule will run); the app's
        ``after_request`` functions then run on a refusal that carries ``Origin``. Without it,
        the work is done in the request's own context, and Flask runs them itself.
    """
    action, state, as_json, feature = verdict
    enter = within or _the_current_context
    ask_rules = action is _ASK_RULES or (action is _ASK_FEATURES and gate.rules_may_pass(environ))
    if action is _ASK_FEATURES:
        with enter(False):
            feature = switched_off_feature(app, gate, state)
            if feature is None:
                return None
            if not ask_rules:
                return _refused(app, gate, state, as_json, feature, after_request=within is not None)
    with enter(ask_rules):
        if ask_rules and a_rule_passes(app, gate):
            return None
        return _refused(app, gate, state, as_json, feature, after_request=within is not None)


def _the_current_context(with_session: bool) -> AbstractContextManager[None]:
    return nullcontext()


def _refused(
    app: Flask, gate: Gate, state: State, as_json: bool, feature: Feature | None, *, after_request: bool
) -> Response:
    response = refusal(app, gate, state, as_json, feature)
    if after_request and "Origin" in request.headers:
        response = _with_app_headers(app, gate, response)
    return response


def request_hook(app: Flask, gate: Gate) -> Callable[[], Response | None]:
    """The ``before_request`` function for an app without the fast path."""
    probes = probe_paths(gate.settings.status_path)

    def check_maintenance() -> Response | None:
        state = gate.cache.get()
        # The raw path, as the fast path reads it: request.path drops a doubled leading slash.
        readiness = probes.get(request.environ.get("PATH_INFO", ""))
        if readiness is not None:  # /live and /ready, in every state (see probes.py)
            answer = probe_answer(readiness, state)
            return Response(answer.body, status=answer.status, headers=list(answer.headers))
        if state.idle:
            return None
        verdict = gate.decide(state, request.environ)
        response = None if verdict.action is _PASS else finish(app, gate, verdict, request.environ)
        if response is None:
            prepared = gate.prepared(state)
            if prepared.banner:
                _add_banner(*prepared.banner_in(request.environ.get("HTTP_ACCEPT_LANGUAGE")))
        return response

    return check_maintenance


def _add_banner(name: str, value: str) -> None:
    # Per request, only while there is a banner: an after_request hook would cost every
    # request when off. (With the fast path, its WSGI layer adds the header instead.)
    def add_banner(response: Response) -> Response:
        if name not in response.headers:
            response.headers[name] = value
            response.vary.add("Accept-Language")
        return response

    after_this_request(add_banner)


def switched_off_feature(app: Flask, gate: Gate, state: State) -> Feature | None:
    """The first switched-off feature this request belongs to (view, blueprints, URL prefix).

    A blueprint is a feature by its registered name (``account.billing`` when nested) and by its
    own name (``billing``), plus the names given with ``m.feature(name, blueprint=bp)``.
    """
    view = app.view_functions.get(request.endpoint or "")
    names = set(features_of(view))
    for registered in request.blueprints:
        names.add(registered)
        blueprint = app.blueprints.get(registered)
        if blueprint is not None:
            names.add(blueprint.name)
            names.update(gate.features.blueprints.get(blueprint) or ())
    for name in sorted(names):
        if name in state.features:
            return state.features[name]
    return gate.features.by_prefix(state.features, request.path)


def a_rule_passes(app: Flask, gate: Gate) -> bool:
    """Whether one of the app's bypass rules lets the request in context through."""
    cookies = request.environ.get("HTTP_COOKIE", "")
    for rule in gate.rules:
        if not rule.may_pass(cookies):
            continue
        try:
            # ensure_sync awaits an async rule the way Flask runs an async view.
            passed: object = app.ensure_sync(rule.check)()
        except Exception:  # a broken rule must not turn the 503 into a 500
            gate.warn_once(f"maintenance bypass rule {rule.check!r} failed; counting it as False")
            continue
        if inspect.isawaitable(passed):  # a sync function that returned a coroutine
            getattr(passed, "close", lambda: None)()
            gate.warn_once(
                f"maintenance bypass rule {rule.check!r} returned an awaitable; counting it as False"
            )
            continue
        if passed:
            return True
    return False


def refusal(app: Flask, gate: Gate, state: State, as_json: bool, feature: Feature | None) -> Response:
    """The 503 for this request, from the app: the built-in answer, or the custom page."""
    reason = state.mode if feature is None else f"feature:{feature.name}"
    reason = "maintenance" if reason == "full" else reason
    logger.debug("refused %s %s (%s)", request.method, request.path, reason)
    try:
        request_blocked.send(app, state=state, reason=reason)
    except Exception:  # a broken receiver must not turn the 503 into a 500
        gate.warn_once("a request_blocked receiver failed; the refusal is sent all the same")
    answer = gate.answer(
        state,
        as_json,
        feature,
        script_root(request.environ),
        request.environ.get("HTTP_ACCEPT_LANGUAGE"),
        request.method not in SAFE_METHODS,
    )
    next(answer.counter)
    response = Response(answer.body, status=answer.status, headers=list(answer.headers))
    template = gate.settings.template
    if template and not as_json:
        try:
            # Not render_template: the app's context processors (Flask-Login's current_user,
            # for one) may load the user from the database, or write the session.
            page = app.jinja_env.get_template(template).render(
                maintenance=state,
                feature=feature,
                retry_after=answer.retry_after,  # exactly what the header says
                readonly=state.mode == "readonly",
                language=choose(request.headers.get("Accept-Language"), state.languages).page,
            )
        except Exception:  # a broken custom page falls back to the built-in one
            gate.warn_once(f"maintenance template {template!r} failed; using the built-in page")
        else:
            response.set_data(page)
            # The built-in page's policy allows only its own inline code, not the template's.
            from .responses import PAGE_CSP  # loaded by the answer above

            ours = ("Content-Security-Policy", PAGE_CSP)
            response.headers = Headers([header for header in response.headers.items() if header != ours])
    return response


def _with_app_headers(app: Flask, gate: Gate, response: Response) -> Response:
    """The refusal after the app's ``after_request`` functions (CORS headers, for one).

    If one of them fails, the refusal goes out as it was: a 503 never becomes a 500.
    """
    try:
        processed = app.process_response(response)
    except Exception:
        gate.warn_once("an after_request function failed on a maintenance answer; sent without it")
        return response
    if "Access-Control-Allow-Origin" in processed.headers:
        # Let the other origin's script read when to come back.
        exposed = processed.headers.get("Access-Control-Expose-Headers", "")
        if "retry-after" not in exposed.lower():
            processed.headers["Access-Control-Expose-Headers"] = ", ".join(
                value for value in (exposed, "Retry-After") if value
            )
    return processed
