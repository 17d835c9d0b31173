"""The home page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    # A start for the `schedule` example that is always a little ahead (a week from today, 02:00).
    next_week = datetime.now(timezone.utc) + timedelta(days=7)
    example_start = next_week.strftime("%Y-%m-%dT02:00:00Z")
    return render_template("index.html", example_start=example_start)
