"""The extension's own routes, as a blueprint mounted at ``MAINTENANCE_STATUS_PATH``.

- ``<status path>``: the public status document that the page polls (no secrets in it).
- ``<status path>/bypass/<token>``: the secret link that gives an admin the bypass cookie.
- ``<status path>/banner.js``: the banner script for pages the app does not render.
- ``<status path>/calendar.ics``: the planned and current windows as an iCalendar feed.

All are always served, whatever the mode (the gate counts them as open).
"""

from __future__ import annotations

import functools
import logging
from importlib.resources import files

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from . import times
from .accept import prefers_json
from .bypass import safe_next, token_matches
from .gate import Gate

logger = logging.getLogger("flask_maintenance")

#: Its name: a blueprint is a feature by its name, so this one is not a word an app would pick.
BLUEPRINT_NAME = "flask_maintenance"

blueprint = Blueprint(BLUEPRINT_NAME, __name__)


@functools.cache
def banner_js() -> bytes:
    """The banner script (package data), read on its first request: a worker that never serves
    it neither reads it nor loads the package's resource reader."""
    return files(__package__).joinpath("banner.js").read_bytes()


def _gate() -> Gate:
    gate: Gate = current_app.extensions["maintenance"]._gate(None)
    return gate


@blueprint.get("", endpoint="status")
def maintenance_status() -> Response:
    from .responses import public_status  # here: a worker that nobody asks never loads it

    gate = _gate()
    response = jsonify(public_status(gate.cache.get(), times.utcnow()))
    response.headers["Cache-Control"] = "no-store"
    cors = gate.settings.status_cors
    origin = request.headers.get("Origin")
    if "*" in cors:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in cors:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
    return response


@blueprint.get("/banner.js", endpoint="banner_js")
def maintenance_banner_js() -> WerkzeugResponse:
    response = Response(banner_js(), mimetype="text/javascript")
    # The same for every state (it polls the status): a browser may keep it for an hour.
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)


@blueprint.get("/calendar.ics", endpoint="calendar")
def maintenance_calendar() -> Response:
    from . import ics  # here: only calendar clients need it, not every worker

    now = times.utcnow().replace(microsecond=0)
    response = Response(ics.calendar(_gate().cache.get(), now), mimetype="text/calendar")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Disposition"] = 'inline; filename="maintenance.ics"'
    return response


@blueprint.get("/bypass/<path:token>", endpoint="bypass")
def maintenance_bypass(token: str) -> WerkzeugResponse:
    gate = _gate()
    state = gate.cache.get()
    if not token_matches(token, state):
        from .responses import link_refused

        as_json = prefers_json(request.headers.get("Accept"))
        answer = link_refused(as_json=as_json, home=request.script_root + "/")
        return Response(answer.body, status=answer.status, headers=list(answer.headers))
    # ``next`` is a path of the app; under a prefix (SCRIPT_NAME) the browser needs it too.
    root = request.script_root
    response = redirect(root + safe_next(request.args.get("next")), code=303)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        gate.cookie.name,
        gate.cookie.value_for(state, current_app.secret_key),
        max_age=gate.settings.bypass_max_age,
        path=root or "/",  # explicitly: some Werkzeug 2.3 releases set no Path at all
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    logger.info("maintenance bypass cookie issued to %s", request.remote_addr)
    return response
