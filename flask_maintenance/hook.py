"""The request hook: acts on the verdict for a request, and does what only the app can.

It runs first of all ``before_request`` functions. The verdict comes from the WSGI fast path when
there is one (see :mod:`flask_maintenance.gate`); the hook adds what needs the app context: the
app's bypass rules, the features of the matched view, a custom page and the ``request_blocked``
signal.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, after_this_request, render_template, request

from .gate import IDLE, Action, Gate
from .model import Feature, State, features_of
from .responses import banner_header
from .signals import request_blocked

logger = logging.getLogger("flask_maintenance")

# Module constants: an enum member looked up on its class costs more than the hook's real work.
_PASS, _ASK_FEATURES = Action.PASS, Action.ASK_FEATURES
_ASK = (Action.ASK_RULES, Action.ASK_FEATURES)


def request_hook(
    app: Flask, gate: Gate, blueprint_features: Mapping[object, set[str]]
) -> Callable[[], Response | None]:
    """The ``before_request`` function for ``app``."""

    def check_maintenance() -> Response | None:
        verdict = gate.verdict.get()
        if verdict is IDLE:  # every request while off: keep it to this one comparison
            return None
        if verdict is None:  # no fast path in front of this request: decide here
            state = gate.cache.get()
            if state.idle:
                return None
            verdict = gate.decide(state, request.environ)
        action, state, as_json = verdict
        feature = None
        if action is _ASK_FEATURES:
            feature = switched_off_feature(app, state, blueprint_features)
        passes = (
            action is _PASS
            or (action is _ASK_FEATURES and feature is None)
            or (action in _ASK and _a_rule_passes(app, gate))
        )
        if not passes:
            return refusal(app, gate, state, as_json, feature)
        if state.banner is not None:
            _add_banner(state)
        return None

    return check_maintenance


def _add_banner(state: State) -> None:
    # Per request, only while there is a banner: an after_request hook would cost every
    # request when off.
    header = banner_header(state)

    def add_banner(response: Response) -> Response:
        response.headers.setdefault("X-Maintenance-Banner", header)
        return response

    after_this_request(add_banner)


def switched_off_feature(
    app: Flask, state: State, blueprint_features: Mapping[object, set[str]]
) -> Feature | None:
    """The first switched-off feature this request belongs to (view, blueprints).

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
            names.update(blueprint_features.get(blueprint) or ())
    for name in sorted(names):
        if name in state.features:
            return state.features[name]
    return None


def _a_rule_passes(app: Flask, gate: Gate) -> bool:
    cookies = request.environ.get("HTTP_COOKIE", "")
    for rule in gate.rules:
        if not rule.may_pass(cookies):
            continue
        try:
            # ensure_sync awaits an async rule the way Flask runs an async view.
            passed: Any = app.ensure_sync(rule.check)()
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
    request_blocked.send(app, state=state, reason=reason)
    answer = gate.answer(state, as_json, feature)
    response = Response(answer.body, status=answer.status, headers=list(answer.headers))
    template = gate.settings.template
    if template and not as_json:
        try:
            response.set_data(
                render_template(
                    template,
                    maintenance=state,
                    feature=feature,
                    retry_after=answer.retry_after,  # exactly what the header says
                    readonly=state.mode == "readonly",
                )
            )
        except Exception:  # a broken custom page falls back to the built-in one
            gate.warn_once(f"maintenance template {template!r} failed; using the built-in page")
    return response
