"""The JSON API under /api: the guestbook's entries.

While maintenance is on, requests here get ``application/problem+json`` (the path is listed in
``MAINTENANCE_API_PREFIXES``), never the HTML page.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request, url_for
from werkzeug.wrappers import Response

from . import db

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/entries")
def list_entries() -> dict[str, Any]:
    return {"entries": db.list_entries()}


@bp.get("/entries/<int:entry_id>")
def get_entry(entry_id: int) -> tuple[Response, int] | dict[str, Any]:
    entry = db.get_entry(entry_id)
    if entry is None:
        return jsonify(error="no such entry"), 404
    return entry


@bp.post("/entries")
def create_entry() -> tuple[Response, int] | Response:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error='send a JSON object such as {"name": "Ada", "message": "Hello"}'), 400
    name, message = data.get("name"), data.get("message")
    if not isinstance(name, str) or not isinstance(message, str):
        return jsonify(error="name and message must be strings"), 400
    errors = db.validate(name.strip(), message.strip())
    if errors:
        return jsonify(error="invalid entry", fields=errors), 400
    entry = db.add_entry(name.strip(), message.strip())
    response = jsonify(entry)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_entry", entry_id=entry["id"])
    return response
