"""Health probes for an orchestrator and a load balancer.

``/health/live`` is listed in ``MAINTENANCE_ALLOWED_PATHS``: the process is fine, so the
orchestrator must not restart it during a window. ``/health/ready`` is not: it gets the 503
while maintenance is on, so the load balancer takes the instance out of rotation.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from . import db

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("/live")
def live() -> dict[str, Any]:
    # Touches nothing: answering at all is the proof of life.
    return {"status": "alive"}


@bp.get("/ready")
def ready() -> tuple[dict[str, Any], int]:
    if not db.is_reachable():
        return {"status": "database unavailable"}, 503
    return {"status": "ready"}, 200
