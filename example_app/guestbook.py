"""The guestbook: a form that writes to SQLite.

Like every blueprint it is also a feature of its own name, so
``flask --app example_app maintenance on --feature guestbook`` takes just this page down.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from . import db

bp = Blueprint("guestbook", __name__)


@bp.route("/guestbook", methods=["GET", "POST"])
def sign() -> Any:
    form = {"name": "", "message": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        # In readonly mode this POST never gets here: flask-maintenance answers it with a 503.
        form = {key: request.form.get(key, "").strip() for key in form}
        errors = db.validate(form["name"], form["message"])
        if not errors:
            db.add_entry(form["name"], form["message"])
            flash("Thank you for signing the guestbook!")
            return redirect(url_for(".sign"), code=303)
    page = render_template("guestbook.html", entries=db.list_entries(), form=form, errors=errors)
    return page, 400 if errors else 200
