"""The admin page: sign in to bypass maintenance, and two buttons on the Python API."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from flask_maintenance import ConfigurationError, MaintenanceError

from .extensions import maintenance

bp = Blueprint("admin", __name__, url_prefix="/admin")

F = TypeVar("F", bound=Callable[..., Any])

#: The longest window the form offers (a week).
MAX_MINUTES = 7 * 24 * 60


def admin_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not g.admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


@bp.route("/", methods=["GET", "POST"])
def index() -> Any:
    if request.method == "POST":
        expected = current_app.config.get("ADMIN_PASSWORD") or ""
        given = request.form.get("password", "")
        if expected and hmac.compare_digest(given.encode(), expected.encode()):
            session.clear()
            session["admin"] = True
            flash("Signed in: you keep using the site while maintenance is on.")
            return redirect(url_for(".index"), code=303)
        flash("Wrong password.")
        return render_template("admin.html", state=None), 403
    return render_template("admin.html", state=maintenance.status() if g.admin else None)


@bp.post("/maintenance")
@admin_required
def switch_maintenance() -> Response:
    """``maintenance.enable()`` and ``maintenance.disable()`` behind two buttons."""
    try:
        if request.form.get("action") == "off":
            maintenance.disable()
            flash("Maintenance is off.")
        else:
            minutes = request.form.get("minutes", "").strip()
            ends_at = None
            if minutes:
                if not minutes.isdigit() or not 1 <= int(minutes) <= MAX_MINUTES:
                    raise ConfigurationError(f"minutes must be a whole number from 1 to {MAX_MINUTES}")
                ends_at = datetime.now(timezone.utc) + timedelta(minutes=int(minutes))
            state = maintenance.enable(
                mode=request.form.get("mode", "full"),
                message=request.form.get("message", "").strip() or None,
                ends_at=ends_at,
            )
            flash(f"Maintenance is on (mode {state.mode}).")
    except MaintenanceError as error:  # ConfigurationError for bad input, BackendError for the disk
        flash(f"Could not switch maintenance: {error}")
    return redirect(url_for(".index"), code=303)


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    flash("Signed out.")
    return redirect(url_for("pages.index"), code=303)
